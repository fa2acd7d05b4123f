// The vCPU half of the KVM backend (docs/kvm.md): KVM_RUN and its exits
// to viridian's devices, interrupt injection, the kick timer, CpuState in
// and out, and the Hyper-V hypercall gate.
#pragma once

#include "accel/kvm/kvm_vm.h"

// The hypercall gate: the Hyper-V hypercall page calls with OUT 0xEF, AL
// (KVM answers VMCALL and VMMCALL itself; it hands every port write to
// userspace). No PC device decodes port 0xEF.
constexpr u8 KVM_HYPERCALL_PORT = 0xEF;

// vCPU `index` of `vm` on the vCPU file descriptor and its mapped kvm_run.
std::unique_ptr<VcpuBackend> make_kvm_vcpu(KvmVm& vm, unsigned index, Fd fd, kvm_run* run);
