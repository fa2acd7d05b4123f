// The gdb stub's target for viridian's machine (frontend/gdb/gdb_target.h):
// called on the event loop's thread, it reaches the machine through the
// CommandQueue, so everything it does to the machine happens on the
// machine's thread between vCPU slices or while the machine is paused.
// The machine's debug stops come back through report_stop, which the
// frontend calls on the loop's thread.
#pragma once

#include "frontend/gdb/gdb_target.h"
#include "platform/host/command_queue.h"
#include "platform/machine/machine.h"

#include <functional>

struct MachineDebuggerHooks {
    // The machine's thread: the machine running now (null between reboots
    // or after the end), and pausing or resuming it as QMP stop/cont do
    // (the frontend keeps its paused flag across reboots).
    std::function<Machine*()> machine;
    std::function<void(bool paused)> set_paused;
    // The loop's thread: gdb stopped or resumed the machine (QMP's run
    // state and its STOP/RESUME events follow), and `k` (the run ends).
    std::function<void(bool paused)> run_state_changed;
    std::function<void()> kill;
    // The machine's thread: the stop interrupt() caused, to be handed to
    // the gdb server on the loop's thread.
    std::function<void(const GdbStop&)> report_stop;
    // A replay (--replay): the debugger may not write registers or memory
    // (the recording holds no such input), a step keeps the recorded
    // schedule, and with `request_reverse` (the machine's thread: remember
    // gdb's bs/bc for the frontend) it can go back.
    bool replaying = false;
    std::function<void(unsigned vcpu, bool step)> request_reverse;
    // The machine's thread: `monitor info replay`'s text.
    std::function<std::string()> replay_info;
};

class MachineDebugger final : public GdbTarget {
public:
    MachineDebugger(CommandQueue& commands, unsigned vcpu_count, MachineDebuggerHooks hooks)
        : m_commands(commands), m_vcpu_count(vcpu_count), m_hooks(std::move(hooks))
    {
    }

    unsigned vcpu_count() const override { return m_vcpu_count; }
    bool can_reverse() const override { return m_hooks.request_reverse != nullptr; }
    bool reverse(unsigned vcpu, bool step) override;
    std::optional<CpuState> registers(unsigned vcpu) override;
    std::string thread_state(unsigned vcpu) override;
    std::string replay_info() override;
    bool set_registers(unsigned vcpu, const CpuState& state) override;
    size_t read_memory(unsigned vcpu, u64 address, std::span<u8> out, bool physical) override;
    size_t write_memory(unsigned vcpu, u64 address, std::span<const u8> data, bool physical) override;
    bool set_debug_points(const std::vector<u64>& breakpoints, const std::vector<Watchpoint>& watchpoints) override;
    bool resume(std::optional<unsigned> step) override;
    void interrupt() override;
    bool attach() override;
    void kill() override;

    // The machine's thread: a new machine (a reboot) gets the debugger's
    // breakpoints and watchpoints.
    void machine_started(Machine& machine);
    // The machine's thread: gdb's breakpoints and watchpoints now.
    const std::vector<u64>& breakpoints() const { return m_points->breakpoints; }
    const std::vector<Watchpoint>& watchpoints() const { return m_points->watchpoints; }

    // How long a call into the machine may take before the stub gives up.
    static constexpr u64 CALL_TIMEOUT_NS = 10'000'000'000;

private:
    struct Points {
        std::vector<u64> breakpoints;
        std::vector<Watchpoint> watchpoints;
    };
    CommandQueue& m_commands;
    unsigned m_vcpu_count;
    MachineDebuggerHooks m_hooks;
    // Shared with the machine's thread (commands own a reference).
    std::shared_ptr<Points> m_points = std::make_shared<Points>();
};
