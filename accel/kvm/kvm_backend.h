// The hardware-assist backend: vCPUs run on Linux KVM (VT-x or SVM) while
// every device stays viridian's own (docs/kvm.md). The interrupt
// controllers are the userspace ones the interpreter uses: the LAPIC window,
// the x2APIC and TSC-deadline MSRs, the Hyper-V synthetic MSRs and every
// port and MMIO access leave KVM and reach the same device models.
// Interrupts are injected when the guest can take them (KVM_INTERRUPT, with
// an interrupt-window exit requested while it cannot).
//
// A vCPU's budget is nanoseconds of guest time, not instructions: KVM
// cannot count them, so units() and retired() count the nanoseconds the
// vCPU ran. A run ends when its budget has passed (a per-thread timer
// kicks the vCPU out of KVM_RUN), at HLT with nothing to wake it, at a
// shutdown (triple fault) or when request_stop() is called.
#pragma once

#include "accel/vcpu_backend.h"
#include "mmu/base/error_or.h"

#include <memory>

// Opens /dev/kvm and makes the VM; an error names what the host lacks
// (no /dev/kvm, no permission, an old KVM without a needed capability).
ErrorOr<std::unique_ptr<Accelerator>> make_kvm_accelerator(const AcceleratorWiring& wiring);
