// The first step past the interpreter: a decoded block becomes one host
// function (x86-64, emitted with xbyak). The forms real code spends its
// time in (MOV, MOVZX, LEA, the two-operand ALU instructions, CMOVcc, Jcc,
// JMP; fast_form_of in cpu/core/fast_handlers.h) become host instructions
// working on CpuState in memory, with the soft-TLB lookup of a memory
// operand inlined; every other instruction, and every such instruction
// whose fast path misses (a TLB miss, an unusual branch target), calls the
// instruction's own handler. The result is exactly what the interpreter's
// fast loop (Cpu::execute_insns) would do, instruction by instruction:
// same registers, memory, lazy flags, faults and retired count.
//
// What native code assumes when it is entered (Cpu::execute_block checks):
// 64-bit code, no alignment checking (CR0.AM & EFLAGS.AC), the whole block
// within the instruction budget, and the fast path's conditions (no trace
// hook, TF/RF clear, no interrupt shadow, no debug-register enables). A
// handler that changes any of these ends its block, as in the interpreter;
// after each handler call the code also leaves when the block was
// invalidated, the handler branched, or CPL/EFLAGS.AC may have changed.
#pragma once

#include "cpu/core/block_cache.h"

class Cpu;
class CodeArena;

enum class TranslateResult { Done, ArenaFull };

// Translates `block` for any vCPU of the machine (the code reaches the
// vCPU's state through its arguments) and stores it in block.native.
TranslateResult translate_block(const Cpu& cpu, const Block& block, CodeArena& arena);
