// A vCPU's part of a snapshot, the same for every backend, so that a machine
// saved while its vCPUs ran on KVM restores onto the interpreter and the
// reverse (docs/kvm.md "Switching"): the architectural state (CpuState as it
// lies in memory; the snapshot's build identity names its size), then the
// name of the backend that saved it and that backend's own fields (the
// interpreter's retired count and random generator, KVM's nanoseconds run)
// as one framed blob, which a backend of the other kind skips.
#pragma once

#include "cpu/state/cpu_state.h"
#include "cpu/state/cpuid_model.h"
#include "mmu/base/state_visitor.h"

#include <functional>

// Saves or loads `state` and, when the snapshot's backend is `backend`,
// visits `own_fields` on the blob. A loaded state is checked as bytes
// (every bool 0 or 1) and against the CPU model before it is taken; a
// failure is the visitor's. Returns, on a load that succeeded, whether the
// backend's own fields were loaded (the snapshot came from the same kind).
bool visit_vcpu_snapshot(StateVisitor& v, const char* backend, CpuState& state, const CpuidModel& cpuid,
                         const std::function<void(StateVisitor&)>& own_fields);
