// CpuState, the backend-neutral schema (cpu/state/), in and out of the
// structures KVM's vCPU ioctls take (Documentation/virt/kvm/api.rst 4.11-4.13
// GET/SET_REGS and SREGS, 4.42-4.43 XSAVE, 4.31 VCPU_EVENTS, 4.32 DEBUGREGS,
// 4.18-4.19 MSRS, 4.44 XCRS). Pure conversions, no ioctl: tested without
// /dev/kvm (tests/accel/kvm_state_test.cpp).
//
// What KVM's format cannot hold is dropped on the way in and reads back as
// the reset value: FCS and FDS (XSAVE64 keeps a 64-bit FIP/FDP), a pending
// FERR# (KVM has no CR0.NE = 0 error pins), a held-back task-switch trap.
#pragma once

#include "cpu/state/cpu_state.h"
#include "cpu/state/cpu_vendor.h"

#include <linux/kvm.h>

#include <span>
#include <vector>

void to_kvm_regs(const CpuState& s, kvm_regs& out);
void from_kvm_regs(const kvm_regs& in, CpuState& s);

// Segments, descriptor tables, control registers, EFER and IA32_APIC_BASE.
// The interrupt bitmap is left empty: pending interrupts stay in the
// userspace interrupt controllers.
void to_kvm_sregs(const CpuState& s, kvm_sregs& out);
void from_kvm_sregs(const kvm_sregs& in, CpuState& s);
kvm_segment to_kvm_segment(const Segment& seg);
Segment from_kvm_segment(const kvm_segment& seg);

// The x87, SSE and AVX state in the standard (non-compacted) XSAVE layout
// (SDM Vol 1 13.4): legacy region, header with XSTATE_BV, YMM_Hi128 at 576.
void to_kvm_xsave(const CpuState& s, kvm_xsave& out);
void from_kvm_xsave(const kvm_xsave& in, CpuState& s);

void to_kvm_debugregs(const CpuState& s, kvm_debugregs& out);
void from_kvm_debugregs(const kvm_debugregs& in, CpuState& s);

// NMI pending and blocked, the STI/MOV SS interrupt shadow. Exceptions are
// never pending between instructions in CpuState, so none is handed over.
void to_kvm_events(const CpuState& s, kvm_vcpu_events& out);
void from_kvm_events(const kvm_vcpu_events& in, CpuState& s);

// The MSRs KVM keeps for the vCPU that CpuState holds (SYSCALL/SYSENTER,
// KERNEL_GS_BASE, TSC_AUX, PAT, ...). The TSC is not among them: its value
// depends on when it is read (the backend writes IA32_TSC itself).
std::span<const u32> kvm_state_msr_indices(CpuVendor vendor);
// Fills `values` (one per index of kvm_state_msr_indices) from `s`, and back.
std::vector<u64> to_kvm_msr_values(const CpuState& s, CpuVendor vendor);
void from_kvm_msr_values(std::span<const u64> values, CpuVendor vendor, CpuState& s);
