// Reverse execution over a replay (docs/replay.md "Reverse execution"). The
// Replayer keeps in-memory snapshots along the run (Replayer::keep_snapshots);
// going back restores the latest one before the target and runs forward to
// it. A replay is deterministic and a stopped run schedules its vCPUs as an
// uninterrupted one (Machine::Position), so the run reaches the very states
// it passed before.
//
// Everything here runs on the machine's thread between Machine::run calls.
#pragma once

#include "platform/replay/replay_log.h"

#include <optional>
#include <vector>

namespace replay {

class Navigator {
public:
    explicit Navigator(Replayer& replayer) : m_replayer(replayer) {}

    struct Stop {
        // DebugStop (a Breakpoint, Watchpoint or Step on `vcpu`), or how the
        // run ended if a re-run did not get there (a divergence).
        RunOutcome outcome;
        bool history_begin = false; // back where the machine's history begins
    };
    // One unit back on `vcpu` (the instruction it retired last, or the
    // event it took): gdb's reverse-stepi.
    Stop step_back(Machine& machine, unsigned vcpu);
    // Back to the last breakpoint or watchpoint hit before the point where
    // the machine stopped on `vcpu`: gdb's reverse-continue.
    Stop continue_back(Machine& machine, unsigned vcpu, const std::vector<u64>& breakpoints,
                       const std::vector<Watchpoint>& watchpoints);
    // To `position`, from the nearest snapshot before it when it lies
    // behind (or from here when it lies ahead).
    Stop go_to(Machine& machine, Machine::Position position);

    // To the point where the machine's vCPUs together have retired
    // `retired` instructions (QMP replay-seek; the count --mark-output shows,
    // less the machines before a reboot), stopped on the vCPU that runs next.
    Stop seek(Machine& machine, u64 retired);

    // The point furthest into the run the machine has been at, in units of
    // all vCPUs together: output before it was shown already.
    u64 high_water() const { return m_high_water; }
    void note_reached(const Machine& machine) { m_high_water = std::max(m_high_water, machine.units()); }
    // A new machine (a reboot): its history starts at nothing.
    void restart() { m_high_water = 0; }

private:
    struct Hit {
        Machine::Position position;
        RunOutcome outcome;
    };
    // The latest snapshot where `vcpu` had at most `units` units.
    std::optional<size_t> snapshot_before(unsigned vcpu, u64 units) const;
    Stop history_begin(Machine& machine, unsigned vcpu);
    // Runs from where the machine is to `position` or to the instruction
    // count `retired`, breakpoints off.
    Stop run_to(Machine& machine, std::optional<Machine::Position> position, std::optional<u64> retired = {});
    // From snapshot `index`, the hits before `end` (or before the next
    // snapshot when none), in the order they happen.
    std::optional<std::vector<Hit>> hits_after(Machine& machine, size_t index,
                                               std::optional<Machine::Position> end,
                                               const std::vector<u64>& breakpoints,
                                               const std::vector<Watchpoint>& watchpoints,
                                               RunOutcome& failure);

    Replayer& m_replayer;
    u64 m_high_water = 0;
};

} // namespace replay
