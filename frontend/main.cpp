// viridian's entry point: options → machine → run → exit status. Every
// error reaches here as a value and leaves as one line on stderr.
#include "frontend/console.h"
#include "frontend/gdb/gdb_server.h"
#include "frontend/machine_debugger.h"
#include "frontend/machine_monitor.h"
#include "frontend/options.h"
#include "frontend/replay_session.h"
#include "frontend/run_report.h"
#include "frontend/tracer.h"
#include "platform/block/image_format.h"
#include "platform/block/overlay_image.h"
#include "platform/host/command_queue.h"
#include "platform/host/event_loop.h"
#include "platform/machine/machine.h"
#include "platform/machine/migration.h"
#include "platform/machine/snapshot.h"
#include "platform/net/slirp_backend.h"
#include "platform/net/switch_host_port.h"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <ctime>
#include <sys/syscall.h>
#include <thread>
#include <unistd.h>
#include <vector>

#ifndef VIRIDIAN_DEMO_KERNEL
#define VIRIDIAN_DEMO_KERNEL ""
#endif

namespace {

constexpr const char* DEMO_FILE_NAME = "demo.elf";
// The memory a replay under gdb may keep in snapshots to go back with
// (docs/replay.md "Reverse execution"): older ones are thinned beyond it.
constexpr u64 REVERSE_SNAPSHOT_BYTES = 2ull << 30;

// Where a saved machine goes: the file (through PATH.tmp), the command's
// stdin, or a connection to the target.
ErrorOr<std::unique_ptr<SnapshotSink>> open_sink(const MigrationUri& uri)
{
    switch (uri.kind) {
    case MigrationUri::Kind::File:
        return SnapshotSink::file(uri.target);
    case MigrationUri::Kind::Exec:
        return SnapshotSink::exec(uri.target);
    case MigrationUri::Kind::Tcp:
        break;
    }
    const int fd = TRY(migration_connect(uri.host, uri.port));
    return SnapshotSink::socket(fd, "tcp:" + uri.target);
}

ErrorOr<void> save_machine(Machine& machine, const MigrationUri& uri)
{
    std::unique_ptr<SnapshotSink> sink = TRY(open_sink(uri));
    ErrorOr<void> saved = save_snapshot(machine, sink->stream());
    ErrorOr<void> closed = sink->close(!saved.is_error());
    return saved.is_error() ? saved : closed;
}

// --incoming tcp: `listener` listens already (since before the QMP sockets
// opened, so a client that sees QMP can start the source); `keep_waiting`
// is asked while no source has connected.
ErrorOr<void> restore_machine(Machine& machine, const MigrationUri& uri, int listener,
                              const std::function<bool()>& keep_waiting)
{
    switch (uri.kind) {
    case MigrationUri::Kind::File:
        return load_snapshot_file(machine, uri.target);
    case MigrationUri::Kind::Exec:
        return load_snapshot_exec(machine, uri.target);
    case MigrationUri::Kind::Tcp:
        break;
    }
    const int fd = TRY(migration_accept(listener, keep_waiting));
    return load_snapshot_socket(machine, fd);
}

double monotonic_seconds()
{
    timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

// The backend --nic names, on the loop's thread.
ErrorOr<std::shared_ptr<NetBackend>> open_network(EventLoop& loop, const NicSpec& nic)
{
    if (nic.backend == NicSpec::Backend::Switch)
        return std::shared_ptr<NetBackend>(TRY(SwitchPort::create(loop, nic.network_switch)));
    if (nic.backend == NicSpec::Backend::Tap)
        return std::shared_ptr<NetBackend>(TRY(TapBackend::create(loop, nic.tap)));
    return std::shared_ptr<NetBackend>(TRY(SlirpBackend::create(loop, nic.user)));
}

int fail(const std::string& message)
{
    std::fprintf(stderr, "viridian: %s\n", message.c_str());
    return exit_status::USAGE;
}

// Where a serial port's output goes: stdout, a file (truncated) or nowhere.
// nullptr and an error message when the file cannot be opened.
std::FILE* open_serial(const SerialTarget& target, std::string_view option, std::string& error)
{
    if (target.kind == SerialTarget::Kind::Stdio)
        return stdout;
    const std::string path = target.kind == SerialTarget::Kind::None ? "/dev/null" : target.path;
    std::FILE* file = std::fopen(path.c_str(), "wb");
    if (!file)
        error = std::string(option) + ": cannot open '" + path + "': " + std::strerror(errno);
    return file;
}

bool readable(const std::string& path)
{
    return !path.empty() && ::access(path.c_str(), R_OK) == 0;
}

// The demo is built beside the executable; fall back to the path the build
// compiled in (for a binary that was copied or symlinked elsewhere).
std::optional<std::string> find_demo_kernel()
{
    char self[4096];
    ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        std::string dir(self, static_cast<size_t>(n));
        dir = dir.substr(0, dir.rfind('/') + 1);
        if (readable(dir + DEMO_FILE_NAME))
            return dir + DEMO_FILE_NAME;
    }
    if (readable(VIRIDIAN_DEMO_KERNEL))
        return std::string(VIRIDIAN_DEMO_KERNEL);
    return std::nullopt;
}

// The reason SHUTDOWN (or RESET) gives for a run that ended this way
// (docs/qmp.md "Events").
ShutdownCause shutdown_cause_of(const RunOutcome& outcome)
{
    switch (outcome.kind) {
    case RunOutcome::Kind::GuestExit:
    case RunOutcome::Kind::PowerOff:
    case RunOutcome::Kind::HaltedForever:
        return ShutdownCause::GuestShutdown;
    case RunOutcome::Kind::Reset:
        return outcome.by_host ? ShutdownCause::HostQmpSystemReset : ShutdownCause::GuestReset;
    case RunOutcome::Kind::TripleFault:
        return ShutdownCause::GuestReset; // what a PC does on a triple fault
    case RunOutcome::Kind::GuestCrash:
        return ShutdownCause::GuestPanic;
    case RunOutcome::Kind::Checkpoint: // --save-at: saved, and the run ends on purpose
        return ShutdownCause::HostQmpQuit;
    case RunOutcome::Kind::InstructionLimit:
    case RunOutcome::Kind::HostStop:
    case RunOutcome::Kind::DebugStop:
        return ShutdownCause::HostError;
    }
    return ShutdownCause::HostError;
}

// What gdb is told of a machine's debug stop.
GdbStop gdb_stop_of(const RunOutcome& outcome)
{
    GdbStop stop;
    stop.vcpu = outcome.vcpu;
    stop.address = outcome.debug.address;
    stop.watch = outcome.debug.watch;
    switch (outcome.debug.kind) {
    case DebugEvent::Kind::Breakpoint:
        stop.reason = GdbStop::Reason::Breakpoint;
        break;
    case DebugEvent::Kind::Watchpoint:
        stop.reason = GdbStop::Reason::Watchpoint;
        break;
    case DebugEvent::Kind::Step:
    case DebugEvent::Kind::None:
        stop.reason = GdbStop::Reason::Step;
        break;
    }
    return stop;
}

CacheMode cache_mode(const DriveSpec& drive)
{
    return drive.cache == DriveSpec::Cache::Unsafe ? CacheMode::Unsafe
           : drive.cache == DriveSpec::Cache::None ? CacheMode::None
                                                   : CacheMode::Writeback;
}

} // namespace

int main(int argc, char** argv)
{
    std::vector<std::string_view> args(argv + 1, argv + argc);
    ErrorOr<Options> parsed = parse_options(args);
    if (parsed.is_error())
        return fail(parsed.error().message);
    Options options = parsed.value();
    if (options.help) {
        std::fputs(usage_text().c_str(), stdout);
        return exit_status::SUCCESS;
    }
    if (options.version) {
        std::fputs(version_text().c_str(), stdout);
        return exit_status::SUCCESS;
    }
    // --replay: the machine is the recording's (docs/replay.md).
    std::optional<replay::Recording> recording;
    if (options.replay) {
        ErrorOr<replay::Recording> read = replay::read_recording(*options.replay);
        if (read.is_error())
            return fail("--replay: " + read.error().message);
        ErrorOr<Options> replayed = replay_options(read.value().header, options, args);
        if (replayed.is_error())
            return fail("--replay: " + replayed.error().message);
        options = replayed.release_value();
        recording = read.release_value();
    }

    MachineConfig config;
    config.memory_bytes = options.memory_bytes;
    config.cpu_count = options.cpus;
    config.cpu_vendor = options.cpu_vendor;
    config.cpu_features = options.cpu_features;
    config.deterministic = options.deterministic;
    config.enlightenments = options.enlightenments;
    config.jit = options.jit;
    config.perf_map = options.perfmap;
    config.accel = options.kvm ? MachineConfig::Accel::Kvm : MachineConfig::Accel::Interp;
    config.vcpu_threads = options.vcpu_threads;
    config.hyperv_test_device = options.hyperv_test_device;
    config.pc_testdev = options.pc_testdev;
    // --drive: every image is opened (and locked) once, here, before
    // anything runs, and shared with the machine of every reboot.
    for (const DriveSpec& drive : options.drives) {
        OpenOptions open;
        open.format = drive.format;
        open.read_only = drive.read_only || drive.snapshot;
        open.cache = cache_mode(drive);
        BlockResult<OpenedImage> opened = open_image(drive.file, open);
        if (opened.is_error())
            return fail("--drive: " + opened.error().message);
        if (opened.value().probed_raw)
            std::fprintf(stderr, "%s\n", raw_probe_warning(drive.file).c_str());
        std::unique_ptr<BlockImage> image = std::move(opened.value().image);
        if (drive.snapshot && !drive.read_only)
            image = make_memory_overlay(std::move(image));
        config.drives.push_back({std::shared_ptr<BlockImage>(std::move(image)),
                                 *drive.index, drive.media == DriveSpec::Media::Cdrom,
                                 drive.interface == DriveSpec::Interface::Scsi});
    }
    // Without --kernel the default guest boots: the Debian kernel and the
    // initramfs that scripts/fetch-guest.sh builds into guest/. With
    // --drive (as QEMU boots its disks when there is no -kernel), with
    // --bios, or without the default guest, the machine boots through its
    // firmware (SeaBIOS); --demo runs the built-in bare-metal demo.
    const std::string guest_dir = VIRIDIAN_GUEST_DIR;
    const bool have_guest = readable(guest_dir + "/vmlinuz") && readable(guest_dir + "/initramfs.cpio.gz");
    KernelSpec kernel;
    kernel.append = options.append;
    kernel.initrd = options.initrd;
    bool firmware = false;
    if (!options.kernel && !options.demo && !options.bios && options.drives.empty() && have_guest) {
        options.kernel = guest_dir + "/vmlinuz";
        if (!options.initrd)
            kernel.initrd = guest_dir + "/initramfs.cpio.gz";
        kernel.append = std::string("console=ttyS0 panic=-1") + (options.append.empty() ? "" : " " + options.append);
    } else if (!options.kernel && !options.demo) {
        if (!options.bios && options.drives.empty())
            std::fprintf(stderr, "viridian: note: the default guest is missing (%s/vmlinuz; run "
                                 "scripts/fetch-guest.sh); booting the firmware (--demo runs the "
                                 "built-in demo)\n",
                         guest_dir.c_str());
        ErrorOr<std::vector<u8>> bios = read_bios_image(options.bios.value_or(DEFAULT_BIOS_PATH));
        if (bios.is_error())
            return fail(bios.error().message);
        config.bios = bios.release_value();
        firmware = true;
    }
    bool demo = !options.kernel && !firmware;
    if (demo) {
        std::optional<std::string> path = find_demo_kernel();
        if (!path)
            return fail("no --kernel given and the built-in demo (" + std::string(DEMO_FILE_NAME) +
                        ") was not found beside the executable; run ninja -C build");
        kernel.path = *path;
        kernel.name = DEMO_FILE_NAME;
    } else if (!firmware) {
        kernel.path = *options.kernel;
        kernel.name = *options.kernel;
    }
    std::string serial_error;
    std::FILE* const com1 = open_serial(options.serial, "--serial", serial_error);
    if (!com1)
        return fail(serial_error);
    std::FILE* const com2 = open_serial(options.serial2, "--serial2", serial_error);
    if (!com2)
        return fail(serial_error);
    std::FILE* const debugcon = open_serial(options.debugcon, "--debugcon", serial_error);
    if (!debugcon)
        return fail(serial_error);
    // Lines reach the terminal as the guest ends them; a partial line (a
    // shell prompt) at the next poll.
    // --mark-output: the instruction count of the whole run so far (set
    // once the machines exist; the sinks run on the machine's thread).
    std::function<u64()> output_mark;
    // Reverse execution in a replay: output the run makes again where it
    // has been before was shown already (set once the session exists).
    std::function<bool()> output_shown_before;
    auto sink_to = [&](std::FILE* file) -> ByteSink {
        return [file, mark = options.mark_output, &output_mark, &output_shown_before,
                line_start = true](u8 byte) mutable {
            if (output_shown_before && output_shown_before())
                return;
            if (mark && line_start)
                std::fprintf(file, "[%llu] ", static_cast<unsigned long long>(output_mark()));
            line_start = byte == '\n';
            std::fputc(byte, file);
            if (byte == '\n')
                std::fflush(file);
        };
    };
    config.com1_output = sink_to(com1);
    config.com2_output = sink_to(com2);
    if (options.debugcon.kind != SerialTarget::Kind::None)
        config.debugcon_output = sink_to(debugcon);

    // A trace writes a line per instruction: buffer stderr rather than make
    // a system call for each (everything is flushed at exit).
    std::unique_ptr<Tracer> tracer;
    if (options.trace) {
        ErrorOr<std::unique_ptr<Tracer>> created = Tracer::create(stderr);
        if (created.is_error())
            return fail(created.error().message);
        tracer = created.release_value();
        std::setvbuf(stderr, nullptr, _IOFBF, 1 << 16);
        config.trace = [t = tracer.get()](const CpuState& s, const u8* bytes, unsigned length) {
            t->trace(s, bytes, length);
        };
    }
    // Two threads (docs/architecture.md "Threads"): this one runs the event
    // loop (the console, signals, QMP sockets); the machine runs on its own
    // and takes the loop's commands at its poll points. Nothing is posted to
    // it unless input arrives, so a run without input is the same run as
    // with no loop at all (--deterministic repeats byte for byte).
    std::signal(SIGPIPE, SIG_IGN); // a QMP client that goes away is an error value, not a signal
    EventLoop loop;
    CommandQueue commands;
    config.commands = &commands;
    // --nic user or switch: the backend runs on this thread's loop and
    // serves the machines of every reboot; finish_loop closes it.
    std::shared_ptr<NetBackend> network;
    // --nic switch,type=internal: the switch's host port, if this process
    // is the one that plugged it in.
    std::unique_ptr<SwitchHostPort> switch_host;
    // netvsc unless asked otherwise; without the enlightenments there is no
    // VMBus for it, and an e1000 stands in unless netvsc was asked for.
    const MachineNic::Model nic_model =
        options.nic && (options.nic->model == NicSpec::Model::Netvsc &&
                        (options.enlightenments || options.nic->model_given))
            ? MachineNic::Model::Netvsc
            : MachineNic::Model::E1000;
    if (options.nic && options.replay) {
        // Received frames come from the recording; sent ones go nowhere.
        config.nic = MachineNic{std::make_shared<replay::DiscardingNetBackend>(), options.nic->mac, nic_model, {}};
    } else if (options.nic) {
        ErrorOr<std::shared_ptr<NetBackend>> created = open_network(loop, *options.nic);
        if (created.is_error())
            return fail("--nic: " + created.error().message);
        network = created.release_value();
        config.nic = MachineNic{network, options.nic->mac, nic_model, {}};
        if (options.nic->internal_switch) {
            ErrorOr<std::unique_ptr<SwitchHostPort>> host =
                SwitchHostPort::create(loop, options.nic->network_switch, options.nic->user);
            if (host.is_error())
                return fail("--nic: " + host.error().message);
            switch_host = host.release_value();
        }
    }
    // Typed input reaches COM1; Ctrl-A x and SIGINT/SIGTERM end the run.
    Console console(true);
    // With a QMP socket the host can always wake a halted guest
    // (system_powerdown raises an SCI), so halted vCPUs wait for it.
    config.input_can_wake = ::isatty(0) || !options.qmp.empty() || options.nic.has_value() || options.gdb;
    // --record and --replay: the log every machine of the run takes its
    // input through, and the files the recording names.
    std::unique_ptr<ReplaySession> session;
    if (options.record || recording) {
        std::vector<MachineFile> files;
        if (firmware)
            files.push_back({"bios", options.bios.value_or(DEFAULT_BIOS_PATH)});
        else
            files.push_back({"kernel", kernel.path});
        if (kernel.initrd && !firmware)
            files.push_back({"initrd", *kernel.initrd});
        for (const DriveSpec& drive : options.drives)
            files.push_back({"drive" + std::to_string(*drive.index), drive.file});
        if (recording)
            config.input_can_wake = recording->header.input_can_wake;
        ErrorOr<std::unique_ptr<ReplaySession>> made =
            recording ? ReplaySession::replay(std::move(*recording), files, options.replay_alter_input)
                      : ReplaySession::record(options, recorded_arguments(args), files, config.input_can_wake);
        if (made.is_error())
            return fail(made.error().message);
        session = made.release_value();
    }

    // The machine thread's state: only that thread touches it (commands
    // from the loop run there).
    struct HostStop {
        int status;
        std::string message; // printed on its own line; empty: nothing
        ShutdownCause cause;
    };
    std::optional<HostStop> host_stop;
    Machine* running = nullptr;
    // --stats: the counters of the machines that ended (a reboot starts a new
    // one), and the instructions retired before the running one started.
    MachineStats ended_stats{};
    u64 retired_before_running = 0;
    output_mark = [&] { return running ? retired_before_running + running->retired() : retired_before_running; };
    // --gdb or --qmp with --replay: snapshots along the replay so gdb can
    // go back and QMP seek.
    if (session && session->replaying() && (options.gdb || !options.qmp.empty())) {
        session->enable_reverse(REVERSE_SNAPSHOT_BYTES);
        output_shown_before = [&] { return running && session->output_shown_before(*running); };
    }
    // --record's or --replay's file, as QMP's query-replay and gdb's
    // `monitor info replay` name it.
    const std::string recording_file = options.replay.value_or(options.record.value_or(""));
    bool paused = options.start_paused; // kept across a reset, as QEMU keeps a stopped VM stopped
    // QMP replay-break or --replay-goto: the run's instruction count where
    // the replay stops next (kept across reboots until reached).
    std::optional<u64> replay_break = options.replay_goto;
    const auto set_replay_break = [&](std::optional<u64> icount) -> std::optional<std::string> {
        if (icount && *icount <= output_mark())
            return "cannot set a break in the past: the replay is at instruction " + std::to_string(output_mark());
        replay_break = icount;
        if (running)
            running->stop_at_retired(icount ? std::optional<u64>(*icount - retired_before_running) : std::nullopt);
        return std::nullopt;
    };
    bool nic_link_up = true; // QMP set_link, likewise kept
    // QMP x-switch-accel's choice, likewise kept: a reboot's machine is made
    // on --accel's backend (a KVM VM, to be able to move) and moved at once.
    MachineConfig::Accel chosen_accel = config.accel;
    std::atomic<long> vcpu_thread{0};
    // The loop asks the machine to end the run; the first reason wins.
    const auto request_stop = [&](HostStop stop) {
        return commands.post([&host_stop, stop] {
            if (!host_stop)
                host_stop = stop;
        });
    };
    // An outgoing migration (QMP migrate), driven from the poll: a slice of
    // sending between vCPU rounds (docs/snapshots.md "Live migration").
    std::unique_ptr<MigrationSender> migration;
    std::optional<std::string> pending_migration; // its URI, until the next poll
    std::unique_ptr<MachineMonitor> monitor;
    // --gdb: the stub (the server refers to the debugger, so it goes first).
    std::unique_ptr<MachineDebugger> debugger;
    std::unique_ptr<GdbServer> gdb_server;
    // QMP stop/cont and gdb pause and resume alike (on the machine's thread).
    const auto set_machine_paused = [&](bool pause) {
        paused = pause;
        if (running)
            pause ? running->pause() : running->resume();
    };
    const auto report_migration = [&] {
        loop.post([&monitor, progress = migration->progress()] {
            if (monitor)
                monitor->migration_update(progress);
        });
    };
    const auto end_migration = [&](const std::string& why) {
        if (!migration)
            return;
        migration->fail(why);
        report_migration();
        migration.reset();
    };
    const auto migration_failed = [&](const std::string& why) {
        MigrationProgress failed;
        failed.status = MigrationProgress::Status::Failed;
        failed.error = why;
        loop.post([&monitor, failed] {
            if (monitor)
                monitor->migration_update(failed);
        });
    };
    // One slice of the outgoing migration's sending, for `budget_ns` or,
    // without one, as long as the guest ran since the last; false when no
    // migration runs.
    const auto migration_slice = [&](std::optional<u64> budget_ns) {
        if (!migration || !running)
            return false;
        const bool done = budget_ns ? migration->step(*budget_ns) : migration->step_beside_guest();
        report_migration();
        if (done) {
            if (migration->progress().status == MigrationProgress::Status::Completed) {
                paused = true; // the machine is on the target now
                running->pause();
            }
            migration.reset();
        }
        return true;
    };
    const HostPoll poll = [&]() -> std::optional<int> {
        std::fflush(com1);
        if (pending_migration && running) {
            ErrorOr<std::unique_ptr<SnapshotSink>> sink =
                open_sink(parse_migration_uri("migrate", *pending_migration).value());
            pending_migration.reset();
            if (sink.is_error())
                migration_failed(sink.error().message);
            else
                migration = std::make_unique<MigrationSender>(*running, sink.release_value());
        }
        if (migration && running) {
            // A paused guest gives the migration all the time it wants; a
            // running one shares the thread with it.
            constexpr u64 PAUSED_SLICE_NS = 100'000'000;
            migration_slice(running->paused() ? std::optional<u64>(PAUSED_SLICE_NS) : std::nullopt);
        }
        if (!host_stop)
            return std::nullopt;
        if (!host_stop->message.empty())
            std::fprintf(stderr, "\nviridian: %s\n", host_stop->message.c_str());
        return host_stop->status;
    };

    // --incoming tcp: listen now, accept on the machine's thread.
    int incoming_listener = -1;
    if (options.incoming && options.incoming->kind == MigrationUri::Kind::Tcp) {
        ErrorOr<int> listening = migration_listen(options.incoming->host, options.incoming->port);
        if (listening.is_error())
            return fail("--incoming: " + listening.error().message);
        incoming_listener = listening.value();
    }

    // --qmp: the monitor and its sockets live on the loop.
    bool waiting_for_client = false;
    std::function<void()> start_machine;
    if (!options.qmp.empty()) {
        constexpr u64 COMMAND_TIMEOUT_NS = 10'000'000'000;
        MachineMonitorHooks hooks;
        hooks.cpu_count = options.cpus;
        // Runs `compute` on the machine's thread and puts what it returned
        // in `out`; false when the machine did not take the command in
        // time. The result is owned by the command too: it may run after a
        // timeout here.
        const auto call_on_machine = [&commands](auto compute, auto& out) {
            auto result = std::make_shared<std::decay_t<decltype(out)>>();
            if (!commands.call([compute, result] { *result = compute(); }, COMMAND_TIMEOUT_NS))
                return false;
            out = std::move(*result);
            return true;
        };
        if (options.replay)
            hooks.guest_input_refused = "replaying a recording: the guest's input comes from it";
        if (session)
            hooks.migration_refused = "not while recording or replaying (docs/replay.md)";
        // A recording records the tray and medium commands; a replay applies
        // the recorded ones and takes no live one.
        if (options.replay)
            hooks.tray_refused = hooks.guest_input_refused;
        if (session) {
            hooks.replay_mode = session->replaying() ? "play" : "record";
            hooks.replay_file = recording_file;
        }
        hooks.replay_icount = [&](u64& icount) {
            auto count = std::make_shared<u64>(0);
            const bool done = commands.call([&, count] { *count = output_mark(); }, COMMAND_TIMEOUT_NS);
            icount = *count;
            return done;
        };
        if (session && session->replaying()) {
            // Answered on the machine's thread; owned by the command too (it
            // may run after a timeout here).
            const auto on_machine = [&](std::function<std::optional<std::string>()> act) -> std::optional<std::string> {
                auto answer = std::make_shared<std::optional<std::string>>();
                if (!commands.call([act, answer] { *answer = act(); }, COMMAND_TIMEOUT_NS))
                    return "The machine has stopped running";
                return *answer;
            };
            hooks.replay_break = [&, on_machine](std::optional<u64> icount) {
                return on_machine([&, icount] { return set_replay_break(icount); });
            };
            hooks.replay_seek = [&, on_machine](u64 icount) {
                return on_machine([&, icount]() -> std::optional<std::string> {
                    if (!running || !session->can_reverse())
                        return "cannot seek: the machine is not running";
                    if (icount < retired_before_running)
                        return "cannot seek to instruction " + std::to_string(icount) +
                               ": it is before the guest's last reboot, where the history starts";
                    session->request_seek(icount - retired_before_running);
                    running->interrupt_for_debugger();
                    return std::nullopt;
                });
            };
        }
        hooks.vcpu_thread_id = [&] { return vcpu_thread.load(); };
        hooks.set_paused = [&](bool pause) {
            const bool done = commands.call([&, pause] { set_machine_paused(pause); }, COMMAND_TIMEOUT_NS);
            // A gdb waiting for a stop hears of it, as of a Ctrl-C.
            if (done && pause && gdb_server)
                gdb_server->report_stop(GdbStop{});
            return done;
        };
        hooks.reset = [&] {
            return commands.post([&] {
                if (running)
                    running->request_reset();
            });
        };
        hooks.power_button = [&] {
            return commands.post([&] {
                if (running)
                    running->request_powerdown();
            });
        };
        hooks.quit = [&] { return request_stop({exit_status::SUCCESS, "", ShutdownCause::HostQmpQuit}); };
        // Taken up by the poll of the machine that runs next: a reset
        // asked for just before must not end the migration with the old
        // machine.
        // set_link: kept across reboots, as QEMU keeps a link down.
        if (options.nic)
            hooks.nic_names = {nic_model == MachineNic::Model::Netvsc ? "netvsc.0" : "e1000.0", "__org.qemu.nic0"};
        hooks.set_link = [&](bool up) {
            return commands.post([&, up] {
                nic_link_up = up;
                if (running)
                    running->set_nic_link(up);
            });
        };
        hooks.rx_filter = [&, call_on_machine](std::optional<RxFilter>& out) {
            return call_on_machine([&running] { return running ? running->nic_rx_filter() : std::nullopt; }, out);
        };
        hooks.migrate = [&](const std::string& text) {
            return commands.post([&, text] { pending_migration = text; });
        };
        hooks.cancel_migration = [&] {
            return commands.post([&] {
                if (!migration)
                    return;
                migration->cancel();
                report_migration();
                migration.reset();
            });
        };
        hooks.accel_state = [&, call_on_machine](MachineMonitorHooks::AccelState& out) {
            return call_on_machine(
                [&running, &chosen_accel, &config] {
                    MachineMonitorHooks::AccelState state;
                    state.running = chosen_accel == MachineConfig::Accel::Kvm ? "kvm" : "interp";
                    state.switchable = config.accel == MachineConfig::Accel::Kvm;
                    if (running) {
                        state.switches = running->accelerator_switches();
                        state.last_switch_ns = running->last_switch_ns();
                    }
                    return state;
                },
                out);
        };
        hooks.switch_accel = [&, call_on_machine](const std::string& accel, std::optional<std::string>& error) {
            const MachineConfig::Accel target =
                accel == "kvm" ? MachineConfig::Accel::Kvm : MachineConfig::Accel::Interp;
            return call_on_machine(
                [&running, &chosen_accel, target]() -> std::optional<std::string> {
                    if (!running)
                        return "The machine has stopped running";
                    std::optional<std::string> refused = running->switch_accelerator(target);
                    if (!refused)
                        chosen_accel = target;
                    return refused;
                },
                error);
        };
        hooks.integration_services = [&, call_on_machine](std::vector<IntegrationServiceState>& out) {
            return call_on_machine(
                [&running] { return running ? running->integration_services() : std::vector<IntegrationServiceState>{}; },
                out);
        };
        // The drives (query-block, eject, blockdev-change-medium): a medium
        // changed here is also the one the machine of the next reboot gets.
        hooks.drives = monitor_drives(config.drives, options.cpus, options.nic.has_value());
        for (size_t i = 0; i < hooks.drives.size(); ++i) {
            hooks.drives[i].file = options.drives[i].file;
            hooks.drives[i].cache = cache_mode(options.drives[i]);
        }
        hooks.tray = [&, call_on_machine](size_t drive, const MediumChange& change, std::shared_ptr<BlockImage> image,
                         TrayState& out) {
            return call_on_machine(
                [&running, &config, drive, change, image] {
                    return apply_tray_action(running, config.drives, drive, change, image);
                },
                out);
        };
        // The key-value pair service: the host's pool lives here across
        // reboots (config), the guest's pools in the running machine.
        if (session)
            hooks.integration_refused =
                "not while recording or replaying: key-value pairs, backups and file copies are not recorded";
        if (config.enlightenments) {
            hooks.kvp_query = [&, call_on_machine](bool refresh, KvpPools& out) {
                return call_on_machine(
                    [&running, &config, refresh] {
                        KvpPools pools;
                        pools.host_items = config.kvp_host_items;
                        pools.state = "closed";
                        KvpIc* kvp = running ? running->kvp() : nullptr;
                        if (!kvp)
                            return pools;
                        if (refresh)
                            kvp->refresh();
                        pools.state = !kvp->is_open() ? "closed" : !kvp->negotiated() ? "negotiating" : "ready";
                        pools.auto_items = kvp->auto_pool();
                        pools.guest_items = kvp->guest_pool();
                        pools.refreshing = kvp->refreshing();
                        pools.reads = kvp->counters().reads;
                        return pools;
                    },
                    out);
            };
            hooks.kvp_change = [&, call_on_machine](const std::string& key, const std::optional<std::string>& value,
                                   std::string& error) {
                return call_on_machine(
                    [&running, &config, key, value]() -> std::string {
                        KvpIc* kvp = running ? running->kvp() : nullptr;
                        if (value) {
                            if (!KvpIc::fits(key, *value))
                                return "A key takes 1 to 255 UTF-16 characters, a value up to 1023";
                            config.kvp_host_items[key] = *value;
                            if (kvp)
                                kvp->set(key, *value);
                        } else {
                            if (!config.kvp_host_items.erase(key))
                                return "Key '" + key + "' is not in the host's pool";
                            if (kvp)
                                kvp->remove(key);
                        }
                        return "";
                    },
                    error);
            };
        }
        if (config.enlightenments)
            hooks.vss_request = [&, call_on_machine](bool freeze, std::string& error) {
                return call_on_machine(
                    [&running, freeze]() -> std::string {
                        VssIc* vss = running ? running->vss() : nullptr;
                        if (!vss || !vss->negotiated())
                            return "The guest's backup service is not ready (is hv_utils loaded?)";
                        if (!(freeze ? vss->freeze() : vss->thaw()))
                            return "The guest is still answering the last backup request";
                        return "";
                    },
                    error);
            };
        // Guest file copy: the copy belongs to the running machine (a
        // reboot ends it).
        if (config.enlightenments) {
            hooks.file_copy_start = [&, call_on_machine](const FileCopyRequest& request, std::optional<std::string>& error) {
                return call_on_machine(
                    [&running, request]() -> std::optional<std::string> {
                        return running ? running->start_file_copy(request) : "The machine has stopped running";
                    },
                    error);
            };
            hooks.file_copy_cancel = [&, call_on_machine](std::optional<std::string>& error) {
                return call_on_machine(
                    [&running]() -> std::optional<std::string> {
                        return running ? running->cancel_file_copy() : "No file copy is under way";
                    },
                    error);
            };
            hooks.file_copy_status = [&, call_on_machine](FileCopyStatus& out) {
                return call_on_machine(
                    [&running] { return running ? running->file_copy_status() : FileCopyStatus{"idle", {}, {}, 0, 0, {}}; },
                    out);
            };
        }
        // Disks hot-plugged on the synthetic SCSI controller: into the
        // running machine and the drives of the next reboot alike.
        if (session)
            hooks.hotplug_refused = "not while recording or replaying: hot-plugged devices are not recorded";
        if (config.enlightenments) {
            hooks.scsi_attach = [&, call_on_machine](const MachineDrive& drive, std::optional<std::string>& error) {
                return call_on_machine(
                    [&running, &config, drive] {
                        std::optional<std::string> refused;
                        if (running)
                            refused = running->hot_add_scsi_disk(drive);
                        if (!refused)
                            config.drives.push_back(drive);
                        return refused;
                    },
                    error);
            };
            hooks.open_user_network = [&loop](const SlirpOptions& user) -> ErrorOr<std::shared_ptr<NetBackend>> {
                return std::shared_ptr<NetBackend>(TRY(SlirpBackend::create(loop, user)));
            };
            hooks.nic_attach = [&, call_on_machine](const MachineNic& nic, std::optional<std::string>& error) {
                return call_on_machine(
                    [&running, &config, nic] {
                        std::optional<std::string> refused;
                        if (running)
                            refused = running->hot_add_nic(nic);
                        if (!refused)
                            config.added_nics.push_back(nic);
                        return refused;
                    },
                    error);
            };
            hooks.nic_detach = [&, call_on_machine](const std::string& id, std::optional<std::string>& error) {
                return call_on_machine(
                    [&running, &config, id] {
                        std::optional<std::string> refused;
                        if (running)
                            refused = running->hot_remove_nic(id);
                        if (!refused)
                            std::erase_if(config.added_nics, [&id](const MachineNic& n) { return n.id == id; });
                        return refused;
                    },
                    error);
            };
            hooks.scsi_detach = [&, call_on_machine](u8 lun, std::optional<std::string>& error) {
                return call_on_machine(
                    [&running, &config, lun] {
                        std::optional<std::string> refused;
                        if (running)
                            refused = running->hot_remove_scsi_disk(lun);
                        if (!refused)
                            std::erase_if(config.drives,
                                          [lun](const MachineDrive& d) { return d.scsi && d.index == lun; });
                        return refused;
                    },
                    error);
            };
        }
        monitor = std::make_unique<MachineMonitor>(loop, std::move(hooks));
        for (const QmpSpec& spec : options.qmp) {
            ErrorOr<void> listening = monitor->listen(spec.address, [&] {
                if (waiting_for_client && start_machine)
                    start_machine();
            });
            if (listening.is_error())
                return fail("--qmp: " + listening.error().message);
            if (spec.wait) {
                waiting_for_client = true;
                std::fprintf(stderr, "viridian: waiting for a QMP connection on %s\n",
                             spec.address.describe().c_str());
            }
        }
    }

    // --gdb: the stub's socket on the loop; its target reaches the machine
    // through the command queue. QMP's run state follows what gdb does.
    const auto note_run_state = [&](bool now_paused) { // the loop's thread
        if (monitor && monitor->paused() != now_paused) {
            monitor->set_paused(now_paused);
            monitor->emit_event(now_paused ? "STOP" : "RESUME");
        }
    };
    if (monitor && options.start_paused)
        monitor->set_paused(true);
    if (options.gdb) {
        MachineDebuggerHooks hooks;
        hooks.machine = [&running] { return running; };
        hooks.set_paused = set_machine_paused;
        hooks.run_state_changed = note_run_state;
        hooks.kill = [&] { request_stop({exit_status::SUCCESS, "", ShutdownCause::HostQmpQuit}); };
        hooks.replaying = options.replay.has_value();
        if (session)
            hooks.replay_info = [&] {
                return std::string(options.replay ? "Replaying" : "Recording") + " execution '" + recording_file +
                       "': instruction count = " + std::to_string(output_mark()) + "\n";
            };
        if (session && session->can_reverse())
            hooks.request_reverse = [&](unsigned vcpu, bool step) { session->request_reverse(vcpu, step); };
        hooks.report_stop = [&](const GdbStop& stop) {
            loop.post([&gdb_server, stop] {
                if (gdb_server)
                    gdb_server->report_stop(stop);
            });
        };
        debugger = std::make_unique<MachineDebugger>(commands, options.cpus, std::move(hooks));
        ErrorOr<std::unique_ptr<GdbServer>> listening = GdbServer::listen(loop, *debugger, *options.gdb);
        if (listening.is_error())
            return fail("--gdb: " + listening.error().message);
        gdb_server = listening.release_value();
    }

    // Console input and the quit keys, read on the loop, typed into the
    // machine that runs when the bytes arrive.
    std::unique_ptr<FdWatcher> stdin_watcher;
    const auto read_console = [&] {
        std::string typed;
        console.poll([&](u8 byte) { typed += static_cast<char>(byte); });
        if (!typed.empty()) {
            commands.post([&running, typed] {
                if (running)
                    for (char byte : typed)
                        running->serial_input(static_cast<u8>(byte));
            });
        }
        if (console.quit_requested())
            request_stop({exit_status::SUCCESS, console.quit_reason(), ShutdownCause::HostUi});
        if ((console.at_eof() || console.quit_requested()) && stdin_watcher)
            stdin_watcher->stop();
    };
    if (options.replay) {
        // No live input: a replay's typed bytes are its recording's.
    } else if (ErrorOr<std::unique_ptr<FdWatcher>> watcher = FdWatcher::create(loop, STDIN_FILENO, read_console);
               !watcher.is_error()) {
        stdin_watcher = watcher.release_value();
    } else {
        read_console(); // a file or /dev/null: epoll cannot watch it, and it never blocks
    }
    std::vector<std::unique_ptr<SignalWatcher>> signals;
    // Ends the loop once the machine's thread is done (or never started):
    // the last words to every client, then everything closes and the loop
    // returns when the sockets have flushed.
    int status = exit_status::SUCCESS;
    const auto finish_loop = [&](int final_status, ShutdownCause cause) {
        status = final_status;
        if (monitor) {
            monitor->emit_shutdown(cause);
            monitor->close();
        }
        if (gdb_server) {
            GdbStop exited;
            exited.reason = GdbStop::Reason::Exited;
            exited.status = final_status;
            gdb_server->report_stop(exited);
            gdb_server->close();
        }
        stdin_watcher.reset();
        signals.clear();
        config.nic.reset();
        config.added_nics.clear();
        network.reset();
        switch_host.reset();
        loop.finish_when_idle();
    };
    // With --stats, SIGUSR1 prints the counters so far, as at exit, taken on
    // the machine's thread between vCPU turns: a benchmark reads them before
    // and after a workload (bench/disk.sh).
    if (options.stats)
        signals.push_back(std::make_unique<SignalWatcher>(loop, SIGUSR1, [&](int) {
            commands.post([&] {
                if (running)
                    print_stats(stderr, retired_before_running + running->retired(),
                                ended_stats + running->stats());
            });
        }));
    for (int number : {SIGINT, SIGTERM}) {
        signals.push_back(std::make_unique<SignalWatcher>(loop, number, [&](int received) {
            console.signal_received(received);
            if (waiting_for_client) { // no machine yet to stop
                std::fprintf(stderr, "\nviridian: %s\n", console.quit_reason().c_str());
                waiting_for_client = false;
                finish_loop(exit_status::INTERRUPTED, ShutdownCause::HostSignal);
                return;
            }
            request_stop({exit_status::INTERRUPTED, console.quit_reason(), ShutdownCause::HostSignal});
        }));
    }

    // A guest reboot boots a fresh machine (new RAM, devices and vCPUs at
    // power-on) from the same files, as pressing reset would; --no-reboot
    // ends the run instead, with status 0.
    struct Finish {
        int status;
        ShutdownCause cause;
    };
    const auto boot = [&](Machine& machine) -> ErrorOr<void> {
        if (!firmware)
            return machine.load_kernel(kernel);
        machine.start_firmware();
        return {};
    };
    const auto run_machines = [&]() -> Finish {
        vcpu_thread = static_cast<long>(::syscall(SYS_gettid));
        int status = exit_status::SUCCESS;
        ShutdownCause cause = ShutdownCause::GuestShutdown;
        u64 retired = 0; // by every machine of the run together
        bool first = true;
        RunOutcome::Kind last_kind = RunOutcome::Kind::HostStop;
        u64 last_machine_retired = 0;
        for (;;) {
            ErrorOr<std::unique_ptr<Machine>> created = Machine::create(config);
            if (created.is_error())
                return {fail(created.error().message), ShutdownCause::HostError};
            Machine& machine = *created.value();
            if (!(session ? session->nic_link_up() : nic_link_up))
                machine.set_nic_link(false);
            if (monitor) // the guest's own tray moves: DEVICE_TRAY_MOVED
                machine.set_tray_listener([&](size_t drive, bool open) {
                    loop.post([&monitor, drive, open] {
                        if (monitor)
                            monitor->tray_moved(drive, open);
                    });
                });
            // A medium changed, live or (replaying) from the recording: the
            // machine of the next reboot starts with it, and in a replay QMP
            // shows it as the recorded commands did.
            machine.set_medium_listener([&](size_t drive, const MediumChange& change,
                                            const std::shared_ptr<BlockImage>& image, const TrayState& state) {
                if (drive < config.drives.size() &&
                    (change.action == TrayAction::Remove || change.action == TrayAction::Insert))
                    config.drives[drive].image = image;
                if (monitor && session && session->replaying())
                    loop.post([&monitor, drive, change, image, state] {
                        if (monitor)
                            monitor->medium_replayed(drive, change, image, state);
                    });
            });
            // An idle guest's waits go to the migration (docs/snapshots.md).
            machine.set_idle_work(migration_slice);
            // --incoming restores the first machine; a reboot boots the kernel,
            // or the firmware from its reset vector.
            const auto keep_waiting = [&] {
                commands.run_pending(); // a signal or quit ends the wait
                return !host_stop;
            };
            ErrorOr<void> started =
                options.incoming && first
                    ? restore_machine(machine, *options.incoming, incoming_listener, keep_waiting)
                    : boot(machine);
            if (options.incoming && first && monitor)
                loop.post([&monitor] {
                    if (monitor)
                        monitor->set_incoming(false);
                });
            first = false;
            // A restored machine counts on from where it was saved.
            const u64 before = retired;
            retired_before_running = before;
            retired += machine.retired();
            if (started.is_error())
                return {fail(started.error().message), ShutdownCause::HostError};
            if (options.save_at)
                machine.stop_at(options.save_at->instructions);
            if (session)
                session->begin(machine);
            if (chosen_accel != machine.accelerator())
                if (std::optional<std::string> refused = machine.switch_accelerator(chosen_accel))
                    return {fail(*refused), ShutdownCause::HostError};
            running = &machine;
            if (debugger)
                debugger->machine_started(machine);
            if (replay_break && *replay_break > before)
                machine.stop_at_retired(*replay_break - before);
            if (paused)
                machine.pause();
            // The instruction limit is for the whole run, across restarts.
            std::optional<u64> limit;
            if (options.max_instructions)
                limit = *options.max_instructions > retired ? *options.max_instructions - retired : 0;
            RunOutcome outcome = machine.run(poll, limit);
            // A debug stop pauses the machine (for QMP too) until gdb or
            // QMP cont resumes it; the run goes on in the same machine.
            while (outcome.kind == RunOutcome::Kind::DebugStop) {
                GdbStop stop = gdb_stop_of(outcome);
                if (replay_break && before + machine.retired() >= *replay_break) {
                    std::fprintf(stderr, "viridian: the replay stopped at instruction %llu\n",
                                 static_cast<unsigned long long>(before + machine.retired()));
                    replay_break.reset();
                }
                // gdb's bs or bc, QMP replay-seek (a replay): the machine goes back here.
                if (session)
                    if (std::optional<replay::Navigator::Stop> back = session->take_reverse(
                            machine, debugger ? debugger->breakpoints() : std::vector<u64>{},
                            debugger ? debugger->watchpoints() : std::vector<Watchpoint>{})) {
                        if (debugger)
                            debugger->machine_started(machine); // gdb's points, which going back took out
                        if (back->outcome.kind != RunOutcome::Kind::DebugStop) {
                            outcome = back->outcome; // the replay diverged going back
                            break;
                        }
                        stop = gdb_stop_of(back->outcome);
                        stop.history_begin = back->history_begin;
                    }
                paused = true;
                machine.pause();
                loop.post([&, stop] {
                    note_run_state(true);
                    if (gdb_server)
                        gdb_server->report_stop(stop);
                });
                if (options.max_instructions) {
                    const u64 so_far = before + machine.retired();
                    limit = *options.max_instructions > so_far ? *options.max_instructions - so_far : 0;
                }
                outcome = machine.run(poll, limit);
            }
            end_migration("the machine stopped running");
            running = nullptr;
            retired = before + machine.retired();
            ended_stats = ended_stats + machine.stats();
            if (outcome.kind == RunOutcome::Kind::Checkpoint) {
                const double start = monotonic_seconds();
                if (ErrorOr<void> saved = save_machine(machine, options.save_at->uri); saved.is_error())
                    return {fail(saved.error().message), ShutdownCause::HostError};
                std::fprintf(stderr, "viridian: saved the machine after %llu instructions (in %.2f s)\n",
                             static_cast<unsigned long long>(retired), monotonic_seconds() - start);
            }
            std::fflush(com1);
            std::fflush(com2);
            std::fflush(debugcon);
            status = report_outcome(stderr, outcome, machine, retired);
            cause = shutdown_cause_of(outcome);
            last_kind = outcome.kind;
            last_machine_retired = machine.retired();
            if (outcome.kind == RunOutcome::Kind::HostStop && host_stop)
                cause = host_stop->cause;
            if (outcome.kind != RunOutcome::Kind::Reset)
                break;
            if (options.no_reboot) {
                std::fprintf(stderr, "viridian: %s reset the machine; stopping (--no-reboot)\n",
                             outcome.by_host ? "system_reset" : "the guest");
                break;
            }
            if (outcome.by_host)
                continue; // system_reset already sent RESET
            std::fprintf(stderr, "viridian: the guest reset the machine; restarting\n");
            loop.post([&monitor, cause] {
                if (monitor)
                    monitor->emit_reset(cause);
            });
        }
        // A replay the host stopped (a signal) ends early, not differently.
        if (session && !(session->replaying() && host_stop))
            status = session->finish(last_kind, status, last_machine_retired, retired);
        if (pending_migration)
            migration_failed("the machine stopped running");
        if (options.stats)
            print_stats(stderr, retired, ended_stats);
        return {status, cause};
    };

    std::thread machine_thread;
    start_machine = [&] {
        waiting_for_client = false;
        if (machine_thread.joinable())
            return;
        machine_thread = std::thread([&] {
            const Finish finish = run_machines();
            commands.close(); // a command posted from now on fails at once
            loop.post([&, finish] { finish_loop(finish.status, finish.cause); });
        });
    };
    if (monitor && options.incoming)
        monitor->set_incoming(true);
    if (!waiting_for_client)
        start_machine();
    loop.run();
    if (machine_thread.joinable())
        machine_thread.join();
    monitor.reset();
    if (incoming_listener >= 0)
        ::close(incoming_listener);
    for (std::FILE* file : {com1, com2, debugcon})
        if (file != stdout)
            std::fclose(file);

    // The demo reports success by writing 0 to the debug-exit port, which
    // QEMU turns into status 1; viridian's own demo run is a success, so the
    // README's main command exits 0.
    if (demo && status == 1)
        return exit_status::SUCCESS;
    return status;
}
