// The pieces of the FXSAVE image and the x87 save-area memory helpers that
// XSAVE (cpu/system/xsave.cpp) shares with FXSAVE (cpu/x87/x87.cpp).
#pragma once

#include "cpu/core/handlers.h"

// x87 part of the FXSAVE/XSAVE legacy region: bytes 0-23 and 32-159 (SDM Vol
// 1 Table 10-2/10-3). `wide` selects the 64-bit FIP/FDP form (REX.W).
void store_x87_image(const FpuState& f, bool wide, u8* image);
void load_x87_image(FpuState& f, bool wide, const u8* image);

// The x87 initial configuration XRSTOR loads when XSTATE_BV[0] = 0 (SDM Vol 1
// 13.6), and whether the state is in it (XINUSE[0] = 0).
void init_x87_state(FpuState& f);
bool x87_in_init_state(const FpuState& f);

// `len` bytes of guest memory at offset `ea` of the instruction's segment.
// write_fpu_block checks that the whole block is writable before changing any
// of it; probe_fpu_block_write does only that check.
bool read_fpu_block(Cpu& cpu, const Insn& insn, u64 ea, u8* out, unsigned len);
bool write_fpu_block(Cpu& cpu, const Insn& insn, u64 ea, const u8* in, unsigned len);
bool probe_fpu_block_write(Cpu& cpu, const Insn& insn, u64 ea, unsigned len);
