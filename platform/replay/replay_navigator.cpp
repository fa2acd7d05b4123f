#include "platform/replay/replay_navigator.h"

namespace replay {

namespace {

// The frontend keeps a machine that gdb stopped paused; a run here is
// the navigator's, not the guest's wish.
RunOutcome run_once(Machine& machine)
{
    machine.resume();
    const RunOutcome outcome = machine.run();
    machine.pause();
    return outcome;
}

bool is_debug_stop(const RunOutcome& outcome, DebugEvent::Kind kind)
{
    return outcome.kind == RunOutcome::Kind::DebugStop && outcome.debug.kind == kind;
}

// A snapshot that would not load ends the run as a divergence would.
Navigator::Stop rewind_failed() { return Navigator::Stop{RunOutcome::of(RunOutcome::Kind::HostStop, DIVERGED), false}; }

// Going backwards, a watchpoint's hit is before the access it stopped after,
// where the value is still the old one (gdb then says "Old value" and "New
// value", as with rr).
Machine::Position before_access(const Machine& machine, unsigned vcpu)
{
    return Machine::Position{vcpu, machine.vcpu_units(vcpu) - 1};
}

} // namespace

std::optional<size_t> Navigator::snapshot_before(unsigned vcpu, u64 units) const
{
    for (size_t i = m_replayer.snapshot_count(); i-- > 0;)
        if (m_replayer.snapshot_units(i).at(vcpu) <= units)
            return i;
    return std::nullopt;
}

Navigator::Stop Navigator::history_begin(Machine& machine, unsigned vcpu)
{
    Stop stop;
    stop.outcome = RunOutcome::of(RunOutcome::Kind::DebugStop);
    stop.outcome.vcpu = vcpu;
    stop.outcome.debug.kind = DebugEvent::Kind::Step;
    stop.history_begin = true;
    if (m_replayer.snapshot_count() == 0)
        return stop; // nothing kept: the machine stays where it is
    if (m_replayer.rewind(0, machine).is_error())
        return rewind_failed();
    stop.outcome.debug.address = machine.vcpu_state(vcpu).rip;
    return stop;
}

Navigator::Stop Navigator::run_to(Machine& machine, std::optional<Machine::Position> position,
                                  std::optional<u64> retired)
{
    machine.set_debug_points({}, {});
    machine.stop_at_position(position);
    machine.stop_at_retired(retired);
    Stop stop;
    stop.outcome = run_once(machine);
    machine.stop_at_position(std::nullopt);
    machine.stop_at_retired(std::nullopt);
    return stop;
}

Navigator::Stop Navigator::go_to(Machine& machine, Machine::Position position)
{
    note_reached(machine);
    if (position.vcpu >= machine.vcpu_count())
        return history_begin(machine, 0);
    if (machine.vcpu_units(position.vcpu) < position.units)
        return run_to(machine, position); // ahead: from here
    const std::optional<size_t> index = snapshot_before(position.vcpu, position.units);
    if (!index)
        return history_begin(machine, position.vcpu);
    if (m_replayer.rewind(*index, machine).is_error())
        return rewind_failed();
    return run_to(machine, position);
}

Navigator::Stop Navigator::seek(Machine& machine, u64 retired)
{
    note_reached(machine);
    if (retired < machine.retired()) {
        size_t index = m_replayer.snapshot_count();
        while (index > 0 && m_replayer.snapshot_retired(index - 1) > retired)
            --index;
        if (index == 0)
            return history_begin(machine, 0);
        if (m_replayer.rewind(index - 1, machine).is_error())
            return rewind_failed();
    }
    return run_to(machine, std::nullopt, retired);
}

Navigator::Stop Navigator::step_back(Machine& machine, unsigned vcpu)
{
    const u64 units = machine.vcpu_units(vcpu);
    if (units == 0)
        return history_begin(machine, vcpu);
    return go_to(machine, Machine::Position{vcpu, units - 1});
}

std::optional<std::vector<Navigator::Hit>> Navigator::hits_after(Machine& machine, size_t index,
                                                                 std::optional<Machine::Position> end,
                                                                 const std::vector<u64>& breakpoints,
                                                                 const std::vector<Watchpoint>& watchpoints,
                                                                 RunOutcome& failure)
{
    if (m_replayer.rewind(index, machine).is_error()) {
        failure = rewind_failed().outcome;
        return std::nullopt;
    }
    const auto arm_end = [&] {
        if (end)
            machine.stop_at_position(*end);
    };
    if (!end)
        machine.stop_at_units(m_replayer.snapshot_key(index + 1));
    arm_end();
    machine.set_debug_points(breakpoints, watchpoints);
    std::vector<Hit> hits;
    for (;;) {
        const RunOutcome outcome = run_once(machine);
        if (outcome.kind == RunOutcome::Kind::Checkpoint || is_debug_stop(outcome, DebugEvent::Kind::Step))
            break; // the window's end
        if (outcome.kind != RunOutcome::Kind::DebugStop) {
            failure = outcome;
            return std::nullopt;
        }
        const Machine::Position here = machine.position_of(outcome.vcpu);
        if (outcome.debug.kind != DebugEvent::Kind::Breakpoint) {
            // An access that ended where the search began is the first one
            // behind it.
            hits.push_back({before_access(machine, outcome.vcpu), outcome});
            if (end && here == *end)
                break;
            continue;
        }
        hits.push_back({here, outcome});
        // Off the breakpoint: that vCPU's next unit with the breakpoints out
        // (one unit inside the slice it stopped in, so nothing else runs).
        machine.set_debug_points({}, watchpoints);
        machine.stop_at_position(Machine::Position{outcome.vcpu, here.units + 1});
        for (;;) {
            const RunOutcome off = run_once(machine);
            if (is_debug_stop(off, DebugEvent::Kind::Step))
                break;
            if (!is_debug_stop(off, DebugEvent::Kind::Watchpoint)) {
                failure = off;
                return std::nullopt;
            }
            hits.push_back({before_access(machine, off.vcpu), off});
        }
        machine.set_debug_points(breakpoints, watchpoints);
        arm_end();
    }
    machine.stop_at_units(std::nullopt);
    machine.stop_at_position(std::nullopt);
    machine.set_debug_points({}, {});
    return hits;
}

Navigator::Stop Navigator::continue_back(Machine& machine, unsigned vcpu, const std::vector<u64>& breakpoints,
                                         const std::vector<Watchpoint>& watchpoints)
{
    note_reached(machine);
    const Machine::Position from = machine.position_of(vcpu);
    const u64 from_units = machine.units();
    // The windows between snapshots, the latest first: the first one that
    // holds a hit holds the last hit before where the search began.
    size_t index = m_replayer.snapshot_count();
    while (index > 0 && m_replayer.snapshot_key(index - 1) >= from_units)
        --index;
    const size_t first_window = index;
    while (index-- > 0) {
        RunOutcome failure;
        const std::optional<Machine::Position> end =
            index + 1 == first_window ? std::optional<Machine::Position>(from) : std::nullopt;
        const std::optional<std::vector<Hit>> hits =
            hits_after(machine, index, end, breakpoints, watchpoints, failure);
        if (!hits)
            return Stop{failure, false};
        if (hits->empty())
            continue;
        const Hit last = hits->back();
        if (m_replayer.rewind(index, machine).is_error())
            return rewind_failed();
        Stop stop = run_to(machine, last.position);
        if (is_debug_stop(stop.outcome, DebugEvent::Kind::Step))
            stop.outcome = last.outcome; // reported as what it was
        return stop;
    }
    return history_begin(machine, vcpu);
}

} // namespace replay
