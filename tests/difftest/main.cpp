// cpu-difftest --seed N --cases M [--case I] [--only FAMILY] [--mode 64|32|both] [--verbose]
//              [--coverage] [--cpu intel|amd]
//
// --cpu picks the CPU model the interpreter runs (default: the host's vendor,
// the only model the host can be compared with).
//
// Runs M generated cases of seed N on the host CPU and in the interpreter and
// prints one line per mismatch; the last line is "M cases, K mismatches"
// (", S skipped" when some cases could not be compared). Exit status 1 when
// K > 0, 2 on a usage or setup error.
#include "tests/difftest/decode.h"
#include "tests/difftest/flag_rules.h"
#include "tests/difftest/generator.h"
#include "tests/difftest/host_runner.h"
#include "tests/difftest/interp_runner.h"
#include "tests/host_cpu.h"

#include <Zydis/Zydis.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <string>

using namespace difftest;

namespace {

struct Options {
    u64 seed = 1;
    u64 cases = 100000;
    bool single = false;
    u64 single_index = 0;
    std::string only;
    unsigned modes = MODE_64 | MODE_32;
    bool verbose = false;
    bool coverage = false; // count the x87/SIMD cases per extension and mnemonic
    CpuVendor vendor = host_cpu_vendor();
};

bool parse_u64(const char* text, u64& out)
{
    char* end = nullptr;
    out = std::strtoull(text, &end, 0);
    return end && *end == 0 && end != text;
}

bool parse_options(int argc, char** argv, Options& o)
{
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        const bool has_value = i + 1 < argc;
        if (arg == "--seed" && has_value) {
            if (!parse_u64(argv[++i], o.seed))
                return false;
        } else if (arg == "--cases" && has_value) {
            if (!parse_u64(argv[++i], o.cases))
                return false;
        } else if (arg == "--case" && has_value) {
            if (!parse_u64(argv[++i], o.single_index))
                return false;
            o.single = true;
        } else if (arg == "--only" && has_value) {
            o.only = argv[++i];
        } else if (arg == "--mode" && has_value) {
            const std::string m = argv[++i];
            if (m == "64")
                o.modes = MODE_64;
            else if (m == "32")
                o.modes = MODE_32;
            else if (m == "both")
                o.modes = MODE_64 | MODE_32;
            else
                return false;
        } else if (arg == "--verbose" || arg == "-v") {
            o.verbose = true;
        } else if (arg == "--cpu" && has_value) {
            const std::optional<CpuVendor> vendor = parse_cpu_vendor(argv[++i]);
            if (!vendor)
                return false;
            o.vendor = *vendor;
        } else if (arg == "--coverage") {
            o.coverage = true;
        } else {
            return false;
        }
    }
    return true;
}

void usage()
{
    std::fprintf(stderr, "usage: cpu-difftest [--seed N] [--cases M] [--case I] [--only FAMILY]\n"
                         "                    [--mode 64|32|both] [--verbose] [--coverage]\n"
                         "                    [--cpu intel|amd]\n"
                         "families:");
    for (const std::string& f : family_names())
        std::fprintf(stderr, " %s", f.c_str());
    std::fprintf(stderr, "\n");
}

struct Decoded {
    bool valid = false;
    ZydisDecodedInstruction insn{};
    ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT]{};
    std::string text;
};

Decoded decode(const TestCase& tc)
{
    static const ZydisFormatter formatter = [] {
        ZydisFormatter f;
        ZydisFormatterInit(&f, ZYDIS_FORMATTER_STYLE_INTEL);
        return f;
    }();
    Decoded d;
    u8 bytes[MAX_INSN];
    std::memset(bytes, 0xCC, sizeof bytes);
    std::memcpy(bytes, tc.bytes.data(), tc.length);
    d.valid = decode_case(tc.mode32, bytes, MAX_INSN, d.insn, d.ops);
    if (!d.valid) {
        d.text = "(invalid)";
        return d;
    }
    char buf[256];
    if (ZYAN_SUCCESS(ZydisFormatterFormatInstruction(&formatter, &d.insn, d.ops,
                                                     d.insn.operand_count_visible, buf, sizeof buf,
                                                     INSN_VA, nullptr)))
        d.text = buf;
    return d;
}

std::string hex(u64 v)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "0x%" PRIx64, v);
    return buf;
}

std::string hex_bytes(const u8* p, unsigned n)
{
    std::string s;
    char buf[4];
    for (unsigned i = 0; i < n; ++i) {
        std::snprintf(buf, sizeof buf, i ? " %02x" : "%02x", p[i]);
        s += buf;
    }
    return s;
}

std::string describe_fault(const Result& r)
{
    if (!r.faulted)
        return "none";
    std::string s = vector_name(r.vector);
    if (r.vector == 14) {
        s += '(';
        s += hex(r.fault_address);
        s += ')';
    }
    return s;
}

u64 image_bytes(const FpImage& img, unsigned offset, unsigned n)
{
    u64 v = 0;
    std::memcpy(&v, img.b.data() + offset, n);
    return v;
}

// Every x87, SSE and AVX register of the two images that differs, by name.
// FOP, FIP and FDP only when the host's FSW shows an exception pending: an
// AMD host saves them as zero otherwise (see tests/cpu/xsave_test.cpp).
void compare_fp(const FpImage& host, const FpImage& ours,
                const std::function<void(const std::string&)>& add)
{
    auto field = [&](const char* name, unsigned offset, unsigned n) {
        const u64 h = image_bytes(host, offset, n), o = image_bytes(ours, offset, n);
        if (h != o)
            add(std::string(name) + " host=" + hex(h) + " ours=" + hex(o));
    };
    field("FCW", fpimg::FCW, 2);
    field("FSW", fpimg::FSW, 2);
    field("FTW", fpimg::FTW, 1);
    if (image_bytes(host, fpimg::FSW, 2) & fpimg::FSW_ES) {
        field("FOP", fpimg::FOP, 2);
        field("FIP", fpimg::FIP, 8);
        field("FDP", fpimg::FDP, 8);
    }
    field("MXCSR", fpimg::MXCSR, 4);
    for (unsigned i = 0; i < 8; ++i) {
        const unsigned at = fpimg::ST + 16 * i;
        if (image_bytes(host, at, 8) != image_bytes(ours, at, 8) ||
            image_bytes(host, at + 8, 2) != image_bytes(ours, at + 8, 2))
            add("ST" + std::to_string(i) + " host=" + hex(image_bytes(host, at + 8, 2)) + ":" +
                hex(image_bytes(host, at, 8)) + " ours=" + hex(image_bytes(ours, at + 8, 2)) + ":" +
                hex(image_bytes(ours, at, 8)));
    }
    auto vec = [&](const std::string& name, unsigned at) {
        if (std::memcmp(host.b.data() + at, ours.b.data() + at, 16) != 0)
            add(name + " host=" + hex(image_bytes(host, at + 8, 8)) + "_" +
                hex(image_bytes(host, at, 8)) + " ours=" + hex(image_bytes(ours, at + 8, 8)) + "_" +
                hex(image_bytes(ours, at, 8)));
    };
    for (unsigned i = 0; i < 16; ++i)
        vec("XMM" + std::to_string(i), fpimg::XMM + 16 * i);
    for (unsigned i = 0; i < 16; ++i)
        vec("YMM" + std::to_string(i) + ".hi", fpimg::YMM_HI + 16 * i);
}

enum class Verdict { Match, Mismatch, Skip };

bool has_vsib(const Decoded& d)
{
    for (unsigned i = 0; i < d.insn.operand_count; ++i)
        if (d.ops[i].type == ZYDIS_OPERAND_TYPE_MEMORY &&
            d.ops[i].mem.type == ZYDIS_MEMOP_TYPE_VSIB)
            return true;
    return false;
}

unsigned widest_memory_operand(const Decoded& d)
{
    unsigned bytes = 0;
    for (unsigned i = 0; i < d.insn.operand_count; ++i)
        if (d.ops[i].type == ZYDIS_OPERAND_TYPE_MEMORY)
            bytes = std::max(bytes, static_cast<unsigned>(d.ops[i].size / 8));
    return bytes;
}

// Compares the two results; `detail` lists every difference.
Verdict judge(const TestCase& tc, const Decoded& d, Result host, const Result& ours,
              std::string& detail)
{
    // A branch to an unmapped target faults on the host when the target is
    // fetched; the interpreter stops after the branch, before that fetch.
    if (host.faulted && host.vector == 14 && host.fault_address == host.regs.rip &&
        host.regs.rip != INSN_VA)
        host.faulted = false;
    if (!host.ok || !ours.ok) {
        detail = !host.ok ? host.error : ours.error;
        return Verdict::Mismatch;
    }
    // Bytes the host accepts but ours does not implement: not comparable.
    if (tc.may_be_unimplemented && ours.faulted && ours.vector == 6 &&
        !(host.faulted && host.vector == 6))
        return Verdict::Skip;
    const Undefined undefined = d.valid ? undefined_for(d.insn, d.ops, tc.init) : Undefined{};
    if (undefined.result && !host.faulted && !ours.faulted)
        return Verdict::Skip;

    auto add = [&](const std::string& what) {
        if (!detail.empty())
            detail += "; ";
        detail += what;
    };
    // CMPS reads two operands in an order the SDM leaves open (AMD reads
    // ES:[rDI] first without REP, DS:[rSI] first with it): when both fault,
    // either fault is right. (Had only one faulted, both sides would agree.)
    const bool cmps =
        d.valid &&
        (d.insn.mnemonic == ZYDIS_MNEMONIC_CMPSB || d.insn.mnemonic == ZYDIS_MNEMONIC_CMPSW ||
         d.insn.mnemonic == ZYDIS_MNEMONIC_CMPSD || d.insn.mnemonic == ZYDIS_MNEMONIC_CMPSQ);
    if (cmps && host.faulted && ours.faulted &&
        (host.vector != ours.vector || host.fault_address != ours.fault_address))
        return Verdict::Skip;
    // #AC for a misaligned SIMD operand wider than 8 bytes "may or may not be
    // generated depending on processor implementation" (SDM Vol 3A 6.15): the
    // host raises it, ours does not. The host does not raise it for a gather's
    // misaligned elements either, where ours does. Not compared.
    const bool one_ac = (host.faulted && host.vector == 17) != (ours.faulted && ours.vector == 17);
    if (one_ac && tc.fp && d.valid && d.insn.meta.isa_ext != ZYDIS_ISA_EXT_X87 &&
        (widest_memory_operand(d) > 8 || has_vsib(d)))
        return Verdict::Skip;
    if (host.faulted != ours.faulted || (host.faulted && host.vector != ours.vector)) {
        add("fault host=" + describe_fault(host) + " ours=" + describe_fault(ours));
        return Verdict::Mismatch;
    }
    // A faulting POPA leaves the registers it popped before the fault loaded
    // on AMD processors; the SDM has a fault restore the state before the
    // instruction (Vol 3A 6.5), which is what ours does. Not compared.
    const bool popa_fault =
        host.faulted && d.valid &&
        (d.insn.mnemonic == ZYDIS_MNEMONIC_POPA || d.insn.mnemonic == ZYDIS_MNEMONIC_POPAD);
    for (unsigned r = 0; r < 16; ++r) {
        if (popa_fault && r != 4)
            continue;
        // Compatibility mode leaves the upper halves of RAX..RDI undefined.
        const u64 mask = tc.mode32 && r < 8 ? 0xFFFFFFFFull : ~0ull;
        if ((host.regs.gpr[r] ^ ours.regs.gpr[r]) & mask)
            add(std::string(gpr_name(r)) + " host=" + hex(host.regs.gpr[r]) +
                " ours=" + hex(ours.regs.gpr[r]));
    }
    if (host.regs.rip != ours.regs.rip)
        add("RIP host=" + hex(host.regs.rip) + " ours=" + hex(ours.regs.rip));
    // A fault leaves every flag as it was; otherwise undefined ones are not compared.
    const u64 mask = FLAGS_COMPARED & ~(host.faulted ? 0 : undefined.flags);
    const u64 flag_diff = (host.regs.rflags ^ ours.regs.rflags) & mask;
    static constexpr struct {
        u64 bit;
        const char* name;
    } flag_names[] = {{FLAG_CF, "CF"}, {FLAG_PF, "PF"},     {FLAG_AF, "AF"}, {FLAG_ZF, "ZF"},
                      {FLAG_SF, "SF"}, {FLAG_TF, "TF"},     {FLAG_IF, "IF"}, {FLAG_DF, "DF"},
                      {FLAG_OF, "OF"}, {FLAG_IOPL, "IOPL"}, {FLAG_NT, "NT"}, {FLAG_AC, "AC"},
                      {FLAG_ID, "ID"}};
    for (const auto& f : flag_names) {
        if (flag_diff & f.bit)
            add(std::string(f.name) + " host=" + ((host.regs.rflags & f.bit) ? "1" : "0") +
                " ours=" + ((ours.regs.rflags & f.bit) ? "1" : "0"));
    }
    for (size_t i = 0; i < DATA_SIZE; ++i) {
        if (host.data[i] == ours.data[i])
            continue;
        size_t end = i;
        while (end < DATA_SIZE && end < i + 8)
            ++end;
        add("mem[" + hex(DATA_VA + i) +
            "] host=" + hex_bytes(&host.data[i], static_cast<unsigned>(end - i)) +
            " ours=" + hex_bytes(&ours.data[i], static_cast<unsigned>(end - i)));
        break;
    }
    if (tc.fp)
        compare_fp(host.fp, ours.fp, add);
    if (host.faulted && host.vector == 14) {
        // An x87 environment or state load that crosses into an unmapped
        // page: the host reports some address in that page, not its first
        // byte (the order the block is read in is the CPU's own; the SDM does
        // not define it), so only the page is compared.
        const bool block_load = d.valid && (d.insn.mnemonic == ZYDIS_MNEMONIC_FLDENV ||
                                            d.insn.mnemonic == ZYDIS_MNEMONIC_FRSTOR);
        const u64 cr2_mask = block_load ? ~u64(PAGE_SIZE - 1) : ~0ull;
        if ((host.fault_address ^ ours.fault_address) & cr2_mask)
            add("CR2 host=" + hex(host.fault_address) + " ours=" + hex(ours.fault_address));
        if ((host.error_code ^ ours.error_code) & 2)
            add("#PF.W host=" + std::to_string((host.error_code >> 1) & 1) +
                " ours=" + std::to_string((ours.error_code >> 1) & 1));
    }
    return detail.empty() ? Verdict::Match : Verdict::Mismatch;
}

void print_regs(const char* label, const Regs& regs)
{
    std::printf("    %s:", label);
    for (unsigned r = 0; r < 16; ++r)
        std::printf(" %s=%s", gpr_name(r), hex(regs.gpr[r]).c_str());
    std::printf(" RFLAGS=%s RIP=%s\n", hex(regs.rflags).c_str(), hex(regs.rip).c_str());
}

// The x87/SSE/AVX state a case starts from, for reproducing a mismatch.
void print_fp(const FpImage& img)
{
    std::printf(
        "    init FCW=%s FSW=%s FTW=%s MXCSR=%s\n", hex(image_bytes(img, fpimg::FCW, 2)).c_str(),
        hex(image_bytes(img, fpimg::FSW, 2)).c_str(), hex(image_bytes(img, fpimg::FTW, 1)).c_str(),
        hex(image_bytes(img, fpimg::MXCSR, 4)).c_str());
    for (unsigned i = 0; i < 8; ++i)
        std::printf("    init ST%u=%s:%s\n", i,
                    hex(image_bytes(img, fpimg::ST + 16 * i + 8, 2)).c_str(),
                    hex(image_bytes(img, fpimg::ST + 16 * i, 8)).c_str());
    for (unsigned i = 0; i < 16; ++i) {
        const unsigned lo = fpimg::XMM + 16 * i, hi = fpimg::YMM_HI + 16 * i;
        std::printf("    init YMM%u=%016llx_%016llx_%016llx_%016llx\n", i,
                    static_cast<unsigned long long>(image_bytes(img, hi + 8, 8)),
                    static_cast<unsigned long long>(image_bytes(img, hi, 8)),
                    static_cast<unsigned long long>(image_bytes(img, lo + 8, 8)),
                    static_cast<unsigned long long>(image_bytes(img, lo, 8)));
    }
}

void print_state(const TestCase& tc, const Result& host, const Result& ours)
{
    print_regs("init", tc.init);
    if (tc.fp)
        print_fp(tc.fp_init);
    print_regs("host", host.regs);
    print_regs("ours", ours.regs);
}

} // namespace

int main(int argc, char** argv)
{
    Options opt;
    if (!parse_options(argc, argv, opt)) {
        usage();
        return 2;
    }
    if (!opt.only.empty()) {
        bool known = false;
        for (const std::string& f : family_names())
            known = known || f == opt.only;
        if (!known) {
            usage();
            return 2;
        }
    }
    HostRunner host;
    std::string error;
    if (!host.init(error)) {
        std::fprintf(stderr, "cpu-difftest: %s\n", error.c_str());
        return 2;
    }
    InterpRunner ours(opt.vendor);

    const auto start = std::chrono::steady_clock::now();
    const u64 first = opt.single ? opt.single_index : 0;
    const u64 count = opt.single ? 1 : opt.cases;
    u64 mismatches = 0, skipped = 0, host_lacks = 0;
    std::map<std::string, u64> unimplemented; // host runs them, ours raises #UD
    struct Stats {
        u64 cases = 0, completed = 0;
        std::map<std::string, u64> faults;
    };
    std::map<std::string, Stats> stats; // per family, for --verbose
    std::map<std::string, u64> covered; // "extension mnemonic", for --coverage
    alignas(4096) static u8 page[PAGE_SIZE];
    TestCase tc;
    for (u64 i = first; i < first + count; ++i) {
        generate_case(opt.seed, i, opt.only, opt.modes, tc);
        if (tc.host_lacks) {
            ++skipped;
            ++host_lacks;
            continue;
        }
        build_code_page(tc, page);
        const Result h = host.run(tc, page);
        const Result o = ours.run(tc, page);
        const Decoded d = decode(tc);
        if (opt.coverage && tc.fp && d.valid)
            ++covered[std::string(ZydisISAExtGetString(d.insn.meta.isa_ext)) + " " +
                      ZydisMnemonicGetString(d.insn.mnemonic)];
        if (opt.verbose) {
            Stats& st = stats[tc.family];
            ++st.cases;
            if (h.faulted)
                ++st.faults[vector_name(h.vector)];
            else
                ++st.completed;
        }
        std::string detail;
        switch (judge(tc, d, h, o, detail)) {
        case Verdict::Match:
            if (opt.single)
                std::printf("seed=%" PRIu64 " case=%" PRIu64 " %s [%s] %s: match (%s)\n", opt.seed,
                            i, tc.family, hex_bytes(tc.bytes.data(), tc.length).c_str(),
                            d.text.c_str(), describe_fault(h).c_str());
            if (opt.verbose)
                print_state(tc, h, o);
            break;
        case Verdict::Skip:
            ++skipped;
            if (d.valid)
                ++unimplemented[ZydisMnemonicGetString(d.insn.mnemonic)];
            if (opt.verbose || opt.single)
                std::printf("skip seed=%" PRIu64 " case=%" PRIu64 " %s [%s] %s\n", opt.seed, i,
                            tc.family, hex_bytes(tc.bytes.data(), tc.length).c_str(),
                            d.text.c_str());
            break;
        case Verdict::Mismatch:
            ++mismatches;
            std::printf("MISMATCH seed=%" PRIu64 " case=%" PRIu64 " %s%s [%s] %s: %s\n", opt.seed,
                        i, tc.family, tc.mode32 ? "/32" : "",
                        hex_bytes(tc.bytes.data(), tc.length).c_str(), d.text.c_str(),
                        detail.c_str());
            if (opt.verbose || opt.single)
                print_state(tc, h, o);
            break;
        }
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (opt.coverage) {
        std::map<std::string, u64> per_extension;
        for (const auto& [name, n] : covered) {
            std::printf("covered: %s x%" PRIu64 "\n", name.c_str(), n);
            ++per_extension[name.substr(0, name.find(' '))];
        }
        for (const auto& [extension, n] : per_extension)
            std::printf("extension %s: %" PRIu64 " mnemonics\n", extension.c_str(), n);
    }
    if (opt.verbose) {
        for (const auto& [family, st] : stats) {
            std::printf("%-10s %7" PRIu64 " cases, %7" PRIu64 " completed", family.c_str(),
                        st.cases, st.completed);
            for (const auto& [vector, n] : st.faults)
                std::printf(", %s %" PRIu64, vector.c_str(), n);
            std::printf("\n");
        }
        for (const auto& [name, n] : unimplemented)
            std::printf("skipped: %s x%" PRIu64 "\n", name.c_str(), n);
        std::printf("%.2f s\n", seconds);
    }
    if (skipped && host_lacks)
        std::printf("%" PRIu64 " cases, %" PRIu64 " mismatches, %" PRIu64 " skipped (%" PRIu64
                    " of them for extensions the host lacks)\n",
                    count, mismatches, skipped, host_lacks);
    else if (skipped)
        std::printf("%" PRIu64 " cases, %" PRIu64 " mismatches, %" PRIu64 " skipped\n", count,
                    mismatches, skipped);
    else
        std::printf("%" PRIu64 " cases, %" PRIu64 " mismatches\n", count, mismatches);
    return mismatches ? 1 : 0;
}
