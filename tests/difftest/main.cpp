// cpu-difftest --seed N --cases M [--case I] [--only FAMILY] [--mode 64|32|both] [--verbose]
//              [--coverage] [--strict-flags] [--cpu intel|amd] [--record FILE [--record-oracle interp]
//              [--record-host VENDOR,FAMILY,MODEL,STEPPING,BRAND]]
// cpu-difftest --replay FILE [--replay FILE...] [--case I] [--verbose] [--cpu intel|amd]
// cpu-difftest --replay IN --amend NOTES [--sparse] --record OUT
//
// --cpu picks the CPU model the interpreter runs (default: the host's vendor,
// the only model the host can be compared with; on replay, the vendor of the
// recorded host).
//
// Runs M generated cases of seed N on the host CPU and in the interpreter and
// prints one line per mismatch; the last line is "M cases, K mismatches"
// (", S skipped" when some cases could not be compared, with the reasons in
// parentheses when some were not run at all). Exit status 1 when K > 0, 2 on
// a usage or setup error.
//
// --record FILE also writes the host's result of every case to FILE;
// --replay judges the interpreter alone against such files, on any machine.
// --record-oracle interp records the interpreter as if it were the host and
// --amend applies a host's MISMATCH report to a recording: together they
// reconstruct a host's results from its report (docs/difftest-corpora.md);
// --sparse keeps only the cases the report lists (the rest become unknown).
#include "tests/difftest/amend.h"
#include "tests/difftest/decode.h"
#include "tests/difftest/flag_rules.h"
#include "tests/difftest/generator.h"
#include "tests/difftest/host_runner.h"
#include "tests/difftest/interp_runner.h"
#include "tests/difftest/record.h"
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
#include <optional>
#include <string>
#include <vector>

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
    bool strict_flags = false; // --strict-flags: compare the flags the SDM leaves undefined too
    std::optional<CpuVendor> vendor;
    std::string record;
    bool oracle_interp = false; // --record-oracle interp
    std::optional<HostIdentity> record_host;
    std::vector<std::string> replay;
    std::string amend;
    bool sparse = false; // --amend keeps only the cases the report lists
};

bool parse_u64(const char* text, u64& out)
{
    char* end = nullptr;
    out = std::strtoull(text, &end, 0);
    return end && *end == 0 && end != text;
}

// "GenuineIntel,6,167,1,Intel(R) Xeon(R) Processor"
bool parse_host_identity(const std::string& text, HostIdentity& out)
{
    std::vector<std::string> parts;
    size_t at = 0;
    for (unsigned i = 0; i < 4; ++i) {
        const size_t comma = text.find(',', at);
        if (comma == std::string::npos)
            return false;
        parts.push_back(text.substr(at, comma - at));
        at = comma + 1;
    }
    u64 family = 0, model = 0, stepping = 0;
    if (!parse_u64(parts[1].c_str(), family) || !parse_u64(parts[2].c_str(), model) ||
        !parse_u64(parts[3].c_str(), stepping))
        return false;
    out.vendor = parts[0];
    out.family = static_cast<u32>(family);
    out.model = static_cast<u32>(model);
    out.stepping = static_cast<u32>(stepping);
    out.brand = text.substr(at);
    return true;
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
        } else if (arg == "--strict-flags") {
            o.strict_flags = true;
        } else if (arg == "--cpu" && has_value) {
            o.vendor = parse_cpu_vendor(argv[++i]);
            if (!o.vendor)
                return false;
        } else if (arg == "--coverage") {
            o.coverage = true;
        } else if (arg == "--record" && has_value) {
            o.record = argv[++i];
        } else if (arg == "--record-oracle" && has_value) {
            if (std::string(argv[++i]) != "interp")
                return false;
            o.oracle_interp = true;
        } else if (arg == "--record-host" && has_value) {
            HostIdentity id;
            if (!parse_host_identity(argv[++i], id))
                return false;
            o.record_host = id;
        } else if (arg == "--replay" && has_value) {
            o.replay.push_back(argv[++i]);
        } else if (arg == "--amend" && has_value) {
            o.amend = argv[++i];
        } else if (arg == "--sparse") {
            o.sparse = true;
        } else {
            return false;
        }
    }
    // --record with --replay only to amend one file; the oracle and the host
    // identity only when recording a live run.
    if (!o.amend.empty() && (o.replay.size() != 1 || o.record.empty()))
        return false;
    if (o.sparse && o.amend.empty())
        return false;
    if (!o.replay.empty() && !o.record.empty() && o.amend.empty())
        return false;
    if ((o.oracle_interp || o.record_host) && (o.record.empty() || !o.replay.empty()))
        return false;
    return true;
}

void usage()
{
    std::fprintf(stderr,
                 "usage: cpu-difftest [--seed N] [--cases M] [--case I] [--only FAMILY]\n"
                 "                    [--mode 64|32|both] [--verbose] [--coverage] [--strict-flags]\n"
                 "                    [--cpu intel|amd] [--record FILE [--record-oracle interp]\n"
                 "                    [--record-host VENDOR,FAMILY,MODEL,STEPPING,BRAND]]\n"
                 "       cpu-difftest --replay FILE [--replay FILE...] [--case I] [--verbose]\n"
                 "                    [--cpu intel|amd]\n"
                 "       cpu-difftest --replay IN --amend NOTES [--sparse] --record OUT\n"
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

// Compares the two results; `detail` lists every difference. `known` says
// how much of `host` is known: a FaultOnly record is compared up to the fault
// (vector, and CR2 for #PF).
// The destination of DPPS/DPPD (and their VEX forms) holds a NaN in the host's result.
bool dot_product_nan(const Decoded& d, const Result& host)
{
    const ZydisMnemonic m = d.insn.mnemonic;
    const bool single = m == ZYDIS_MNEMONIC_DPPS || m == ZYDIS_MNEMONIC_VDPPS;
    if (!single && m != ZYDIS_MNEMONIC_DPPD && m != ZYDIS_MNEMONIC_VDPPD)
        return false;
    const ZydisRegister r = d.ops[0].reg.value;
    const unsigned reg = r >= ZYDIS_REGISTER_YMM0 && r <= ZYDIS_REGISTER_YMM15
                             ? r - ZYDIS_REGISTER_YMM0
                             : r - ZYDIS_REGISTER_XMM0;
    for (unsigned offset : {160u + 16 * reg, 576u + 16 * reg})
        for (unsigned i = 0; i < 16; i += single ? 4 : 8) {
            u64 v = 0;
            std::memcpy(&v, host.fp.b.data() + offset + i, single ? 4 : 8);
            if (single ? (v & 0x7FFFFFFF) > 0x7F800000 : (v & ~(1ull << 63)) > 0x7FF0000000000000ull)
                return true;
        }
    return false;
}

// What the models leave to the host (docs/testing.md "Vendor differences"):
// AMD's RCPPS/RSQRTPS approximations (both models compute Intel's), and
// which NaN DPPS/DPPD return when several products are NaN (the interpreter
// gives the host's). Such cases are skipped, listed by mnemonic with -v.
bool model_leaves_to_host(const Decoded& d, const Result& host, CpuVendor model)
{
    if (!d.valid || host.faulted)
        return false;
    switch (d.insn.mnemonic) {
    case ZYDIS_MNEMONIC_RCPPS: case ZYDIS_MNEMONIC_RCPSS: case ZYDIS_MNEMONIC_VRCPPS:
    case ZYDIS_MNEMONIC_VRCPSS: case ZYDIS_MNEMONIC_RSQRTPS: case ZYDIS_MNEMONIC_RSQRTSS:
    case ZYDIS_MNEMONIC_VRSQRTPS: case ZYDIS_MNEMONIC_VRSQRTSS:
        return model == CpuVendor::Amd;
    default:
        return dot_product_nan(d, host);
    }
}

// How a case is judged: the model compared, and whether the flags the SDM
// leaves undefined are compared too (always for the Intel model, which sets
// them as Intel's processors do; --strict-flags for the AMD one, to study AMD's).
struct JudgeRules {
    CpuVendor model;
    bool strict_flags = false;
};

Verdict judge(const TestCase& tc, const Decoded& d, Result host, const Result& ours, Known known,
              std::string& detail, const JudgeRules& rules)
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
    if (known == Known::Full && !ours.faulted && model_leaves_to_host(d, host, rules.model))
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
    // The same for a gather that both sides stop with #AC: how far it got is
    // the implementation's. (The reconstructed Intel corpus holds the 2026-11
    // interpreter's #AC for cases the Intel host itself skipped this way.)
    const bool both_ac = host.faulted && host.vector == 17 && ours.faulted && ours.vector == 17;
    if (both_ac && d.valid && has_vsib(d))
        return Verdict::Skip;
    if (host.faulted != ours.faulted || (host.faulted && host.vector != ours.vector)) {
        add("fault host=" + describe_fault(host) + " ours=" + describe_fault(ours));
        return Verdict::Mismatch;
    }
    auto compare_page_fault = [&](bool with_error_code) {
        if (!host.faulted || host.vector != 14)
            return;
        // An x87 environment or state load that crosses into an unmapped
        // page: the host reports some address in that page, not its first
        // byte (the order the block is read in is the CPU's own; the SDM does
        // not define it), so only the page is compared.
        const bool block_load = d.valid && (d.insn.mnemonic == ZYDIS_MNEMONIC_FLDENV ||
                                            d.insn.mnemonic == ZYDIS_MNEMONIC_FRSTOR);
        const u64 cr2_mask = block_load ? ~u64(PAGE_SIZE - 1) : ~0ull;
        if ((host.fault_address ^ ours.fault_address) & cr2_mask)
            add("CR2 host=" + hex(host.fault_address) + " ours=" + hex(ours.fault_address));
        if (with_error_code && ((host.error_code ^ ours.error_code) & 2))
            add("#PF.W host=" + std::to_string((host.error_code >> 1) & 1) +
                " ours=" + std::to_string((ours.error_code >> 1) & 1));
    };
    if (known == Known::FaultOnly) {
        compare_page_fault(false);
        return detail.empty() ? Verdict::Match : Verdict::Mismatch;
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
    // The Intel model sets them as Intel's processors do: compared too.
    const bool all_flags = host.faulted || rules.strict_flags || rules.model == CpuVendor::Intel;
    const u64 mask = FLAGS_COMPARED & ~(all_flags ? 0 : undefined.flags);
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
    compare_page_fault(true);
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

// What the cases came to: counts, mismatch lines, the summary. One per run,
// across every replayed file.
class Tally {
public:
    explicit Tally(const Options& opt) : m_opt(opt) {}

    // A case the host did not run, or whose result the recording lacks.
    void not_run(Known why)
    {
        ++m_skipped;
        ++m_not_run[static_cast<size_t>(why)];
    }

    void compare(u64 seed, u64 i, const TestCase& tc, Known known, const Result& h, const Result& o,
                 CpuVendor model)
    {
        const Decoded d = decode(tc);
        if (m_opt.coverage && tc.fp && d.valid)
            ++m_covered[std::string(ZydisISAExtGetString(d.insn.meta.isa_ext)) + " " +
                        ZydisMnemonicGetString(d.insn.mnemonic)];
        if (m_opt.verbose) {
            Stats& st = m_stats[tc.family];
            ++st.cases;
            if (h.faulted)
                ++st.faults[vector_name(h.vector)];
            else
                ++st.completed;
        }
        std::string detail;
        switch (judge(tc, d, h, o, known, detail, JudgeRules{model, m_opt.strict_flags})) {
        case Verdict::Match:
            if (m_opt.single)
                std::printf("seed=%" PRIu64 " case=%" PRIu64 " %s [%s] %s: match (%s)%s\n", seed, i,
                            tc.family, hex_bytes(tc.bytes.data(), tc.length).c_str(),
                            d.text.c_str(), describe_fault(h).c_str(),
                            known == Known::FaultOnly ? " (only the host's fault is recorded)"
                                                      : "");
            if (m_opt.verbose)
                print_state(tc, h, o);
            break;
        case Verdict::Skip:
            ++m_skipped;
            if (d.valid)
                ++m_unimplemented[ZydisMnemonicGetString(d.insn.mnemonic)];
            if (m_opt.verbose || m_opt.single)
                std::printf("skip seed=%" PRIu64 " case=%" PRIu64 " %s [%s] %s\n", seed, i,
                            tc.family, hex_bytes(tc.bytes.data(), tc.length).c_str(),
                            d.text.c_str());
            break;
        case Verdict::Mismatch:
            ++m_mismatches;
            std::printf("MISMATCH seed=%" PRIu64 " case=%" PRIu64 " %s%s [%s] %s: %s\n", seed, i,
                        tc.family, tc.mode32 ? "/32" : "",
                        hex_bytes(tc.bytes.data(), tc.length).c_str(), d.text.c_str(),
                        detail.c_str());
            if (m_opt.verbose || m_opt.single)
                print_state(tc, h, o);
            break;
        }
    }

    // The last line: "N cases, K mismatches[, S skipped[ (reasons)]]".
    void print_summary(u64 count, bool replay, double seconds) const
    {
        if (m_opt.coverage) {
            std::map<std::string, u64> per_extension;
            for (const auto& [name, n] : m_covered) {
                std::printf("covered: %s x%" PRIu64 "\n", name.c_str(), n);
                ++per_extension[name.substr(0, name.find(' '))];
            }
            for (const auto& [extension, n] : per_extension)
                std::printf("extension %s: %" PRIu64 " mnemonics\n", extension.c_str(), n);
        }
        if (m_opt.verbose) {
            for (const auto& [family, st] : m_stats) {
                std::printf("%-10s %7" PRIu64 " cases, %7" PRIu64 " completed", family.c_str(),
                            st.cases, st.completed);
                for (const auto& [vector, n] : st.faults)
                    std::printf(", %s %" PRIu64, vector.c_str(), n);
                std::printf("\n");
            }
            for (const auto& [name, n] : m_unimplemented)
                std::printf("skipped: %s x%" PRIu64 "\n", name.c_str(), n);
            std::printf("%.2f s\n", seconds);
        }
        std::string reasons;
        auto reason = [&](Known why, const char* text) {
            const u64 n = m_not_run[static_cast<size_t>(why)];
            if (!n)
                return;
            reasons += reasons.empty() ? " (" : "; ";
            reasons += std::to_string(n) + " of them" + text;
        };
        reason(Known::HostLacks, " for extensions the host lacks");
        reason(Known::No32Bit, replay ? ": the recorded host could not run 32-bit code"
                                      : ": this host cannot run 32-bit code");
        reason(Known::Unknown, replay ? ": the recording does not know the host's result"
                                      : ": the host's result changed from run to run");
        if (!reasons.empty())
            reasons += ")";
        std::printf("%" PRIu64 " cases, %" PRIu64 " mismatches", count, m_mismatches);
        if (m_skipped)
            std::printf(", %" PRIu64 " skipped%s", m_skipped, reasons.c_str());
        std::printf("\n");
    }

    u64 mismatches() const { return m_mismatches; }

private:
    struct Stats {
        u64 cases = 0, completed = 0;
        std::map<std::string, u64> faults;
    };
    const Options& m_opt;
    u64 m_mismatches = 0, m_skipped = 0;
    std::array<u64, 5> m_not_run{};             // by Known
    std::map<std::string, u64> m_unimplemented; // host runs them, ours raises #UD
    std::map<std::string, Stats> m_stats;       // per family, for --verbose
    std::map<std::string, u64> m_covered;       // "extension mnemonic", for --coverage
};

// Whether the judge finds nothing between `a` (as the host) and `b`.
bool agree(const TestCase& tc, const Result& a, const Result& b, CpuVendor model)
{
    std::string detail;
    return judge(tc, decode(tc), a, b, Known::Full, detail, JudgeRules{model}) != Verdict::Mismatch;
}

// True when the host's result differs from ours only by FIP/FDP cut to
// their low 32 bits: the paravirtualized AMD host does that when the
// process is switched out between the case's XRSTOR64 and its XSAVE (its
// kernel saves the 32-bit form), and under load it did so three runs in a
// row (CI, 2026-12-07: FDP 0x5506cd70b76a came back as 0xcd70b76a). No
// instruction stores a truncated pointer there: XRSTOR64 loads it whole.
bool host_cut_fp_pointers(const TestCase& tc, const Result& host, const Result& ours, CpuVendor model)
{
    Result whole = host;
    bool cut = false;
    for (unsigned offset : {fpimg::FIP, fpimg::FDP}) {
        const u64 h = image_bytes(host.fp, offset, 8), o = image_bytes(ours.fp, offset, 8);
        if (h != o && o > 0xFFFFFFFFu && h == (o & 0xFFFFFFFFu)) {
            std::memcpy(whole.fp.b.data() + offset, &o, 8);
            cut = true;
        }
    }
    return cut && agree(tc, whole, ours, model);
}

int fail(const std::string& error)
{
    std::fprintf(stderr, "cpu-difftest: %s\n", error.c_str());
    return 2;
}

double seconds_since(std::chrono::steady_clock::time_point start)
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The cases of one seed on the host (or, with --record-oracle interp, on the
// interpreter standing in for a host) and in the interpreter.
int run_live(const Options& opt)
{
    const bool on_host = !opt.oracle_interp;
    HostRunner host;
    std::string error;
    if (on_host && !host.init(error))
        return fail(error);
    // The oracle stands in for a host with every extension.
    const HostFeatures features = on_host ? HostFeatures::of_this_host() : HostFeatures{};
    const CpuVendor model = opt.vendor.value_or(host_cpu_vendor());
    InterpRunner ours(model);

    const auto start = std::chrono::steady_clock::now();
    const u64 first = opt.single ? opt.single_index : 0;
    const u64 count = opt.single ? 1 : opt.cases;
    RecordWriter writer;
    if (!opt.record.empty()) {
        RecordHeader header;
        header.seed = opt.seed;
        header.first = first;
        header.count = count;
        header.modes = opt.modes;
        header.only = opt.only;
        header.host = opt.record_host.value_or(HostIdentity::of_this_host());
        header.features = features;
        header.source = on_host ? "host" : "interpreter (--record-oracle interp)";
        if (!writer.open(opt.record, header, error))
            return fail(error);
    }
    Tally tally(opt);
    u64 digest = 0;
    alignas(4096) static u8 page[PAGE_SIZE];
    TestCase tc;
    for (u64 i = first; i < first + count; ++i) {
        generate_case(opt.seed, i, opt.only, opt.modes, features, tc);
        digest = case_digest(digest, tc);
        const Known not_run = tc.host_lacks                                ? Known::HostLacks
                              : on_host && tc.mode32 && !host.can_run_32() ? Known::No32Bit
                                                                           : Known::Full;
        if (not_run != Known::Full) {
            tally.not_run(not_run);
            if (!opt.record.empty())
                writer.add(tc, not_run, Result{});
            continue;
        }
        build_code_page(tc, page);
        Result h = on_host ? host.run(tc, page) : Result{};
        const Result o = ours.run(tc, page);
        if (!on_host)
            h = o;
        Known known = Known::Full;
        if (on_host && !agree(tc, h, o, model)) {
            // Neither a run nor a recording may keep a host hiccup (seen on
            // the paravirtualized AMD host about once in 100,000 cases: a
            // spurious #UD for FCOM, FIP/FDP saved truncated to 32 bits, an
            // AVX result): a mismatch counts only when the host does the
            // same again. Two further runs that agree with each other
            // replace a first one that differs; no agreement at all leaves
            // the case unknown.
            const Result again = host.run(tc, page), third = host.run(tc, page);
            if (!agree(tc, h, again, model)) {
                std::fprintf(stderr,
                             "cpu-difftest: seed %" PRIu64 " case %" PRIu64
                             ": the host's result changed when run again\n",
                             opt.seed, i);
                if (agree(tc, again, third, model))
                    h = again;
                else
                    known = Known::Unknown;
            }
            if (known == Known::Full && !agree(tc, h, o, model) && host_cut_fp_pointers(tc, h, o, model)) {
                std::fprintf(stderr,
                             "cpu-difftest: seed %" PRIu64 " case %" PRIu64
                             ": the host cut FIP/FDP to 32 bits (switched out); left out\n",
                             opt.seed, i);
                known = Known::Unknown;
            }
        }
        if (!opt.record.empty())
            writer.add(tc, known, h);
        if (known == Known::Unknown)
            tally.not_run(known);
        else
            tally.compare(opt.seed, i, tc, known, h, o, model);
    }
    if (!opt.record.empty() && !writer.finish(digest, error))
        return fail(error);
    tally.print_summary(count, false, seconds_since(start));
    return tally.mismatches() ? 1 : 0;
}

std::optional<CpuVendor> vendor_of(const HostIdentity& host)
{
    if (host.vendor == "GenuineIntel")
        return CpuVendor::Intel;
    if (host.vendor == "AuthenticAMD")
        return CpuVendor::Amd;
    return std::nullopt;
}

// The interpreter alone against recorded host results.
int run_replay(const Options& opt)
{
    const auto start = std::chrono::steady_clock::now();
    Tally tally(opt);
    u64 total = 0;
    alignas(4096) static u8 page[PAGE_SIZE];
    TestCase tc;
    Result h;
    for (const std::string& path : opt.replay) {
        RecordReader reader;
        std::string error;
        if (!reader.open(path, error))
            return fail(error);
        const RecordHeader& header = reader.header();
        if (opt.verbose)
            std::printf("%s: seed %" PRIu64 ", cases %" PRIu64 "..%" PRIu64 ", modes %u%s%s, host "
                        "%s family %u model %u stepping %u \"%s\", source: %s\n",
                        path.c_str(), header.seed, header.first, header.first + header.count - 1,
                        header.modes, header.only.empty() ? "" : ", only ", header.only.c_str(),
                        header.host.vendor.c_str(), header.host.family, header.host.model,
                        header.host.stepping, header.host.brand.c_str(), header.source.c_str());
        const std::optional<CpuVendor> vendor = opt.vendor ? opt.vendor : vendor_of(header.host);
        if (!vendor)
            return fail(path + ": recorded on a \"" + header.host.vendor +
                        "\" host; name the model with --cpu");
        InterpRunner ours(*vendor);
        u64 digest = 0;
        for (u64 i = header.first; i < header.first + header.count; ++i) {
            generate_case(header.seed, i, header.only, header.modes, header.features, tc);
            digest = case_digest(digest, tc);
            Known known;
            if (!reader.next(tc, known, h, error))
                return fail(path + ": case " + std::to_string(i) + ": " + error);
            if ((known == Known::HostLacks) != tc.host_lacks)
                return fail(path + ": case " + std::to_string(i) +
                            ": the recording and the generator disagree on whether the host "
                            "has the instruction's extension");
            if (opt.single && i != opt.single_index)
                continue;
            ++total;
            if (!known_ran(known)) {
                tally.not_run(known);
                continue;
            }
            build_code_page(tc, page);
            tally.compare(header.seed, i, tc, known, h, ours.run(tc, page), *vendor);
        }
        if (!reader.finish(digest, error))
            return fail(path + ": " + error);
    }
    tally.print_summary(total, true, seconds_since(start));
    return tally.mismatches() ? 1 : 0;
}

// A recording with a host's MISMATCH report applied (see amend.h).
int run_amend(const Options& opt)
{
    RecordReader reader;
    std::string error;
    if (!reader.open(opt.replay[0], error))
        return fail(error);
    RecordHeader header = reader.header();
    Amendments amendments;
    if (!amendments.load(opt.amend, header.seed, error))
        return fail(error);
    const size_t slash = opt.amend.rfind('/');
    header.source += "; amended with " +
                     (slash == std::string::npos ? opt.amend : opt.amend.substr(slash + 1)) +
                     (opt.sparse ? " (--sparse: only the cases it lists)" : "");
    RecordWriter writer;
    if (!writer.open(opt.record, header, error))
        return fail(error);
    u64 digest = 0, applied = 0, fault_only = 0, unknown = 0;
    TestCase tc;
    Result r;
    for (u64 i = header.first; i < header.first + header.count; ++i) {
        generate_case(header.seed, i, header.only, header.modes, header.features, tc);
        digest = case_digest(digest, tc);
        Known known;
        if (!reader.next(tc, known, r, error))
            return fail(opt.replay[0] + ": case " + std::to_string(i) + ": " + error);
        if (const Amendment* a = amendments.find(i)) {
            if (known != Known::Full)
                return fail("case " + std::to_string(i) + " is in the report but not run");
            apply_amendment(*a, known, r);
            ++applied;
            fault_only += known == Known::FaultOnly;
        } else if (opt.sparse && known_ran(known)) {
            known = Known::Unknown;
            ++unknown;
        } else if (known == Known::Full && tc.may_be_unimplemented && r.faulted && r.vector == 6) {
            // Bytes the interpreter rejects: the report is silent both when the
            // host rejected them too and when it ran them (a skip).
            known = Known::Unknown;
            ++unknown;
        }
        writer.add(tc, known, r);
    }
    if (!reader.finish(digest, error))
        return fail(opt.replay[0] + ": " + error);
    if (!writer.finish(digest, error))
        return fail(error);
    if (applied != amendments.size())
        return fail(opt.amend + ": " + std::to_string(amendments.size() - applied) +
                    " MISMATCH lines name cases outside the recording");
    std::printf("%" PRIu64 " cases amended (%" PRIu64 " of them fault only), %" PRIu64
                " unknown (%s)\n",
                applied, fault_only, unknown,
                opt.sparse ? "not in the report" : "#UD in the interpreter, not in the report");
    return 0;
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
    if (!opt.amend.empty())
        return run_amend(opt);
    if (!opt.replay.empty())
        return run_replay(opt);
    return run_live(opt);
}
