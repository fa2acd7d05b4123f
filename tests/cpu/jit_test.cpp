// The block translator (cpu/jit/) against the interpreter: random loops
// built from the forms it emits natively, mixed with instructions it leaves
// to their handlers, run on two identical machines, one with translation
// and one without. Registers, flags, memory, RIP, CR2, the exit and the
// retired count must match exactly. The loops run past the translation
// threshold, and their memory operands sometimes straddle a page, miss the
// TLB, fault (#PF above 1 GiB, #GP when non-canonical) or use FS.
#include "tests/cpu/cpu_harness.h"

#include <doctest/doctest.h>

#include <random>

namespace {

// The loops work on 64 KiB of data at linear LINEAR_DATA, mapped by 4 KiB
// pages in reverse order onto physical DATA, so that an access straddling
// two pages must be split (the host pages are not adjacent either).
constexpr u64 DATA = 0x200000;
constexpr u64 DATA_SIZE = 0x10000;
constexpr u64 LINEAR_DATA = 1ull << 39; // PML4 entry 1
constexpr u64 FS_BASE = 0x3000;
constexpr u64 PDPT2 = 0x60000, PD2 = 0x61000, PT2 = 0x62000;

// Registers the random instructions write: not RSP (stack), RSI (data
// pointer), RDI (index, set only to small values) or R14 (loop counter).
constexpr unsigned WRITABLE[] = {RAX, RCX, RDX, RBX, RBP, R8, R9, R10, R11, R12, R13, R15};

// Ends a loop body that starts at offset 0: dec r14d ; jnz (rel32) to 0.
void close_loop(std::vector<u8>& code)
{
    code.insert(code.end(), {0x41, 0xFF, 0xCE, 0x0F, 0x85});
    const u32 back = static_cast<u32>(-static_cast<i32>(code.size() + 4));
    for (int i = 0; i < 4; ++i)
        code.push_back(static_cast<u8>(back >> (8 * i)));
}

class LoopGenerator {
public:
    explicit LoopGenerator(u32 seed) : m_rng(seed) {}

    std::vector<u8> loop()
    {
        std::vector<u8> code;
        const unsigned count = pick(4, 24);
        for (unsigned i = 0; i < count; ++i) {
            std::vector<u8> insn = instruction();
            if (pick(0, 7) == 0) { // a forward Jcc over it: two blocks
                code.push_back(static_cast<u8>(0x70 + pick(0, 15)));
                code.push_back(static_cast<u8>(insn.size()));
            }
            code.insert(code.end(), insn.begin(), insn.end());
        }
        close_loop(code);
        return code;
    }

private:
    std::mt19937 m_rng;
    bool m_addr32 = false; // this instruction has a 0x67 prefix (32-bit addressing)

    unsigned pick(unsigned lo, unsigned hi) { return std::uniform_int_distribution<unsigned>(lo, hi)(m_rng); }
    unsigned writable() { return WRITABLE[pick(0, std::size(WRITABLE) - 1)]; }
    static void append(std::vector<u8>& c, std::initializer_list<u8> bytes) { c.insert(c.end(), bytes); }
    static void append32(std::vector<u8>& c, u32 v)
    {
        for (int i = 0; i < 4; ++i)
            c.push_back(static_cast<u8>(v >> (8 * i)));
    }

    // REX (when needed) for operand size `size`, ModRM.reg `reg`, and an r/m
    // register `rm` or memory with SIB index `index`.
    void prefix(std::vector<u8>& c, unsigned size, unsigned reg, unsigned index, unsigned rm,
                bool byte_regs = false)
    {
        if (m_addr32)
            c.push_back(0x67);
        if (size == 2)
            c.push_back(0x66);
        const u8 rex = static_cast<u8>(0x40 | (size == 8 ? 8 : 0) | ((reg & 8) ? 4 : 0) |
                                       ((index & 8) ? 2 : 0) | ((rm & 8) ? 1 : 0));
        if (rex != 0x40 || byte_regs)
            c.push_back(rex);
    }

    // A memory operand for ModRM.reg = reg: [rsi + disp32], [rsi + rdi*s +
    // disp32], [rip + disp32] or, rarely, an address that faults.
    void memory(std::vector<u8>& c, unsigned reg, unsigned size, size_t imm_bytes)
    {
        const unsigned form = pick(0, 9);
        (void)imm_bytes;
        if (form == 0) { // RIP-relative: the page after the code's
            c.push_back(static_cast<u8>(((reg & 7) << 3) | 5));
            append32(c, static_cast<u32>(0x1000 + pick(0, 64)));
            return;
        }
        i32 disp = static_cast<i32>(pick(0, DATA_SIZE / 2 - 16));
        if (pick(0, 5) == 0) // straddle a page
            disp = static_cast<i32>(0x1000 * pick(1, 6) - pick(1, size));
        // With 32-bit addressing ESI is 0 (RSI = LINEAR_DATA): the identity
        // mapping of physical DATA. Without the truncation it would fault.
        if (m_addr32)
            disp += static_cast<i32>(DATA);
        if (form == 1) { // [rsi + rdi*scale + disp]
            c.push_back(static_cast<u8>(0x84 | ((reg & 7) << 3)));
            c.push_back(static_cast<u8>((pick(0, 3) << 6) | (RDI << 3) | RSI));
        } else if (form == 2 && pick(0, 3) == 0) { // absolute, faulting: #PF above 1 GiB
            c.push_back(static_cast<u8>(0x04 | ((reg & 7) << 3)));
            c.push_back(0x25); // SIB: no base, no index
            append32(c, 0x40000000u + pick(0, 0x1000));
            return;
        } else {
            c.push_back(static_cast<u8>(0x80 | ((reg & 7) << 3) | RSI));
        }
        append32(c, static_cast<u32>(disp));
    }

    std::vector<u8> instruction()
    {
        std::vector<u8> c;
        m_addr32 = pick(0, 9) == 0;
        const unsigned size = pick(0, 1) ? 8 : 4;
        const unsigned d = writable(), s = writable();
        static constexpr u8 ALU[] = {0x01, 0x09, 0x21, 0x29, 0x31, 0x39, 0x85}; // add or and sub xor cmp test
        const u8 alu = ALU[pick(0, 6)];
        if (pick(0, 3) == 0 && alu != 0x85) { // rarely an FS override
            if (pick(0, 3) == 0)
                c.push_back(0x64);
        }
        switch (pick(0, 34)) {
        case 0: // ALU r, r
            prefix(c, size, s, 0, d);
            c.push_back(alu);
            c.push_back(static_cast<u8>(0xC0 | ((s & 7) << 3) | (d & 7)));
            break;
        case 1: // ALU r, imm8 / imm32
        {
            const bool imm8 = pick(0, 1);
            const unsigned n = pick(0, 7);
            prefix(c, size, 0, 0, d);
            c.push_back(imm8 ? 0x83 : 0x81);
            c.push_back(static_cast<u8>(0xC0 | (n << 3) | (d & 7)));
            if (imm8)
                c.push_back(static_cast<u8>(pick(0, 255)));
            else
                append32(c, m_rng());
            break;
        }
        case 2: // ALU r, [m] (03 0B 23 2B 33 3B: add or and sub xor cmp)
            prefix(c, size, d, RDI, RSI);
            c.push_back(static_cast<u8>((alu == 0x85 ? 0x39 : alu) + 2));
            memory(c, d, size, 0);
            break;
        case 3: // MOV r, r
            prefix(c, size, s, 0, d);
            c.push_back(0x89);
            c.push_back(static_cast<u8>(0xC0 | ((s & 7) << 3) | (d & 7)));
            break;
        case 4: // MOV r32, imm32 / MOV r64, imm64
            prefix(c, size, 0, 0, d);
            c.push_back(static_cast<u8>(0xB8 + (d & 7)));
            append32(c, m_rng());
            if (size == 8)
                append32(c, m_rng());
            break;
        case 5: // MOV r, [m]
            prefix(c, size, d, RDI, RSI);
            c.push_back(0x8B);
            memory(c, d, size, 0);
            break;
        case 6: // MOV [m], r (8/16/32/64)
        {
            const unsigned ms = 1u << pick(0, 3);
            prefix(c, ms, s, RDI, RSI, ms == 1);
            c.push_back(ms == 1 ? 0x88 : 0x89);
            memory(c, s, ms, 0);
            break;
        }
        case 7: // MOV [m], imm (8/16/32/64)
        {
            const unsigned ms = 1u << pick(0, 3);
            prefix(c, ms, 0, RDI, RSI);
            c.push_back(ms == 1 ? 0xC6 : 0xC7);
            memory(c, 0, ms, ms == 1 ? 1 : ms == 2 ? 2 : 4);
            const u32 imm = m_rng();
            for (unsigned i = 0; i < (ms == 1 ? 1u : ms == 2 ? 2u : 4u); ++i)
                c.push_back(static_cast<u8>(imm >> (8 * i)));
            break;
        }
        case 8: // MOVZX r, r/m8 or r/m16
        {
            const bool word = pick(0, 1);
            if (pick(0, 1)) {
                prefix(c, size, d, 0, s, true);
                append(c, {0x0F, static_cast<u8>(word ? 0xB7 : 0xB6)});
                c.push_back(static_cast<u8>(0xC0 | ((d & 7) << 3) | (s & 7)));
            } else {
                prefix(c, size, d, RDI, RSI);
                append(c, {0x0F, static_cast<u8>(word ? 0xB7 : 0xB6)});
                memory(c, d, word ? 2 : 1, 0);
            }
            break;
        }
        case 9: // LEA
            prefix(c, size, d, RDI, RSI);
            c.push_back(0x8D);
            memory(c, d, size, 0);
            break;
        case 10: // CMP/TEST [m], r (any size)
        {
            const unsigned ms = 1u << pick(0, 3);
            const bool test = pick(0, 1);
            prefix(c, ms, s, RDI, RSI, ms == 1);
            c.push_back(static_cast<u8>((test ? 0x84 : 0x38) + (ms == 1 ? 0 : 1)));
            memory(c, s, ms, 0);
            break;
        }
        case 11: // CMP [m], imm8
        {
            const unsigned ms = 1u << pick(0, 3);
            prefix(c, ms, 7, RDI, RSI);
            c.push_back(ms == 1 ? 0x80 : 0x83);
            memory(c, 7, ms, 1);
            c.push_back(static_cast<u8>(pick(0, 255)));
            break;
        }
        case 12: case 13: // CMOVcc r, r
            prefix(c, size, d, 0, s);
            append(c, {0x0F, static_cast<u8>(0x40 + pick(0, 15))});
            c.push_back(static_cast<u8>(0xC0 | ((d & 7) << 3) | (s & 7)));
            break;
        // Left to their handlers, in the middle of translated code:
        case 14: // ADC r, r (reads CF from whatever set the flags)
            prefix(c, size, s, 0, d);
            c.push_back(0x11);
            c.push_back(static_cast<u8>(0xC0 | ((s & 7) << 3) | (d & 7)));
            break;
        case 15: // SETcc r8
            prefix(c, 1, 0, 0, d, true);
            append(c, {0x0F, static_cast<u8>(0x90 + pick(0, 15))});
            c.push_back(static_cast<u8>(0xC0 | (d & 7)));
            break;
        case 16: // PUSHFQ; POP r: every flag, materialized
            c.push_back(0x9C);
            if (d & 8)
                c.push_back(0x41);
            c.push_back(static_cast<u8>(0x58 + (d & 7)));
            break;
        case 17: // SHL/SHR/SAR r, imm8
            prefix(c, size, 0, 0, d);
            c.push_back(0xC1);
        {
            static constexpr u8 KIND[] = {4, 5, 7}; // SHL, SHR, SAR
            c.push_back(static_cast<u8>(0xC0 | (KIND[pick(0, 2)] << 3) | (d & 7)));
        }
            c.push_back(static_cast<u8>(pick(0, 70)));
            break;
        case 18: // INC/DEC r / INC/DEC [m] (8/16/32/64, LOCK or not) / IMUL r, r
            if (pick(0, 2) == 0) { // INC or DEC
                prefix(c, size, 0, 0, d);
                append(c, {0xFF, static_cast<u8>((pick(0, 1) ? 0xC8 : 0xC0) | (d & 7))});
            } else if (pick(0, 1)) {
                const unsigned ms = 1u << pick(0, 3);
                if (pick(0, 1))
                    c.push_back(0xF0); // LOCK
                prefix(c, ms, 0, RDI, RSI);
                c.push_back(ms == 1 ? 0xFE : 0xFF);
                memory(c, pick(0, 1), ms, 0); // /0 INC, /1 DEC
            } else {
                prefix(c, size, d, 0, s);
                append(c, {0x0F, 0xAF, static_cast<u8>(0xC0 | ((d & 7) << 3) | (s & 7))});
            }
            break;
        case 19: // ALU r16/r8, r (merging destinations: handlers)
            prefix(c, 2, s, 0, d);
            c.push_back(alu);
            c.push_back(static_cast<u8>(0xC0 | ((s & 7) << 3) | (d & 7)));
            break;
        case 20: // MOV edi, small (the index register) or ECX, a shift count at an edge
            c.clear();
            if (pick(0, 1)) {
                append(c, {0xBF});
                append32(c, pick(0, 0x800));
            } else {
                static constexpr u32 COUNTS[] = {0, 1, 31, 32, 33, 63, 64, 0x120};
                append(c, {0xB9});
                append32(c, COUNTS[pick(0, 7)]);
            }
            break;
        case 22: // IMUL r, [m]
            prefix(c, size, d, RDI, RSI);
            append(c, {0x0F, 0xAF});
            memory(c, d, size, 0);
            break;
        case 23: // IMUL r, r, imm8 / imm32
        {
            const bool imm8 = pick(0, 1);
            prefix(c, size, d, 0, s);
            c.push_back(imm8 ? 0x6B : 0x69);
            c.push_back(static_cast<u8>(0xC0 | ((d & 7) << 3) | (s & 7)));
            if (imm8)
                c.push_back(static_cast<u8>(pick(0, 255)));
            else
                append32(c, m_rng());
            break;
        }
        case 24: // PUSH r; POP r
            c.clear();
            if (s & 8)
                c.push_back(0x41);
            c.push_back(static_cast<u8>(0x50 + (s & 7)));
            if (d & 8)
                c.push_back(0x41);
            c.push_back(static_cast<u8>(0x58 + (d & 7)));
            break;
        case 25: // CALL to a RET, which comes back to a JMP over it
            c.clear();
            append(c, {0xE8, 0x02, 0x00, 0x00, 0x00, 0xEB, 0x01, 0xC3});
            break;
        case 26: // SHL/SHR/SAR r, CL
        {
            static constexpr u8 KIND[] = {4, 5, 7};
            prefix(c, size, 0, 0, d);
            c.push_back(0xD3);
            c.push_back(static_cast<u8>(0xC0 | (KIND[pick(0, 2)] << 3) | (d & 7)));
            break;
        }
        case 27: // MOVSX r, r8/r16 or [m]; MOVSXD r64, r32 or [m]
        {
            const unsigned kind = pick(0, 2); // byte, word, dword source
            const bool mem = pick(0, 1);
            const unsigned dsize = kind == 2 ? 8 : size;
            prefix(c, dsize, d, mem ? unsigned{RDI} : 0u, mem ? unsigned{RSI} : s, kind == 0);
            if (kind == 2)
                c.push_back(0x63);
            else
                append(c, {0x0F, static_cast<u8>(kind == 0 ? 0xBE : 0xBF)});
            if (mem)
                memory(c, d, 1u << kind, 0);
            else
                c.push_back(static_cast<u8>(0xC0 | ((d & 7) << 3) | (s & 7)));
            break;
        }
        case 28: // NOT r (8/16/32/64)
        {
            const unsigned ns = 1u << pick(0, 3);
            prefix(c, ns, 0, 0, d, ns == 1);
            append(c, {static_cast<u8>(ns == 1 ? 0xF6 : 0xF7), static_cast<u8>(0xD0 | (d & 7))});
            break;
        }
        case 29: // NOP [m] (no access)
            prefix(c, 4, 0, RDI, RSI);
            append(c, {0x0F, 0x1F});
            memory(c, 0, 4, 0);
            break;
        case 30: // ALU r8, r8 (merging)
            prefix(c, 1, s, 0, d, true);
            c.push_back(static_cast<u8>(alu - 1));
            c.push_back(static_cast<u8>(0xC0 | ((s & 7) << 3) | (d & 7)));
            break;
        case 31: // ADC/SBB r8/r16/r32/r64, r
        {
            const unsigned as = 1u << pick(0, 3);
            prefix(c, as, s, 0, d, as == 1);
            c.push_back(static_cast<u8>((pick(0, 1) ? 0x10 : 0x18) + (as == 1 ? 0 : 1)));
            c.push_back(static_cast<u8>(0xC0 | ((s & 7) << 3) | (d & 7)));
            break;
        }
        case 32: // SHL/SHR/SAR r8/r16, imm8 (counts past the width too)
        {
            static constexpr u8 KIND[] = {4, 5, 7};
            const unsigned ss = pick(0, 1) ? 2 : 1;
            prefix(c, ss, 0, 0, d, ss == 1);
            c.push_back(ss == 1 ? 0xC0 : 0xC1);
            c.push_back(static_cast<u8>(0xC0 | (KIND[pick(0, 2)] << 3) | (d & 7)));
            c.push_back(static_cast<u8>(pick(0, 33)));
            break;
        }
        case 33: // MOV r8/r16, r / imm / [m] (merging)
        {
            const unsigned ms = pick(0, 1) ? 2 : 1;
            switch (pick(0, 2)) {
            case 0:
                prefix(c, ms, s, 0, d, ms == 1);
                c.push_back(ms == 1 ? 0x88 : 0x89);
                c.push_back(static_cast<u8>(0xC0 | ((s & 7) << 3) | (d & 7)));
                break;
            case 1:
                prefix(c, ms, 0, 0, d, ms == 1);
                c.push_back(static_cast<u8>((ms == 1 ? 0xB0 : 0xB8) + (d & 7)));
                c.push_back(static_cast<u8>(pick(0, 255)));
                if (ms == 2)
                    c.push_back(static_cast<u8>(pick(0, 255)));
                break;
            default:
                prefix(c, ms, d, RDI, RSI, ms == 1);
                c.push_back(ms == 1 ? 0x8A : 0x8B);
                memory(c, d, ms, 0);
                break;
            }
            break;
        }
        case 34: // ROL/ROR r32/r64, imm8
            prefix(c, size, 0, 0, d);
            c.push_back(0xC1);
            c.push_back(static_cast<u8>(0xC0 | (pick(0, 1) << 3) | (d & 7)));
            c.push_back(static_cast<u8>(pick(0, 70)));
            break;
        default: // ADD/OR/ADC/SBB/AND/SUB/XOR [m], r or imm (read-modify-write), 1-8 bytes
        {
            const unsigned ms = 1u << pick(0, 3);
            const unsigned n = pick(0, 6); // not CMP (7)
            if (pick(0, 1)) {
                prefix(c, ms, s, RDI, RSI, ms == 1);
                c.push_back(static_cast<u8>(n * 8 + (ms == 1 ? 0 : 1)));
                memory(c, s, ms, 0);
            } else {
                prefix(c, ms, n, RDI, RSI);
                c.push_back(ms == 1 ? 0x80 : 0x83);
                memory(c, n, ms, 1);
                c.push_back(static_cast<u8>(pick(0, 255)));
            }
            break;
        }
        }
        return c;
    }
};

struct Machine {
    CpuHarness h;
    explicit Machine(bool jit, const std::vector<u8>& code, u32 seed,
                     CpuVendor vendor = CpuVendor::Intel)
        : h(vendor)
    {
        h.cpu.set_jit_enabled(jit);
        h.enter_long64_with_vector_stubs();
        h.put64(CpuHarness::PML4 + 8, PDPT2 | 7);
        h.put64(PDPT2, PD2 | 7);
        h.put64(PD2, PT2 | 7);
        // Linear page 5 is read-only: stores and read-modify-writes there fault.
        for (u64 i = 0; i < DATA_SIZE / 0x1000; ++i)
            h.put64(PT2 + 8 * i, (DATA + DATA_SIZE - 0x1000 * (i + 1)) | (i == 5 ? 5 : 7));
        std::mt19937_64 rng(seed);
        for (u64 a = DATA; a < DATA + DATA_SIZE; a += 8)
            h.put64(a, rng());
        static constexpr u64 EDGES[] = {0, ~0ull, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
                                        0x8000000000000000ull, 0xFF, 0x80, 0xFFFF, 0x8000};
        for (unsigned r : WRITABLE)
            h.state.gpr[r] = rng() % 4 == 0 ? EDGES[rng() % std::size(EDGES)] : rng() >> (rng() % 64);
        h.state.gpr[RSI] = LINEAR_DATA;
        h.state.gpr[RDI] = rng() % 0x800;
        h.state.gpr[R14] = 40; // iterations: past the translation threshold
        h.state.seg[FS].base = FS_BASE;
        h.state.cr0 |= cr::CR0_WP; // so that the read-only page is read-only at CPL 0
        h.state.rip = CpuHarness::CODE;
        std::vector<u8> image = code;
        image.push_back(0xF4);
        h.mem.write_bytes(CpuHarness::CODE, image.data(), image.size());
    }
};

void expect_same(Machine& a, Machine& b)
{
    for (unsigned r = 0; r < 16; ++r) {
        INFO("register " << r);
        CHECK(a.h.state.gpr[r] == b.h.state.gpr[r]);
    }
    CHECK(a.h.state.rip == b.h.state.rip);
    CHECK(a.h.cpu.rflags() == b.h.cpu.rflags());
    CHECK(a.h.state.cr2 == b.h.state.cr2);
    CHECK(a.h.cpu.retired() == b.h.cpu.retired());
    std::vector<u8> da(DATA_SIZE), db(DATA_SIZE);
    a.h.mem.read_bytes(DATA, da.data(), da.size());
    b.h.mem.read_bytes(DATA, db.data(), db.size());
    CHECK(da == db);
}

} // namespace

TEST_CASE("translated blocks do exactly what the interpreter does (random loops)")
{
    for (u32 seed = 1; seed <= 400; ++seed) {
        const std::vector<u8> code = LoopGenerator(seed).loop();
        Machine jit(true, code, seed), interp(false, code, seed);
        const RunExit ja = jit.h.cpu.run(100000);
        const RunExit ia = interp.h.cpu.run(100000);
        INFO("seed " << seed);
        CHECK(ja == ia);
        expect_same(jit, interp);
    }
}

TEST_CASE("a translated loop runs natively and stops on the budget like the interpreter")
{
    // add eax, ecx ; cmp eax, 1000000 ; jb top — translated after 16 runs;
    // budgets that end mid-block fall back to the interpreter for it.
    const std::vector<u8> code = {0x01, 0xC8, 0x3D, 0x40, 0x42, 0x0F, 0x00, 0x72, 0xF7};
    for (u64 budget : {1ull, 47ull, 48ull, 49ull, 3000ull, 30001ull}) {
        Machine jit(true, code, 7), interp(false, code, 7);
        jit.h.state.gpr[RAX] = 0;
        interp.h.state.gpr[RAX] = 0;
        jit.h.state.gpr[RCX] = interp.h.state.gpr[RCX] = 3;
        CHECK(jit.h.cpu.run(budget) == interp.h.cpu.run(budget));
        INFO("budget " << budget);
        expect_same(jit, interp);
    }
}

TEST_CASE("a store that overwrites the running translated block stops it")
{
    // One block, translated after 16 iterations. In iteration 30 its store
    // goes to the immediate of its own next instruction (RBX picks the code
    // address instead of a data address), which must then run as patched:
    // the interpreter re-decodes after the store, and so must translated code.
    CpuHarness h;
    h.enter_long64();
    const std::vector<u8> code = {
        0xFF, 0xC0,                   // 0: inc eax
        0x48, 0x89, 0xF3,             // 2: mov rbx, rsi (data)
        0x83, 0xF8, 0x1E,             // 5: cmp eax, 30
        0x48, 0x0F, 0x44, 0xDF,       // 8: cmove rbx, rdi (the immediate below)
        0xC6, 0x03, 0x05,             // 12: mov byte [rbx], 5
        0xB9, 0x01, 0x00, 0x00, 0x00, // 15: mov ecx, 1
        0x01, 0xCA,                   // 20: add edx, ecx
        0x83, 0xF8, 0x28,             // 22: cmp eax, 40
        0x72, 0xE5,                   // 25: jb 0
    };
    std::vector<u8> image = code;
    image.push_back(0xF4);
    h.mem.write_bytes(CpuHarness::CODE, image.data(), image.size());
    h.state.rip = CpuHarness::CODE;
    h.state.gpr[RAX] = h.state.gpr[RDX] = 0;
    h.state.gpr[RSI] = 0x30000;
    h.state.gpr[RDI] = CpuHarness::CODE + 16;
    CHECK(h.cpu.run(100000) == RunExit::Halted);
    // Iterations 1-29 add 1; from the patching one on (30-40) they add 5.
    CHECK(h.state.gpr[RDX] == 29 + 11 * 5);
}

TEST_CASE("translated shifts and rotates leave the interpreter's flags for every form, size and count")
{
    // shift rax by imm or CL ; pushfq ; pop rbx ; add r12, rbx ; add rax, r13
    // (the value changes every iteration, the flags of each are summed).
    // Both models: their undefined flags differ (OF past one bit, AF).
    for (CpuVendor vendor : {CpuVendor::Intel, CpuVendor::Amd})
    for (u8 kind : {0, 1, 4, 5, 7}) // ROL, ROR, SHL, SHR, SAR
        for (unsigned size : {1u, 2u, 4u, 8u})
            for (unsigned count = 0; count <= 34; ++count) {
                std::vector<u8> code;
                if (size == 2)
                    code.push_back(0x66);
                if (size == 8)
                    code.push_back(0x48);
                const bool by_cl = count == 34;
                code.push_back(by_cl ? (size == 1 ? 0xD2 : 0xD3) : (size == 1 ? 0xC0 : 0xC1));
                code.push_back(static_cast<u8>(0xC0 | (kind << 3))); // rax
                if (!by_cl)
                    code.push_back(static_cast<u8>(count));
                code.insert(code.end(), {0x9C, 0x5B, 0x49, 0x01, 0xDC, 0x4C, 0x01, 0xE8});
                close_loop(code);
                Machine jit(true, code, count, vendor), interp(false, code, count, vendor);
                for (Machine* m : {&jit, &interp}) {
                    m->h.state.gpr[RAX] = 0x8123456789ABCDEFull;
                    m->h.state.gpr[R13] = 0x0F0F0F0F87654321ull;
                    m->h.state.gpr[R12] = 0;
                    m->h.state.gpr[RCX] = count * 7; // CL counts: 0, 7, ... past the width
                }
                INFO("vendor " << int(vendor) << " kind " << int(kind) << " size " << size << " count " << count);
                CHECK(jit.h.cpu.run(100000) == interp.h.cpu.run(100000));
                expect_same(jit, interp);
            }
}

TEST_CASE("translated INC and DEC keep CF and wrap like the interpreter's")
{
    // inc/dec rax (32 or 64 bits) ; pushfq ; pop rbx ; add r12, rbx ; add r13, rax
    for (bool dec : {false, true})
        for (unsigned size : {4u, 8u})
            for (u64 start : {0ull, 5ull, 0x7FFFFFF0ull, 0xFFFFFFF0ull, 0x7FFFFFFFFFFFFFF0ull,
                              ~0ull - 10}) {
                std::vector<u8> code;
                if (size == 8)
                    code.push_back(0x48);
                code.insert(code.end(), {0xFF, static_cast<u8>(dec ? 0xC8 : 0xC0)});
                code.insert(code.end(), {0x9C, 0x5B, 0x49, 0x01, 0xDC, 0x49, 0x01, 0xC5});
                close_loop(code);
                Machine jit(true, code, 1), interp(false, code, 1);
                for (Machine* m : {&jit, &interp}) {
                    m->h.state.gpr[RAX] = dec ? start + 20 : start;
                    m->h.state.gpr[R12] = m->h.state.gpr[R13] = 0;
                    m->h.state.rflags |= rf::CF; // INC/DEC must keep it
                }
                INFO("dec " << dec << " size " << size << " start " << start);
                CHECK(jit.h.cpu.run(100000) == interp.h.cpu.run(100000));
                expect_same(jit, interp);
            }
}

TEST_CASE("a translated store to a read-only page that was read before faults")
{
    // The read leaves a read entry for the page in the soft TLB; the store
    // (in iteration 37, after translation) must still take the write path
    // and raise #PF, for a plain MOV and for a read-modify-write ADD.
    for (bool rmw : {false, true}) {
        std::vector<u8> code = {
            0x8B, 0x07,             // mov eax, [rdi] (the read-only page)
            0x48, 0x89, 0xF3,       // mov rbx, rsi (a writable page)
            0x41, 0x83, 0xFE, 0x03, // cmp r14d, 3
            0x48, 0x0F, 0x44, 0xDF, // cmove rbx, rdi
        };
        if (rmw)
            code.insert(code.end(), {0x01, 0x03});       // add [rbx], eax
        else
            code.insert(code.end(), {0x89, 0x43, 0x08}); // mov [rbx + 8], eax
        close_loop(code);
        Machine jit(true, code, 3), interp(false, code, 3);
        for (Machine* m : {&jit, &interp})
            m->h.state.gpr[RDI] = LINEAR_DATA + 0x5000;
        INFO("rmw " << rmw);
        CHECK(jit.h.cpu.run(100000) == interp.h.cpu.run(100000));
        expect_same(jit, interp);
        CHECK(jit.h.state.rip == CpuHarness::VECTOR_STUBS + VEC_PF * 16 + 1); // after its HLT
        CHECK(jit.h.state.cr2 == LINEAR_DATA + 0x5000 + (rmw ? 0 : 8));
    }
}

TEST_CASE("a fault right after a block the translated code left early costs the budget the interpreter's does")
{
    // Translated code leaves its block after STAC (CR0.AM & EFLAGS.AC arm
    // alignment checks, which native code does not do), so the load after
    // it starts a block of its own; the interpreter runs on in one block.
    // In iteration 31 the load faults and the #PF handler points RBX at
    // readable data again. How much of the budget the fault costs must not
    // depend on where blocks begin: Linux's user-copy routines (STAC, then
    // the access) made a 2-vCPU boot retire a different count with the JIT.
    std::vector<u8> code = {
        0x0F, 0x01, 0xCB,       // stac
        0x8B, 0x03,             // mov eax, [rbx]
        0x0F, 0x01, 0xCA,       // clac
        0x41, 0x83, 0xFE, 0x0A, // cmp r14d, 10
        0x48, 0x0F, 0x44, 0xDF, // cmove rbx, rdi (an unmapped address)
    };
    close_loop(code);
    for (u64 budget = 240; budget <= 300; ++budget) {
        Machine jit(true, code, 5), interp(false, code, 5);
        for (Machine* m : {&jit, &interp}) {
            m->h.state.cr0 |= cr::CR0_AM;
            m->h.state.gpr[RBX] = m->h.state.gpr[RSI];
            m->h.state.gpr[RDI] = 0x40000000;
            // #PF: mov rbx, rsi ; add rsp, 8 ; iretq
            m->h.put(CpuHarness::VECTOR_STUBS + VEC_PF * 16,
                     {0x48, 0x89, 0xF3, 0x48, 0x83, 0xC4, 0x08, 0x48, 0xCF});
        }
        INFO("budget " << budget);
        CHECK(jit.h.cpu.run(budget) == interp.h.cpu.run(budget));
        expect_same(jit, interp);
    }
}
