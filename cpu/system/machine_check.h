// Machine-check architecture (SDM Vol 3B chapter 16): the MSRs a guest's
// machine-check code programs at boot and polls afterwards. The machine
// never reports a hardware error, so a bank's status only ever holds what
// the guest last wrote to it (zero: software may only clear it).
#pragma once

#include "cpu/state/cpu_state.h"

#include <optional>

namespace mca {

constexpr unsigned BANKS = 10; // as QEMU's and KVM's default model
constexpr u32 MSR_MCG_CAP = 0x179, MSR_MCG_STATUS = 0x17A, MSR_MCG_CTL = 0x17B,
              MSR_MC0_CTL = 0x400; // MCi_CTL, _STATUS, _ADDR, _MISC at 0x400 + 4i + 0..3
constexpr u64 MCG_CTL_P = 1u << 8; // IA32_MCG_CTL is present
constexpr u64 MCG_CAP_VALUE = BANKS | MCG_CTL_P;
// MCG_STATUS: RIPV (0), EIPV (1), MCIP (2); the rest are reserved here (no LMCE).
constexpr u64 MCG_STATUS_WRITABLE = 0x7;

// std::nullopt: `index` is not a machine-check MSR of this model. false: the
// access raises #GP. true: done (`value` read, or the register written).
std::optional<bool> read(const MachineCheckState& mc, u32 index, u64& value);
std::optional<bool> write(MachineCheckState& mc, u32 index, u64 value);

} // namespace mca
