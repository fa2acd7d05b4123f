// decoder-xcheck --seed N --cases M [--mode 16|32|64] [--verbose] [--all-decoded]
// decoder-xcheck --mode 16|32|64 --bytes "f3 41 90"     (one case, as a mismatch line prints it)
//
// Cross-checks the project's decoder (cpu/decoder/decoder.h, built on Zydis) against
// an independent one, Capstone, over a seeded random corpus of byte strings
// shaped like real instructions: random legacy prefixes (and REX in 64-bit
// mode), the one-byte, 0F, 0F 38 and 0F 3A opcode maps and VEX, followed by
// random ModRM/SIB/displacement/immediate bytes. Every instruction the project
// accepts (decodes and has a handler for) must have the same length and
// mnemonic in Capstone, or the disagreement must be listed in KNOWN_DIFFERENCES
// below with its reason. Anything else is printed as one reproducible line
// (mode and bytes) and fails the run. Project decoder defects it found (F3
// REX.B 90, VEX 0F B8/BC/BD, EVEX/MVEX encodings) are fixed in cpu/decoder/decoder.cpp
// with regression tests in tests/cpu/decoder_open_bugs_test.cpp.
// --all-decoded also compares what the project decodes but does not run yet
// (a preview for instruction families being added). The last line is
// "M cases, K mismatches";
// exit status 1 when K > 0, 2 on a usage error.
//
// "The project accepts bytes that both decoders call invalid" cannot happen
// by construction (the project's decoder is Zydis), so the check that matters
// is the one Capstone gives: bytes the project runs but Capstone rejects are
// compared like any other disagreement ("(invalid)" on Capstone's side).
#include "cpu/decoder/decoder.h"
#include "cpu/decoder/handler_table.h"

#include <Zydis/Zydis.h>
#include <capstone/capstone.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace {

struct Options {
    u64 seed = 1;
    u64 cases = 100000;
    unsigned only_mode = 0; // 0: all three; else 16, 32 or 64
    bool verbose = false;
    bool all_decoded = false; // also instructions the project decodes but does not run
    std::vector<u8> bytes;    // --bytes: check this one case only
};

// ---------------------------------------------------------------------------
// The corpus.

constexpr unsigned MAX_BYTES = 24; // more than the 15-byte limit, so the tail never runs out

class CorpusGenerator {
public:
    explicit CorpusGenerator(u64 seed) : m_rng(seed) {}

    unsigned mode() { return MODES[below(3)]; }

    std::vector<u8> instruction(unsigned mode)
    {
        std::vector<u8> b;
        add_prefixes(b, mode);
        switch (below(10)) {
        case 0:
        case 1:
        case 2:
            b.push_back(byte()); // one-byte map (includes x87 D8-DF)
            break;
        case 3:
            b.push_back(0xD8 + static_cast<u8>(below(8))); // x87, weighted up
            break;
        case 4:
        case 5:
            b.push_back(0x0F);
            b.push_back(byte());
            break;
        case 6:
            b.insert(b.end(), {0x0F, 0x38, byte()});
            break;
        case 7:
            b.insert(b.end(), {0x0F, 0x3A, byte()});
            break;
        default:
            add_vex(b, mode);
            break;
        }
        add_modrm_tail(b);
        return b;
    }

private:
    static constexpr unsigned MODES[3] = {16, 32, 64};
    static constexpr u8 LEGACY_PREFIXES[] = {0x66, 0x67, 0xF2, 0xF3, 0xF0,
                                             0x2E, 0x36, 0x3E, 0x26, 0x64, 0x65};

    u64 below(u64 n) { return m_rng() % n; }
    u8 byte() { return static_cast<u8>(m_rng()); }
    bool chance(unsigned percent) { return below(100) < percent; }

    void add_prefixes(std::vector<u8>& b, unsigned mode)
    {
        // Mostly none or one (as compilers emit), sometimes a pile of them.
        unsigned count = chance(45) ? 0 : chance(70) ? 1 : 1 + static_cast<unsigned>(below(4));
        for (unsigned i = 0; i < count; ++i)
            b.push_back(LEGACY_PREFIXES[below(std::size(LEGACY_PREFIXES))]);
        if (mode == 64 && chance(40))
            b.push_back(0x40 | static_cast<u8>(below(16)));
    }

    // A VEX prefix with random fields. Outside 64-bit mode the inverted R/X
    // bits must be 1 (or the bytes are LES/LDS), which random fields would
    // make rare, so they are set most of the time there.
    void add_vex(std::vector<u8>& b, unsigned mode)
    {
        u8 rxb_mmmmm = byte();
        u8 wvvvv_lpp = byte();
        if (chance(80))
            rxb_mmmmm = static_cast<u8>((rxb_mmmmm & 0xE0) | (1 + below(3))); // maps 0F, 0F38, 0F3A
        if (mode != 64 && chance(85)) {
            rxb_mmmmm |= 0xC0;
            wvvvv_lpp |= 0x40; // vvvv's top bit (inverted) names registers 8-15
        }
        if (chance(35)) {
            b.push_back(0xC5);
            b.push_back(static_cast<u8>((rxb_mmmmm & 0x80) | (wvvvv_lpp & 0x7F)));
        } else {
            b.push_back(0xC4);
            b.push_back(rxb_mmmmm);
            b.push_back(wvvvv_lpp);
        }
        b.push_back(byte()); // opcode
    }

    // ModRM, SIB, displacement and immediates: random bytes, with the
    // register-direct and SIB forms made common enough to matter.
    void add_modrm_tail(std::vector<u8>& b)
    {
        u8 modrm = byte();
        if (chance(30))
            modrm |= 0xC0;
        else if (chance(20))
            modrm = static_cast<u8>((modrm & 0xF8) | 4); // SIB follows
        b.push_back(modrm);
        while (b.size() < MAX_BYTES)
            b.push_back(byte());
    }

    std::mt19937_64 m_rng;
};

// ---------------------------------------------------------------------------
// The two decoders' views of one instruction.

struct View {
    bool valid = false;
    unsigned length = 0;
    std::string mnemonic;
};

class Capstone {
public:
    Capstone()
    {
        for (unsigned i = 0; i < 3; ++i) {
            const cs_mode mode = i == 0 ? CS_MODE_16 : i == 1 ? CS_MODE_32 : CS_MODE_64;
            if (cs_open(CS_ARCH_X86, mode, &m_handle[i]) != CS_ERR_OK) {
                std::fprintf(stderr, "decoder-xcheck: cs_open failed\n");
                std::exit(2);
            }
        }
    }
    ~Capstone()
    {
        for (csh& h : m_handle)
            cs_close(&h);
    }
    Capstone(const Capstone&) = delete;
    Capstone& operator=(const Capstone&) = delete;

    View decode(unsigned mode, const u8* bytes, unsigned size)
    {
        View v;
        cs_insn* insn = nullptr;
        const csh h = m_handle[mode == 16 ? 0 : mode == 32 ? 1 : 2];
        if (cs_disasm(h, bytes, size, 0x1000, 1, &insn) == 1) {
            v.valid = true;
            v.length = insn->size;
            v.mnemonic = strip_prefixes(insn->mnemonic);
            cs_free(insn, 1);
        }
        return v;
    }

private:
    // Capstone prints prefixes as part of the mnemonic ("rep stosb",
    // "lock add"); Zydis keeps them apart. Compare the instruction alone.
    static std::string strip_prefixes(std::string_view m)
    {
        static constexpr std::string_view PREFIXES[] = {
            "lock ", "rep ", "repe ", "repz ", "repne ", "repnz ", "bnd ", "notrack ",
            "xacquire ", "xrelease ", "data16 ", "addr32 "};
        for (bool again = true; again;) {
            again = false;
            for (std::string_view p : PREFIXES)
                if (m.substr(0, p.size()) == p) {
                    m.remove_prefix(p.size());
                    again = true;
                }
        }
        return std::string(m);
    }

    csh m_handle[3] = {};
};

// Zydis set up as cpu/decoder/decoder.cpp sets it up, for the prefix facts the
// known-difference rows look at.
void zydis_decode(unsigned mode, const u8* bytes, ZydisDecodedInstruction& zi)
{
    static const auto decoders = [] {
        std::array<ZydisDecoder, 3> d;
        const ZydisMachineMode modes[3] = {ZYDIS_MACHINE_MODE_LEGACY_16,
                                           ZYDIS_MACHINE_MODE_LEGACY_32, ZYDIS_MACHINE_MODE_LONG_64};
        const ZydisStackWidth widths[3] = {ZYDIS_STACK_WIDTH_16, ZYDIS_STACK_WIDTH_32,
                                           ZYDIS_STACK_WIDTH_64};
        for (unsigned i = 0; i < 3; ++i) {
            ZydisDecoderInit(&d[i], modes[i], widths[i]);
            ZydisDecoderEnableMode(&d[i], ZYDIS_DECODER_MODE_MPX, ZYAN_FALSE);
            ZydisDecoderEnableMode(&d[i], ZYDIS_DECODER_MODE_CET, ZYAN_FALSE);
            ZydisDecoderEnableMode(&d[i], ZYDIS_DECODER_MODE_CLDEMOTE, ZYAN_FALSE);
        }
        return d;
    }();
    const ZydisDecoder& d = decoders[mode == 16 ? 0 : mode == 32 ? 1 : 2];
    ZydisDecoderDecodeInstruction(&d, nullptr, bytes, MAX_BYTES, &zi);
}

// The project's view; `accepted` when it decodes and would execute (a
// handler other than the #UD one).
View project_decode(unsigned mode, const u8* bytes, unsigned size, bool& accepted)
{
    View v;
    Insn insn;
    accepted = false;
    if (decode_insn(mode / 8, bytes, size, insn) != DecodeStatus::Ok)
        return v;
    v.valid = true;
    v.length = insn.length;
    v.mnemonic = mnemonic_name(insn);
    accepted = insn.handler != op_unimplemented && insn.handler != op_unimplemented_decode;
    return v;
}

// ---------------------------------------------------------------------------
// Known disagreements. Each row is a naming difference (the same instruction
// spelled two ways) or a Capstone 4.0.2 defect checked against the SDM (and,
// where the SDM is silent, against the host CPU). A row matches on facts
// about the case: the project's and Capstone's views, and the prefixes as
// Zydis (set up like cpu/decoder/decoder.cpp) reports them.

const char* const CONDITIONS[][2] = {{"z", "e"}, {"nz", "ne"}, {"nb", "ae"}, {"nbe", "a"},
                                      {"nl", "ge"}, {"nle", "g"}};

struct Case {
    unsigned mode;
    const u8* bytes;
    const ZydisDecodedInstruction& zi;
    const View& project;
    const View& capstone;

    bool capstone_says(std::string_view name) const { return capstone.valid && capstone.mnemonic == name; }
    bool same_length() const { return capstone.valid && capstone.length == project.length; }
    bool project_is(std::initializer_list<std::string_view> names) const
    {
        for (std::string_view n : names)
            if (project.mnemonic == n)
                return true;
        return false;
    }
    // REX.W and REX.B of a legacy-encoded instruction (Zydis's raw.rex shares
    // its storage with the VEX/EVEX fields, so it means nothing for those).
    bool rex_w() const { return zi.encoding == ZYDIS_INSTRUCTION_ENCODING_LEGACY && zi.raw.rex.W; }
    bool rex_b() const { return zi.encoding == ZYDIS_INSTRUCTION_ENCODING_LEGACY && zi.raw.rex.B; }
    // The same name, up to the condition-code spellings.
    bool same_name() const
    {
        if (!capstone.valid)
            return false;
        if (project.mnemonic == capstone.mnemonic)
            return true;
        for (const auto& cc : CONDITIONS)
            if (project.mnemonic == std::string("j") + cc[0] && capstone.mnemonic == std::string("j") + cc[1])
                return true;
        return false;
    }
    // Whether legacy prefix `value` is present (REX excluded).
    bool has_prefix(u8 value) const { return prefix_index(value) >= 0; }
    int prefix_index(u8 value, int from = 0) const
    {
        for (int i = from; i < zi.raw.prefix_count; ++i)
            if (zi.raw.prefixes[i].value == value)
                return i;
        return -1;
    }
    bool has_mandatory_prefix() const
    {
        for (unsigned i = 0; i < zi.raw.prefix_count; ++i)
            if (zi.raw.prefixes[i].type == ZYDIS_PREFIX_TYPE_MANDATORY)
                return true;
        return false;
    }
    // The legacy prefix immediately before the opcode (or before REX/VEX).
    int last_legacy_prefix() const
    {
        for (int i = zi.raw.prefix_count - 1; i >= 0; --i) {
            const u8 v = zi.raw.prefixes[i].value;
            if (!(mode == 64 && (v & 0xF0) == 0x40))
                return v;
        }
        return -1;
    }
    // A REX byte that is not the last prefix, which the processor ignores.
    bool has_stray_rex() const
    {
        for (unsigned i = 0; i + 1 < zi.raw.prefix_count; ++i)
            if (mode == 64 && (zi.raw.prefixes[i].value & 0xF0) == 0x40)
                return true;
        return false;
    }
    // The two names differ only by the operand size (insw/insd, cbw/cwde, ...).
    bool differ_in_size_suffix() const
    {
        if (!capstone.valid)
            return false;
        static const std::pair<std::string_view, std::string_view> SIZE_PAIRS[] = {
            {"cbw", "cwde"}, {"cwde", "cdqe"}, {"cwd", "cdq"}, {"cdq", "cqo"}};
        for (auto [a, b] : SIZE_PAIRS)
            if ((project.mnemonic == a && capstone.mnemonic == b) ||
                (project.mnemonic == b && capstone.mnemonic == a))
                return true;
        auto stem = [](std::string_view m) {
            while (!m.empty() && std::strchr("wdqbl", m.back()))
                m.remove_suffix(1);
            return m;
        };
        return stem(project.mnemonic) == stem(capstone.mnemonic);
    }
};

bool is_evex_or_mvex(const ZydisDecodedInstruction& zi)
{
    return zi.encoding == ZYDIS_INSTRUCTION_ENCODING_EVEX ||
           zi.encoding == ZYDIS_INSTRUCTION_ENCODING_MVEX;
}

struct KnownDifference {
    const char* name;
    bool (*applies)(const Case&);
    const char* reason;
};

const KnownDifference KNOWN_DIFFERENCES[] = {
    // ---- Naming: the same instruction, spelled differently ----
    {"condition-code names",
     [](const Case& c) {
         for (const auto& cc : CONDITIONS)
             for (const char* stem : {"j", "set", "cmov"})
                 if (c.project.mnemonic == std::string(stem) + cc[0] &&
                     c.capstone_says(std::string(stem) + cc[1]) && c.same_length())
                     return true;
         return false;
     },
     "Zydis names Jcc/SETcc/CMOVcc by the first spelling of the SDM's list (jz, jnb, jnle), "
     "Capstone by the assembler's usual one (je, jae, jg)"},
    {"assembler aliases",
     [](const Case& c) {
         static const std::pair<const char*, const char*> ALIASES[] = {
             {"xlat", "xlatb"},    {"fwait", "wait"},       {"pushad", "pushal"},
             {"popad", "popal"},   {"pusha", "pushaw"},     {"popa", "popaw"},
             {"fsetpm287_nop", "fsetpm"}, {"shl", "sal"}};
         for (auto [zydis, capstone] : ALIASES)
             if (c.project.mnemonic == zydis && c.capstone_says(capstone) && c.same_length())
                 return true;
         return false;
     },
     "the SDM's XLAT/FWAIT/PUSHAD/POPAD/PUSHA/POPA are XLATB/WAIT/PUSHAL/POPAL/PUSHAW/POPAW in "
     "GNU as; DB E4 is the 287's FSETPM; D0-D3/C0/C1 /6 is an alias of SHL that Capstone calls SAL"},
    {"movabs",
     [](const Case& c) {
         return c.project_is({"mov"}) && c.capstone_says("movabs") && c.same_length();
     },
     "MOV with a 64-bit immediate or moffs is MOVABS in GNU as and Capstone"},
    {"far branches",
     [](const Case& c) {
         return c.same_length() && ((c.project_is({"ret"}) && (c.capstone_says("retf") ||
                                                                 c.capstone_says("retfq"))) ||
                                    (c.project_is({"jmp"}) && c.capstone_says("ljmp")) ||
                                    (c.project_is({"call"}) && c.capstone_says("lcall")));
     },
     "Zydis names far CALL/JMP/RET like the near ones (the SDM does too); Capstone uses "
     "lcall/ljmp/retf"},
    {"SSE/AVX compare predicates",
     [](const Case& c) {
         const bool vex = c.project.mnemonic.compare(0, 1, "v") == 0;
         const std::string base = c.project.mnemonic.substr(vex ? 1 : 0);
         if ((base != "cmpps" && base != "cmppd" && base != "cmpss" && base != "cmpsd") ||
             !c.same_length())
             return false;
         const std::string& m = c.capstone.mnemonic;
         const std::string stem = vex ? "vcmp" : "cmp";
         return m.size() > stem.size() + 2 && m.compare(0, stem.size(), stem) == 0 &&
                m.compare(m.size() - 2, 2, base.substr(3)) == 0;
     },
     "Capstone prints (V)CMPPS/PD/SS/SD with a predicate immediate as the SDM's pseudo-ops "
     "(CMPEQPS, VCMPLT_OQSD, ...)"},
    {"x/y suffixes of narrowing conversions",
     [](const Case& c) {
         return c.same_length() && c.capstone.valid &&
                (c.capstone.mnemonic == c.project.mnemonic + "x" ||
                 c.capstone.mnemonic == c.project.mnemonic + "y");
     },
     "GNU as (and Capstone) add x/y to VCVTPD2PS/VCVTPD2DQ/VCVTTPD2DQ to tell the 128- and "
     "256-bit sources apart; the SDM and Zydis do not"},

    // ---- Capstone 4.0.2 defects ----
    {"mandatory prefix not last or 16-bit",
     [](const Case& c) {
         if (!c.has_mandatory_prefix() || c.zi.encoding != ZYDIS_INSTRUCTION_ENCODING_LEGACY)
             return false;
         if (c.capstone.valid && !c.same_length())
             return false;
         const int last = c.last_legacy_prefix();
         const bool mandatory_last = last == 0x66 || last == 0xF2 || last == 0xF3;
         return c.mode == 16 || c.has_prefix(0x67) || !mandatory_last || c.has_stray_rex() ||
                (c.has_prefix(0x66) && (c.has_prefix(0xF2) || c.has_prefix(0xF3)));
     },
     "Capstone 4 reads 66/F2/F3 as a mandatory prefix only when it is the last legacy prefix, "
     "no 67 is present and the mode is not 16-bit, and lets 66 win over F2/F3; the SDM (Vol 2A "
     "2.1.1, 2.2.1) puts no order on legacy prefixes and makes F2/F3 take precedence"},
    {"66 followed by other prefixes",
     [](const Case& c) {
         if (!c.has_prefix(0x66) || c.last_legacy_prefix() == 0x66)
             return false;
         return (c.same_length() && c.differ_in_size_suffix()) ||
                (c.same_name() && c.capstone.length == c.project.length + 2);
     },
     "Capstone 4 loses the 66 operand-size prefix when other legacy prefixes follow it (66 2E 99 "
     "is CWD, 66 F2 9C is PUSHF, 66 F2 68 iw is PUSH imm16); the SDM puts no order on prefixes"},
    {"REX.W with 66 or string I/O",
     [](const Case& c) {
         return c.mode == 64 && c.rex_w() && c.same_length() && c.differ_in_size_suffix();
     },
     "REX.W overrides 66 (SDM Vol 2A 2.2.1.2) and leaves INS/OUTS 32-bit (they have no 64-bit "
     "form); Capstone 4 lets 66 win and decodes REX.W INS/OUTS as the 16-bit forms"},
    {"16-bit CBW/CWD",
     [](const Case& c) {
         return c.mode == 16 && c.same_length() &&
                ((c.project_is({"cbw"}) && c.capstone_says("cwde")) ||
                 (c.project_is({"cwd"}) && c.capstone_says("cdq")) ||
                 (c.project_is({"cwde"}) && c.capstone_says("cbw")) ||
                 (c.project_is({"cdq"}) && c.capstone_says("cwd")));
     },
     "in 16-bit mode Capstone 4 gives 98/99 the opposite operand size (98 is CBW without 66)"},
    {"JrCXZ address size",
     [](const Case& c) {
         return c.same_length() && c.has_prefix(0x67) &&
                c.project_is({"jecxz", "jcxz", "jrcxz"}) &&
                (c.capstone_says("jrcxz") || c.capstone_says("jecxz") || c.capstone_says("jcxz"));
     },
     "E3 tests CX/ECX/RCX by the address size (SDM Jcc); Capstone 4 ignores 67 on it"},
    {"near branches with 66 in 64-bit mode",
     [](const Case& c) {
         return c.mode == 64 && c.has_prefix(0x66) && c.capstone.valid && c.same_name() &&
                (c.zi.meta.branch_type == ZYDIS_BRANCH_TYPE_NEAR || c.project_is({"ret"}));
     },
     "Intel processors ignore 66 on near JMP/Jcc/CALL/RET in 64-bit mode (SDM Vol 2A JMP); AMD "
     "truncates to 16 bits, and Capstone decodes the AMD form (rel16). The project follows Intel"},
    {"RET imm16 with REX.W",
     [](const Case& c) {
         return c.mode == 64 && c.rex_w() && c.project_is({"ret"}) && c.capstone_says("ret") &&
                c.capstone.length == c.project.length + 2;
     },
     "C2 always has a 16-bit immediate; Capstone 4 reads a 32-bit one under REX.W"},
    {"UD0/UD1 without ModRM",
     [](const Case& c) {
         return (c.project_is({"ud1"}) && c.capstone_says("ud2b")) ||
                (c.project_is({"ud0"}) && (!c.capstone.valid || c.capstone_says("ud0")));
     },
     "UD1 (0F B9) and UD0 (0F FF) take a ModRM byte (SDM Vol 2B UD); Capstone 4 decodes the old "
     "one-byte UD2B/UD0 forms (AMD's UD0 has no ModRM) or rejects them"},
    {"fences with ModRM.rm != 0",
     [](const Case& c) {
         return c.project_is({"lfence", "mfence", "sfence"}) && !c.capstone.valid;
     },
     "0F AE /5, /6, /7 with mod=11 are LFENCE/MFENCE/SFENCE for every rm (SDM Vol 2 Table A-6); "
     "Capstone 4 accepts only rm=0"},
    {"hint NOPs and PREFETCH",
     [](const Case& c) {
         return c.project_is({"nop", "prefetch", "prefetchw"}) && !c.capstone.valid &&
                c.bytes[c.zi.raw.prefix_count] == 0x0F;
     },
     "0F 0D and 0F 18-1F are hint NOPs / PREFETCH for every ModRM (SDM Vol 2B NOP, Table A-3); "
     "Capstone 4 rejects the reserved forms"},
    {"CET end-branch markers",
     [](const Case& c) {
         return c.project_is({"nop"}) && (c.capstone_says("endbr32") || c.capstone_says("endbr64")) &&
                c.same_length();
     },
     "F3 0F 1E FB/FA are ENDBR32/ENDBR64, which execute as NOPs (0F 1E is a hint-NOP row) on "
     "processors without CET, and the model offers none; Capstone names them by their CET role"},
    {"VBROADCASTI128 unknown to Capstone",
     [](const Case& c) { return c.project_is({"vbroadcasti128"}) && !c.capstone.valid; },
     "VEX.256.66.0F38.W0 5A /r is AVX2's VBROADCASTI128 (SDM Vol 2A VPBROADCAST); Capstone 4 "
     "rejects it in every mode (checked through its C API), and cpu-difftest runs it on the host"},
    {"MOV Sreg with REX.R",
     [](const Case& c) {
         return c.mode == 64 && c.project_is({"mov"}) && !c.capstone.valid &&
                (c.zi.opcode == 0x8C || c.zi.opcode == 0x8E);
     },
     "REX.R does not extend the segment-register field of MOV Sreg (checked on the host: 44 8C D8 "
     "runs as MOV EAX, DS); Capstone 4 rejects it"},
    {"67 with REX.W read as 66",
     [](const Case& c) {
         if (c.mode != 64 || !c.has_prefix(0x67) || c.has_prefix(0x66) || !c.rex_w() ||
             !c.capstone.valid)
             return false;
         const bool near_branch = c.zi.meta.branch_type == ZYDIS_BRANCH_TYPE_NEAR && c.same_name() &&
                                  c.capstone.length + 2 == c.project.length;
         return near_branch || (c.same_length() && !c.same_name());
     },
     "in 64-bit mode Capstone 4 decodes 67 followed by REX.W as if 66 were present (MOVUPS "
     "becomes MOVUPD, CALL rel32 becomes rel16); 67 only changes the address size"},
    {"MOV moffs with F2/F3",
     [](const Case& c) {
         return c.project_is({"mov"}) && !c.capstone.valid && c.zi.opcode >= 0xA0 &&
                c.zi.opcode <= 0xA3 && (c.has_prefix(0xF2) || c.has_prefix(0xF3));
     },
     "F2/F3 on instructions that do not use them are ignored (SDM Vol 2A 2.1.1); Capstone 4 "
     "rejects MOV moffs that carries one"},
    {"XCHG r8-r15, rAX",
     [](const Case& c) {
         return c.project_is({"xchg"}) && c.capstone_says("nop") && c.zi.opcode == 0x90 &&
                c.rex_b();
     },
     "90 with REX.B is XCHG r8, rAX, not NOP (SDM Vol 2B NOP/XCHG); Capstone 4 says NOP when 66 "
     "comes with it"},
    {"VEX.W1 outside 64-bit mode",
     [](const Case& c) {
         return c.mode != 64 && c.zi.encoding == ZYDIS_INSTRUCTION_ENCODING_VEX && c.same_length() &&
                ((c.project_is({"vpinsrd"}) && c.capstone_says("vpinsrq")) ||
                 (c.project_is({"vpextrd"}) && c.capstone_says("vpextrq")) ||
                 (c.project_is({"vmovd"}) && c.capstone_says("vmovq")));
     },
     "outside 64-bit mode VEX.W1 acts as W0 for VPINSRD/VPEXTRD/VMOVD (SDM Vol 2B PINSR, PEXTR, "
     "MOVD/MOVQ); Capstone 4 decodes the 64-bit forms"},
    {"VEX.256 AES and PCLMULQDQ",
     [](const Case& c) {
         return c.zi.encoding == ZYDIS_INSTRUCTION_ENCODING_VEX && c.zi.raw.vex.L && !c.capstone.valid &&
                c.project_is({"vaesenc", "vaesenclast", "vaesdec", "vaesdeclast", "vpclmulqdq"});
     },
     "the VEX.256 forms belong to the VAES and VPCLMULQDQ extensions (SDM Vol 2A AESENC, "
     "PCLMULQDQ), which Capstone 4 predates"},
    {"VEX in 16-bit code",
     [](const Case& c) {
         return c.mode == 16 && c.zi.encoding == ZYDIS_INSTRUCTION_ENCODING_VEX && !c.capstone.valid;
     },
     "VEX is valid in 16-bit protected-mode code (SDM Vol 2A 2.3.x: only real and virtual-8086 "
     "mode raise #UD, which the interpreter decides, not the decoder); Capstone 4 rejects some "
     "VEX forms in 16-bit mode"},
    {"F3 REX 90 without REX.B",
     [](const Case& c) {
         return c.project_is({"pause"}) && c.capstone_says("xchg") && !c.rex_b() &&
                c.same_length();
     },
     "F3 90 is PAUSE; a REX byte without REX.B names no other register (XCHG rAX, rAX), but "
     "Capstone 4 decodes any REX form as XCHG"},
    {"REX followed by a legacy prefix",
     [](const Case& c) {
         return c.has_stray_rex() &&
                (!c.capstone.valid || (c.same_length() && c.differ_in_size_suffix()));
     },
     "a REX byte that is not immediately before the opcode is ignored (SDM Vol 2A 2.2.1); "
     "Capstone 4 rejects the instruction or still applies that REX.W"},
};

const KnownDifference* known_difference(const Case& c)
{
    for (const KnownDifference& k : KNOWN_DIFFERENCES)
        if (k.applies(c))
            return &k;
    return nullptr;
}

// ---------------------------------------------------------------------------

bool parse_u64(const char* text, u64& out)
{
    char* end = nullptr;
    out = std::strtoull(text, &end, 0);
    return end && *end == 0 && end != text;
}

// "f3 41 90" or "f34190" → bytes, padded with zeros to MAX_BYTES.
bool parse_hex(const char* text, std::vector<u8>& out)
{
    out.clear();
    std::string digits;
    for (const char* p = text; *p; ++p)
        if (*p != ' ')
            digits += *p;
    if (digits.empty() || digits.size() % 2 || digits.size() / 2 > 15)
        return false;
    for (size_t i = 0; i < digits.size(); i += 2) {
        char* end = nullptr;
        const std::string pair = digits.substr(i, 2);
        out.push_back(static_cast<u8>(std::strtoul(pair.c_str(), &end, 16)));
        if (*end)
            return false;
    }
    out.resize(MAX_BYTES, 0);
    return true;
}

bool parse_options(int argc, char** argv, Options& o)
{
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        const bool has_value = i + 1 < argc;
        u64 value = 0;
        if (arg == "--seed" && has_value && parse_u64(argv[++i], value))
            o.seed = value;
        else if (arg == "--cases" && has_value && parse_u64(argv[++i], value))
            o.cases = value;
        else if (arg == "--mode" && has_value && parse_u64(argv[++i], value) &&
                 (value == 16 || value == 32 || value == 64))
            o.only_mode = static_cast<unsigned>(value);
        else if (arg == "--verbose")
            o.verbose = true;
        else if (arg == "--all-decoded")
            o.all_decoded = true;
        else if (arg == "--bytes" && has_value && parse_hex(argv[++i], o.bytes))
            continue;
        else
            return false;
    }
    return o.bytes.empty() || o.only_mode != 0;
}

std::string hex_bytes(const u8* bytes, unsigned count)
{
    std::string s;
    char buf[4];
    for (unsigned i = 0; i < count; ++i) {
        std::snprintf(buf, sizeof buf, i ? " %02x" : "%02x", bytes[i]);
        s += buf;
    }
    return s;
}

std::string describe(const View& v)
{
    if (!v.valid)
        return "(invalid)";
    return v.mnemonic + "/" + std::to_string(v.length);
}

struct Tally {
    u64 accepted = 0, agreed = 0, mismatches = 0;
    std::map<const KnownDifference*, u64> known_hits;
};

// Checks one case; prints it when it is a mismatch (or a known difference
// under --verbose).
void check_case(const Options& o, Capstone& capstone, unsigned mode, const std::vector<u8>& bytes,
                Tally& t)
{
    bool accepted = false;
    const View p = project_decode(mode, bytes.data(), MAX_BYTES, accepted);
    if (!accepted && !(o.all_decoded && p.valid))
        return;
    ++t.accepted;
    View c = capstone.decode(mode, bytes.data(), MAX_BYTES);
    ZydisDecodedInstruction zi;
    zydis_decode(mode, bytes.data(), zi);
    // Agreeing with Capstone is not enough for an EVEX instruction: the
    // machine has no AVX-512, so running one at all is a defect.
    const bool evex_runs = accepted && is_evex_or_mvex(zi);
    if (c.valid && c.length == p.length && c.mnemonic == p.mnemonic && !evex_runs) {
        ++t.agreed;
        return;
    }
    if (const KnownDifference* k = known_difference(Case{mode, bytes.data(), zi, p, c})) {
        ++t.known_hits[k];
        if (o.verbose)
            std::printf("known: mode %u bytes %s: project %s, capstone %s (%s)\n", mode,
                        hex_bytes(bytes.data(), p.length).c_str(), describe(p).c_str(),
                        describe(c).c_str(), k->reason);
        return;
    }
    ++t.mismatches;
    std::printf("MISMATCH mode %u bytes %s: project %s, capstone %s\n", mode,
                hex_bytes(bytes.data(), p.length).c_str(), describe(p).c_str(), describe(c).c_str());
}

} // namespace

int main(int argc, char** argv)
{
    Options o;
    if (!parse_options(argc, argv, o)) {
        std::fprintf(stderr,
                     "usage: %s [--seed N] [--cases M] [--mode 16|32|64] [--verbose] "
                     "[--all-decoded]\n       %s --mode 16|32|64 --bytes HEX [--verbose]\n",
                     argv[0], argv[0]);
        return 2;
    }
    Capstone capstone;
    Tally t;
    if (!o.bytes.empty()) {
        o.verbose = true;
        o.cases = 1;
        check_case(o, capstone, o.only_mode, o.bytes, t);
        if (t.accepted == 0)
            std::printf("the project does not run these bytes\n");
        else if (t.agreed)
            std::printf("the project and Capstone agree\n");
    } else {
        CorpusGenerator gen(o.seed);
        for (u64 i = 0; i < o.cases; ++i) {
            const unsigned mode = o.only_mode ? o.only_mode : gen.mode();
            check_case(o, capstone, mode, gen.instruction(mode), t);
        }
        std::printf("seed %llu: %llu accepted by the project, %llu agree with Capstone\n",
                    static_cast<unsigned long long>(o.seed),
                    static_cast<unsigned long long>(t.accepted),
                    static_cast<unsigned long long>(t.agreed));
    }
    for (const auto& [k, hits] : t.known_hits)
        std::printf("known difference \"%s\": %llu\n", k->name, static_cast<unsigned long long>(hits));
    std::printf("%llu cases, %llu mismatches\n", static_cast<unsigned long long>(o.cases),
                static_cast<unsigned long long>(t.mismatches));
    return t.mismatches ? 1 : 0;
}
