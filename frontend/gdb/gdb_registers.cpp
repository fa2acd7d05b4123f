#include "frontend/gdb/gdb_registers.h"

#include <array>
#include <cstring>

namespace {

// gdb's order of the general registers (its 64bit-core.xml) as CpuState
// indices.
constexpr std::array<unsigned, 8> GPR_ORDER = {RAX, RBX, RCX, RDX, RSI, RDI, RBP, RSP};
// cs ss ds es fs gs.
constexpr std::array<unsigned, 6> SEG_ORDER = {CS, SS, DS, ES, FS, GS};

// Where each register starts: 0-15 GPRs, 16 rip, 17 eflags, 18-23 segment
// selectors, 24-31 st0-7, 32-39 the x87 control registers, 40-55 xmm, 56
// mxcsr, 57-58 fs_base/gs_base, 59-74 ymm0h-15h, 75-81 cr0 cr2 cr3 cr4 cr8
// efer k_gs_base.
constexpr unsigned ST0 = 24, FCTRL = 32, XMM0 = 40, MXCSR = 56, FS_BASE = 57, GS_BASE = 58,
                   YMM0H = 59, CR0 = 75, CR2 = 76, CR3 = 77, CR4 = 78, CR8 = 79, EFER = 80,
                   K_GS_BASE = 81;

unsigned register_size(unsigned n)
{
    if (n < 17)
        return 8;
    if (n < ST0)
        return 4; // eflags and the selectors (gdb's int32)
    if (n < FCTRL)
        return 10;
    if (n < XMM0)
        return 4;
    if (n < MXCSR)
        return 16;
    if (n == MXCSR)
        return 4;
    if (n < YMM0H)
        return 8;
    if (n < CR0)
        return 16;
    return 8;
}

std::string le(u64 value, unsigned size)
{
    std::string out(size, '\0');
    for (unsigned i = 0; i < size; ++i)
        out[i] = static_cast<char>(value >> (8 * i));
    return out;
}

u64 from_le(std::string_view bytes)
{
    u64 value = 0;
    for (size_t i = 0; i < bytes.size() && i < 8; ++i)
        value |= static_cast<u64>(static_cast<u8>(bytes[i])) << (8 * i);
    return value;
}

unsigned st_physical(const CpuState& state, unsigned i) { return ((state.fpu.fsw >> 11) + i) & 7; }

} // namespace

std::string_view gdb_target_xml()
{
    // The register names, types and groups follow gdb's own
    // features/i386/64bit-*.xml so that gdb's amd64 support recognises them
    // (it matches by name); registers are numbered in document order.
    static const std::string xml = [] {
        std::string x =
            "<?xml version=\"1.0\"?>\n"
            "<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n"
            "<target version=\"1.0\">\n"
            "<architecture>i386:x86-64</architecture>\n"
            "<feature name=\"org.gnu.gdb.i386.core\">\n"
            "<flags id=\"i386_eflags\" size=\"4\">\n"
            "<field name=\"CF\" start=\"0\" end=\"0\"/><field name=\"\" start=\"1\" end=\"1\"/>\n"
            "<field name=\"PF\" start=\"2\" end=\"2\"/><field name=\"AF\" start=\"4\" end=\"4\"/>\n"
            "<field name=\"ZF\" start=\"6\" end=\"6\"/><field name=\"SF\" start=\"7\" end=\"7\"/>\n"
            "<field name=\"TF\" start=\"8\" end=\"8\"/><field name=\"IF\" start=\"9\" end=\"9\"/>\n"
            "<field name=\"DF\" start=\"10\" end=\"10\"/><field name=\"OF\" start=\"11\" end=\"11\"/>\n"
            "<field name=\"NT\" start=\"14\" end=\"14\"/><field name=\"RF\" start=\"16\" end=\"16\"/>\n"
            "<field name=\"VM\" start=\"17\" end=\"17\"/><field name=\"AC\" start=\"18\" end=\"18\"/>\n"
            "<field name=\"VIF\" start=\"19\" end=\"19\"/><field name=\"VIP\" start=\"20\" end=\"20\"/>\n"
            "<field name=\"ID\" start=\"21\" end=\"21\"/>\n"
            "</flags>\n";
        const char* gprs[] = {"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
                              "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};
        for (const char* name : gprs) {
            const std::string_view n = name;
            const char* type = n == "rbp" || n == "rsp" ? "data_ptr" : "int64";
            x += "<reg name=\"" + std::string(n) + "\" bitsize=\"64\" type=\"" + type + "\"/>\n";
        }
        x += "<reg name=\"rip\" bitsize=\"64\" type=\"code_ptr\"/>\n"
             "<reg name=\"eflags\" bitsize=\"32\" type=\"i386_eflags\"/>\n";
        for (const char* name : {"cs", "ss", "ds", "es", "fs", "gs"})
            x += "<reg name=\"" + std::string(name) + "\" bitsize=\"32\" type=\"int32\"/>\n";
        for (int i = 0; i < 8; ++i)
            x += "<reg name=\"st" + std::to_string(i) + "\" bitsize=\"80\" type=\"i387_ext\"/>\n";
        for (const char* name : {"fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop"})
            x += "<reg name=\"" + std::string(name) + "\" bitsize=\"32\" type=\"int\" group=\"float\"/>\n";
        x += "</feature>\n"
             "<feature name=\"org.gnu.gdb.i386.sse\">\n"
             "<vector id=\"v8bf16\" type=\"bfloat16\" count=\"8\"/>\n"
             "<vector id=\"v4f\" type=\"ieee_single\" count=\"4\"/>\n"
             "<vector id=\"v2d\" type=\"ieee_double\" count=\"2\"/>\n"
             "<vector id=\"v16i8\" type=\"int8\" count=\"16\"/>\n"
             "<vector id=\"v8i16\" type=\"int16\" count=\"8\"/>\n"
             "<vector id=\"v4i32\" type=\"int32\" count=\"4\"/>\n"
             "<vector id=\"v2i64\" type=\"int64\" count=\"2\"/>\n"
             "<union id=\"vec128\">\n"
             "<field name=\"v8_bfloat16\" type=\"v8bf16\"/><field name=\"v4_float\" type=\"v4f\"/>\n"
             "<field name=\"v2_double\" type=\"v2d\"/><field name=\"v16_int8\" type=\"v16i8\"/>\n"
             "<field name=\"v8_int16\" type=\"v8i16\"/><field name=\"v4_int32\" type=\"v4i32\"/>\n"
             "<field name=\"v2_int64\" type=\"v2i64\"/><field name=\"uint128\" type=\"uint128\"/>\n"
             "</union>\n"
             "<flags id=\"i386_mxcsr\" size=\"4\">\n"
             "<field name=\"IE\" start=\"0\" end=\"0\"/><field name=\"DE\" start=\"1\" end=\"1\"/>\n"
             "<field name=\"ZE\" start=\"2\" end=\"2\"/><field name=\"OE\" start=\"3\" end=\"3\"/>\n"
             "<field name=\"UE\" start=\"4\" end=\"4\"/><field name=\"PE\" start=\"5\" end=\"5\"/>\n"
             "<field name=\"DAZ\" start=\"6\" end=\"6\"/><field name=\"IM\" start=\"7\" end=\"7\"/>\n"
             "<field name=\"DM\" start=\"8\" end=\"8\"/><field name=\"ZM\" start=\"9\" end=\"9\"/>\n"
             "<field name=\"OM\" start=\"10\" end=\"10\"/><field name=\"UM\" start=\"11\" end=\"11\"/>\n"
             "<field name=\"PM\" start=\"12\" end=\"12\"/><field name=\"FZ\" start=\"15\" end=\"15\"/>\n"
             "</flags>\n";
        for (int i = 0; i < 16; ++i)
            x += "<reg name=\"xmm" + std::to_string(i) + "\" bitsize=\"128\" type=\"vec128\"/>\n";
        x += "<reg name=\"mxcsr\" bitsize=\"32\" type=\"i386_mxcsr\" group=\"vector\"/>\n"
             "</feature>\n"
             "<feature name=\"org.gnu.gdb.i386.segments\">\n"
             "<reg name=\"fs_base\" bitsize=\"64\" type=\"int\"/>\n"
             "<reg name=\"gs_base\" bitsize=\"64\" type=\"int\"/>\n"
             "</feature>\n"
             "<feature name=\"org.gnu.gdb.i386.avx\">\n";
        for (int i = 0; i < 16; ++i)
            x += "<reg name=\"ymm" + std::to_string(i) + "h\" bitsize=\"128\" type=\"uint128\"/>\n";
        x += "</feature>\n"
             "<feature name=\"org.viridian.gdb.x86.sys\">\n";
        for (const char* name : {"cr0", "cr2", "cr3", "cr4", "cr8", "efer", "k_gs_base"})
            x += "<reg name=\"" + std::string(name) + "\" bitsize=\"64\" type=\"int\" group=\"system\"/>\n";
        x += "</feature>\n"
             "</target>\n";
        return x;
    }();
    return xml;
}

std::string gdb_read_register(const CpuState& state, unsigned n)
{
    if (n < 8)
        return le(state.gpr[GPR_ORDER[n]], 8);
    if (n < 16)
        return le(state.gpr[n], 8);
    if (n == GDB_REG_RIP)
        return le(state.rip, 8);
    if (n == GDB_REG_EFLAGS)
        return le(state.rflags, 4);
    if (n < ST0)
        return le(state.seg[SEG_ORDER[n - 18]].selector, 4);
    if (n < FCTRL) {
        const X87Register& r = state.fpu.st[st_physical(state, n - ST0)];
        return le(r.mantissa, 8) + le(r.sign_exponent, 2);
    }
    const FpuState& f = state.fpu;
    switch (n) {
    case FCTRL: return le(f.fcw, 4);
    case FCTRL + 1: return le(f.fsw, 4);
    case FCTRL + 2: return le(f.ftw, 4);
    case FCTRL + 3: return le(f.fcs, 4);
    case FCTRL + 4: return le(f.fip, 4);
    case FCTRL + 5: return le(f.fds, 4);
    case FCTRL + 6: return le(f.fdp, 4);
    case FCTRL + 7: return le(f.fop, 4);
    default: break;
    }
    if (n < MXCSR)
        return le(f.xmm[n - XMM0][0], 8) + le(f.xmm[n - XMM0][1], 8);
    if (n == MXCSR)
        return le(f.mxcsr, 4);
    if (n == FS_BASE)
        return le(state.seg[FS].base, 8);
    if (n == GS_BASE)
        return le(state.seg[GS].base, 8);
    if (n < CR0)
        return le(f.ymm_high[n - YMM0H][0], 8) + le(f.ymm_high[n - YMM0H][1], 8);
    switch (n) {
    case CR0: return le(state.cr0, 8);
    case CR2: return le(state.cr2, 8);
    case CR3: return le(state.cr3, 8);
    case CR4: return le(state.cr4, 8);
    case CR8: return le(state.cr8, 8);
    case EFER: return le(state.msr.efer, 8);
    case K_GS_BASE: return le(state.msr.kernel_gs_base, 8);
    default: return {};
    }
}

bool gdb_write_register(CpuState& state, unsigned n, std::string_view bytes)
{
    if (n >= GDB_REGISTER_COUNT || bytes.size() != register_size(n))
        return false;
    const u64 v = from_le(bytes);
    if (n < 8) {
        state.gpr[GPR_ORDER[n]] = v;
    } else if (n < 16) {
        state.gpr[n] = v;
    } else if (n == GDB_REG_RIP) {
        state.rip = v;
    } else if (n == GDB_REG_EFLAGS) {
        // Bit 1 always reads 1; the reserved bits stay clear (SDM Vol 1
        // 3.4.3); VM is kept, since entering or leaving virtual-8086 mode
        // takes a task switch or IRET, not a register write.
        state.rflags = (v & 0x3D7FD7) | (state.rflags & rf::VM) | rf::FIXED1;
    } else if (n < ST0) {
        Segment& seg = state.seg[SEG_ORDER[n - 18]];
        const u16 selector = static_cast<u16>(v);
        if (selector != seg.selector) {
            // Only where a selector alone defines the segment (real and
            // virtual-8086 mode); elsewhere the hidden part would have to be
            // loaded from a descriptor, which a debugger write does not do.
            if (state.protected_mode() && !state.v86_mode())
                return false;
            seg.selector = selector;
            seg.base = static_cast<u64>(selector) << 4;
        }
    } else if (n < FCTRL) {
        X87Register& r = state.fpu.st[st_physical(state, n - ST0)];
        r.mantissa = v;
        r.sign_exponent = static_cast<u16>(from_le(bytes.substr(8)));
    } else if (n < XMM0) {
        FpuState& f = state.fpu;
        switch (n - FCTRL) {
        case 0: f.fcw = static_cast<u16>(v); break;
        case 1: f.fsw = static_cast<u16>(v); break;
        case 2: f.ftw = static_cast<u16>(v); break;
        case 3: f.fcs = static_cast<u16>(v); break;
        case 4: f.fip = static_cast<u32>(v); break;
        case 5: f.fds = static_cast<u16>(v); break;
        case 6: f.fdp = static_cast<u32>(v); break;
        default: f.fop = static_cast<u16>(v & 0x7FF); break;
        }
    } else if (n < MXCSR) {
        state.fpu.xmm[n - XMM0] = {v, from_le(bytes.substr(8))};
    } else if (n == MXCSR) {
        // Reserved MXCSR bits would make the next LDMXCSR-free SSE
        // instruction behave as no processor can; keep the defined ones.
        state.fpu.mxcsr = static_cast<u32>(v) & 0xFFFF;
    } else if (n == FS_BASE || n == GS_BASE) {
        state.seg[n == FS_BASE ? FS : GS].base = v;
    } else if (n < CR0) {
        state.fpu.ymm_high[n - YMM0H] = {v, from_le(bytes.substr(8))};
    } else if (n == CR2) {
        state.cr2 = v;
    } else if (n == K_GS_BASE) {
        state.msr.kernel_gs_base = v;
    } else {
        // cr0, cr3, cr4, cr8 (the APIC's TPR) and efer: unchanged values
        // are accepted (a `G` packet carries them all), others refused.
        const std::string now = gdb_read_register(state, n);
        return now == bytes;
    }
    return true;
}

std::string gdb_read_registers(const CpuState& state)
{
    std::string out;
    for (unsigned n = 0; n < GDB_REGISTER_COUNT; ++n)
        out += gdb_read_register(state, n);
    return out;
}

bool gdb_write_registers(CpuState& state, std::string_view bytes)
{
    for (unsigned n = 0; n < GDB_REGISTER_COUNT && !bytes.empty(); ++n) {
        const unsigned size = register_size(n);
        if (bytes.size() < size)
            return false;
        if (!gdb_write_register(state, n, bytes.substr(0, size)))
            return false;
        bytes.remove_prefix(size);
    }
    return true;
}
