// --record and --replay in the frontend (docs/replay.md): the options a
// recording keeps and gives back, the files it names, and the log the
// machines of every reboot share.
#pragma once

#include "frontend/options.h"
#include "platform/replay/replay_log.h"
#include "platform/replay/replay_navigator.h"

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

// The command line a recording keeps: `args` without --record and
// --sync-interval (a replay must not record again), with --deterministic.
std::vector<std::string> recorded_arguments(std::span<const std::string_view> args);

// --replay: the options the recording was made with, and from `host` (this
// command line) what only changes how the host shows the run: serial
// targets, QMP sockets, --stats, --trace and --jit when given.
ErrorOr<Options> replay_options(const replay::RecordingHeader& header, const Options& host,
                                std::span<const std::string_view> host_args);

// A file the machine reads, by its role (kernel, initrd, bios, driveN).
struct MachineFile {
    std::string role;
    std::string path;
};

class ReplaySession {
public:
    // --record FILE: the header names `files` (hashed now) and `args`.
    static ErrorOr<std::unique_ptr<ReplaySession>> record(const Options& options,
                                                          std::vector<std::string> args,
                                                          const std::vector<MachineFile>& files,
                                                          bool input_can_wake);
    // --replay: refuses (one line) when a file changed since the recording.
    static ErrorOr<std::unique_ptr<ReplaySession>> replay(replay::Recording recording,
                                                          const std::vector<MachineFile>& files,
                                                          std::optional<u64> alter_input);

    bool replaying() const { return m_replayer != nullptr; }
    MachineInputLog* log();
    // A machine booted and is about to run (every reboot).
    void begin(Machine& machine);
    // The cable as the recorded set_link commands left it.
    bool nic_link_up() const;
    // The run ended with the last machine's `outcome` (its exit status
    // `status`): the recording is completed, or the replay's end compared.
    // Returns the status to exit with and prints one line when it differs.
    int finish(RunOutcome::Kind kind, int status, u64 machine_retired, u64 total_retired);

    // ---- Reverse execution (--gdb with --replay; replay_navigator.h) ----
    // Keeps snapshots along the replay (in at most `max_bytes`) so a
    // debugger can go back. All on the machine's thread.
    void enable_reverse(u64 max_bytes);
    bool can_reverse() const { return m_navigator != nullptr; }
    // gdb's bs or bc on its thread `vcpu`: done by take_reverse between runs.
    void request_reverse(unsigned vcpu, bool step)
    {
        m_reverse_request = ReverseRequest{step ? ReverseRequest::Step : ReverseRequest::Continue, vcpu, 0};
    }
    // QMP replay-seek: to the machine's instruction count `retired`.
    void request_seek(u64 retired) { m_reverse_request = ReverseRequest{ReverseRequest::Seek, 0, retired}; }
    // The request made since the last call, if any, carried out against
    // these breakpoints and watchpoints.
    std::optional<replay::Navigator::Stop> take_reverse(Machine& machine, const std::vector<u64>& breakpoints,
                                                        const std::vector<Watchpoint>& watchpoints);
    // Output the run makes where it has been before (after going back) was
    // shown already: the frontend drops it.
    bool output_shown_before(const Machine& machine) const
    {
        return m_navigator && machine.units() < m_navigator->high_water();
    }

private:
    struct ReverseRequest {
        enum Kind : u8 { Step, Continue, Seek } kind = Step;
        unsigned vcpu = 0;
        u64 retired = 0; // Seek
    };
    std::unique_ptr<replay::Recorder> m_recorder;
    std::unique_ptr<replay::Replayer> m_replayer;
    std::unique_ptr<replay::Navigator> m_navigator;
    std::optional<ReverseRequest> m_reverse_request;
    std::string m_path;
};
