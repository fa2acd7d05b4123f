// The CPU model's CPUID, as the table KVM_SET_CPUID2 takes for one vCPU
// (Documentation/virt/kvm/api.rst 4.73). The guest on KVM sees the same
// processor as on the interpreter, less what KVM cannot give it: a feature
// flag stays set only when KVM_GET_SUPPORTED_CPUID offers it, or when the
// userspace devices provide it themselves (the local APIC, x2APIC and the
// TSC-deadline timer are viridian's LAPIC; the hypervisor bit is the
// Hyper-V partition's). Address widths shrink to the host's. Pure: tested
// without /dev/kvm (tests/accel/kvm_cpuid_test.cpp).
#pragma once

#include "cpu/state/cpuid_model.h"

#include <linux/kvm.h>

#include <span>
#include <vector>

std::vector<kvm_cpuid_entry2> kvm_cpuid_table(const CpuidModel& model, unsigned apic_id,
                                              std::span<const kvm_cpuid_entry2> supported);

// Narrows `model` itself to what KVM offers (the same rule, flag by flag, as
// kvm_cpuid_table, with what needs a removed flag removed too), so that the
// interpreter of a machine that can switch backends offers no flag the
// guest would lose on going back to KVM.
void narrow_to_kvm(CpuidModel& model, std::span<const kvm_cpuid_entry2> supported);
