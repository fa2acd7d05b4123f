// Whether a whole CpuState from outside the CPU (a snapshot, which is user
// input) is one the CPU can be in, for backends to check before they load it.
#pragma once

#include "cpu/state/cpu_state.h"
#include "cpu/state/cpuid_model.h"

#include <optional>
#include <string>

// Why `state` is not one this CPU can be in, or nothing: the register values
// and combinations that MOV CR, WRMSR EFER, XSETBV, MOV DR and LDMXCSR refuse
// and VM entry checks (SDM Vol 3C 27.3.1). Defined in cpu/system/system.cpp,
// beside the checks of those instructions.
std::optional<std::string> cpu_state_problem(const CpuState& state, const CpuidModel& cpuid);
