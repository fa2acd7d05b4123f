#include "cpu/decoder/decoder.h"

#include <cstring>

#include "cpu/decoder/handler_table.h"

#include <Zydis/Zydis.h>

namespace {

struct Decoders {
    ZydisDecoder d16, d32, d64;
    Decoders()
    {
        ZydisDecoderInit(&d16, ZYDIS_MACHINE_MODE_LEGACY_16, ZYDIS_STACK_WIDTH_16);
        ZydisDecoderInit(&d32, ZYDIS_MACHINE_MODE_LEGACY_32, ZYDIS_STACK_WIDTH_32);
        ZydisDecoderInit(&d64, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
        // MPX, CET and CLDEMOTE reuse the reserved-NOP opcodes 0F 1A-1E; a
        // processor without them (our CPUID advertises none) runs those
        // encodings as NOPs (SDM Vol 2B NOP; Vol 1 17.3 for MPX).
        for (ZydisDecoder* d : {&d16, &d32, &d64}) {
            ZydisDecoderEnableMode(d, ZYDIS_DECODER_MODE_MPX, ZYAN_FALSE);
            ZydisDecoderEnableMode(d, ZYDIS_DECODER_MODE_CET, ZYAN_FALSE);
            ZydisDecoderEnableMode(d, ZYDIS_DECODER_MODE_CLDEMOTE, ZYAN_FALSE);
        }
    }
    const ZydisDecoder& for_size(unsigned code_size) const
    {
        return code_size == 2 ? d16 : code_size == 4 ? d32 : d64;
    }
};

const Decoders& decoders()
{
    static const Decoders instance;
    return instance;
}

// Zydis 4.0 misreads [index*scale + disp32] (SIB base 101 with mod 00) under
// a 32-bit address size when REX.B is set: it reports base R13D and drops the
// displacement, though the length counts it. REX.B does not matter for this
// form (SDM Vol 2A 2.2.1.2): there is no base register.
bool zydis_dropped_disp32(const ZydisDecodedInstruction& zi, const ZydisDecodedOperand& zo)
{
    return zo.mem.base == ZYDIS_REGISTER_R13D && zi.raw.modrm.mod == 0 && zi.raw.modrm.rm == 4 &&
           zi.raw.sib.base == 5 && zi.raw.disp.size == 32;
}

// Maps a Zydis register to an operand of ours.
Operand map_register(ZydisRegister reg, u8 size_bytes)
{
    Operand op;
    op.size = size_bytes;
    if (reg >= ZYDIS_REGISTER_AL && reg <= ZYDIS_REGISTER_R15B) {
        unsigned i = reg - ZYDIS_REGISTER_AL;
        op.size = 1;
        if (i < 4) {
            op.kind = OpKind::Gpr;
            op.reg = static_cast<u8>(i);
        } else if (i < 8) {
            op.kind = OpKind::GprHigh8;
            op.reg = static_cast<u8>(i - 4);
        } else if (i < 12) {
            op.kind = OpKind::Gpr;
            op.reg = static_cast<u8>(i - 4);
        } else {
            op.kind = OpKind::Gpr;
            op.reg = static_cast<u8>(i - 4);
        }
    } else if (reg >= ZYDIS_REGISTER_AX && reg <= ZYDIS_REGISTER_R15W) {
        op.kind = OpKind::Gpr;
        op.reg = static_cast<u8>(reg - ZYDIS_REGISTER_AX);
        op.size = 2;
    } else if (reg >= ZYDIS_REGISTER_EAX && reg <= ZYDIS_REGISTER_R15D) {
        op.kind = OpKind::Gpr;
        op.reg = static_cast<u8>(reg - ZYDIS_REGISTER_EAX);
        op.size = 4;
    } else if (reg >= ZYDIS_REGISTER_RAX && reg <= ZYDIS_REGISTER_R15) {
        op.kind = OpKind::Gpr;
        op.reg = static_cast<u8>(reg - ZYDIS_REGISTER_RAX);
        op.size = 8;
    } else if (reg >= ZYDIS_REGISTER_ES && reg <= ZYDIS_REGISTER_GS) {
        op.kind = OpKind::Seg;
        op.reg = static_cast<u8>(reg - ZYDIS_REGISTER_ES);
    } else if (reg >= ZYDIS_REGISTER_CR0 && reg <= ZYDIS_REGISTER_CR15) {
        op.kind = OpKind::Cr;
        op.reg = static_cast<u8>(reg - ZYDIS_REGISTER_CR0);
    } else if (reg >= ZYDIS_REGISTER_DR0 && reg <= ZYDIS_REGISTER_DR15) {
        op.kind = OpKind::Dr;
        op.reg = static_cast<u8>(reg - ZYDIS_REGISTER_DR0);
    } else if (reg >= ZYDIS_REGISTER_ST0 && reg <= ZYDIS_REGISTER_ST7) {
        op.kind = OpKind::X87;
        op.reg = static_cast<u8>(reg - ZYDIS_REGISTER_ST0);
    } else if (reg >= ZYDIS_REGISTER_MM0 && reg <= ZYDIS_REGISTER_MM7) {
        op.kind = OpKind::Mmx;
        op.reg = static_cast<u8>(reg - ZYDIS_REGISTER_MM0);
    } else if (reg >= ZYDIS_REGISTER_XMM0 && reg <= ZYDIS_REGISTER_XMM15) {
        op.kind = OpKind::Xmm;
        op.reg = static_cast<u8>(reg - ZYDIS_REGISTER_XMM0);
    } else if (reg >= ZYDIS_REGISTER_YMM0 && reg <= ZYDIS_REGISTER_YMM15) {
        op.kind = OpKind::Ymm;
        op.reg = static_cast<u8>(reg - ZYDIS_REGISTER_YMM0);
    } else {
        op.kind = OpKind::Other;
        op.reg = 0;
    }
    return op;
}

u8 map_base(ZydisRegister reg)
{
    if (reg == ZYDIS_REGISTER_NONE)
        return NO_REG;
    if (reg == ZYDIS_REGISTER_RIP || reg == ZYDIS_REGISTER_EIP || reg == ZYDIS_REGISTER_IP)
        return REG_RIP;
    Operand op = map_register(reg, 0);
    return op.kind == OpKind::Gpr ? op.reg : NO_REG;
}

// Whether an instruction names only general registers, memory and
// immediates (hidden operands included): POPCNT, CRC32, MOVNTI and the VEX
// BMI1/BMI2 forms, which Zydis files under SSE/AVX extensions, touch no
// x87/SSE state, so CR0.EM/TS and CR4.OSFXSR do not apply (SDM Vol 2B, BMI1/BMI2).
bool gpr_only(const ZydisDecodedInstruction& zi, const ZydisDecodedOperand* zops)
{
    if (zi.operand_count_visible == 0)
        return false;
    for (unsigned i = 0; i < zi.operand_count; ++i) {
        if (zops[i].type != ZYDIS_OPERAND_TYPE_REGISTER)
            continue;
        switch (ZydisRegisterGetClass(zops[i].reg.value)) {
        case ZYDIS_REGCLASS_GPR8:
        case ZYDIS_REGCLASS_GPR16:
        case ZYDIS_REGCLASS_GPR32:
        case ZYDIS_REGCLASS_GPR64:
        case ZYDIS_REGCLASS_FLAGS:
        case ZYDIS_REGCLASS_IP:
        case ZYDIS_REGCLASS_SEGMENT:
            break;
        default:
            return false;
        }
    }
    return true;
}

u8 fpu_class_of(const ZydisDecodedInstruction& zi, const ZydisDecodedOperand* zops)
{
    if (zi.mnemonic == ZYDIS_MNEMONIC_FWAIT)
        return FPU_WAIT;
    if (zi.encoding == ZYDIS_INSTRUCTION_ENCODING_VEX || zi.encoding == ZYDIS_INSTRUCTION_ENCODING_EVEX)
        return gpr_only(zi, zops) ? FPU_NONE : FPU_AVX;
    if (zi.meta.isa_ext != ZYDIS_ISA_EXT_X87 && gpr_only(zi, zops))
        return FPU_NONE;
    switch (zi.meta.isa_ext) {
    case ZYDIS_ISA_EXT_X87:
        return FPU_X87;
    case ZYDIS_ISA_EXT_MMX:
    case ZYDIS_ISA_EXT_SSE:
    case ZYDIS_ISA_EXT_SSE2:
    case ZYDIS_ISA_EXT_SSE3:
    case ZYDIS_ISA_EXT_SSSE3:
    case ZYDIS_ISA_EXT_SSE4:
    case ZYDIS_ISA_EXT_SSE4A:
    case ZYDIS_ISA_EXT_AES:
    case ZYDIS_ISA_EXT_PCLMULQDQ:
    case ZYDIS_ISA_EXT_SHA:
        return FPU_SSE;
    default:
        return FPU_NONE;
    }
}

u8 segment_override(ZyanU64 attributes)
{
    if (attributes & ZYDIS_ATTRIB_HAS_SEGMENT_CS) return CS;
    if (attributes & ZYDIS_ATTRIB_HAS_SEGMENT_SS) return SS;
    if (attributes & ZYDIS_ATTRIB_HAS_SEGMENT_ES) return ES;
    if (attributes & ZYDIS_ATTRIB_HAS_SEGMENT_FS) return FS;
    if (attributes & ZYDIS_ATTRIB_HAS_SEGMENT_GS) return GS;
    return DS;
}

// Condition code of Jcc/SETcc/CMOVcc from the opcode's low nibble.
u8 condition_of(const ZydisDecodedInstruction& zi)
{
    return zi.opcode & 0x0F;
}

void fill_operand(Insn& insn, unsigned i, const ZydisDecodedOperand& zo, const ZydisDecodedInstruction& zi)
{
    u8 size = static_cast<u8>(zo.size / 8);
    Operand& op = insn.op[i];
    switch (zo.type) {
    case ZYDIS_OPERAND_TYPE_REGISTER:
        op = map_register(zo.reg.value, size);
        break;
    case ZYDIS_OPERAND_TYPE_MEMORY:
        op.kind = OpKind::Mem;
        op.size = size;
        insn.mem.seg = static_cast<u8>(zo.mem.segment - ZYDIS_REGISTER_ES);
        if (zo.mem.segment < ZYDIS_REGISTER_ES || zo.mem.segment > ZYDIS_REGISTER_GS)
            insn.mem.seg = DS;
        insn.mem.base = map_base(zo.mem.base);
        insn.mem.index = map_base(zo.mem.index);
        if (const Operand vsib = map_register(zo.mem.index, 0);
            vsib.kind == OpKind::Xmm || vsib.kind == OpKind::Ymm) {
            insn.mem.vsib = vsib.reg;
            insn.mem.vsib_bytes = vsib.kind == OpKind::Ymm ? 32 : 16;
        }
        insn.mem.scale = zo.mem.scale ? zo.mem.scale : 1;
        insn.mem.disp = zo.mem.disp.value;
        if (zydis_dropped_disp32(zi, zo)) {
            insn.mem.base = NO_REG;
            insn.mem.disp = static_cast<i32>(zi.raw.disp.value);
        }
        break;
    case ZYDIS_OPERAND_TYPE_IMMEDIATE:
        if (zo.imm.is_relative) {
            op.kind = OpKind::Rel;
            op.size = static_cast<u8>(zi.operand_width / 8);
            insn.imm = static_cast<u64>(zo.imm.value.s);
        } else {
            op.kind = OpKind::Imm;
            op.size = size;
            // The second immediate (ENTER's level) goes to imm2.
            if (i > 0 && insn.op[i - 1].kind == OpKind::Imm)
                insn.imm2 = zo.imm.value.u;
            else
                insn.imm = zo.imm.is_signed ? static_cast<u64>(zo.imm.value.s) : zo.imm.value.u;
        }
        break;
    case ZYDIS_OPERAND_TYPE_POINTER:
        op.kind = OpKind::FarPtr;
        op.size = size;
        insn.imm = zo.ptr.offset;
        insn.imm2 = zo.ptr.segment;
        break;
    default:
        op.kind = OpKind::Other;
        break;
    }
}

} // namespace

DecodeStatus decode_insn(unsigned code_size, const u8* bytes, unsigned available, Insn& out)
{
    ZydisDecodedInstruction zi;
    ZydisDecodedOperand zops[ZYDIS_MAX_OPERAND_COUNT];
    ZyanStatus st = ZydisDecoderDecodeFull(&decoders().for_size(code_size), bytes, available, &zi,
                                           zops);
    if (st == ZYDIS_STATUS_NO_MORE_DATA)
        return available < 15 ? DecodeStatus::NeedMoreBytes : DecodeStatus::Invalid;
    if (!ZYAN_SUCCESS(st))
        return DecodeStatus::Invalid;

    // F3 REX.B 90 is XCHG r8, rAX on hardware (REX.B names R8, so it is not
    // NOP and the F3 does not make it PAUSE); Zydis 4 decodes PAUSE. Decode
    // it with the F3 prefixes turned into CS overrides, which 64-bit mode
    // ignores and which keep the length.
    if (zi.mnemonic == ZYDIS_MNEMONIC_PAUSE && zi.raw.rex.B) {
        u8 copy[15];
        const unsigned n = available < 15 ? available : 15;
        std::memcpy(copy, bytes, n);
        for (unsigned i = 0; i < zi.raw.prefix_count && i < n; ++i)
            if (copy[i] == 0xF3)
                copy[i] = 0x2E;
        return decode_insn(code_size, copy, n, out);
    }

    out = Insn{};
    out.mnemonic = static_cast<u16>(zi.mnemonic);
    out.length = zi.length;
    out.opsize = static_cast<u8>(zi.operand_width / 8);
    if (out.opsize == 0)
        out.opsize = static_cast<u8>(code_size == 8 ? 4 : code_size);
    out.addrsize = static_cast<u8>(zi.address_width / 8);
    out.opcode = zi.opcode;
    out.modrm_reg = zi.raw.modrm.reg;
    out.modrm = static_cast<u8>(zi.raw.modrm.mod << 6 | zi.raw.modrm.reg << 3 | zi.raw.modrm.rm);
    out.cc = condition_of(zi);
    out.fpu_class = fpu_class_of(zi, zops);
    if (zi.attributes & ZYDIS_ATTRIB_HAS_REP || zi.attributes & ZYDIS_ATTRIB_HAS_REPE)
        out.prefixes |= pfx::REP;
    if (zi.attributes & ZYDIS_ATTRIB_HAS_REPNE)
        out.prefixes |= pfx::REPNE;
    if (zi.attributes & ZYDIS_ATTRIB_HAS_LOCK)
        out.prefixes |= pfx::LOCK;
    if (zi.attributes & ZYDIS_ATTRIB_HAS_SEGMENT)
        out.prefixes |= pfx::SEG_OVERRIDE;
    // Zydis's raw.rex is only meaningful for legacy encodings (for a VEX
    // instruction it can read as W=1); a VEX instruction's W is VEX.W, which
    // plays REX.W's part (e.g. RAX/RDX lengths of VPCMPESTRI).
    const bool vex = zi.encoding == ZYDIS_INSTRUCTION_ENCODING_VEX;
    if (vex ? zi.raw.vex.W : (zi.encoding == ZYDIS_INSTRUCTION_ENCODING_LEGACY && zi.raw.rex.W))
        out.prefixes |= pfx::REX_W;
    out.mem.seg = segment_override(zi.attributes);
    for (unsigned i = 0; i < zi.operand_count_visible; ++i)
        if (zops[i].encoding == ZYDIS_OPERAND_ENCODING_NDSNDD)
            out.prefixes |= pfx::VEX_VVVV;

    unsigned count = zi.operand_count_visible < 4 ? zi.operand_count_visible : 4;
    out.operand_count = static_cast<u8>(count);
    for (unsigned i = 0; i < count; ++i)
        fill_operand(out, i, zops[i], zi);

    out.handler = handler_for(out.mnemonic);
    // The model has no AVX-512, Knights Corner, XOP or 3DNow!: handlers are
    // chosen by mnemonic, so encodings that only share a mnemonic with an
    // implemented form must not reach them (#UD, as CPUID promises).
    if (zi.encoding != ZYDIS_INSTRUCTION_ENCODING_LEGACY && zi.encoding != ZYDIS_INSTRUCTION_ENCODING_VEX)
        out.handler = op_unimplemented;
    // Zydis accepts VEX forms of POPCNT/TZCNT/LZCNT (0F B8/BC/BD) that the
    // hardware rejects.
    if (vex && (zi.mnemonic == ZYDIS_MNEMONIC_POPCNT || zi.mnemonic == ZYDIS_MNEMONIC_TZCNT ||
                zi.mnemonic == ZYDIS_MNEMONIC_LZCNT))
        out.handler = op_unimplemented;
    // LOCK is legal only on read-modify-write instructions with a memory
    // destination (SDM Vol 2A, LOCK); everywhere else it is #UD.
    if ((out.prefixes & pfx::LOCK) && !(zi.attributes & ZYDIS_ATTRIB_ACCEPTS_LOCK &&
                                        count > 0 && out.op[0].kind == OpKind::Mem))
        out.handler = op_unimplemented;
    return DecodeStatus::Ok;
}

const char* mnemonic_name(const Insn& insn)
{
    return ZydisMnemonicGetString(static_cast<ZydisMnemonic>(insn.mnemonic));
}
