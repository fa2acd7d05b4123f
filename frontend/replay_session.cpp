#include "frontend/replay_session.h"

#include "frontend/run_report.h"

#include <cstdio>

namespace {

// Options that take a value, as parse_options knows them: recorded_arguments
// drops --record's and --sync-interval's values with them.
bool option_named(std::string_view arg, std::string_view name)
{
    return arg == name || (arg.starts_with(name) && arg.size() > name.size() && arg[name.size()] == '=');
}

bool given(std::span<const std::string_view> args, std::string_view name)
{
    for (std::string_view arg : args)
        if (option_named(arg, name))
            return true;
    return false;
}

ErrorOr<std::vector<replay::FileIdentity>> identify(const std::vector<MachineFile>& files)
{
    std::vector<replay::FileIdentity> out;
    for (const MachineFile& file : files)
        out.push_back(TRY(replay::identify_file(file.role, file.path)));
    return out;
}

} // namespace

std::vector<std::string> recorded_arguments(std::span<const std::string_view> args)
{
    std::vector<std::string> out;
    bool deterministic = false;
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string_view arg = args[i];
        if (arg == "--record" || arg == "--sync-interval") {
            ++i; // and its value
            continue;
        }
        if (option_named(arg, "--record") || option_named(arg, "--sync-interval"))
            continue;
        deterministic = deterministic || arg == "--deterministic";
        out.emplace_back(arg);
    }
    if (!deterministic)
        out.emplace_back("--deterministic");
    return out;
}

ErrorOr<Options> replay_options(const replay::RecordingHeader& header, const Options& host,
                                std::span<const std::string_view> host_args)
{
    const std::vector<std::string_view> args(header.args.begin(), header.args.end());
    ErrorOr<Options> parsed = parse_options(args);
    if (parsed.is_error())
        return make_error("the recording's command line does not parse: " + parsed.error().message);
    Options options = parsed.release_value();
    if (options.record || options.replay)
        return make_error("the recording's command line records or replays itself");
    options.serial = host.serial;
    options.serial2 = host.serial2;
    options.debugcon = host.debugcon;
    options.qmp = host.qmp;
    options.stats = host.stats;
    options.trace = host.trace;
    options.perfmap = host.perfmap;
    if (given(host_args, "--jit"))
        options.jit = host.jit; // the JIT changes nothing the guest sees
    options.replay = host.replay;
    options.replay_alter_input = host.replay_alter_input;
    options.replay_goto = host.replay_goto;
    options.gdb = host.gdb; // a debugger that may go back, docs/gdb.md
    options.start_paused = host.start_paused;
    options.mark_output = options.mark_output || host.mark_output;
    return options;
}

ErrorOr<std::unique_ptr<ReplaySession>> ReplaySession::record(const Options& options,
                                                               std::vector<std::string> args,
                                                               const std::vector<MachineFile>& files,
                                                               bool input_can_wake)
{
    replay::RecordingHeader header;
    header.build = replay::recording_build_identity();
    header.args = std::move(args);
    header.files = TRY(identify(files));
    header.input_can_wake = input_can_wake;
    header.sync_interval = options.sync_interval.value_or(replay::DEFAULT_SYNC_INTERVAL);
    header.rng_seed = 0x7669726964696E21ull; // cpu/core/cpu.h's fixed default
    auto session = std::make_unique<ReplaySession>();
    session->m_path = *options.record;
    session->m_recorder = std::make_unique<replay::Recorder>(
        TRY(replay::RecordingWriter::create(*options.record, header)), header.sync_interval);
    return session;
}

ErrorOr<std::unique_ptr<ReplaySession>> ReplaySession::replay(replay::Recording recording,
                                                               const std::vector<MachineFile>& files,
                                                               std::optional<u64> alter_input)
{
    const std::vector<replay::FileIdentity>& recorded = recording.header.files;
    bool same_roles = recorded.size() == files.size();
    for (size_t i = 0; same_roles && i < files.size(); ++i)
        same_roles = recorded[i].role == files[i].role;
    if (!same_roles)
        return make_error("--replay: the recording's machine reads other files than this one");
    for (const replay::FileIdentity& was : recorded) {
        ErrorOr<replay::FileIdentity> now = replay::identify_file(was.role, was.path);
        if (now.is_error())
            return make_error("--replay: " + now.error().message);
        if (now.value().size != was.size || now.value().hash != was.hash)
            return make_error("--replay: the " + was.role + " '" + was.path +
                              "' changed since the recording (" + std::to_string(was.size) + " bytes then, " +
                              std::to_string(now.value().size) + " now, or other content)");
    }
    auto session = std::make_unique<ReplaySession>();
    if (recording.cut_short)
        std::fprintf(stderr,
                     "viridian: --replay: the recording was cut short (killed?); it replays to its last sync "
                     "record, instruction %llu of its last machine\n",
                     static_cast<unsigned long long>(recording.records.back().retired));
    session->m_replayer = std::make_unique<replay::Replayer>(std::move(recording));
    if (alter_input)
        session->m_replayer->alter_serial_input(*alter_input);
    return session;
}

MachineInputLog* ReplaySession::log()
{
    return m_recorder ? static_cast<MachineInputLog*>(m_recorder.get()) : m_replayer.get();
}

void ReplaySession::enable_reverse(u64 max_bytes)
{
    if (!m_replayer)
        return;
    m_replayer->keep_snapshots(max_bytes);
    m_navigator = std::make_unique<replay::Navigator>(*m_replayer);
}

std::optional<replay::Navigator::Stop> ReplaySession::take_reverse(Machine& machine,
                                                                   const std::vector<u64>& breakpoints,
                                                                   const std::vector<Watchpoint>& watchpoints)
{
    const std::optional<ReverseRequest> request = std::exchange(m_reverse_request, std::nullopt);
    if (!request || !m_navigator || request->vcpu >= machine.vcpu_count())
        return std::nullopt;
    switch (request->kind) {
    case ReverseRequest::Step:
        return m_navigator->step_back(machine, request->vcpu);
    case ReverseRequest::Continue:
        return m_navigator->continue_back(machine, request->vcpu, breakpoints, watchpoints);
    case ReverseRequest::Seek:
        break;
    }
    return m_navigator->seek(machine, request->retired);
}

void ReplaySession::begin(Machine& machine)
{
    if (m_navigator)
        m_navigator->restart();
    machine.set_input_log(log());
    if (m_recorder)
        m_recorder->begin(machine);
    else
        m_replayer->begin(machine);
}

bool ReplaySession::nic_link_up() const
{
    return m_recorder ? m_recorder->nic_link_up() : m_replayer->nic_link_up();
}

int ReplaySession::finish(RunOutcome::Kind kind, int status, u64 machine_retired, u64 total_retired)
{
    if (m_recorder) {
        if (ErrorOr<void> done = m_recorder->finish(kind, status, machine_retired, total_retired);
            done.is_error()) {
            std::fprintf(stderr, "viridian: --record: %s\n", done.error().message.c_str());
            return exit_status::USAGE;
        }
        std::fprintf(stderr, "viridian: recorded %llu inputs and %llu sync records in %s (%llu bytes)\n",
                     static_cast<unsigned long long>(m_recorder->inputs()),
                     static_cast<unsigned long long>(m_recorder->syncs()), m_path.c_str(),
                     static_cast<unsigned long long>(m_recorder->bytes_written()));
        return status;
    }
    if (std::optional<std::string> differs = m_replayer->check_end(kind, status, total_retired)) {
        std::fprintf(stderr, "viridian: %s\n", differs->c_str());
        return replay::DIVERGED;
    }
    std::fprintf(stderr, "viridian: replayed to the recording's %s: %llu instructions, %llu sync records matched\n",
                 m_replayer->cut_short() ? "last sync record (it was cut short)" : "end",
                 static_cast<unsigned long long>(total_retired),
                 static_cast<unsigned long long>(m_replayer->syncs_checked()));
    return status;
}
