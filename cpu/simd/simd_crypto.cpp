// AES-NI (AESENC, AESENCLAST, AESDEC, AESDECLAST, AESIMC, AESKEYGENASSIST)
// and PCLMULQDQ, in portable code (SDM Vol 2A; FIPS-197 for the AES steps).
// The XMM register holds the AES state in FIPS-197 order: byte 4c + r is
// row r, column c.
#include "cpu/simd/simd.h"

#include <array>

using namespace simd;

namespace {

// Multiplication in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1.
constexpr u8 gf_mul(u8 a, u8 b)
{
    u8 p = 0;
    for (unsigned i = 0; i < 8; ++i) {
        if (b & 1)
            p ^= a;
        const bool carry = a & 0x80;
        a = static_cast<u8>(a << 1);
        if (carry)
            a ^= 0x1B;
        b >>= 1;
    }
    return p;
}

struct SBoxes {
    std::array<u8, 256> forward{}, inverse{};
};

// FIPS-197 5.1.1: the multiplicative inverse followed by the affine transform.
// Inverses come from powers of the generator 3: inv(3^k) = 3^(255 - k).
constexpr SBoxes make_sboxes()
{
    std::array<u8, 256> power{}, log{};
    u8 x = 1;
    for (unsigned k = 0; k < 255; ++k) {
        power[k] = x;
        log[x] = static_cast<u8>(k);
        x = gf_mul(x, 3);
    }
    SBoxes s;
    for (unsigned v = 0; v < 256; ++v) {
        const u8 inv = v == 0 ? 0 : power[(255 - log[v]) % 255];
        u8 b = inv;
        for (unsigned i = 1; i < 5; ++i)
            b ^= static_cast<u8>((inv << i) | (inv >> (8 - i)));
        b ^= 0x63;
        s.forward[v] = b;
        s.inverse[b] = static_cast<u8>(v);
    }
    return s;
}

constexpr SBoxes SBOX = make_sboxes();
static_assert(SBOX.forward[0x00] == 0x63 && SBOX.forward[0x53] == 0xED);

using State = std::array<u8, 16>;

State to_state(const Vec& v)
{
    State s;
    std::memcpy(s.data(), v.q, 16);
    return s;
}

Vec from_state(const State& s)
{
    Vec v;
    std::memcpy(v.q, s.data(), 16);
    return v;
}

State shift_rows(const State& s, bool inverse)
{
    State r;
    for (unsigned c = 0; c < 4; ++c)
        for (unsigned row = 0; row < 4; ++row)
            r[4 * c + row] = s[4 * ((inverse ? c + 4 - row : c + row) % 4) + row];
    return r;
}

void sub_bytes(State& s, bool inverse)
{
    for (u8& b : s)
        b = inverse ? SBOX.inverse[b] : SBOX.forward[b];
}

void mix_columns(State& s, bool inverse)
{
    const u8 m[4] = {static_cast<u8>(inverse ? 0x0E : 0x02), static_cast<u8>(inverse ? 0x0B : 0x03),
                     static_cast<u8>(inverse ? 0x0D : 0x01), static_cast<u8>(inverse ? 0x09 : 0x01)};
    for (unsigned c = 0; c < 4; ++c) {
        const u8 a[4] = {s[4 * c], s[4 * c + 1], s[4 * c + 2], s[4 * c + 3]};
        for (unsigned row = 0; row < 4; ++row) {
            u8 v = 0;
            for (unsigned k = 0; k < 4; ++k)
                v ^= gf_mul(a[k], m[(k + 4 - row) % 4]);
            s[4 * c + row] = v;
        }
    }
}

enum class Round : u8 { Encrypt, EncryptLast, Decrypt, DecryptLast };

template <Round R>
bool aes_round(Cpu& cpu, const Insn& insn)
{
    return binary(cpu, insn, [](const Vec& d, const Vec& key) {
        constexpr bool inverse = R == Round::Decrypt || R == Round::DecryptLast;
        State s = shift_rows(to_state(d), inverse);
        sub_bytes(s, inverse);
        if constexpr (R == Round::Encrypt || R == Round::Decrypt)
            mix_columns(s, inverse);
        Vec r = from_state(s);
        r.q[0] ^= key.q[0];
        r.q[1] ^= key.q[1];
        return r;
    });
}

u32 sub_word(u32 w)
{
    u32 r = 0;
    for (unsigned i = 0; i < 4; ++i)
        r |= u32{SBOX.forward[(w >> (8 * i)) & 0xFF]} << (8 * i);
    return r;
}

u32 rot_word(u32 w) { return (w >> 8) | (w << 24); }

} // namespace

HANDLER(op_aesenc) { return aes_round<Round::Encrypt>(cpu, insn); }
HANDLER(op_aesenclast) { return aes_round<Round::EncryptLast>(cpu, insn); }
HANDLER(op_aesdec) { return aes_round<Round::Decrypt>(cpu, insn); }
HANDLER(op_aesdeclast) { return aes_round<Round::DecryptLast>(cpu, insn); }

HANDLER(op_aesimc)
{
    return binary(cpu, insn, [](const Vec&, const Vec& s) {
        State st = to_state(s);
        mix_columns(st, true);
        return from_state(st);
    });
}

HANDLER(op_aeskeygenassist)
{
    const u32 rcon = static_cast<u8>(insn.imm);
    return binary(cpu, insn, [rcon](const Vec&, const Vec& s) {
        const u32 x1 = sub_word(s.get<u32>(1)), x3 = sub_word(s.get<u32>(3));
        Vec r;
        r.set<u32>(0, x1);
        r.set<u32>(1, rot_word(x1) ^ rcon);
        r.set<u32>(2, x3);
        r.set<u32>(3, rot_word(x3) ^ rcon);
        return r;
    });
}

// PCLMULQDQ: the carry-less product of the quadwords imm8[0] of the
// destination and imm8[4] of the source.
HANDLER(op_pclmulqdq)
{
    const u8 imm = static_cast<u8>(insn.imm);
    return binary(cpu, insn, [imm](const Vec& d, const Vec& s) {
        const u64 a = d.q[imm & 1], b = s.q[(imm >> 4) & 1];
        u64 lo = 0, hi = 0;
        for (unsigned i = 0; i < 64; ++i) {
            if ((b >> i) & 1) {
                lo ^= a << i;
                hi ^= i ? a >> (64 - i) : 0;
            }
        }
        return Vec{{lo, hi}};
    });
}
