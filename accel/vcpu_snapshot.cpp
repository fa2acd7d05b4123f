#include "accel/vcpu_snapshot.h"

#include "cpu/core/cpu_state_check.h"

#include <array>
#include <cstddef>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace {

// The bools of CpuState (all in PendingEvents; a new one belongs here too).
constexpr size_t EVENT_FLAGS[] = {
    offsetof(PendingEvents, nmi),           offsetof(PendingEvents, interrupt_shadow),
    offsetof(PendingEvents, mov_ss_blocking), offsetof(PendingEvents, nmi_blocked),
    offsetof(PendingEvents, halted),        offsetof(PendingEvents, ferr),
    offsetof(PendingEvents, task_switch_trap),
};

} // namespace

bool visit_vcpu_snapshot(StateVisitor& v, const char* backend, CpuState& state, const CpuidModel& cpuid,
                         const std::function<void(StateVisitor&)>& own_fields)
{
    v.section("vcpu", 1);
    std::array<u8, sizeof(CpuState)> bytes;
    std::memcpy(bytes.data(), &state, sizeof state);
    v.bytes_field(bytes.data(), bytes.size());
    std::string saved_by = backend;
    v.field("backend", saved_by);
    std::vector<u8> blob;
    if (v.saving()) {
        StateVisitor own = StateVisitor::saver();
        own_fields(own);
        blob = own.bytes();
    }
    v.field("backend_fields", blob);
    if (!v.loading() || !v.ok())
        return false;
    // A byte other than 0 or 1 in a bool is no bool.
    for (size_t offset : EVENT_FLAGS)
        if (bytes[offsetof(CpuState, events) + offset] > 1) {
            v.fail("a vCPU's pending-event flags are not 0 or 1");
            return false;
        }
    CpuState loaded;
    std::memcpy(&loaded, bytes.data(), sizeof loaded);
    if (std::optional<std::string> problem = cpu_state_problem(loaded, cpuid)) {
        v.fail("a vCPU's state is invalid: " + *problem);
        return false;
    }
    state = loaded;
    if (saved_by != backend)
        return false; // the other kind's counters mean nothing here
    StateVisitor own = StateVisitor::loader(std::move(blob));
    own_fields(own);
    if (!own.ok() || !own.at_end()) {
        v.fail("a vCPU's " + std::string(backend) + " fields are damaged");
        return false;
    }
    return true;
}
