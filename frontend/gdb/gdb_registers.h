// The x86-64 registers as gdb numbers them and the target description that
// says so (gdb manual, "Target Descriptions" and "i386 Features"): the
// features org.gnu.gdb.i386.core, .sse, .segments (fs_base, gs_base) and
// .avx (the upper halves of YMM0-15), then the control registers and EFER
// in a feature of their own, as QEMU offers them. The `g` packet is the
// registers in this order, each little-endian at its size.
#pragma once

#include "cpu/state/cpu_state.h"

#include <string>
#include <string_view>

constexpr unsigned GDB_REGISTER_COUNT = 82;
// Register numbers gdb uses in `p`/`P` and in T stop replies.
constexpr unsigned GDB_REG_RSP = 7, GDB_REG_RIP = 16, GDB_REG_EFLAGS = 17;

// The whole target.xml document (qXfer:features:read:target.xml).
std::string_view gdb_target_xml();
// Bytes of register `n` (0 .. GDB_REGISTER_COUNT-1) in target byte order.
std::string gdb_read_register(const CpuState& state, unsigned n);
// Sets register `n` from its bytes; false for a wrong size, or for a value the
// stub does not let a debugger change (a control register or EFER: a new
// paging mode would have to be checked like a MOV to CR, so they are
// read-only here).
bool gdb_write_register(CpuState& state, unsigned n, std::string_view bytes);
// Every register, concatenated (the `g` reply before hex encoding).
std::string gdb_read_registers(const CpuState& state);
// Sets as many registers as `bytes` covers, in order (the `G` packet); false
// if one of them is refused or the length ends inside a register.
bool gdb_write_registers(CpuState& state, std::string_view bytes);
