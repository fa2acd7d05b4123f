// What the gdb stub asks of the machine it debugs (frontend/gdb/): a seam so
// that a GdbSession runs against a fake target in a test and against the
// real machine (gdb_machine_target.h) in viridian. All-stop: the whole
// machine is stopped or running; threads are vCPUs.
//
// Calls are made on the event loop's thread while the machine is stopped,
// except resume() and interrupt(), whose outcome (a stop) arrives later
// through GdbSession::report_stop.
#pragma once

#include "cpu/state/cpu_state.h"
#include "cpu/state/guest_debug.h"

#include <optional>
#include <span>
#include <string>
#include <vector>

// Why the machine stopped, as a stop reply tells gdb.
struct GdbStop {
    enum class Reason : uint8_t {
        Breakpoint, // a Z0/Z1 breakpoint at `address`
        Watchpoint, // a Z2/Z3/Z4 watchpoint on `address` (`watch` says which)
        Step,       // a single-step finished
        Interrupt,  // Ctrl-C, QMP stop, or the debugger attached
        Exited,     // the machine's run ended with `status`
    };
    Reason reason = Reason::Interrupt;
    unsigned vcpu = 0;
    u64 address = 0;
    WatchKind watch = WatchKind::Write;
    int status = 0;
    // Reverse execution went back to where the recorded history begins
    // (the stop reply's `replaylog:begin`: gdb says "No more
    // reverse-execution history").
    bool history_begin = false;
};

class GdbTarget {
public:
    virtual ~GdbTarget() = default;

    virtual unsigned vcpu_count() const = 0;
    // Reverse execution (record/replay): ReverseStep+/ReverseContinue+ are
    // offered only when this is true.
    virtual bool can_reverse() const { return false; }

    // A vCPU's registers; nothing when the machine is gone.
    virtual std::optional<CpuState> registers(unsigned vcpu) = 0;
    // What qThreadExtraInfo says of a vCPU beside its number ("running",
    // "halted", "waiting for SIPI"); empty when the machine is gone.
    virtual std::string thread_state(unsigned vcpu)
    {
        const std::optional<CpuState> state = registers(vcpu);
        return !state ? "" : state->events.halted ? "halted" : "running";
    }
    virtual bool set_registers(unsigned vcpu, const CpuState& state) = 0;
    // `monitor info replay`, as QEMU's HMP words it: whether the run is
    // recorded or replayed, its file, and the instruction count now (the
    // count --mark-output prints, --replay-goto and QMP replay-seek take).
    virtual std::string replay_info() { return "Record/replay is not active\n"; }
    // Guest memory at a virtual address through `vcpu`'s page tables (or a
    // physical one): how many bytes from the start were read or written
    // before an unmapped page or a hole (a short count, never a guest fault).
    virtual size_t read_memory(unsigned vcpu, u64 address, std::span<u8> out, bool physical) = 0;
    virtual size_t write_memory(unsigned vcpu, u64 address, std::span<const u8> data, bool physical) = 0;

    // The debugger's whole set of breakpoints and watchpoints, for every vCPU.
    virtual bool set_debug_points(const std::vector<u64>& breakpoints,
                                  const std::vector<Watchpoint>& watchpoints) = 0;
    // Runs: `step` names the vCPU that single-steps (the others stay
    // stopped); none: every vCPU continues. False when the machine is gone.
    virtual bool resume(std::optional<unsigned> step) = 0;
    // Reverse execution (gdb's bs and bc) from gdb's thread `vcpu`: one
    // instruction back on it (`step`), or back to the previous breakpoint
    // or watchpoint hit. The stop comes back as resume()'s does. False when
    // the target cannot.
    virtual bool reverse(unsigned /*vcpu*/, bool /*step*/) { return false; }
    // Asks a running machine to stop; a Reason::Interrupt stop follows.
    virtual void interrupt() = 0;
    // A debugger attached: stops the machine and returns once it has
    // stopped (no stop report follows). False when the machine is gone.
    virtual bool attach() = 0;
    // gdb's `k`: the run ends.
    virtual void kill() = 0;
};
