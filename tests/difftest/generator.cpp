#include "tests/difftest/generator.h"

#include "cpu/state/cpuid_model.h"
#include "tests/cpu/random_fp.h"
#include "tests/difftest/decode.h"

#include <cpuid.h>

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace difftest {

namespace {

constexpr unsigned RAX_ = 0, RCX_ = 1, RDX_ = 2, RSP_ = 4, RBP_ = 5, RSI_ = 6, RDI_ = 7;

u64 splitmix(u64& x)
{
    u64 z = (x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// xoshiro256**, seeded per case from (seed, index).
class Rng {
public:
    Rng(u64 seed, u64 index)
    {
        u64 x = seed;
        x = splitmix(x) ^ (index * 0xD1B54A32D192ED03ull);
        for (u64& w : m_s)
            w = splitmix(x);
    }
    u64 next()
    {
        const u64 result = rotl(m_s[1] * 5, 7) * 9;
        const u64 t = m_s[1] << 17;
        m_s[2] ^= m_s[0];
        m_s[3] ^= m_s[1];
        m_s[1] ^= m_s[2];
        m_s[0] ^= m_s[3];
        m_s[2] ^= t;
        m_s[3] = rotl(m_s[3], 45);
        return result;
    }
    u64 bits() { return next(); } // for tests/cpu/random_fp.h
    u64 below(u64 n) { return n ? next() % n : 0; }
    bool chance(unsigned percent) { return below(100) < percent; }
    template <typename T, size_t N> T pick(const T (&items)[N]) { return items[below(N)]; }

private:
    static u64 rotl(u64 x, int k) { return (x << k) | (x >> (64 - k)); }
    u64 m_s[4];
};

constexpr u64 mask_of(unsigned bytes)
{
    return bytes >= 8 ? ~0ull : (1ull << (bytes * 8)) - 1;
}

u64 sign_extend_from(u64 v, unsigned bits)
{
    if (bits >= 64)
        return v;
    const u64 sign = 1ull << (bits - 1);
    v &= (sign << 1) - 1;
    return (v ^ sign) - sign;
}

// Values that find bugs: sign and carry boundaries of every width, small
// numbers, single bits, pointers into the data page, and plain noise.
u64 interesting(Rng& r)
{
    static constexpr u64 edges[] = {0,
                                    1,
                                    2,
                                    0x7F,
                                    0x80,
                                    0xFF,
                                    0x100,
                                    0x7FFF,
                                    0x8000,
                                    0xFFFF,
                                    0x10000,
                                    0x7FFFFFFF,
                                    0x80000000,
                                    0xFFFFFFFF,
                                    0x100000000,
                                    0x7FFFFFFFFFFFFFFF,
                                    0x8000000000000000,
                                    ~0ull,
                                    ~0ull - 1,
                                    0xFFFFFFFF80000000,
                                    0xFFFFFFFFFFFF8000,
                                    0xFFFFFFFFFFFFFF80};
    switch (r.below(10)) {
    case 0:
    case 1:
    case 2:
        return r.next();
    case 3:
        return r.below(17);
    case 4:
        return static_cast<u64>(-static_cast<i64>(r.below(17)));
    case 5:
        return r.pick(edges);
    case 6: {
        static constexpr unsigned widths[] = {8, 16, 32};
        const unsigned bits = r.pick(widths);
        u64 v = r.next() & ((1ull << bits) - 1);
        if (r.chance(50))
            v = sign_extend_from(v, bits);
        else if (r.chance(40))
            v |= r.next() << bits;
        return v;
    }
    case 7:
        return 1ull << r.below(64);
    case 8:
        return r.chance(50) ? (1ull << r.below(64)) - 1 : ~((1ull << r.below(64)) - 1);
    default:
        return DATA_VA + r.below(DATA_SIZE);
    }
}

// A tiny x86-64 encoder: legacy prefixes, REX, opcode, ModRM/SIB/disp, imm.
struct InsnBuilder {
    std::vector<u8> legacy;
    bool rex_w = false;
    bool force_rex = false; // an otherwise empty REX (SPL/BPL/SIL/DIL instead of AH..BH)
    std::vector<u8> opcode;
    int opcode_reg = -1; // +r encodings: register in the opcode's low bits
    bool has_modrm = false;
    u8 mod = 3, reg = 0, rm = 0;
    bool has_sib = false;
    u8 scale_log = 0, index = 4, base = 0;
    unsigned disp_size = 0;
    i64 disp = 0;
    bool rip_relative = false;
    u64 rip_target = 0;
    std::vector<u8> imm;

    u8 rex() const
    {
        u8 r = 0x40;
        if (rex_w)
            r |= 8;
        if (has_modrm && (reg & 8))
            r |= 4;
        if (has_modrm && has_sib && (index & 8))
            r |= 2;
        if (opcode_reg >= 0 ? (opcode_reg & 8) : has_modrm && ((has_sib ? base : rm) & 8))
            r |= 1;
        return r;
    }
    bool uses_rex() const { return force_rex || rex() != 0x40; }

    // Returns the length, or 0 when the encoding exceeds 15 bytes.
    unsigned encode(u8* out, u64 address) const
    {
        u8 buf[32];
        unsigned n = 0;
        for (u8 p : legacy)
            buf[n++] = p;
        if (uses_rex())
            buf[n++] = rex();
        for (size_t i = 0; i < opcode.size(); ++i)
            buf[n++] = static_cast<u8>(
                opcode[i] + (i + 1 == opcode.size() && opcode_reg >= 0 ? (opcode_reg & 7) : 0));
        if (has_modrm) {
            buf[n++] = static_cast<u8>((mod << 6) | ((reg & 7) << 3) | (rm & 7));
            if (has_sib)
                buf[n++] = static_cast<u8>((scale_log << 6) | ((index & 7) << 3) | (base & 7));
        }
        const unsigned disp_at = n;
        for (unsigned i = 0; i < disp_size; ++i)
            buf[n++] = static_cast<u8>(static_cast<u64>(disp) >> (8 * i));
        for (u8 b : imm)
            buf[n++] = b;
        if (n > MAX_INSN)
            return 0;
        if (rip_relative) {
            const u64 d = rip_target - (address + n);
            for (unsigned i = 0; i < 4; ++i)
                buf[disp_at + i] = static_cast<u8>(d >> (8 * i));
        }
        std::memcpy(out, buf, n);
        return n;
    }
};

struct Gen {
    Rng& rng;
    TestCase& tc;
    InsnBuilder b;
    u16 pinned = 0;   // registers holding addresses; later value choices leave them alone
    bool m32 = false; // compatibility mode: no REX, no 64-bit operands, 32-bit addresses
    bool rm_is_mem = false;
    u64 ea = 0; // the memory operand's address when rm_is_mem

    const HostFeatures& host; // decides tc.host_lacks, nothing else

    Gen(Rng& r, TestCase& t, const HostFeatures& h) : rng(r), tc(t), m32(t.mode32), host(h) {}

    u64& gpr(unsigned r) { return tc.init.gpr[r]; }
    void set_reg(unsigned r, u64 v)
    {
        if (!((pinned >> r) & 1))
            tc.init.gpr[r] = v;
    }
    void pin_reg(unsigned r, u64 v)
    {
        tc.init.gpr[r] = v;
        pinned = static_cast<u16>(pinned | (1u << r));
    }
    bool is_pinned(unsigned r) const { return (pinned >> r) & 1; }
    u8 any_reg() { return static_cast<u8>(rng.below(m32 ? 8 : 16)); }
    u8 free_reg()
    {
        for (;;) {
            const u8 r = any_reg();
            if (!is_pinned(r))
                return r;
        }
    }

    // Writes bytes of `value` that fall inside the data page.
    void poke(u64 addr, unsigned size, u64 value)
    {
        for (unsigned i = 0; i < size; ++i) {
            const u64 a = addr + i;
            if (a >= DATA_VA && a < DATA_VA + DATA_SIZE)
                tc.data[a - DATA_VA] = static_cast<u8>(value >> (8 * i));
        }
    }
    u64 peek(u64 addr, unsigned size) const
    {
        u64 v = 0;
        for (unsigned i = 0; i < size; ++i) {
            const u64 a = addr + i;
            if (a >= DATA_VA && a < DATA_VA + DATA_SIZE)
                v |= u64(tc.data[a - DATA_VA]) << (8 * i);
        }
        return v;
    }

    // Operand size through 66 / REX.W; size 1 sometimes gets an empty REX.
    void apply_size(unsigned size)
    {
        if (size == 2)
            b.legacy.push_back(0x66);
        if (size == 8)
            b.rex_w = true;
        if (size == 1 && !m32 && rng.chance(25))
            b.force_rex = true;
    }
    unsigned op_size(bool allow_byte)
    {
        static constexpr unsigned all[] = {1, 2, 4, 8};
        static constexpr unsigned wide[] = {2, 4, 8};
        static constexpr unsigned all32[] = {1, 2, 4};
        static constexpr unsigned wide32[] = {2, 4};
        const unsigned size = m32 ? (allow_byte ? rng.pick(all32) : rng.pick(wide32))
                                  : (allow_byte ? rng.pick(all) : rng.pick(wide));
        apply_size(size);
        return size;
    }
    void imm_bytes(unsigned count, u64 value)
    {
        for (unsigned i = 0; i < count; ++i)
            b.imm.push_back(static_cast<u8>(value >> (8 * i)));
    }
    // ib / iw / id as the operand size selects (id, sign-extended, for 64-bit).
    void imm_for(unsigned size) { imm_bytes(size == 1 ? 1 : size == 2 ? 2 : 4, interesting(rng)); }

    // An address in the data page for a `size`-byte access; sometimes one that
    // straddles the page's edge, so that faults are compared too.
    u64 pick_ea(unsigned size, unsigned margin = 0)
    {
        if (margin == 0 && rng.chance(3)) {
            return rng.chance(60) ? DATA_VA + DATA_SIZE - 1 - rng.below(size)
                                  : DATA_VA - 1 - rng.below(size);
        }
        const u64 span = DATA_SIZE - size - 2 * margin;
        u64 off = margin + rng.below(span + 1);
        if (rng.chance(60))
            off &= ~u64(size - 1);
        return DATA_VA + off;
    }

    // ModRM (and SIB/disp) for a memory operand at `target`, with the base and
    // index registers set to reach it through every addressing form.
    void rm_mem(u64 target, bool allow_addr32 = true)
    {
        rm_is_mem = true;
        ea = target;
        b.has_modrm = true;
        // In compatibility mode addresses are 32-bit already (67h would make
        // them 16-bit, out of the data page's reach).
        const bool prefix67 = !m32 && allow_addr32 && rng.chance(12);
        const bool addr32 = m32 || prefix67;
        if (prefix67)
            b.legacy.push_back(0x67);
        if (rng.chance(6)) { // ES/CS/SS/DS overrides: no effect in 64-bit mode
            static constexpr u8 segs[] = {0x26, 0x2E, 0x36, 0x3E};
            b.legacy.push_back(rng.pick(segs));
        }
        const u64 amask = addr32 ? 0xFFFFFFFFull : ~0ull;
        auto garbage = [&](u64 v) {
            v &= amask;
            if (addr32 && rng.chance(50))
                v |= rng.next() << 32;
            return v;
        };
        auto small_disp = [&](unsigned size) -> i64 {
            if (size == 1)
                return static_cast<i8>(rng.next());
            return rng.chance(70) ? static_cast<i64>(rng.below(0x20000)) - 0x10000
                                  : static_cast<i32>(rng.next());
        };
        const unsigned form = static_cast<unsigned>(rng.below(10));
        if (form == 7) { // RIP-relative ([disp32] in compatibility mode)
            b.mod = 0;
            b.rm = 5;
            b.disp_size = 4;
            b.rip_relative = !m32;
            b.rip_target = target;
            b.disp = static_cast<i64>(target);
            return;
        }
        if (form == 8) { // absolute [disp32] through SIB with no base and no index
            b.mod = 0;
            b.rm = 4;
            b.has_sib = true;
            b.base = 5;
            b.index = 4;
            b.disp_size = 4;
            b.disp = static_cast<i64>(target);
            return;
        }
        u8 base = free_reg();
        if (form <= 2) { // [base], [base+disp8], [base+disp32] without SIB
            while ((base & 7) == 4 || (form == 0 && (base & 7) == 5))
                base = free_reg();
            b.mod = static_cast<u8>(form);
            b.rm = base;
            b.disp_size = form == 0 ? 0 : form == 1 ? 1 : 4;
            b.disp = b.disp_size ? small_disp(b.disp_size) : 0;
            pin_reg(base, garbage(target - static_cast<u64>(b.disp)));
            return;
        }
        b.rm = 4;
        b.has_sib = true;
        b.scale_log = static_cast<u8>(rng.below(4));
        const u64 scale = 1ull << b.scale_log;
        if (form == 6) { // [index*scale + disp32], no base
            u8 index;
            do
                index = free_reg();
            while (index == 4);
            b.mod = 0;
            b.base = m32 || rng.chance(50) ? 5 : 13; // REX.B is ignored here
            b.index = index;
            b.disp_size = 4;
            i64 d = static_cast<i8>(rng.next());
            d += static_cast<i64>((target - static_cast<u64>(d)) % scale);
            b.disp = d;
            pin_reg(index, garbage((target - static_cast<u64>(d)) / scale));
            return;
        }
        // [base + index*scale + disp] (form 9: no index)
        b.mod = static_cast<u8>(form == 3 ? 0 : form == 4 ? 1 : 2);
        if (b.mod == 0 && (base & 7) == 5)
            b.mod = 1;
        b.disp_size = b.mod == 0 ? 0 : b.mod == 1 ? 1 : 4;
        b.disp = b.disp_size ? small_disp(b.disp_size) : 0;
        b.base = base;
        u64 index_value = 0;
        if (form == 9) {
            b.index = 4;
        } else {
            u8 index;
            do
                index = free_reg();
            while (index == 4 || index == base);
            b.index = index;
            index_value = garbage(rng.chance(50) ? rng.below(64) : interesting(rng));
            pin_reg(index, index_value);
        }
        pin_reg(base, garbage(target - static_cast<u64>(b.disp) - index_value * scale));
    }

    // A register or memory r/m operand of `size` bytes.
    bool rm_any(unsigned size, unsigned mem_percent = 50)
    {
        if (rng.chance(mem_percent)) {
            rm_mem(pick_ea(size));
            return true;
        }
        b.has_modrm = true;
        b.mod = 3;
        b.rm = any_reg();
        return false;
    }

    // LOCK: legal only on a read-modify-write memory destination; a few
    // random ones check that everything else raises #UD.
    void maybe_lock(bool lockable)
    {
        if ((lockable && rm_is_mem && rng.chance(25)) || rng.chance(4))
            b.legacy.insert(b.legacy.begin(), 0xF0);
    }

    // Shift and rotate counts around every width's edges.
    u8 count_value()
    {
        static constexpr u8 counts[] = {0,  1,  2,  3,  7,  8,  9,  15,  16,  17, 31,
                                        32, 33, 63, 64, 65, 95, 96, 127, 128, 255};
        return rng.chance(75) ? rng.pick(counts) : static_cast<u8>(rng.next());
    }
    void set_cl(u8 count) { set_reg(RCX_, (gpr(RCX_) & ~0xFFull) | count); }

    // The stack pointer somewhere inside the data page, usually aligned;
    // now and then at its bottom, so that a push faults.
    void stack_in_data(unsigned margin = 0x100)
    {
        u64 sp = rng.chance(3) ? DATA_VA + rng.below(16)
                               : DATA_VA + margin + rng.below(DATA_SIZE - 2 * margin);
        if (rng.chance(85))
            sp &= ~7ull;
        pin_reg(RSP_, sp);
    }
};

// ---- Templates ----

void gen_alu(Gen& g)
{
    const unsigned op = static_cast<unsigned>(g.rng.below(8)); // ADD OR ADC SBB AND SUB XOR CMP
    switch (g.rng.below(6)) {
    case 0:
    case 1: { // op r/m, r  /  op r, r/m
        const unsigned size = g.op_size(true);
        const bool to_reg = g.rng.chance(40);
        g.b.opcode = {static_cast<u8>(op * 8 + (to_reg ? 2 : 0) + (size == 1 ? 0 : 1))};
        g.b.reg = g.any_reg();
        g.rm_any(size);
        break;
    }
    case 2: { // op AL/AX/EAX/RAX, imm
        const unsigned size = g.op_size(true);
        g.b.opcode = {static_cast<u8>(op * 8 + 4 + (size == 1 ? 0 : 1))};
        g.imm_for(size);
        break;
    }
    default: { // 80 /op ib, 81 /op iz, 83 /op ib
        const unsigned size = g.op_size(true);
        const bool sign_extended_imm8 = size != 1 && g.rng.chance(50);
        g.b.opcode = {static_cast<u8>(size == 1 ? 0x80 : sign_extended_imm8 ? 0x83 : 0x81)};
        g.b.reg = static_cast<u8>(op);
        g.rm_any(size);
        if (sign_extended_imm8)
            g.imm_bytes(1, interesting(g.rng));
        else
            g.imm_for(size);
        break;
    }
    }
    g.maybe_lock(op != 7);
}

void gen_test(Gen& g)
{
    const unsigned size = g.op_size(true);
    switch (g.rng.below(3)) {
    case 0:
        g.b.opcode = {static_cast<u8>(size == 1 ? 0x84 : 0x85)};
        g.b.reg = g.any_reg();
        g.rm_any(size);
        break;
    case 1:
        g.b.opcode = {static_cast<u8>(size == 1 ? 0xA8 : 0xA9)};
        g.imm_for(size);
        break;
    default:
        g.b.opcode = {static_cast<u8>(size == 1 ? 0xF6 : 0xF7)};
        g.b.reg = g.rng.chance(85) ? 0 : 1; // /1 is an undocumented alias of /0
        g.rm_any(size);
        g.imm_for(size);
        break;
    }
}

void gen_incdec(Gen& g)
{
    if (g.m32 && g.rng.chance(30)) { // 40+r / 48+r, which are REX prefixes in 64-bit mode
        g.op_size(false);
        g.b.opcode = {static_cast<u8>(g.rng.chance(50) ? 0x40 : 0x48)};
        g.b.opcode_reg = g.any_reg();
        return;
    }
    const unsigned size = g.op_size(true);
    g.b.opcode = {static_cast<u8>(size == 1 ? 0xFE : 0xFF)};
    g.b.reg = static_cast<u8>(g.rng.below(2));
    g.rm_any(size);
    g.maybe_lock(true);
}

void gen_negnot(Gen& g)
{
    const unsigned size = g.op_size(true);
    g.b.opcode = {static_cast<u8>(size == 1 ? 0xF6 : 0xF7)};
    g.b.reg = g.rng.chance(50) ? 2 : 3;
    g.rm_any(size);
    g.maybe_lock(true);
}

void gen_muldiv(Gen& g)
{
    const unsigned size = g.op_size(true);
    const unsigned ext = 4 + static_cast<unsigned>(g.rng.below(4)); // MUL IMUL DIV IDIV
    g.b.opcode = {static_cast<u8>(size == 1 ? 0xF6 : 0xF7)};
    g.b.reg = static_cast<u8>(ext);
    g.rm_any(size);
    if (ext >= 6 && g.rng.chance(60)) {
        // A high half that makes the quotient fit, so both outcomes are common.
        const bool is_signed = ext == 7;
        if (size == 1) {
            const u64 al = g.gpr(RAX_) & 0xFF;
            const u64 ah = is_signed && (al & 0x80) ? 0xFF : 0;
            g.set_reg(RAX_, (g.gpr(RAX_) & ~0xFFFFull) | (ah << 8) | al);
        } else {
            const bool negative = (g.gpr(RAX_) >> (size * 8 - 1)) & 1;
            const u64 high = is_signed && negative ? ~0ull : 0;
            g.set_reg(RDX_, (g.gpr(RDX_) & ~mask_of(size)) | (high & mask_of(size)));
        }
    }
}

void gen_imul(Gen& g)
{
    const unsigned size = g.op_size(false);
    g.b.reg = g.any_reg();
    switch (g.rng.below(3)) {
    case 0:
        g.b.opcode = {0x0F, 0xAF};
        g.rm_any(size);
        break;
    case 1:
        g.b.opcode = {0x69};
        g.rm_any(size);
        g.imm_for(size);
        break;
    default:
        g.b.opcode = {0x6B};
        g.rm_any(size);
        g.imm_bytes(1, interesting(g.rng));
        break;
    }
}

void gen_shift(Gen& g)
{
    const unsigned size = g.op_size(true);
    g.b.reg = static_cast<u8>(g.rng.below(8)); // ROL ROR RCL RCR SHL SHR SAL SAR
    const u8 base = size == 1 ? 0 : 1;
    switch (g.rng.below(3)) {
    case 0:
        g.b.opcode = {static_cast<u8>(0xC0 + base)};
        g.rm_any(size);
        g.imm_bytes(1, g.count_value());
        break;
    case 1:
        g.b.opcode = {static_cast<u8>(0xD0 + base)};
        g.rm_any(size);
        break;
    default:
        g.b.opcode = {static_cast<u8>(0xD2 + base)};
        g.rm_any(size);
        g.set_cl(g.count_value());
        break;
    }
}

void gen_shld(Gen& g)
{
    const unsigned size = g.op_size(false);
    const bool right = g.rng.chance(50);
    bool by_cl = g.rng.chance(50);
    g.b.reg = g.any_reg();
    g.rm_any(size);
    u8 count = g.count_value();
    // A 16-bit count above 16 leaves the result undefined (SDM SHLD/SHRD).
    if (size == 2 && (count & 31) > 16)
        count &= 15;
    if (by_cl) {
        g.set_cl(count);
        if (size == 2 && (g.gpr(RCX_) & 31) > 16)
            by_cl = false; // RCX holds an address here
    }
    g.b.opcode = {0x0F, static_cast<u8>((right ? 0xAC : 0xA4) + (by_cl ? 1 : 0))};
    if (!by_cl)
        g.imm_bytes(1, count);
}

void gen_bt(Gen& g)
{
    const unsigned size = g.op_size(false);
    const unsigned op = static_cast<unsigned>(g.rng.below(4)); // BT BTS BTR BTC
    if (g.rng.chance(50)) {
        g.b.opcode = {0x0F, 0xBA};
        g.b.reg = static_cast<u8>(4 + op);
        g.rm_any(size);
        g.imm_bytes(1, g.rng.chance(70) ? g.rng.below(size * 8) : g.rng.next());
    } else {
        static constexpr u8 opcodes[] = {0xA3, 0xAB, 0xB3, 0xBB};
        g.b.opcode = {0x0F, opcodes[op]};
        g.rm_any(size);
        g.b.reg = g.free_reg();
        if (g.rm_is_mem) {
            // A register bit offset reaches outside the operand (signed); keep
            // the addressed unit inside the data page.
            const unsigned bits = size * 8;
            const i64 lo =
                (static_cast<i64>(DATA_VA) - static_cast<i64>(g.ea)) / static_cast<i64>(size);
            const i64 hi = (static_cast<i64>(DATA_VA + DATA_SIZE - size) - static_cast<i64>(g.ea)) /
                           static_cast<i64>(size);
            const i64 k = lo + static_cast<i64>(g.rng.below(static_cast<u64>(hi - lo + 1)));
            u64 offset = static_cast<u64>(k * bits) + g.rng.below(bits);
            if (size < 8 && g.rng.chance(50))
                offset = (offset & mask_of(size)) | (g.rng.next() << (size * 8));
            g.set_reg(g.b.reg, offset);
        }
    }
    g.maybe_lock(op != 0);
}

void gen_bsf(Gen& g)
{
    const unsigned size = g.op_size(false);
    g.b.opcode = {0x0F, static_cast<u8>(g.rng.chance(50) ? 0xBC : 0xBD)};
    g.b.reg = g.any_reg();
    const bool mem = g.rm_any(size);
    if (g.rng.chance(25)) { // a zero source: ZF set, destination unchanged
        if (mem)
            g.poke(g.ea, size, 0);
        else
            g.set_reg(g.b.rm, g.gpr(g.b.rm) & ~mask_of(size));
    }
}

void gen_setcc(Gen& g)
{
    g.apply_size(1);
    g.b.opcode = {0x0F, static_cast<u8>(0x90 + g.rng.below(16))};
    g.b.reg = static_cast<u8>(g.rng.chance(80) ? 0 : g.rng.below(8)); // reg is ignored
    g.rm_any(1);
}

void gen_cmovcc(Gen& g)
{
    const unsigned size = g.op_size(false);
    g.b.opcode = {0x0F, static_cast<u8>(0x40 + g.rng.below(16))};
    g.b.reg = g.any_reg();
    g.rm_any(size);
}

void gen_bswap(Gen& g)
{
    g.apply_size(g.m32 || g.rng.chance(50) ? 4 : 8);
    g.b.opcode = {0x0F, 0xC8};
    g.b.opcode_reg = g.any_reg();
}

void gen_xadd(Gen& g)
{
    const unsigned size = g.op_size(true);
    g.b.opcode = {0x0F, static_cast<u8>(size == 1 ? 0xC0 : 0xC1)};
    g.b.reg = g.any_reg();
    g.rm_any(size);
    g.maybe_lock(true);
}

void gen_cmpxchg(Gen& g)
{
    const unsigned size = g.op_size(true);
    g.b.opcode = {0x0F, static_cast<u8>(size == 1 ? 0xB0 : 0xB1)};
    g.b.reg = g.any_reg();
    const bool mem = g.rm_any(size);
    if (g.rng.chance(50)) { // make the compare succeed
        if (mem)
            g.poke(g.ea, size, g.gpr(RAX_));
        else if (g.b.rm != RAX_)
            g.set_reg(g.b.rm, g.gpr(RAX_));
    }
    g.maybe_lock(true);
}

void gen_cmpxchg8b(Gen& g)
{
    const bool wide = !g.m32 && g.rng.chance(50); // CMPXCHG16B needs REX.W
    if (wide)
        g.b.rex_w = true;
    g.b.opcode = {0x0F, 0xC7};
    g.b.reg = 1;
    const unsigned size = wide ? 16 : 8;
    if (g.rng.chance(4)) { // register operand: #UD
        g.b.has_modrm = true;
        g.b.mod = 3;
        g.b.rm = g.any_reg();
    } else {
        u64 target = DATA_VA + g.rng.below(DATA_SIZE - size + 1);
        if (g.rng.chance(85))
            target &= ~u64(size - 1);
        g.rm_mem(target);
        if (g.rng.chance(50)) {
            g.poke(target, 8,
                   wide ? g.gpr(RAX_) : (g.gpr(RAX_) & 0xFFFFFFFF) | (g.gpr(RDX_) << 32));
            if (wide)
                g.poke(target + 8, 8, g.gpr(RDX_));
        }
    }
    g.maybe_lock(true);
}

void gen_xchg(Gen& g)
{
    if (g.rng.chance(30)) {
        g.op_size(false);
        g.b.opcode = {0x90};
        g.b.opcode_reg = g.any_reg();
        return;
    }
    const unsigned size = g.op_size(true);
    g.b.opcode = {static_cast<u8>(size == 1 ? 0x86 : 0x87)};
    g.b.reg = g.any_reg();
    g.rm_any(size);
    g.maybe_lock(true);
}

void gen_mov(Gen& g)
{
    const unsigned size = g.op_size(true);
    switch (g.rng.below(4)) {
    case 0: // 88/89/8A/8B
        g.b.opcode = {static_cast<u8>(0x88 + (g.rng.chance(50) ? 2 : 0) + (size == 1 ? 0 : 1))};
        g.b.reg = g.any_reg();
        g.rm_any(size);
        break;
    case 1: // C6/C7 /0
        g.b.opcode = {static_cast<u8>(size == 1 ? 0xC6 : 0xC7)};
        g.b.reg = 0;
        g.rm_any(size);
        g.imm_for(size);
        break;
    case 2: // B0+r ib, B8+r iw/id/io
        g.b.opcode = {static_cast<u8>(size == 1 ? 0xB0 : 0xB8)};
        g.b.opcode_reg = g.any_reg();
        g.imm_bytes(size, interesting(g.rng));
        break;
    default: { // A0-A3 moffs: 8-byte address, 4-byte with 67h or in compatibility mode
        const bool addr32 = g.m32 || g.rng.chance(20);
        if (addr32 && !g.m32)
            g.b.legacy.push_back(0x67);
        g.b.opcode = {static_cast<u8>(0xA0 + (g.rng.chance(50) ? 2 : 0) + (size == 1 ? 0 : 1))};
        g.imm_bytes(addr32 ? 4 : 8, g.pick_ea(size));
        break;
    }
    }
}

void gen_movx(Gen& g)
{
    switch (g.rng.below(3)) {
    case 0:
    case 1: {
        const bool word_source = g.rng.chance(50);
        g.op_size(false);
        const bool sign = g.rng.chance(50);
        g.b.opcode = {0x0F, static_cast<u8>((sign ? 0xBE : 0xB6) + (word_source ? 1 : 0))};
        g.b.reg = g.any_reg();
        if (!word_source && !g.m32 && g.rng.chance(25))
            g.b.force_rex = true;
        g.rm_any(word_source ? 2 : 1);
        break;
    }
    default: {       // MOVSXD (63 /r); without REX.W it moves 32 (or 16) bits
        if (g.m32) { // 63 /r is ARPL r/m16, r16 outside 64-bit mode
            g.b.opcode = {0x63};
            g.b.reg = g.any_reg();
            g.rm_any(2);
            break;
        }
        const unsigned size = g.rng.chance(75) ? 8 : g.rng.chance(70) ? 4 : 2;
        g.apply_size(size);
        g.b.opcode = {0x63};
        g.b.reg = g.any_reg();
        g.rm_any(size == 8 ? 4 : size);
        break;
    }
    }
}

void gen_lea(Gen& g)
{
    g.op_size(false);
    g.b.opcode = {0x8D};
    g.b.reg = g.any_reg();
    if (g.rng.chance(3)) { // register source: #UD
        g.b.has_modrm = true;
        g.b.mod = 3;
        g.b.rm = g.any_reg();
        return;
    }
    if (g.m32 && g.rng.chance(40)) {
        // 16-bit addressing (67h in a 32-bit segment): [BX+SI], [BP+DI+disp8],
        // [disp16], ... with 16-bit wrap-around. LEA reads no memory, so any
        // register values do.
        g.b.legacy.push_back(0x67);
        g.b.has_modrm = true;
        g.b.mod = static_cast<u8>(g.rng.below(3));
        g.b.rm = static_cast<u8>(g.rng.below(8));
        g.b.disp_size = g.b.mod == 1 ? 1 : (g.b.mod == 2 || g.b.rm == 6) ? 2 : 0;
        g.b.disp = static_cast<i64>(interesting(g.rng));
        return;
    }
    g.rm_mem(interesting(g.rng));
}

void gen_convert(Gen& g)
{
    g.op_size(false);
    g.b.opcode = {static_cast<u8>(g.rng.chance(50) ? 0x98 : 0x99)};
}

void gen_flagops(Gen& g)
{
    static constexpr u8 ops[] = {0x9E, 0x9F, 0xF8, 0xF9, 0xF5, 0xFC, 0xFD};
    g.b.opcode = {g.rng.pick(ops)};
}

void gen_stack(Gen& g)
{
    g.stack_in_data();
    const bool word = g.rng.chance(20); // 66: 16-bit pushes and pops
    const unsigned size = word ? 2 : g.m32 ? 4 : 8;
    auto stack_rm = [&] {
        if (g.rng.chance(15)) { // [rsp + disp8]: the address uses RSP before (PUSH) or after (POP)
            g.b.has_modrm = true;
            g.b.mod = 1;
            g.b.rm = 4;
            g.b.has_sib = true;
            g.b.base = 4;
            g.b.index = 4;
            g.b.disp_size = 1;
            g.b.disp = static_cast<i64>(g.rng.below(0x80)) - 0x40;
            return;
        }
        g.rm_mem(g.pick_ea(size, 0x20), false);
    };
    if (word)
        g.b.legacy.push_back(0x66);
    switch (g.rng.below(9)) {
    case 0:
        g.b.opcode = {0x50};
        g.b.opcode_reg = g.any_reg();
        break;
    case 1:
        g.b.opcode = {0x58};
        g.b.opcode_reg = g.any_reg();
        break;
    case 2:
        g.b.opcode = {0xFF};
        g.b.reg = 6;
        if (g.rng.chance(50)) {
            g.b.has_modrm = true;
            g.b.rm = g.any_reg();
        } else {
            stack_rm();
        }
        break;
    case 3:
        g.b.opcode = {0x8F};
        g.b.reg = 0;
        if (g.rng.chance(40)) {
            g.b.has_modrm = true;
            g.b.rm = g.any_reg();
        } else {
            stack_rm();
        }
        break;
    case 4:
        if (g.rng.chance(50)) {
            g.b.opcode = {0x6A};
            g.imm_bytes(1, interesting(g.rng));
        } else {
            g.b.opcode = {0x68};
            g.imm_bytes(word ? 2 : 4, interesting(g.rng));
        }
        break;
    case 5:
        g.b.opcode = {0x9C};
        break;
    case 6: { // POPF of a value with the flags a user program may change
        g.b.opcode = {0x9D};
        u64 v = g.rng.next() & (FLAGS_ARITH | FLAG_DF | FLAG_NT | FLAG_AC | FLAG_ID);
        if (g.rng.chance(30))
            v |= g.rng.next() &
                 ~(FLAG_TF | 0xFFFFFFFF00000000ull); // IF, IOPL, reserved bits: ignored
        g.poke(g.gpr(RSP_), size, v | 2);
        break;
    }
    case 7:
        g.b.opcode = {0xC9}; // LEAVE
        g.pin_reg(RBP_, (DATA_VA + 0x100 + g.rng.below(DATA_SIZE - 0x200)) &
                            ~(g.rng.chance(85) ? 7ull : 0));
        break;
    default: // ENTER alloc, level
        g.b.opcode = {0xC8};
        g.imm_bytes(2, g.rng.below(0x40));
        g.imm_bytes(1, g.rng.chance(70) ? g.rng.below(4) : g.rng.below(0x40));
        g.pin_reg(RBP_, (DATA_VA + 0x300 + g.rng.below(DATA_SIZE - 0x400)) & ~7ull);
        break;
    }
}

void gen_string(Gen& g)
{
    static constexpr u8 ops[] = {0xA4, 0xA6, 0xAA, 0xAC, 0xAE}; // MOVS CMPS STOS LODS SCAS
    const u8 op = g.rng.pick(ops);
    const unsigned size = g.op_size(true);
    const unsigned rep = static_cast<unsigned>(g.rng.below(3)); // none, F3, F2
    const bool prefix67 = !g.m32 && g.rng.chance(15);
    const bool addr32 = g.m32 || prefix67; // ESI, EDI, ECX: their upper halves do not count
    if (prefix67)
        g.b.legacy.push_back(0x67);
    if (rep)
        g.b.legacy.push_back(rep == 1 ? 0xF3 : 0xF2);
    if ((op == 0xA4 || op == 0xA6 || op == 0xAC) && g.rng.chance(10)) {
        static constexpr u8 segs[] = {0x2E, 0x36, 0x3E, 0x26};
        g.b.legacy.push_back(g.rng.pick(segs));
    }
    g.b.opcode = {static_cast<u8>(op + (size == 1 ? 0 : 1))};
    const bool down = g.rng.chance(50);
    g.tc.init.rflags = (g.tc.init.rflags & ~FLAG_DF) | (down ? FLAG_DF : 0);

    const u64 count = rep ? (g.rng.chance(10) ? 0 : 1 + g.rng.below(8)) : 1;
    const u64 upper = addr32 && g.rng.chance(50) ? g.rng.next() << 32 : 0;
    g.pin_reg(RCX_, rep ? count | upper : g.gpr(RCX_));
    const u64 span = (count ? count : 1) * size;
    auto place = [&]() -> u64 {
        if (g.rng.chance(5)) // run off the page: a fault part-way through
            return down ? DATA_VA + g.rng.below(span) : DATA_VA + DATA_SIZE - g.rng.below(span) - 1;
        u64 start = DATA_VA + g.rng.below(DATA_SIZE - span + 1);
        if (g.rng.chance(60))
            start &= ~u64(size - 1);
        return down ? start + span - size : start;
    };
    const u64 si = place(), di = place();
    g.pin_reg(RSI_, si | (addr32 && g.rng.chance(50) ? g.rng.next() << 32 : 0));
    g.pin_reg(RDI_, di | (addr32 && g.rng.chance(50) ? g.rng.next() << 32 : 0));

    // Compares stop on the first (in)equality: make both outcomes likely.
    const i64 step = down ? -static_cast<i64>(size) : static_cast<i64>(size);
    if ((op == 0xA6 || op == 0xAE) && g.rng.chance(60)) {
        const u64 stop = g.rng.below(count + 1);
        for (u64 i = 0; i < count; ++i) {
            const u64 d = di + static_cast<u64>(static_cast<i64>(i) * step);
            const u64 want = op == 0xAE
                                 ? g.gpr(RAX_)
                                 : g.peek(si + static_cast<u64>(static_cast<i64>(i) * step), size);
            const bool equal = rep == 1 ? i != stop : i == stop;
            g.poke(d, size, equal ? want : want ^ (1ull << g.rng.below(size * 8)));
        }
    }
}

// Instructions that exist only outside 64-bit mode: BCD adjustment, SALC,
// PUSHA/POPA, BOUND, INTO.
void gen_legacy32(Gen& g)
{
    switch (g.rng.below(8)) {
    case 0: {
        static constexpr u8 ops[] = {0x27, 0x2F, 0x37, 0x3F, 0xD6}; // DAA DAS AAA AAS SALC
        g.b.opcode = {g.rng.pick(ops)};
        break;
    }
    case 1:
    case 2: { // AAM / AAD imm8 (AAM 0 is #DE)
        g.b.opcode = {static_cast<u8>(g.rng.chance(50) ? 0xD4 : 0xD5)};
        static constexpr u8 bases[] = {10, 10, 10, 16, 2, 0, 1, 255};
        g.imm_bytes(1, g.rng.chance(80) ? g.rng.pick(bases) : g.rng.next());
        break;
    }
    case 3:
    case 4: // PUSHA / POPA (16-bit with 66h)
        g.stack_in_data();
        if (g.rng.chance(25))
            g.b.legacy.push_back(0x66);
        g.b.opcode = {static_cast<u8>(g.rng.chance(50) ? 0x60 : 0x61)};
        break;
    case 5:
    case 6: { // BOUND r, m16&16 / m32&32
        const unsigned size = g.op_size(false);
        g.b.opcode = {0x62};
        g.b.reg = g.free_reg();
        g.rm_mem(g.pick_ea(2 * size));
        if (g.rng.chance(70)) { // bounds around the index, so that both outcomes happen
            const i64 v = static_cast<i64>(sign_extend_from(g.gpr(g.b.reg), size * 8));
            const i64 lo = v - static_cast<i64>(g.rng.below(4)) + (g.rng.chance(20) ? 2 : 0);
            const i64 hi = v + static_cast<i64>(g.rng.below(4)) - (g.rng.chance(20) ? 2 : 0);
            g.poke(g.ea, size, static_cast<u64>(lo));
            g.poke(g.ea + size, size, static_cast<u64>(hi));
        }
        break;
    }
    default: // INTO: #OF when OF is set
        g.b.opcode = {0xCE};
        break;
    }
}

// Branch displacements that land in the INT3 fill before or after the
// instruction, never inside it (a jump into itself could loop forever).
u64 rel8(Rng& r)
{
    return static_cast<u64>(r.chance(30) ? -20 - static_cast<i64>(r.below(90))
                                         : static_cast<i64>(r.below(120)));
}
u64 rel32(Rng& r)
{
    return static_cast<u64>(r.chance(30) ? -20 - static_cast<i64>(r.below(0xE0))
                                         : static_cast<i64>(r.below(0x700)));
}

void gen_branch(Gen& g)
{
    const u64 landing = INSN_VA + 0x20 + g.rng.below(0x600); // inside the INT3 fill
    switch (g.rng.below(9)) {
    case 0: // Jcc rel8
        g.b.opcode = {static_cast<u8>(0x70 + g.rng.below(16))};
        g.imm_bytes(1, rel8(g.rng));
        break;
    case 1: // Jcc rel32
        g.b.opcode = {0x0F, static_cast<u8>(0x80 + g.rng.below(16))};
        g.imm_bytes(4, rel32(g.rng));
        break;
    case 2: // JMP rel8 / rel32
        if (g.rng.chance(50)) {
            g.b.opcode = {0xEB};
            g.imm_bytes(1, rel8(g.rng));
        } else {
            g.b.opcode = {0xE9};
            g.imm_bytes(4, rel32(g.rng));
        }
        break;
    case 3: { // LOOP / LOOPE / LOOPNE / JRCXZ, RCX or ECX
        if (g.rng.chance(25))
            g.b.legacy.push_back(0x67);
        g.b.opcode = {static_cast<u8>(0xE0 + g.rng.below(4))};
        g.imm_bytes(1, rel8(g.rng));
        static constexpr u64 counts[] = {0, 1, 2, 3, 0x100000000ull, 0x100000001ull, ~0ull};
        g.pin_reg(RCX_, g.rng.chance(70) ? g.rng.pick(counts) : interesting(g.rng));
        break;
    }
    case 4: // CALL rel32
        g.stack_in_data();
        g.b.opcode = {0xE8};
        g.imm_bytes(4, rel32(g.rng));
        break;
    case 5: { // RET / RET imm16
        g.stack_in_data();
        const bool imm = g.rng.chance(30);
        g.b.opcode = {static_cast<u8>(imm ? 0xC2 : 0xC3)};
        if (imm)
            g.imm_bytes(2, g.rng.below(0x40));
        g.poke(g.gpr(RSP_), 8, g.rng.chance(95) ? landing : interesting(g.rng));
        break;
    }
    default: { // JMP / CALL r/m64
        const bool call = g.rng.chance(40);
        if (call)
            g.stack_in_data();
        g.b.opcode = {0xFF};
        g.b.reg = call ? 2 : 4;
        const u64 target = g.rng.chance(95) ? landing : interesting(g.rng);
        if (g.rng.chance(50)) {
            g.rm_mem(g.pick_ea(8, 0x10), false);
            g.poke(g.ea, 8, target);
        } else {
            g.b.has_modrm = true;
            g.b.rm = g.free_reg();
            g.set_reg(g.b.rm, target);
        }
        break;
    }
    }
}

// ---- Random bytes ----

unsigned gpr_index(ZydisRegister reg)
{
    const ZydisRegister full = ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_64, reg);
    if (full >= ZYDIS_REGISTER_RAX && full <= ZYDIS_REGISTER_R15)
        return static_cast<unsigned>(full - ZYDIS_REGISTER_RAX);
    return 16;
}

enum class RawClass : u8 {
    NotRun,    // system, x87, SSE, branches: not run on the host
    Core,      // integer instructions the interpreter must implement
    Extension, // integer extensions it may not implement (skipped when it raises #UD)
};

// Integer instructions a user program can run without side effects outside
// its registers and memory.
RawClass raw_class(ZydisMnemonic m)
{
    // clang-format off
    static constexpr ZydisMnemonic core[] = {
        ZYDIS_MNEMONIC_ADD, ZYDIS_MNEMONIC_OR, ZYDIS_MNEMONIC_ADC, ZYDIS_MNEMONIC_SBB,
        ZYDIS_MNEMONIC_AND, ZYDIS_MNEMONIC_SUB, ZYDIS_MNEMONIC_XOR, ZYDIS_MNEMONIC_CMP,
        ZYDIS_MNEMONIC_TEST, ZYDIS_MNEMONIC_INC, ZYDIS_MNEMONIC_DEC, ZYDIS_MNEMONIC_NEG,
        ZYDIS_MNEMONIC_NOT, ZYDIS_MNEMONIC_SHL, ZYDIS_MNEMONIC_SHR, ZYDIS_MNEMONIC_SAR,
        ZYDIS_MNEMONIC_ROL, ZYDIS_MNEMONIC_ROR, ZYDIS_MNEMONIC_RCL, ZYDIS_MNEMONIC_RCR,
        ZYDIS_MNEMONIC_SHLD, ZYDIS_MNEMONIC_SHRD, ZYDIS_MNEMONIC_MUL, ZYDIS_MNEMONIC_IMUL,
        ZYDIS_MNEMONIC_DIV, ZYDIS_MNEMONIC_IDIV, ZYDIS_MNEMONIC_BT, ZYDIS_MNEMONIC_BTS,
        ZYDIS_MNEMONIC_BTR, ZYDIS_MNEMONIC_BTC, ZYDIS_MNEMONIC_BSF, ZYDIS_MNEMONIC_BSR,
        ZYDIS_MNEMONIC_BSWAP, ZYDIS_MNEMONIC_XADD, ZYDIS_MNEMONIC_CMPXCHG,
        ZYDIS_MNEMONIC_CMPXCHG8B, ZYDIS_MNEMONIC_CMPXCHG16B, ZYDIS_MNEMONIC_XCHG,
        ZYDIS_MNEMONIC_MOV, ZYDIS_MNEMONIC_MOVZX, ZYDIS_MNEMONIC_MOVSX, ZYDIS_MNEMONIC_MOVSXD,
        ZYDIS_MNEMONIC_LEA, ZYDIS_MNEMONIC_CBW, ZYDIS_MNEMONIC_CWDE, ZYDIS_MNEMONIC_CDQE,
        ZYDIS_MNEMONIC_CWD, ZYDIS_MNEMONIC_CDQ, ZYDIS_MNEMONIC_CQO, ZYDIS_MNEMONIC_LAHF,
        ZYDIS_MNEMONIC_SAHF, ZYDIS_MNEMONIC_CLC, ZYDIS_MNEMONIC_STC, ZYDIS_MNEMONIC_CMC,
        ZYDIS_MNEMONIC_CLD, ZYDIS_MNEMONIC_STD, ZYDIS_MNEMONIC_NOP, ZYDIS_MNEMONIC_PUSH,
        ZYDIS_MNEMONIC_POP, ZYDIS_MNEMONIC_LEAVE, ZYDIS_MNEMONIC_XLAT,
        // POPF is left to the stack template: a random TF would trap after it.
        ZYDIS_MNEMONIC_PUSHF, ZYDIS_MNEMONIC_PUSHFD, ZYDIS_MNEMONIC_PUSHFQ,
        ZYDIS_MNEMONIC_MOVSB, ZYDIS_MNEMONIC_MOVSW, ZYDIS_MNEMONIC_MOVSD, ZYDIS_MNEMONIC_MOVSQ,
        ZYDIS_MNEMONIC_STOSB, ZYDIS_MNEMONIC_STOSW, ZYDIS_MNEMONIC_STOSD, ZYDIS_MNEMONIC_STOSQ,
        ZYDIS_MNEMONIC_LODSB, ZYDIS_MNEMONIC_LODSW, ZYDIS_MNEMONIC_LODSD, ZYDIS_MNEMONIC_LODSQ,
        ZYDIS_MNEMONIC_CMPSB, ZYDIS_MNEMONIC_CMPSW, ZYDIS_MNEMONIC_CMPSD, ZYDIS_MNEMONIC_CMPSQ,
        ZYDIS_MNEMONIC_SCASB, ZYDIS_MNEMONIC_SCASW, ZYDIS_MNEMONIC_SCASD, ZYDIS_MNEMONIC_SCASQ,
        ZYDIS_MNEMONIC_SETB, ZYDIS_MNEMONIC_SETBE, ZYDIS_MNEMONIC_SETL, ZYDIS_MNEMONIC_SETLE,
        ZYDIS_MNEMONIC_SETNB, ZYDIS_MNEMONIC_SETNBE, ZYDIS_MNEMONIC_SETNL, ZYDIS_MNEMONIC_SETNLE,
        ZYDIS_MNEMONIC_SETNO, ZYDIS_MNEMONIC_SETNP, ZYDIS_MNEMONIC_SETNS, ZYDIS_MNEMONIC_SETNZ,
        ZYDIS_MNEMONIC_SETO, ZYDIS_MNEMONIC_SETP, ZYDIS_MNEMONIC_SETS, ZYDIS_MNEMONIC_SETZ,
        ZYDIS_MNEMONIC_CMOVB, ZYDIS_MNEMONIC_CMOVBE, ZYDIS_MNEMONIC_CMOVL, ZYDIS_MNEMONIC_CMOVLE,
        ZYDIS_MNEMONIC_CMOVNB, ZYDIS_MNEMONIC_CMOVNBE, ZYDIS_MNEMONIC_CMOVNL,
        ZYDIS_MNEMONIC_CMOVNLE, ZYDIS_MNEMONIC_CMOVNO, ZYDIS_MNEMONIC_CMOVNP,
        ZYDIS_MNEMONIC_CMOVNS, ZYDIS_MNEMONIC_CMOVNZ, ZYDIS_MNEMONIC_CMOVO, ZYDIS_MNEMONIC_CMOVP,
        ZYDIS_MNEMONIC_CMOVS, ZYDIS_MNEMONIC_CMOVZ,
        // Outside 64-bit mode only.
        ZYDIS_MNEMONIC_DAA, ZYDIS_MNEMONIC_DAS, ZYDIS_MNEMONIC_AAA, ZYDIS_MNEMONIC_AAS,
        ZYDIS_MNEMONIC_AAM, ZYDIS_MNEMONIC_AAD, ZYDIS_MNEMONIC_SALC, ZYDIS_MNEMONIC_ARPL,
        ZYDIS_MNEMONIC_BOUND, ZYDIS_MNEMONIC_PUSHA, ZYDIS_MNEMONIC_PUSHAD, ZYDIS_MNEMONIC_POPA,
        ZYDIS_MNEMONIC_POPAD, ZYDIS_MNEMONIC_INTO,
    };
    static constexpr ZydisMnemonic extensions[] = {
        ZYDIS_MNEMONIC_POPCNT, ZYDIS_MNEMONIC_LZCNT, ZYDIS_MNEMONIC_TZCNT, ZYDIS_MNEMONIC_MOVBE,
        ZYDIS_MNEMONIC_ADCX, ZYDIS_MNEMONIC_ADOX, ZYDIS_MNEMONIC_ANDN, ZYDIS_MNEMONIC_BEXTR,
        ZYDIS_MNEMONIC_BLSI, ZYDIS_MNEMONIC_BLSMSK, ZYDIS_MNEMONIC_BLSR, ZYDIS_MNEMONIC_BZHI,
        ZYDIS_MNEMONIC_MULX, ZYDIS_MNEMONIC_PDEP, ZYDIS_MNEMONIC_PEXT, ZYDIS_MNEMONIC_RORX,
        ZYDIS_MNEMONIC_SARX, ZYDIS_MNEMONIC_SHLX, ZYDIS_MNEMONIC_SHRX,
    };
    // clang-format on
    for (ZydisMnemonic a : core)
        if (a == m)
            return RawClass::Core;
    for (ZydisMnemonic a : extensions)
        if (a == m)
            return RawClass::Extension;
    return RawClass::NotRun;
}

bool near_code_page(u64 addr)
{
    return addr + 0x40 >= CODE_VA - PAGE_SIZE && addr < CODE_VA + 2 * PAGE_SIZE + 0x40;
}

// A register's value at its own width (AL in XLAT's [RBX+AL] is 8 bits).
u64 register_value(const Gen& g, ZydisRegister reg)
{
    const unsigned r = gpr_index(reg);
    if (r == 16)
        return 0;
    const unsigned bits = ZydisRegisterGetWidth(ZYDIS_MACHINE_MODE_LONG_64, reg);
    if (reg >= ZYDIS_REGISTER_AH && reg <= ZYDIS_REGISTER_BH)
        return (g.tc.init.gpr[r] >> 8) & 0xFF;
    return g.tc.init.gpr[r] & mask_of(bits / 8);
}

bool is_bit_test(ZydisMnemonic m)
{
    return m == ZYDIS_MNEMONIC_BT || m == ZYDIS_MNEMONIC_BTS || m == ZYDIS_MNEMONIC_BTR ||
           m == ZYDIS_MNEMONIC_BTC;
}

// The address a memory operand of the case reaches (pinned registers included).
u64 operand_address(const Gen& g, const ZydisDecodedInstruction& zi, const ZydisDecodedOperand& op)
{
    const u64 amask = zi.address_width == 16   ? 0xFFFFull
                      : zi.address_width == 32 ? 0xFFFFFFFFull
                                               : ~0ull;
    u64 addr = static_cast<u64>(op.mem.disp.value) +
               register_value(g, op.mem.index) * (op.mem.scale ? op.mem.scale : 1);
    const unsigned base = gpr_index(op.mem.base);
    if (base < 16)
        addr += g.tc.init.gpr[base];
    else if (op.mem.base == ZYDIS_REGISTER_RIP || op.mem.base == ZYDIS_REGISTER_EIP)
        addr += INSN_VA + zi.length;
    return addr & amask;
}

// Aims memory operands into the data page most of the time (a memory
// operand's base register is pinned to reach a random address there, aligned
// to the access size `align_percent` percent of the time beyond what pick_ea
// does), then makes sure none comes near the code page (a store there would
// rewrite the INT3 fill). False when the case must be drawn again.
bool aim_memory_operands(Gen& g, const ZydisDecodedInstruction& zi, const ZydisDecodedOperand* ops,
                         unsigned align_percent)
{
    Rng& r = g.rng;
    for (unsigned pass = 0; pass < 2; ++pass) {
        for (unsigned i = 0; i < zi.operand_count; ++i) {
            const ZydisDecodedOperand& op = ops[i];
            if (op.type != ZYDIS_OPERAND_TYPE_MEMORY || op.mem.type != ZYDIS_MEMOP_TYPE_MEM)
                continue;
            if (op.mem.segment == ZYDIS_REGISTER_FS || op.mem.segment == ZYDIS_REGISTER_GS)
                return false;
            const unsigned base = gpr_index(op.mem.base);
            const u64 amask = zi.address_width == 16   ? 0xFFFFull
                              : zi.address_width == 32 ? 0xFFFFFFFFull
                                                       : ~0ull;
            const u64 scale = op.mem.scale ? op.mem.scale : 1;
            const u64 index_value = register_value(g, op.mem.index) * scale;
            if (pass == 0) {
                if (base < 16 && !g.is_pinned(base) && r.chance(85)) {
                    const unsigned size = op.size >= 8 ? op.size / 8 : 1;
                    u64 target = g.pick_ea(size);
                    if (align_percent && r.chance(align_percent))
                        target &= ~u64(std::bit_ceil(std::min(size, 32u)) - 1);
                    g.pin_reg(base,
                              (target - static_cast<u64>(op.mem.disp.value) - index_value) & amask);
                }
                continue;
            }
            if (near_code_page(operand_address(g, zi, op)))
                return false;
        }
    }
    return true;
}

// Random bytes (biased toward instruction-shaped ones), followed by the INT3
// fill exactly as both sides will see them. Returns false when the draw is
// not a runnable case and must be drawn again.
bool gen_raw(Gen& g)
{
    Rng& r = g.rng;
    u8 bytes[MAX_INSN];
    std::memset(bytes, 0xCC, sizeof bytes);
    unsigned n = 0;
    static constexpr u8 prefixes[] = {0x66, 0x67, 0xF2, 0xF3, 0xF0, 0x2E, 0x3E, 0x26, 0x36};
    for (unsigned i = 0, count = static_cast<unsigned>(r.below(3)); i < count; ++i)
        bytes[n++] = r.pick(prefixes);
    if (!g.m32 && r.chance(50)) // a REX prefix (INC/DEC in compatibility mode)
        bytes[n++] = static_cast<u8>(0x40 + r.below(16));
    if (r.chance(30))
        bytes[n++] = 0x0F;
    bytes[n++] = static_cast<u8>(r.next());
    // ModRM: often a register form, so that not every case is a memory access.
    bytes[n++] = static_cast<u8>(r.chance(40) ? 0xC0 | r.below(64) : r.next());
    for (unsigned tail = static_cast<unsigned>(r.below(9)); tail && n < MAX_INSN; --tail)
        bytes[n++] = static_cast<u8>(r.next());

    ZydisDecodedInstruction zi;
    ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
    if (!decode_case(g.m32, bytes, MAX_INSN, zi, ops)) {
        // Invalid to Zydis (and so to ours): the host must raise #UD too.
        g.tc.length = n;
        g.tc.may_be_unimplemented = true; // the host may know bytes that Zydis does not
        std::memcpy(g.tc.bytes.data(), bytes, n);
        return true;
    }
    const RawClass kind = raw_class(zi.mnemonic);
    if (kind == RawClass::NotRun)
        return false;
    g.tc.may_be_unimplemented = kind == RawClass::Extension;
    // 0F 0D with a register operand: a reserved NOP on Intel (and to ours),
    // #UD on AMD, whose 3DNow! PREFETCH needs memory. A vendor difference.
    if (zi.opcode_map == ZYDIS_OPCODE_MAP_0F && zi.opcode == 0x0D && zi.raw.modrm.mod == 3)
        return false;
    for (unsigned i = 0; i < zi.operand_count_visible; ++i) {
        const ZydisDecodedOperand& op = ops[i];
        if (op.type == ZYDIS_OPERAND_TYPE_REGISTER && gpr_index(op.reg.value) == 16)
            return false; // segment, control or vector registers
    }
    g.tc.length = zi.length;
    std::memcpy(g.tc.bytes.data(), bytes, zi.length);
    if (zi.attributes & (ZYDIS_ATTRIB_HAS_REP | ZYDIS_ATTRIB_HAS_REPE | ZYDIS_ATTRIB_HAS_REPNE)) {
        // A small count; with a 32-bit (or 16-bit) address size the bits
        // above ECX (CX) do not count and may be anything.
        const u64 low = zi.address_width == 16 ? 0xFFFF : 0xFFFFFFFF;
        const u64 upper = zi.address_width < 64 && r.chance(30) ? r.next() & ~low : 0;
        g.pin_reg(RCX_, r.below(9) | upper);
    }
    if (is_bit_test(zi.mnemonic) && ops[0].type == ZYDIS_OPERAND_TYPE_MEMORY &&
        ops[1].type == ZYDIS_OPERAND_TYPE_REGISTER) {
        // A register bit offset reaches up to 2^63 bits away: keep it small.
        const unsigned offset_reg = gpr_index(ops[1].reg.value);
        if (offset_reg == gpr_index(ops[0].mem.base) || offset_reg == gpr_index(ops[0].mem.index))
            return false;
        g.pin_reg(offset_reg, r.below(0x400));
    }

    return aim_memory_operands(g, zi, ops, 0);
}

// ---- x87, MMX, SSE, AVX ----
//
// One instruction of one encoding (x87 escapes, legacy 0F / 0F 38 / 0F 3A
// maps with their mandatory prefixes, VEX), drawn from an opcode table of the
// ISA extensions the CpuidModel advertises (fp_table), with random operands.
// Each case also gets a random x87/SSE/AVX state.

enum class FpShape : u8 { X87, Legacy, Vex };

// The CPUID flags an instruction needs (at most three), none when its
// extension is not one the tester covers.
struct FpNeeds {
    FeatureBit bits[3];
    unsigned count = 0;
    void add(FeatureBit b) { bits[count++] = b; }
};

bool fp_needs(const ZydisDecodedInstruction& zi, FpNeeds& n)
{
    constexpr FeatureBit FPU{FeatureWord::Leaf1Edx, 0}, MMX{FeatureWord::Leaf1Edx, 23},
        SSE{FeatureWord::Leaf1Edx, 25}, SSE2{FeatureWord::Leaf1Edx, 26},
        SSE3{FeatureWord::Leaf1Ecx, 0}, PCLMUL{FeatureWord::Leaf1Ecx, 1},
        SSSE3{FeatureWord::Leaf1Ecx, 9}, FMA{FeatureWord::Leaf1Ecx, 12},
        SSE41{FeatureWord::Leaf1Ecx, 19}, SSE42{FeatureWord::Leaf1Ecx, 20},
        AES{FeatureWord::Leaf1Ecx, 25}, F16C{FeatureWord::Leaf1Ecx, 29},
        AVX2{FeatureWord::Leaf7Ebx, 5};
    switch (zi.meta.isa_ext) {
    case ZYDIS_ISA_EXT_X87:
        n.add(FPU);
        break;
    case ZYDIS_ISA_EXT_MMX:
        n.add(MMX);
        break;
    case ZYDIS_ISA_EXT_SSE:
        n.add(SSE);
        break;
    case ZYDIS_ISA_EXT_SSE2:
        n.add(SSE2);
        break;
    case ZYDIS_ISA_EXT_SSE3:
        n.add(SSE3);
        break;
    case ZYDIS_ISA_EXT_SSSE3:
        n.add(SSSE3);
        break;
    case ZYDIS_ISA_EXT_SSE4:
        n.add(zi.meta.isa_set == ZYDIS_ISA_SET_SSE42 ? SSE42 : SSE41);
        break;
    case ZYDIS_ISA_EXT_AES:
        n.add(AES);
        break;
    case ZYDIS_ISA_EXT_PCLMULQDQ:
        n.add(PCLMUL);
        break;
    case ZYDIS_ISA_EXT_AVX:
        n.add(cpufeat::AVX);
        break;
    case ZYDIS_ISA_EXT_AVXAES:
        n.add(cpufeat::AVX);
        n.add(AES);
        break;
    case ZYDIS_ISA_EXT_AVX2:
    case ZYDIS_ISA_EXT_AVX2GATHER:
        n.add(AVX2);
        break;
    case ZYDIS_ISA_EXT_FMA:
        n.add(FMA);
        break;
    case ZYDIS_ISA_EXT_F16C:
        n.add(F16C);
        break;
    default:
        return false;
    }
    if (zi.meta.isa_set == ZYDIS_ISA_SET_PCLMULQDQ && zi.meta.isa_ext != ZYDIS_ISA_EXT_PCLMULQDQ)
        n.add(PCLMUL); // VPCLMULQDQ (VEX.128) needs AVX and PCLMULQDQ
    return true;
}

bool host_has(const HostFeatures& host, FeatureBit f)
{
    switch (f.word) {
    case FeatureWord::Leaf1Ecx:
        return (host.leaf1_ecx >> f.bit) & 1;
    case FeatureWord::Leaf1Edx:
        return (host.leaf1_edx >> f.bit) & 1;
    case FeatureWord::Leaf7Ebx:
        return (host.leaf7_ebx >> f.bit) & 1;
    default:
        std::abort(); // fp_candidate asks for no other word
    }
}

// Instructions of the covered extensions that are not compared here.
bool fp_excluded(ZydisMnemonic m)
{
    // clang-format off
    static constexpr ZydisMnemonic excluded[] = {
        // Transcendentals: within an ulp of the host, not bit-exact by design
        // (compared with a tolerance in tests/cpu/float80_test.cpp).
        ZYDIS_MNEMONIC_F2XM1, ZYDIS_MNEMONIC_FCOS, ZYDIS_MNEMONIC_FPATAN, ZYDIS_MNEMONIC_FPTAN,
        ZYDIS_MNEMONIC_FSIN, ZYDIS_MNEMONIC_FSINCOS, ZYDIS_MNEMONIC_FYL2X, ZYDIS_MNEMONIC_FYL2XP1,
        // They store FIP/FDP/FOP, which an AMD host zeroes unless an exception
        // is pending, and the host's MXCSR_MASK: tests/cpu/x87_test.cpp and
        // xsave_test.cpp compare them with those fields masked.
        ZYDIS_MNEMONIC_FNSTENV, ZYDIS_MNEMONIC_FNSAVE, ZYDIS_MNEMONIC_FXSAVE,
        ZYDIS_MNEMONIC_FXSAVE64, ZYDIS_MNEMONIC_FXRSTOR, ZYDIS_MNEMONIC_FXRSTOR64,
    };
    // clang-format on
    return std::find(std::begin(excluded), std::end(excluded), m) != std::end(excluded);
}

// One opcode of the x87/SIMD table: what selects the instruction (escape or
// map, mandatory prefix, VEX.W/L, opcode, ModRM.reg, register or memory form,
// and the whole ModRM of x87 register forms).
struct FpOpcode {
    u8 prefix = 0; // legacy: 0, 0x66, 0xF2 or 0xF3
    u8 map = 0;    // legacy: 0 (0F), 0x38 or 0x3A; VEX: 1-3; x87: the escape byte
    u8 opcode = 0;
    u8 pp = 0, w = 0, l = 0; // VEX
    u8 modrm = 0;            // mod 11 for register forms, 00 for memory ones
};

// The bytes of `o` up to and including ModRM, then random bytes to MAX_INSN
// (SIB, displacement, immediate). Without `r` the canonical form the table is
// built from: no REX, VEX through C4 with R, X, B set and vvvv = 1111, [rax].
// With it: random REX, C5 when it can encode the same, random VEX.R/X/B and
// vvvv, random ModRM.mod (memory forms) and rm (but for x87 register forms).
// Returns where ModRM is.
unsigned fp_encode(FpShape shape, const FpOpcode& o, Rng* r, bool m32, u8 (&bytes)[MAX_INSN])
{
    for (u8& b : bytes)
        b = r ? static_cast<u8>(r->next()) : 0;
    unsigned n = 0;
    auto rex = [&] {
        if (r && !m32 && r->chance(40))
            bytes[n++] = static_cast<u8>(0x40 + r->below(16));
    };
    u8 modrm = o.modrm;
    if (r && shape != FpShape::X87) {
        modrm = static_cast<u8>((modrm & 0x38) | r->below(8));
        if ((o.modrm >> 6) != 3)
            modrm = static_cast<u8>(modrm | (r->below(3) << 6));
    } else if (r && shape == FpShape::X87 && (o.modrm >> 6) != 3) {
        modrm = static_cast<u8>((modrm & 0x38) | r->below(8) | (r->below(3) << 6));
    }
    switch (shape) {
    case FpShape::X87:
        if (r && r->chance(8))
            bytes[n++] = 0x66;
        rex();
        bytes[n++] = o.map;
        break;
    case FpShape::Legacy:
        if (r && r->chance(5)) { // a second mandatory-prefix byte, which may win or clash
            static constexpr u8 prefixes[] = {0x66, 0xF2, 0xF3};
            bytes[n++] = r->pick(prefixes);
        }
        if (o.prefix)
            bytes[n++] = o.prefix;
        rex();
        bytes[n++] = 0x0F;
        if (o.map)
            bytes[n++] = o.map;
        bytes[n++] = o.opcode;
        break;
    case FpShape::Vex: {
        // R, X, B and vvvv are stored inverted; outside 64-bit mode R and X
        // must be set (else C4/C5 are LES/LDS) and vvvv's top bit is ignored.
        const u8 rxb = r && !m32 ? static_cast<u8>(r->below(8)) : 7;
        const u8 vvvv = r && r->chance(50) ? static_cast<u8>(r->below(16)) : 15;
        if (r && o.map == 1 && o.w == 0 && r->chance(50)) {
            bytes[n++] = 0xC5;
            bytes[n++] = static_cast<u8>(((rxb & 4) << 5) | (vvvv << 3) | (o.l << 2) | o.pp);
        } else {
            bytes[n++] = 0xC4;
            bytes[n++] = static_cast<u8>((rxb << 5) | o.map);
            bytes[n++] = static_cast<u8>((o.w << 7) | (vvvv << 3) | (o.l << 2) | o.pp);
        }
        bytes[n++] = o.opcode;
        break;
    }
    }
    bytes[n] = modrm;
    return n;
}

// Whether a decoded instruction belongs to the families: an extension the
// model advertises, not excluded. `needs` gets its CPUID flags.
bool fp_candidate(const ZydisDecodedInstruction& zi, FpNeeds& needs)
{
    static const CpuidModel model;
    if (!fp_needs(zi, needs) || fp_excluded(zi.mnemonic))
        return false;
    for (unsigned i = 0; i < needs.count; ++i)
        if (!model.has(needs.bits[i]))
            return false;
    return true;
}

// The opcode table of a shape and mode: every opcode whose canonical bytes
// Zydis decodes to a candidate instruction. Built once; cases draw from it
// uniformly, so rare maps and opcodes get their share.
const std::vector<FpOpcode>& fp_table(FpShape shape, bool m32)
{
    static std::vector<FpOpcode> tables[3][2];
    std::vector<FpOpcode>& t = tables[static_cast<unsigned>(shape)][m32 ? 1 : 0];
    if (!t.empty())
        return t;
    // A memory form counts when [rax] or a SIB form (as the VSIB gathers
    // need) decodes.
    auto consider = [&](const FpOpcode& o) {
        for (const bool sib : {false, true}) {
            if (sib && (o.modrm >> 6) == 3)
                break;
            u8 bytes[MAX_INSN];
            const unsigned modrm_at = fp_encode(shape, o, nullptr, m32, bytes);
            if (sib) {
                // SIB 38: [rax+rdi], or [rax+xmm7] for a gather, whose mask
                // (VEX.vvvv = 1111: xmm0) and index must differ.
                bytes[modrm_at] = static_cast<u8>(o.modrm | 4);
                bytes[modrm_at + 1] = 0x38;
            }
            ZydisDecodedInstruction zi;
            ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
            FpNeeds needs;
            if (decode_case(m32, bytes, MAX_INSN, zi, ops) && fp_candidate(zi, needs)) {
                t.push_back(o);
                return;
            }
        }
    };
    switch (shape) {
    case FpShape::X87:
        for (unsigned esc = 0xD8; esc <= 0xDF; ++esc)
            for (unsigned modrm = 0; modrm < 256; ++modrm)
                if ((modrm >> 6) == 3 || ((modrm >> 6) == 0 && (modrm & 7) == 0))
                    consider(FpOpcode{0, static_cast<u8>(esc), 0, 0, 0, 0, static_cast<u8>(modrm)});
        break;
    case FpShape::Legacy:
        for (u8 prefix : {0x00, 0x66, 0xF2, 0xF3})
            for (u8 map : {0x00, 0x38, 0x3A})
                for (unsigned op = 0; op < 256; ++op)
                    for (unsigned modrm = 0; modrm < 256; modrm += 8)
                        if ((modrm >> 6) == 3 || (modrm >> 6) == 0)
                            consider(FpOpcode{prefix, map, static_cast<u8>(op), 0, 0, 0,
                                              static_cast<u8>(modrm)});
        break;
    case FpShape::Vex:
        for (u8 map = 1; map <= 3; ++map)
            for (u8 pp = 0; pp < 4; ++pp)
                for (u8 w = 0; w < 2; ++w)
                    for (u8 l = 0; l < 2; ++l)
                        for (unsigned op = 0; op < 256; ++op)
                            for (unsigned modrm = 0; modrm < 256; modrm += 8)
                                if ((modrm >> 6) == 3 || (modrm >> 6) == 0)
                                    consider(FpOpcode{0, map, static_cast<u8>(op), pp, w, l,
                                                      static_cast<u8>(modrm)});
        break;
    }
    return t;
}

// Instruction bytes of `shape` from its opcode table, padded with random
// bytes to MAX_INSN; sometimes FWAIT among the x87 ones.
void fp_bytes(Gen& g, FpShape shape, u8 (&bytes)[MAX_INSN])
{
    Rng& r = g.rng;
    if (shape == FpShape::X87 && r.chance(3)) { // FWAIT: #MF when an unmasked exception is pending
        std::memset(bytes, 0x90, sizeof bytes);
        bytes[0] = 0x9B;
        return;
    }
    const std::vector<FpOpcode>& table = fp_table(shape, g.m32);
    fp_encode(shape, table[r.below(table.size())], &r, g.m32, bytes);
}

// Sets every index element of a VSIB operand's vector register small enough
// (with the base pointing mid-page) for the whole gather to stay in the data
// page, most of the time; the elements not set keep their random values.
bool aim_vsib(Gen& g, const ZydisDecodedInstruction& zi, const ZydisDecodedOperand& op)
{
    Rng& r = g.rng;
    const unsigned base = gpr_index(op.mem.base);
    if (base >= 16 || g.is_pinned(base))
        return false;
    const u64 amask = zi.address_width == 32 ? 0xFFFFFFFFull : ~0ull;
    g.pin_reg(base, (DATA_VA + DATA_SIZE / 2 - static_cast<u64>(op.mem.disp.value)) & amask);
    const unsigned reg = static_cast<unsigned>(op.mem.index >= ZYDIS_REGISTER_YMM0
                                                   ? op.mem.index - ZYDIS_REGISTER_YMM0
                                                   : op.mem.index - ZYDIS_REGISTER_XMM0);
    // VPGATHERDx / VGATHERDPx take dword indices, the Q forms qword ones.
    const char* name = ZydisMnemonicGetString(zi.mnemonic);
    const bool qword = std::strstr(name, "gatherq") || std::strstr(name, "gatherqp");
    if (!r.chance(90))
        return true;
    FpImage& img = g.tc.fp_init;
    for (unsigned half = 0; half < 2; ++half) {
        u8* p = img.b.data() + (half ? fpimg::YMM_HI : fpimg::XMM) + 16 * reg;
        for (unsigned e = 0; e < (qword ? 2u : 4u); ++e) {
            const i64 index = static_cast<i64>(r.below(128)) - 64;
            if (qword)
                std::memcpy(p + 8 * e, &index, 8);
            else {
                const i32 i32v = static_cast<i32>(index);
                std::memcpy(p + 4 * e, &i32v, 4);
            }
        }
    }
    return true;
}

// Eight bytes of vector register or memory content of one kind: binary32
// pairs, binary64, integers, values on rounding boundaries (binary64 to
// binary32, binary32 to binary16, float to integer).
u64 fp_lane(Rng& r, unsigned kind)
{
    switch (kind) {
    case 0:
        return random_fp::f32(r) | u64{random_fp::f32(r)} << 32;
    case 1:
        return random_fp::f64(r);
    case 2:
        return interesting(r);
    case 3:
        return random_fp::near_rounding_boundary(
            r, random_fp::f64(r), r.chance(70) ? 29 : 1 + static_cast<unsigned>(r.below(52)));
    case 4:
        return random_fp::near_rounding_boundary(r, random_fp::f32(r), 13) |
               random_fp::near_rounding_boundary(r, random_fp::f32(r), 13) << 32;
    default: {
        // n + 1/2 (and its neighbours) as binary64, or two as binary32.
        const double whole = static_cast<double>(static_cast<i64>(r.below(2000)) - 1000);
        const double half = whole + (r.chance(50) ? 0.5 : -0.5);
        if (r.chance(50)) {
            u64 bits = std::bit_cast<u64>(half);
            return bits + static_cast<u64>(static_cast<i64>(r.below(3)) - 1);
        }
        const u32 single = std::bit_cast<u32>(static_cast<float>(half));
        return single | u64{single + static_cast<u32>(r.below(3)) - 1} << 32;
    }
    }
}

// A random x87/SSE/AVX state: x87 registers, tags, TOP, control word
// (precision, rounding, masks), status word (sometimes with an unmasked
// exception pending), MXCSR, and XMM/YMM contents of every class.
void randomize_fp_state(Rng& r, FpImage& img)
{
    u8* b = img.b.data();
    auto put = [&](unsigned at, u64 v, unsigned n) { std::memcpy(b + at, &v, n); };
    const u16 masks = r.chance(75) ? 0x3F : static_cast<u16>(r.next() & 0x3F);
    const u16 fcw = static_cast<u16>(0x40 | (r.below(4) << 10) |
                                     ((r.chance(50) ? 3 : r.below(4)) << 8) | masks);
    u16 sticky = static_cast<u16>(r.chance(50) ? 0 : r.next() & 0x3F);
    if (!r.chance(10))
        sticky &= masks; // mostly no unmasked exception pending
    if ((sticky & 1) && r.chance(30))
        sticky |= 0x40; // SF: the invalid operation was a stack fault
    const bool pending = sticky & ~masks & 0x3F;
    const u16 fsw = static_cast<u16>((r.below(8) << 11) | (r.next() & 0x4700) | sticky |
                                     (pending ? 0x8080 : 0));
    put(fpimg::FCW, fcw, 2);
    put(fpimg::FSW, fsw, 2);
    // Abridged tags: each register in use three times out of four.
    put(fpimg::FTW, r.chance(20) ? 0xFF : r.chance(5) ? 0 : (r.next() | r.next()) & 0xFF, 1);
    put(fpimg::FOP, r.below(0x800), 2);
    // Canonical pointers: the host keeps only the low 56 bits of a loaded
    // FIP/FDP (sign-extended), a detail of XRSTOR no instruction produces.
    put(fpimg::FIP, r.chance(50) ? 0 : sign_extend_from(interesting(r), 48), 8);
    put(fpimg::FDP, r.chance(50) ? 0 : sign_extend_from(interesting(r), 48), 8);
    put(fpimg::MXCSR, random_fp::mxcsr(r), 4);
    for (unsigned i = 0; i < 8; ++i) {
        const Float80 v = random_fp::f80(r);
        put(fpimg::ST + 16 * i, v.signif, 8);
        put(fpimg::ST + 16 * i + 8, v.sign_exp, 2);
    }
    for (unsigned i = 0; i < 16; ++i) {
        // One kind of content per register, sometimes mixed.
        const unsigned kind = static_cast<unsigned>(r.below(6));
        for (unsigned lane = 0; lane < 4; ++lane) {
            const unsigned at = (lane < 2 ? fpimg::XMM : fpimg::YMM_HI) + 16 * i + 8 * (lane & 1);
            put(at, fp_lane(r, r.chance(85) ? kind : static_cast<unsigned>(r.below(6))), 8);
        }
    }
    put(fpimg::XSTATE_BV, 7, 8);
}

bool gen_fp(Gen& g, FpShape shape)
{
    Rng& r = g.rng;
    u8 bytes[MAX_INSN];
    fp_bytes(g, shape, bytes);
    ZydisDecodedInstruction zi;
    ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
    if (!decode_case(g.m32, bytes, MAX_INSN, zi, ops))
        return false;
    FpNeeds needs;
    if (!fp_candidate(zi, needs))
        return false;
    // VEX.W1 VPINSRD/VPEXTRD outside 64-bit mode: Zydis (and ours) ignore W
    // there, the host raises #UD; the SDM lists W1 (VPINSRQ/VPEXTRQ) as
    // 64-bit-mode only without saying which. Not generated.
    if (g.m32 && zi.encoding == ZYDIS_INSTRUCTION_ENCODING_VEX && zi.raw.vex.W &&
        (zi.mnemonic == ZYDIS_MNEMONIC_VPINSRD || zi.mnemonic == ZYDIS_MNEMONIC_VPEXTRD))
        return false;
    for (unsigned i = 0; i < needs.count; ++i)
        if (!host_has(g.host, needs.bits[i]))
            g.tc.host_lacks = true;
    g.tc.length = zi.length;
    std::memcpy(g.tc.bytes.data(), bytes, zi.length);
    g.tc.fp = true;
    randomize_fp_state(r, g.tc.fp_init);
    for (size_t i = 0; i < DATA_SIZE; i += 8) {
        const u64 v = fp_lane(r, static_cast<unsigned>(r.below(6)));
        std::memcpy(&g.tc.data[i], &v, 8);
    }
    for (unsigned i = 0; i < zi.operand_count; ++i) {
        const ZydisDecodedOperand& op = ops[i];
        if (op.type == ZYDIS_OPERAND_TYPE_MEMORY && op.mem.type == ZYDIS_MEMOP_TYPE_VSIB &&
            !aim_vsib(g, zi, op))
            return false;
        if (op.type == ZYDIS_OPERAND_TYPE_REGISTER &&
            ZydisRegisterGetClass(op.reg.value) == ZYDIS_REGCLASS_SEGMENT)
            return false;
    }
    if (!aim_memory_operands(g, zi, ops, 80))
        return false;
    if (zi.mnemonic == ZYDIS_MNEMONIC_FBLD) {
        // Valid digits only: invalid BCD is undefined and differs by vendor.
        for (unsigned i = 0; i < zi.operand_count; ++i) {
            if (ops[i].type != ZYDIS_OPERAND_TYPE_MEMORY)
                continue;
            const u64 at = operand_address(g, zi, ops[i]);
            for (unsigned d = 0; d < 9; ++d)
                g.poke(at + d, 1, r.below(10) << 4 | r.below(10));
        }
    }
    return true;
}

bool gen_x87(Gen& g)
{
    return gen_fp(g, FpShape::X87);
}
bool gen_sse(Gen& g)
{
    return gen_fp(g, FpShape::Legacy);
}
bool gen_avx(Gen& g)
{
    return gen_fp(g, FpShape::Vex);
}

enum Modes : u8 { M64 = 1, M32 = 2, BOTH = M64 | M32 };

struct Family {
    const char* name;
    void (*gen)(Gen&);
    unsigned weight;
    u8 modes;
};

constexpr Family FAMILIES[] = {
    {"alu", gen_alu, 12, BOTH},        {"test", gen_test, 3, BOTH},
    {"incdec", gen_incdec, 3, BOTH},   {"negnot", gen_negnot, 3, BOTH},
    {"muldiv", gen_muldiv, 6, BOTH},   {"imul", gen_imul, 4, BOTH},
    {"shift", gen_shift, 10, BOTH},    {"shld", gen_shld, 5, BOTH},
    {"bt", gen_bt, 6, BOTH},           {"bsf", gen_bsf, 3, BOTH},
    {"setcc", gen_setcc, 3, BOTH},     {"cmovcc", gen_cmovcc, 3, BOTH},
    {"bswap", gen_bswap, 1, BOTH},     {"xadd", gen_xadd, 2, BOTH},
    {"cmpxchg", gen_cmpxchg, 3, BOTH}, {"cmpxchg8b", gen_cmpxchg8b, 2, BOTH},
    {"xchg", gen_xchg, 3, BOTH},       {"mov", gen_mov, 4, BOTH},
    {"movx", gen_movx, 3, BOTH},       {"lea", gen_lea, 3, BOTH},
    {"convert", gen_convert, 1, BOTH}, {"flagops", gen_flagops, 2, BOTH},
    {"stack", gen_stack, 6, BOTH},     {"string", gen_string, 8, BOTH},
    {"branch", gen_branch, 6, BOTH},   {"legacy32", gen_legacy32, 8, M32},
};
constexpr unsigned RAW_WEIGHT = 15;

// The x87/SIMD families draw bytes that may not fit (returning false): drawn again.
struct FpFamily {
    const char* name;
    bool (*gen)(Gen&);
    unsigned weight;
};
constexpr FpFamily FP_FAMILIES[] = {
    {"x87", gen_x87, 25}, {"sse", gen_sse, 45}, {"avx", gen_avx, 40}};
constexpr unsigned MODE32_PERCENT = 25; // share of cases run in compatibility mode

void randomize_state(Rng& r, TestCase& tc)
{
    for (u64& reg : tc.init.gpr)
        reg = interesting(r);
    tc.init.gpr[RSP_] = r.chance(80) ? (DATA_VA + 0x400 + r.below(0x800)) & ~7ull : interesting(r);
    tc.init.rflags = 0x202 | (r.next() & FLAGS_ARITH) | (r.chance(25) ? FLAG_DF : 0);
    // AC at CPL 3 with CR0.AM (Linux sets it) turns misaligned accesses into #AC.
    if (r.chance(6))
        tc.init.rflags |= FLAG_AC;
    if (r.chance(3))
        tc.init.rflags |= r.next() & (FLAG_NT | FLAG_ID);
    tc.init.rip = INSN_VA;
    for (size_t i = 0; i < DATA_SIZE; i += 8) {
        const u64 v = r.chance(70) ? r.next() : interesting(r);
        std::memcpy(&tc.data[i], &v, 8);
    }
}

} // namespace

std::vector<std::string> family_names()
{
    std::vector<std::string> names;
    for (const Family& f : FAMILIES)
        names.emplace_back(f.name);
    for (const FpFamily& f : FP_FAMILIES)
        names.emplace_back(f.name);
    names.emplace_back("raw");
    return names;
}

void generate_case(u64 seed, u64 index, const std::string& only, unsigned modes,
                   const HostFeatures& host, TestCase& tc)
{
    Rng rng(seed, index);
    // An x87/SIMD family keeps its draw until its bytes fit: otherwise the
    // families that reject fewer byte strings would get more than their weight.
    const FpFamily* kept = nullptr;
    bool kept32 = false;
    for (;;) {
        tc = TestCase{};
        if (kept) {
            tc.mode32 = kept32;
            randomize_state(rng, tc);
            Gen g(rng, tc, host);
            tc.family = kept->name;
            if (kept->gen(g))
                return;
            continue;
        }
        const bool want32 = (modes & MODE_32) && (!(modes & MODE_64) || rng.chance(MODE32_PERCENT));
        const u8 mode = want32 ? M32 : M64;
        unsigned total = RAW_WEIGHT;
        for (const Family& f : FAMILIES)
            total += (f.modes & mode) ? f.weight : 0;
        for (const FpFamily& f : FP_FAMILIES)
            total += f.weight;
        const Family* family = nullptr;
        const FpFamily* fp_family = nullptr;
        bool raw = only == "raw";
        if (only.empty()) {
            u64 pick = rng.below(total);
            raw = true;
            for (const Family& f : FAMILIES) {
                if (!(f.modes & mode))
                    continue;
                if (pick < f.weight) {
                    family = &f;
                    raw = false;
                    break;
                }
                pick -= f.weight;
            }
            for (const FpFamily& f : FP_FAMILIES) {
                if (family || fp_family)
                    break;
                if (pick < f.weight) {
                    fp_family = &f;
                    raw = false;
                    break;
                }
                pick -= f.weight;
            }
        } else if (!raw) {
            for (const Family& f : FAMILIES)
                if (only == f.name)
                    family = &f;
            for (const FpFamily& f : FP_FAMILIES)
                if (only == f.name)
                    fp_family = &f;
        }
        // A family that lacks the drawn mode (only with `only`) runs in its own.
        tc.mode32 = family && !(family->modes & mode) ? family->modes == M32 : want32;
        randomize_state(rng, tc);
        Gen g(rng, tc, host);
        if (raw) {
            tc.family = "raw";
            tc.raw = true;
            if (gen_raw(g))
                return;
            continue;
        }
        if (fp_family) {
            tc.family = fp_family->name;
            if (fp_family->gen(g))
                return;
            kept = fp_family;
            kept32 = tc.mode32;
            continue;
        }
        tc.family = family->name;
        family->gen(g);
        tc.length = g.b.encode(tc.bytes.data(), INSN_VA);
        if (tc.length)
            return;
    }
}

HostFeatures HostFeatures::of_this_host()
{
    HostFeatures h;
    unsigned a, b, c, d;
    __cpuid(1, a, b, c, d);
    h.leaf1_ecx = c;
    h.leaf1_edx = d;
    __cpuid_count(7, 0, a, b, c, d);
    h.leaf7_ebx = b;
    return h;
}

} // namespace difftest
