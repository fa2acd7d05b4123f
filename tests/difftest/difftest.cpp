#include "tests/difftest/difftest.h"

#include "tests/difftest/decode.h"

#include <cstdlib>
#include <cstring>

namespace difftest {

namespace {

void put32(u8* p, u32 v)
{
    std::memcpy(p, &v, 4);
}
void put64(u8* p, u64 v)
{
    std::memcpy(p, &v, 8);
}

} // namespace

void build_code_page(const TestCase& tc, u8* page)
{
    std::memset(page, 0xCC, PAGE_SIZE);
    u8* p = page;
    if (tc.fp) {
        // mov eax, 7 ; xor edx, edx ; xrstor64 [image]: x87, SSE and AVX
        // state (the 64-bit form, so FIP and FDP load whole).
        *p++ = 0xB8;
        put32(p, 7);
        p += 4;
        *p++ = 0x31, *p++ = 0xD2;
        *p++ = 0x48, *p++ = 0x0F, *p++ = 0xAE, *p++ = 0x2C, *p++ = 0x25;
        put32(p, static_cast<u32>(CODE_VA + FP_IMAGE_OFFSET));
        p += 4;
    }
    if (tc.mode32) {
        // mov eax, USER_DS ; mov ds, eax ; mov es, eax: a 64-bit Linux process
        // has null DS/ES, which compatibility mode cannot use.
        *p++ = 0xB8;
        put32(p, USER_DS);
        p += 4;
        *p++ = 0x8E, *p++ = 0xD8, *p++ = 0x8E, *p++ = 0xC0;
    }
    // mov rsp, CODE_VA + STATE_OFFSET ; popfq ; pop every GPR but RSP ; mov rsp, [rsp] ;
    // jmp insn (a far jump to the 32-bit code segment for 32-bit cases)
    *p++ = 0x48, *p++ = 0xC7, *p++ = 0xC4;
    put32(p, static_cast<u32>(CODE_VA + STATE_OFFSET));
    p += 4;
    *p++ = 0x9D;
    for (u8 r : {0, 1, 2, 3, 5, 6, 7})
        *p++ = static_cast<u8>(0x58 + r);
    for (u8 r = 0; r < 8; ++r)
        *p++ = 0x41, *p++ = static_cast<u8>(0x58 + r);
    *p++ = 0x48, *p++ = 0x8B, *p++ = 0x24, *p++ = 0x24;
    if (tc.mode32) {
        *p++ = 0xFF, *p++ = 0x2D; // jmp far [rip + disp32]
        put32(p, static_cast<u32>(FAR_POINTER_OFFSET - (p + 4 - page)));
        p += 4;
        put32(page + FAR_POINTER_OFFSET, static_cast<u32>(INSN_VA));
        page[FAR_POINTER_OFFSET + 4] = static_cast<u8>(USER_CS32);
        page[FAR_POINTER_OFFSET + 5] = 0;
    } else {
        *p++ = 0xE9;
        put32(p, static_cast<u32>(INSN_OFFSET - (p + 4 - page)));
        p += 4;
    }

    if (p - page > static_cast<long>(STATE_OFFSET))
        std::abort(); // the prologue grew into the register block

    u8* state = page + STATE_OFFSET;
    const auto& g = tc.init.gpr;
    const u64 block[17] = {tc.init.rflags, g[0],  g[1],  g[2],  g[3],  g[5],  g[6],  g[7], g[8],
                           g[9],           g[10], g[11], g[12], g[13], g[14], g[15], g[4]};
    for (unsigned i = 0; i < 17; ++i)
        put64(state + 8 * i, block[i]);

    std::memcpy(page + INSN_OFFSET, tc.bytes.data(), tc.length);
    if (tc.fp)
        std::memcpy(page + FP_IMAGE_OFFSET, tc.fp_init.b.data(), fpimg::SIZE);
}

namespace {

ZydisDecoder make_decoder(ZydisMachineMode mode, ZydisStackWidth stack)
{
    ZydisDecoder d;
    ZydisDecoderInit(&d, mode, stack);
    ZydisDecoderEnableMode(&d, ZYDIS_DECODER_MODE_MPX, ZYAN_FALSE);
    ZydisDecoderEnableMode(&d, ZYDIS_DECODER_MODE_CET, ZYAN_FALSE);
    ZydisDecoderEnableMode(&d, ZYDIS_DECODER_MODE_CLDEMOTE, ZYAN_FALSE);
    return d;
}

} // namespace

bool decode_case(bool mode32, const u8* bytes, unsigned length, ZydisDecodedInstruction& insn,
                 ZydisDecodedOperand* ops)
{
    static const ZydisDecoder d64 = make_decoder(ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
    static const ZydisDecoder d32 =
        make_decoder(ZYDIS_MACHINE_MODE_LONG_COMPAT_32, ZYDIS_STACK_WIDTH_32);
    if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(mode32 ? &d32 : &d64, bytes, length, &insn, ops)))
        return false;
    for (unsigned i = 0; i < insn.operand_count; ++i) {
        ZydisDecodedOperand& op = ops[i];
        if (op.type == ZYDIS_OPERAND_TYPE_MEMORY && op.mem.base == ZYDIS_REGISTER_R13D &&
            insn.raw.modrm.mod == 0 && insn.raw.modrm.rm == 4 && insn.raw.sib.base == 5 &&
            insn.raw.disp.size == 32) {
            op.mem.base = ZYDIS_REGISTER_NONE;
            op.mem.disp.value = static_cast<i32>(insn.raw.disp.value);
        }
    }
    return true;
}

const char* vector_name(u8 vector)
{
    static const char* const names[32] = {"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM",
                                          "#DF", "#09", "#TS", "#NP", "#SS", "#GP", "#PF", "#15",
                                          "#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "#22", "#23",
                                          "#24", "#25", "#26", "#27", "#28", "#29", "#30", "#31"};
    return vector < 32 ? names[vector] : "#??";
}

const char* gpr_name(unsigned r)
{
    static const char* const names[16] = {"RAX", "RCX", "RDX", "RBX", "RSP", "RBP", "RSI", "RDI",
                                          "R8",  "R9",  "R10", "R11", "R12", "R13", "R14", "R15"};
    return r < 16 ? names[r] : "R??";
}

} // namespace difftest
