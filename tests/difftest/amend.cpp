#include "tests/difftest/amend.h"

#include <cstdlib>
#include <cstring>
#include <fstream>

namespace difftest {

namespace {

bool parse_hex(const std::string& s, u64& out)
{
    if (s.size() < 3 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X'))
        return false;
    char* end = nullptr;
    out = std::strtoull(s.c_str() + 2, &end, 16);
    return end && *end == 0;
}

bool parse_vector(const std::string& name, u8& out)
{
    for (unsigned v = 0; v < 32; ++v) {
        if (name == vector_name(static_cast<u8>(v))) {
            out = static_cast<u8>(v);
            return true;
        }
    }
    return false;
}

// "none", "#UD", "#PF(0x10021000)": the judge's describe_fault.
bool parse_fault(const std::string& s, Amendment& a)
{
    if (s == "none") {
        a.host_faulted = false;
        return true;
    }
    a.host_faulted = true;
    const size_t paren = s.find('(');
    if (paren == std::string::npos)
        return parse_vector(s, a.host_vector);
    return s.back() == ')' && parse_vector(s.substr(0, paren), a.host_vector) &&
           parse_hex(s.substr(paren + 1, s.size() - paren - 2), a.host_cr2);
}

std::vector<std::string> split(const std::string& s, const std::string& by)
{
    std::vector<std::string> parts;
    size_t at = 0;
    for (;;) {
        const size_t next = s.find(by, at);
        parts.push_back(s.substr(at, next - at));
        if (next == std::string::npos)
            return parts;
        at = next + by.size();
    }
}

// The judge's names for the RFLAGS bits it compares (main.cpp).
u64 flag_bit(const std::string& name)
{
    static constexpr struct {
        const char* name;
        u64 bit;
    } flags[] = {{"CF", FLAG_CF}, {"PF", FLAG_PF}, {"AF", FLAG_AF}, {"ZF", FLAG_ZF},
                 {"SF", FLAG_SF}, {"TF", FLAG_TF}, {"IF", FLAG_IF}, {"DF", FLAG_DF},
                 {"OF", FLAG_OF}, {"NT", FLAG_NT}, {"AC", FLAG_AC}, {"ID", FLAG_ID}};
    for (const auto& f : flags)
        if (name == f.name)
            return f.bit;
    return 0; // IOPL is two bits printed as one: not reconstructible
}

bool parse_register_pair(const std::string& s, u64& hi, u64& lo, char sep)
{
    const size_t at = s.find(sep);
    return at != std::string::npos && parse_hex(s.substr(0, at), hi) &&
           parse_hex(s.substr(at + 1), lo);
}

// One "NAME host=H ours=O" item of a MISMATCH line's detail.
bool parse_item(const std::string& item, Amendment& a)
{
    using Kind = Amendment::Edit::Kind;
    const size_t host_at = item.find(" host="), ours_at = item.rfind(" ours=");
    if (host_at == std::string::npos || ours_at == std::string::npos || ours_at < host_at)
        return false;
    const std::string name = item.substr(0, host_at);
    const std::string host = item.substr(host_at + 6, ours_at - host_at - 6);
    Amendment::Edit e{};
    if (name == "fault") {
        a.fault_only = true;
        return parse_fault(host, a);
    }
    for (unsigned r = 0; r < 16; ++r) {
        if (name == gpr_name(r)) {
            e.kind = Kind::Gpr;
            e.at = r;
            if (!parse_hex(host, e.value))
                return false;
            a.edits.push_back(e);
            return true;
        }
    }
    if (name == "RIP" || name == "CR2") {
        e.kind = name == "RIP" ? Kind::Rip : Kind::Cr2;
        if (!parse_hex(host, e.value))
            return false;
        a.edits.push_back(e);
        return true;
    }
    if (const u64 bit = flag_bit(name)) {
        if (host != "0" && host != "1")
            return false;
        e.kind = Kind::Flag;
        e.value = bit;
        e.size = host == "1";
        a.edits.push_back(e);
        return true;
    }
    if (name == "#PF.W") {
        if (host != "0" && host != "1")
            return false;
        e.kind = Kind::PfWrite;
        e.value = host == "1";
        a.edits.push_back(e);
        return true;
    }
    if (name.starts_with("mem[") && name.back() == ']') {
        u64 address = 0;
        if (!parse_hex(name.substr(4, name.size() - 5), address) || address < DATA_VA)
            return false;
        e.kind = Kind::Mem;
        e.at = static_cast<unsigned>(address - DATA_VA);
        for (const std::string& byte : split(host, " ")) {
            char* end = nullptr;
            const unsigned long v = std::strtoul(byte.c_str(), &end, 16);
            if (byte.size() != 2 || *end != 0)
                return false;
            e.bytes.push_back(static_cast<u8>(v));
        }
        if (e.bytes.empty() || e.at + e.bytes.size() > DATA_SIZE)
            return false;
        a.edits.push_back(e);
        return true;
    }
    static constexpr struct {
        const char* name;
        unsigned at, size;
    } fields[] = {{"FCW", fpimg::FCW, 2},    {"FSW", fpimg::FSW, 2}, {"FTW", fpimg::FTW, 1},
                  {"FOP", fpimg::FOP, 2},    {"FIP", fpimg::FIP, 8}, {"FDP", fpimg::FDP, 8},
                  {"MXCSR", fpimg::MXCSR, 4}};
    for (const auto& f : fields) {
        if (name == f.name) {
            e.kind = Kind::FpField;
            e.at = f.at;
            e.size = f.size;
            if (!parse_hex(host, e.value))
                return false;
            a.edits.push_back(e);
            return true;
        }
    }
    // ST0-7 "exponent:significand", XMM0-15 and YMM0-15.hi "high_low".
    u64 hi = 0, lo = 0;
    auto push_pair = [&](unsigned at, unsigned hi_size) {
        e.kind = Kind::FpField;
        e.at = at;
        e.size = 8;
        e.value = lo;
        a.edits.push_back(e);
        e.at = at + 8;
        e.size = hi_size;
        e.value = hi;
        a.edits.push_back(e);
        return true;
    };
    auto number = [&](size_t from, size_t to, unsigned limit, unsigned& out) {
        const std::string digits = name.substr(from, to - from);
        if (digits.empty() || digits.size() > 2 ||
            digits.find_first_not_of("0123456789") != std::string::npos)
            return false;
        out = static_cast<unsigned>(std::stoul(digits));
        return out < limit;
    };
    unsigned i = 0;
    if (name.starts_with("ST") && number(2, name.size(), 8, i) &&
        parse_register_pair(host, hi, lo, ':'))
        return push_pair(fpimg::ST + 16 * i, 2);
    if (name.starts_with("XMM") && number(3, name.size(), 16, i) &&
        parse_register_pair(host, hi, lo, '_'))
        return push_pair(fpimg::XMM + 16 * i, 8);
    if (name.starts_with("YMM") && name.ends_with(".hi") && number(3, name.size() - 3, 16, i) &&
        parse_register_pair(host, hi, lo, '_'))
        return push_pair(fpimg::YMM_HI + 16 * i, 8);
    return false;
}

} // namespace

bool Amendments::load(const std::string& path, u64 seed, std::string& error)
{
    std::ifstream in(path);
    if (!in) {
        error = "cannot read " + path;
        return false;
    }
    std::string line;
    unsigned number = 0;
    while (std::getline(in, line)) {
        ++number;
        if (!line.starts_with("MISMATCH "))
            continue;
        const std::string where = path + ":" + std::to_string(number);
        unsigned long long line_seed = 0, index = 0;
        if (std::sscanf(line.c_str(), "MISMATCH seed=%llu case=%llu", &line_seed, &index) != 2) {
            error = where + ": cannot read the seed and case";
            return false;
        }
        if (line_seed != seed)
            continue;
        // The detail follows the first ": " after the instruction bytes (the
        // mnemonic may hold "ss:[esi]" but never ": ").
        const size_t bytes_end = line.find("] ");
        const size_t detail_at =
            bytes_end == std::string::npos ? std::string::npos : line.find(": ", bytes_end);
        if (detail_at == std::string::npos) {
            error = where + ": no detail";
            return false;
        }
        Amendment a;
        a.line = line;
        for (const std::string& item : split(line.substr(detail_at + 2), "; ")) {
            if (!parse_item(item, a)) {
                error = where + ": cannot reconstruct \"" + item + "\"";
                return false;
            }
        }
        if (a.fault_only && !a.edits.empty()) {
            error = where + ": a fault difference with other fields";
            return false;
        }
        if (!m_by_case.emplace(index, std::move(a)).second) {
            error = where + ": case " + std::to_string(index) + " listed twice";
            return false;
        }
    }
    return true;
}

const Amendment* Amendments::find(u64 index) const
{
    const auto it = m_by_case.find(index);
    return it == m_by_case.end() ? nullptr : &it->second;
}

void apply_amendment(const Amendment& a, Known& known, Result& r)
{
    using Kind = Amendment::Edit::Kind;
    if (a.fault_only) {
        known = Known::FaultOnly;
        r.faulted = a.host_faulted;
        r.vector = a.host_faulted ? a.host_vector : 0;
        r.error_code = 0;
        r.fault_address = a.host_faulted && a.host_vector == 14 ? a.host_cr2 : 0;
        // The report shows the fault after the judge's branch-target rule;
        // a RIP at the instruction keeps that rule from applying again.
        r.regs.rip = INSN_VA;
        return;
    }
    for (const Amendment::Edit& e : a.edits) {
        switch (e.kind) {
        case Kind::Gpr:
            r.regs.gpr[e.at] = e.value;
            break;
        case Kind::Rip:
            r.regs.rip = e.value;
            break;
        case Kind::Flag:
            r.regs.rflags = e.size ? r.regs.rflags | e.value : r.regs.rflags & ~e.value;
            break;
        case Kind::Mem:
            std::memcpy(r.data.data() + e.at, e.bytes.data(), e.bytes.size());
            break;
        case Kind::FpField:
            std::memcpy(r.fp.b.data() + e.at, &e.value, e.size);
            break;
        case Kind::Cr2:
            r.fault_address = e.value;
            break;
        case Kind::PfWrite:
            r.error_code = static_cast<u32>((r.error_code & ~2u) | (e.value ? 2u : 0u));
            break;
        }
    }
}

} // namespace difftest
