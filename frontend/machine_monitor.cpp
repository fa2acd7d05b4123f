#include "frontend/machine_monitor.h"

#include "frontend/options.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>

const char* shutdown_cause_name(ShutdownCause cause)
{
    switch (cause) {
    case ShutdownCause::HostError:
        return "host-error";
    case ShutdownCause::HostQmpQuit:
        return "host-qmp-quit";
    case ShutdownCause::HostQmpSystemReset:
        return "host-qmp-system-reset";
    case ShutdownCause::HostSignal:
        return "host-signal";
    case ShutdownCause::HostUi:
        return "host-ui";
    case ShutdownCause::GuestShutdown:
        return "guest-shutdown";
    case ShutdownCause::GuestReset:
        return "guest-reset";
    case ShutdownCause::GuestPanic:
        return "guest-panic";
    }
    return "host-error";
}

bool shutdown_cause_is_guest(ShutdownCause cause)
{
    return cause == ShutdownCause::GuestShutdown || cause == ShutdownCause::GuestReset ||
           cause == ShutdownCause::GuestPanic;
}

namespace {

QmpError machine_gone() { return qmp_error("The machine has stopped running"); }

} // namespace

MachineMonitor::MachineMonitor(EventLoop& loop, MachineMonitorHooks hooks, QmpClock clock)
    : m_loop(loop), m_hooks(std::move(hooks)), m_monitor(m_commands, std::move(clock))
{
    add_run_state_commands();
    add_cpu_commands();
    add_migration_commands();
    add_network_commands();
    add_block_commands();
    add_replay_commands();
    add_hotplug_commands();
    add_netdev_commands();
}

// The Hyper-V key-value pair exchange (docs/vmbus.md "Integration
// services"); QEMU has nothing like it, hence the x- names.
void MachineMonitor::add_kvp_commands()
{
    m_commands.add("x-query-kvp", {{"refresh", QmpType::Boolean, true}}, [this](const Json& args) -> QmpResult {
        KvpPools pools;
        if (!m_hooks.kvp_query)
            return qmp_error("The machine has no Hyper-V enlightenments (--enlightenments off)");
        // A read changes what the guest runs: not in a recording or replay.
        const bool refresh = args.value("refresh", true) && m_hooks.integration_refused.empty();
        if (!m_hooks.kvp_query(refresh, pools))
            return machine_gone();
        return Json{{"state", pools.state},
                    {"auto", pools.auto_items},
                    {"guest", pools.guest_items},
                    {"host", pools.host_items},
                    {"refreshing", pools.refreshing},
                    {"reads", pools.reads}};
    });
    auto change = [this](const std::string& key, const std::optional<std::string>& value) -> QmpResult {
        if (!m_hooks.kvp_change)
            return qmp_error("The machine has no Hyper-V enlightenments (--enlightenments off)");
        if (!m_hooks.integration_refused.empty())
            return qmp_error(m_hooks.integration_refused);
        std::string error;
        if (!m_hooks.kvp_change(key, value, error))
            return machine_gone();
        if (!error.empty())
            return qmp_error(error);
        return Json::object();
    };
    m_commands.add("x-kvp-set", {{"key", QmpType::String}, {"value", QmpType::String}},
                   [change](const Json& args) -> QmpResult {
                       return change(args["key"].get<std::string>(), args["value"].get<std::string>());
                   });
    m_commands.add("x-kvp-delete", {{"key", QmpType::String}}, [change](const Json& args) -> QmpResult {
        return change(args["key"].get<std::string>(), std::nullopt);
    });
    // The backup service: freeze and thaw are asked, not waited for; the
    // guest's answer shows in x-query-integration-services ("vss": frozen,
    // thawed or failed).
    for (const bool freeze : {true, false})
        m_commands.add(freeze ? "x-vss-freeze" : "x-vss-thaw", {}, [this, freeze](const Json&) -> QmpResult {
            if (!m_hooks.vss_request)
                return qmp_error("The machine has no Hyper-V enlightenments (--enlightenments off)");
            if (!m_hooks.integration_refused.empty())
                return qmp_error(m_hooks.integration_refused);
            std::string error;
            if (!m_hooks.vss_request(freeze, error))
                return machine_gone();
            if (!error.empty())
                return qmp_error(error);
            return Json::object();
        });
    add_file_copy_commands();
}

// Guest file copy (Hyper-V's Copy-VMFile): started, not waited for; the
// copy's progress and end show in x-query-guest-file-copy.
void MachineMonitor::add_file_copy_commands()
{
    auto refused = [this](bool available) -> std::optional<QmpResult> {
        if (!available)
            return qmp_error("The machine has no Hyper-V enlightenments (--enlightenments off)");
        if (!m_hooks.integration_refused.empty())
            return qmp_error(m_hooks.integration_refused);
        return std::nullopt;
    };
    m_commands.add("x-guest-file-copy",
                   {{"source", QmpType::String},
                    {"destination", QmpType::String},
                    {"create-full-path", QmpType::Boolean, true},
                    {"overwrite", QmpType::Boolean, true}},
                   [this, refused](const Json& args) -> QmpResult {
                       if (auto r = refused(bool(m_hooks.file_copy_start)))
                           return *r;
                       FileCopyRequest request;
                       request.source = args["source"].get<std::string>();
                       request.destination = args["destination"].get<std::string>();
                       request.create_path = args.value("create-full-path", false);
                       request.overwrite = args.value("overwrite", false);
                       std::optional<std::string> error;
                       if (!m_hooks.file_copy_start(request, error))
                           return machine_gone();
                       if (error)
                           return qmp_error(*error);
                       return Json::object();
                   });
    m_commands.add("x-guest-file-copy-cancel", {}, [this, refused](const Json&) -> QmpResult {
        if (auto r = refused(bool(m_hooks.file_copy_cancel)))
            return *r;
        std::optional<std::string> error;
        if (!m_hooks.file_copy_cancel(error))
            return machine_gone();
        if (error)
            return qmp_error(*error);
        return Json::object();
    });
    m_commands.add("x-query-guest-file-copy", {}, [this](const Json&) -> QmpResult {
        FileCopyStatus status{"not offered", {}, {}, 0, 0, {}};
        if (m_hooks.file_copy_status && !m_hooks.file_copy_status(status))
            return machine_gone();
        Json out{{"state", status.state}, {"size", status.size}, {"written", status.written}};
        if (!status.source.empty()) {
            out["source"] = status.source;
            out["destination"] = status.destination;
        }
        if (!status.error.empty())
            out["error"] = status.error;
        return out;
    });
}

namespace {

std::string mac_text(const RxFilter::Mac& mac)
{
    char text[18];
    std::snprintf(text, sizeof text, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
                  mac[5]);
    return text;
}

const char* rx_mode(RxFilter::Mode mode)
{
    switch (mode) {
    case RxFilter::Mode::Normal: return "normal";
    case RxFilter::Mode::None: return "none";
    case RxFilter::Mode::All: return "all";
    }
    return "normal";
}

Json rx_filter_json(const std::string& name, const RxFilter& f)
{
    Json unicast = Json::array(), multicast = Json::array();
    for (const RxFilter::Mac& mac : f.unicast_table)
        unicast.push_back(mac_text(mac));
    for (const RxFilter::Mac& mac : f.multicast_table)
        multicast.push_back(mac_text(mac));
    return Json{{"name", name},
                {"promiscuous", f.promiscuous},
                {"multicast", rx_mode(f.multicast)},
                {"unicast", rx_mode(f.unicast)},
                {"vlan", rx_mode(f.vlan)},
                {"broadcast-allowed", f.broadcast_allowed},
                {"multicast-overflow", f.multicast_overflow},
                {"unicast-overflow", f.unicast_overflow},
                {"main-mac", mac_text(f.main_mac)},
                {"vlan-table", Json::array()},
                {"unicast-table", unicast},
                {"multicast-table", multicast}};
}

} // namespace

void MachineMonitor::add_network_commands()
{
    // set_link (qapi/net.json): the adapter's link goes down or up, and the
    // guest gets a link status change. QEMU finds the adapter by its name
    // (the NIC's "e1000.0" or the -nic backend's "__org.qemu.nic0") and
    // answers DeviceNotFound for any other.
    m_commands.add("set_link", {{"name", QmpType::String}, {"up", QmpType::Boolean}},
                   [this](const Json& args) -> QmpResult {
                       const std::string name = args["name"].get<std::string>();
                       if (std::find(m_hooks.nic_names.begin(), m_hooks.nic_names.end(), name) ==
                           m_hooks.nic_names.end())
                           return QmpError{QmpErrorClass::DeviceNotFound, "Device '" + name + "' not found"};
                       if (!m_hooks.guest_input_refused.empty())
                           return qmp_error(m_hooks.guest_input_refused);
                       if (!m_hooks.set_link(args["up"].get<bool>()))
                           return machine_gone();
                       return Json::object();
                   });
    // query-rx-filter (qapi/net.json): the adapter's receive filter, listed
    // under the NIC's name; the backend's name is not a NIC (QEMU's texts).
    m_commands.add("query-rx-filter", {{"name", QmpType::String, true}}, [this](const Json& args) -> QmpResult {
        Json out = Json::array();
        if (m_hooks.nic_names.empty()) {
            if (args.contains("name"))
                return qmp_error("invalid net client name: " + args["name"].get<std::string>());
            return out;
        }
        const std::string nic = m_hooks.nic_names.front();
        if (args.contains("name")) {
            const std::string name = args["name"].get<std::string>();
            if (name != nic)
                return qmp_error(std::find(m_hooks.nic_names.begin(), m_hooks.nic_names.end(), name) !=
                                         m_hooks.nic_names.end()
                                     ? "net client(" + name + ") isn't a NIC"
                                     : "invalid net client name: " + name);
        }
        std::optional<RxFilter> filter;
        if (!m_hooks.rx_filter || !m_hooks.rx_filter(filter))
            return machine_gone();
        if (filter)
            out.push_back(rx_filter_json(nic, *filter));
        return out;
    });
}

MachineMonitor::~MachineMonitor() = default;

ErrorOr<void> MachineMonitor::listen(const ListenAddress& address, std::function<void()> on_connection)
{
    m_servers.push_back(TRY(QmpServer::listen(m_loop, m_monitor, address, std::move(on_connection))));
    return {};
}

void MachineMonitor::emit_event(std::string_view name, const Json& data)
{
    m_monitor.emit_event(name, data);
    for (auto& server : m_servers)
        server->flush();
}

// qapi/run-state.json: RESET and SHUTDOWN carry {"guest": bool, "reason":
// ShutdownCause}.
void MachineMonitor::emit_reset(ShutdownCause cause)
{
    emit_event("RESET", Json{{"guest", shutdown_cause_is_guest(cause)}, {"reason", shutdown_cause_name(cause)}});
}

void MachineMonitor::emit_shutdown(ShutdownCause cause)
{
    if (m_shutdown_sent) // quit already said it
        return;
    m_shutdown_sent = true;
    emit_event("SHUTDOWN", Json{{"guest", shutdown_cause_is_guest(cause)}, {"reason", shutdown_cause_name(cause)}});
}

void MachineMonitor::close()
{
    for (auto& server : m_servers)
        server->close();
    // The networks end on the loop's thread, while it still runs.
    m_netdevs.clear();
}

void MachineMonitor::add_run_state_commands()
{
    // qapi/run-state.json StatusInfo. "singlestep" is always false here
    // (QEMU's -singlestep TCG option); "running" is status == "running".
    m_commands.add("query-status", {}, [this](const Json&) -> QmpResult {
        const char* status = m_incoming     ? "inmigrate"
                             : !m_paused    ? "running"
                             : m_prelaunch  ? "prelaunch"
                             : m_postmigrate ? "postmigrate"
                                             : "paused";
        return Json{{"status", status}, {"singlestep", false}, {"running", !m_paused}};
    });
    // stop and cont take effect before they return, and their events come
    // before the reply, as in QEMU (vm_stop and vm_start run synchronously
    // in the command). A command that changes nothing sends no event.
    m_commands.add("stop", {}, [this](const Json&) -> QmpResult {
        if (!m_hooks.set_paused(true))
            return machine_gone();
        if (!m_paused) {
            m_paused = true;
            emit_event("STOP");
        }
        return Json::object();
    });
    m_commands.add("cont", {}, [this](const Json&) -> QmpResult {
        if (!m_hooks.set_paused(false))
            return machine_gone();
        if (m_paused) {
            m_paused = false;
            m_prelaunch = false;
            m_postmigrate = false;
            emit_event("RESUME");
        }
        return Json::object();
    });
    // QEMU 7.2 sends RESET, POWERDOWN and SHUTDOWN before the reply to
    // system_reset, system_powerdown and quit (seen on its socket); the
    // machine acts on the request at its next poll point. A reset of a
    // stopped machine leaves it stopped, in QEMU's "prelaunch" state.
    m_commands.add("system_reset", {}, [this](const Json&) -> QmpResult {
        if (!m_hooks.guest_input_refused.empty())
            return qmp_error(m_hooks.guest_input_refused);
        if (!m_hooks.reset())
            return machine_gone();
        emit_reset(ShutdownCause::HostQmpSystemReset);
        if (m_paused)
            m_prelaunch = true;
        return Json::object();
    });
    m_commands.add("system_powerdown", {}, [this](const Json&) -> QmpResult {
        if (!m_hooks.guest_input_refused.empty())
            return qmp_error(m_hooks.guest_input_refused);
        if (!m_hooks.power_button())
            return machine_gone();
        emit_event("POWERDOWN");
        return Json::object();
    });
    m_commands.add("quit", {}, [this](const Json&) -> QmpResult {
        if (!m_hooks.quit())
            return machine_gone();
        emit_shutdown(ShutdownCause::HostQmpQuit);
        return Json::object();
    });
}

void MachineMonitor::add_cpu_commands()
{
    // viridian's own (QEMU has no integration services; x- as QMP names
    // what is not stable): the Hyper-V integration services' states
    // (docs/vmbus.md), versions as "major.minor" or null before the
    // negotiation.
    m_commands.add("x-query-integration-services", {}, [this](const Json&) -> QmpResult {
        std::vector<IntegrationServiceState> services;
        if (!m_hooks.integration_services || !m_hooks.integration_services(services))
            return machine_gone();
        Json out = Json::array();
        for (const IntegrationServiceState& s : services) {
            Json version = nullptr;
            if (s.version)
                version =
                    std::to_string(s.version >> 16) + "." + std::to_string(s.version & 0xFFFF);
            out.push_back(Json{{"name", s.name}, {"state", s.state}, {"version", version}});
        }
        return out;
    });
    add_kvp_commands();
    add_accel_commands();
    // qapi/machine.json CpuInfoFast. The topology is what CPUID describes
    // (cpu/state/cpuid_model.cpp): one socket of N single-threaded cores,
    // which is also QEMU 7.2's default for -smp N on the pc machine. qom-path names the CPU objects as
    // QEMU's pc machine does (created unattached, in order).
    m_commands.add("query-cpus-fast", {}, [this](const Json&) -> QmpResult {
        Json cpus = Json::array();
        const long thread = m_hooks.vcpu_thread_id ? m_hooks.vcpu_thread_id() : 0;
        for (unsigned i = 0; i < m_hooks.cpu_count; ++i) {
            cpus.push_back(Json{{"cpu-index", i},
                                {"qom-path", "/machine/unattached/device[" + std::to_string(i) + "]"},
                                {"thread-id", thread},
                                {"props", {{"core-id", i}, {"thread-id", 0}, {"socket-id", 0}}},
                                {"target", "x86_64"}});
        }
        return cpus;
    });
}

void MachineMonitor::add_accel_commands()
{
    const auto read_state = [this](MachineMonitorHooks::AccelState& out) {
        return m_hooks.accel_state && m_hooks.accel_state(out);
    };
    // qapi/machine.json KvmInfo: whether the vCPUs run on KVM now; KVM
    // support is built in (QEMU's `present`).
    m_commands.add("query-kvm", {}, [read_state](const Json&) -> QmpResult {
        MachineMonitorHooks::AccelState state;
        if (!read_state(state))
            return machine_gone();
        return Json{{"enabled", state.running == "kvm"}, {"present", true}};
    });
    // viridian's own (docs/kvm.md "Switching"): the backend, whether the
    // vCPUs can move, and a move of every vCPU to the other one.
    m_commands.add("x-query-accel", {}, [read_state](const Json&) -> QmpResult {
        MachineMonitorHooks::AccelState state;
        if (!read_state(state))
            return machine_gone();
        Json out{{"accel", state.running}, {"switchable", state.switchable}, {"switches", state.switches}};
        if (state.switches)
            out["last-switch-us"] = state.last_switch_ns / 1000;
        return out;
    });
    m_commands.add("x-switch-accel", {{"accel", QmpType::String}}, [this](const Json& args) -> QmpResult {
        const std::string accel = args["accel"].get<std::string>();
        if (accel != "kvm" && accel != "interp")
            return qmp_error("Parameter 'accel' does not accept value '" + accel + "'");
        std::optional<std::string> error;
        if (!m_hooks.switch_accel || !m_hooks.switch_accel(accel, error))
            return machine_gone();
        if (error)
            return qmp_error(*error);
        return Json::object();
    });
}

namespace {

// QEMU prints a double with %.17g, so a whole number reads as an integer
// ("mbps": 0) and a client sees the same JSON types from both.
Json qemu_number(double value)
{
    if (std::isfinite(value) && value == std::floor(value) && std::fabs(value) < 9e15)
        return static_cast<int64_t>(value);
    return value;
}

// QEMU 7.2's MigrationCapability names (qapi/migration.json).
constexpr const char* MIGRATION_CAPABILITIES[] = {
    "xbzrle", "rdma-pin-all", "auto-converge", "zero-blocks", "compress", "events", "postcopy-ram",
    "x-colo", "release-ram", "block", "return-path", "pause-before-switchover", "multifd",
    "dirty-bitmaps", "postcopy-blocktime", "late-block-activate", "x-ignore-shared", "validate-uuid",
    "background-snapshot", "zero-copy-send", "postcopy-preempt"};

} // namespace

bool MachineMonitor::migration_running() const
{
    return m_migration && (m_migration->status == MigrationProgress::Status::Setup ||
                           m_migration->status == MigrationProgress::Status::Active);
}

void MachineMonitor::migration_update(const MigrationProgress& progress)
{
    if (!m_migration)
        return;
    const MigrationProgress before = *m_migration;
    *m_migration = progress;
    // QEMU's order: MIGRATION_PASS 1, "active", the later passes, STOP for
    // the last copy, "completed". A short migration may pass through all of
    // them between two updates.
    const auto passes = [&](u64 last) {
        for (u64 pass = m_passes_sent + 1; pass <= last; ++pass)
            emit_event("MIGRATION_PASS", Json{{"pass", pass}});
        m_passes_sent = std::max(m_passes_sent, last);
    };
    const bool events = m_migration_events;
    if (before.status == MigrationProgress::Status::Setup && progress.dirty_sync_count > 0 && events) {
        passes(1);
        emit_event("MIGRATION", Json{{"status", "active"}});
    }
    const bool completed = progress.status == MigrationProgress::Status::Completed;
    if (events)
        passes(completed ? progress.dirty_sync_count - 1 : progress.dirty_sync_count);
    if (completed) {
        // The source stops for the last copy and stays stopped (QEMU's
        // RUN_STATE_POSTMIGRATE).
        if (!m_paused) {
            m_paused = true;
            emit_event("STOP");
        }
        m_postmigrate = true;
    }
    if (!events)
        return;
    passes(progress.dirty_sync_count);
    const bool still_cancelling = m_cancelling && migration_running();
    if (progress.status != before.status && progress.status != MigrationProgress::Status::Active &&
        !still_cancelling)
        emit_event("MIGRATION", Json{{"status", migration_status_name(progress.status)}});
}

// qapi/migration.json MigrationInfo, with the members QEMU 7.2 fills for a
// source in each state.
Json MachineMonitor::query_migrate() const
{
    if (!m_migration)
        return Json::object();
    const MigrationProgress& p = *m_migration;
    const bool cancelling = m_cancelling && migration_running();
    Json info{{"status", cancelling ? "cancelling" : migration_status_name(p.status)}};
    switch (p.status) {
    case MigrationProgress::Status::Setup:
    case MigrationProgress::Status::Cancelled:
        return info;
    case MigrationProgress::Status::Failed:
        info["error-desc"] = p.error;
        return info;
    case MigrationProgress::Status::Active:
        info["expected-downtime"] = MigrationSender::MAX_DOWNTIME_NS / 1'000'000;
        break;
    case MigrationProgress::Status::Completed:
        info["downtime"] = p.downtime_ms;
        break;
    }
    info["setup-time"] = p.setup_ms;
    info["total-time"] = p.total_ms;
    const u64 precopy = p.transferred - std::min(p.transferred, p.downtime_bytes);
    info["ram"] = Json{{"transferred", p.transferred},
                       {"remaining", p.remaining},
                       {"total", p.total_bytes},
                       {"duplicate", p.duplicate},
                       {"skipped", 0},
                       {"normal", p.normal},
                       {"normal-bytes", p.normal * 4096},
                       {"dirty-pages-rate", p.dirty_pages_rate},
                       {"mbps", qemu_number(p.mbps)},
                       {"dirty-sync-count", p.dirty_sync_count},
                       {"postcopy-requests", 0},
                       {"page-size", 4096},
                       {"multifd-bytes", 0},
                       {"pages-per-second", p.pages_per_second},
                       {"precopy-bytes", precopy},
                       {"downtime-bytes", p.downtime_bytes},
                       {"postcopy-bytes", 0},
                       {"dirty-sync-missed-zero-copy", 0}};
    return info;
}

void MachineMonitor::add_migration_commands()
{
    // qmp_migrate and migrate_prepare in QEMU 7.2's migration/migration.c:
    // the checks in its order, with its texts. viridian has no disks to
    // copy, so the old block migration (blk, inc) is refused as a QEMU
    // built without it refuses it; detach is accepted and ignored, as in
    // QEMU.
    m_commands.add("migrate",
                   {{"uri", QmpType::String},
                    {"blk", QmpType::Boolean, true},
                    {"inc", QmpType::Boolean, true},
                    {"detach", QmpType::Boolean, true},
                    {"resume", QmpType::Boolean, true}},
                   [this](const Json& args) -> QmpResult {
                       if (!m_hooks.migration_refused.empty())
                           return qmp_error(m_hooks.migration_refused);
                       if (args.value("resume", false))
                           return qmp_error("Cannot resume if there is no paused migration");
                       if (migration_running())
                           return qmp_error("There's a migration process in progress");
                       if (m_incoming)
                           return qmp_error("Guest is waiting for an incoming migration");
                       if (m_postmigrate && m_paused)
                           return qmp_error("Can't migrate the vm that was paused due to previous migration");
                       if (args.value("blk", false) || args.value("inc", false))
                           return qmp_error("viridian has no old-style (blk/-b, inc/-i) block migration");
                       const std::string uri = args["uri"].get<std::string>();
                       if (parse_migration_uri("migrate", uri).is_error()) {
                           // QEMU has begun (setup) when it reads the URI, and fails.
                           const std::string why = "Parameter 'uri' expects a valid migration protocol";
                           m_migration = MigrationProgress{};
                           m_migration->status = MigrationProgress::Status::Failed;
                           m_migration->error = why;
                           if (m_migration_events) {
                               emit_event("MIGRATION", Json{{"status", "setup"}});
                               emit_event("MIGRATION", Json{{"status", "failed"}});
                           }
                           return qmp_error(why);
                       }
                       m_migration = MigrationProgress{};
                       m_cancelling = false;
                       m_passes_sent = 0;
                       if (!m_hooks.migrate || !m_hooks.migrate(uri)) {
                           m_migration.reset();
                           return machine_gone();
                       }
                       if (m_migration_events)
                           emit_event("MIGRATION", Json{{"status", "setup"}});
                       return Json::object();
                   });
    // Cancelling is asked of the machine; "cancelled" follows once it has
    // dropped the stream. Nothing to cancel: nothing happens.
    m_commands.add("migrate_cancel", {}, [this](const Json&) -> QmpResult {
        if (!migration_running() || m_cancelling)
            return Json::object();
        if (!m_hooks.cancel_migration || !m_hooks.cancel_migration())
            return machine_gone();
        m_cancelling = true;
        if (m_migration_events)
            emit_event("MIGRATION", Json{{"status", "cancelling"}});
        return Json::object();
    });
    m_commands.add("query-migrate", {}, [this](const Json&) -> QmpResult { return query_migrate(); });
    // Only "events" changes anything here; the other capabilities name
    // QEMU features viridian does not have, and may only be turned off.
    m_commands.add("migrate-set-capabilities", {{"capabilities", QmpType::Array, false, QmpType::Object}},
                   [this](const Json& args) -> QmpResult {
                       if (migration_running())
                           return qmp_error("There's a migration process in progress");
                       bool events = m_migration_events;
                       for (const Json& entry : args["capabilities"]) {
                           TRY(check_qmp_arguments(entry, {{"capability", QmpType::String},
                                                           {"state", QmpType::Boolean}}));
                           const std::string name = entry["capability"].get<std::string>();
                           const bool state = entry["state"].get<bool>();
                           bool known = false;
                           for (const char* capability : MIGRATION_CAPABILITIES)
                               known = known || name == capability;
                           if (!known)
                               return qmp_error("Parameter 'capability' does not accept value '" + name + "'");
                           if (name == "events")
                               events = state;
                           else if (state)
                               return qmp_error("Migration capability '" + name + "' is not supported by viridian");
                       }
                       m_migration_events = events;
                       return Json::object();
                   });
}

std::vector<MonitorDrive> monitor_drives(const std::vector<MachineDrive>& drives, unsigned cpus,
                                         bool nic)
{
    std::vector<MonitorDrive> out(drives.size());
    // QEMU's pc machine makes the vCPUs first (device[0..cpus-1]), then
    // what -nodefaults leaves up to its IDE drives (16 more, as QEMU 7.2's
    // query-block shows), the NIC, the IDE drives by index, the SCSI disks.
    unsigned next = cpus + 17 + (nic ? 1 : 0);
    for (bool scsi : {false, true}) {
        std::vector<size_t> order;
        for (size_t i = 0; i < drives.size(); ++i)
            if (drives[i].scsi == scsi)
                order.push_back(i);
        std::sort(order.begin(), order.end(),
                  [&](size_t a, size_t b) { return drives[a].index < drives[b].index; });
        for (size_t i : order) {
            const MachineDrive& drive = drives[i];
            const unsigned per_bus = scsi ? 7 : 2;
            out[i].device = std::string(scsi ? "scsi" : "ide") +
                            std::to_string(drive.index / per_bus) + (drive.cdrom ? "-cd" : "-hd") +
                            std::to_string(drive.index % per_bus);
            out[i].qdev = "/machine/unattached/device[" + std::to_string(next++) + "]";
            out[i].cdrom = drive.cdrom;
            out[i].image = drive.image;
            out[i].read_only = drive.cdrom || (drive.image && drive.image->info().read_only);
            if (scsi)
                out[i].scsi_lun = static_cast<int>(drive.index);
        }
    }
    return out;
}

TrayState apply_tray_action(Machine* machine, std::vector<MachineDrive>& drives, size_t drive,
                            const MediumChange& change, std::shared_ptr<BlockImage> image)
{
    const TrayAction action = change.action;
    if (drive < drives.size()) {
        if (action == TrayAction::Remove)
            drives[drive].image.reset();
        if (action == TrayAction::Insert)
            drives[drive].image = image;
    }
    if (!machine) // between two machines: the next starts with its tray shut
        return TrayState{action == TrayAction::Open || action == TrayAction::ForceOpen, false,
                         false};
    return machine->tray(drive, change, std::move(image));
}

void MachineMonitor::tray_moved(size_t drive, bool open)
{
    if (drive >= m_hooks.drives.size())
        return;
    // qapi/block.json DEVICE_TRAY_MOVED: "id" is the device's QOM path when
    // it has no id (as QEMU 7.2 sends it for -drive).
    const MonitorDrive& d = m_hooks.drives[drive];
    emit_event("DEVICE_TRAY_MOVED",
               Json{{"device", d.device}, {"id", d.qdev}, {"tray-open", open}});
}

// qmp_get_blk (QEMU 7.2 blockdev.c): exactly one of a device name and a
// qdev id (or QOM path, which QEMU also resolves).
ErrorOr<size_t, QmpError> MachineMonitor::find_drive(const Json& args) const
{
    const bool by_device = args.contains("device");
    if (by_device == args.contains("id"))
        return qmp_error("Need exactly one of 'device' and 'id'");
    const std::string name = args[by_device ? "device" : "id"].get<std::string>();
    for (size_t i = 0; i < m_hooks.drives.size(); ++i)
        if ((by_device ? m_hooks.drives[i].device : m_hooks.drives[i].qdev) == name)
            return i;
    return QmpError{QmpErrorClass::DeviceNotFound, "Device '" + name + "' not found"};
}

ErrorOr<TrayState, QmpError> MachineMonitor::tray(size_t drive, const MediumChange& change,
                                                  std::shared_ptr<BlockImage> image)
{
    if (change.action != TrayAction::Query && !m_hooks.tray_refused.empty())
        return qmp_error(m_hooks.tray_refused);
    TrayState state;
    if (!m_hooks.tray || !m_hooks.tray(drive, change, std::move(image), state))
        return machine_gone();
    return state;
}

void MachineMonitor::set_medium(size_t drive, std::shared_ptr<BlockImage> image, const std::string& file,
                                bool read_only)
{
    MonitorDrive& d = m_hooks.drives[drive];
    d.image = std::move(image);
    if (!d.image)
        return;
    d.file = file;
    d.read_only = read_only;
    d.node_name = "#block" + std::to_string(++m_next_node);
    std::erase_if(m_known_media, [](const KnownMedium& known) { return known.image.expired(); });
    m_known_media.push_back({d.image, file, read_only});
}

void MachineMonitor::medium_replayed(size_t drive, const MediumChange& change, std::shared_ptr<BlockImage> image,
                                     const TrayState& state)
{
    if (drive >= m_hooks.drives.size())
        return;
    std::string file = change.file;
    bool read_only = change.read_only;
    for (const KnownMedium& known : m_known_media)
        if (file.empty() && image && known.image.lock() == image) {
            file = known.file;
            read_only = known.read_only;
        }
    if (change.action == TrayAction::Remove || change.action == TrayAction::Insert)
        set_medium(drive, std::move(image), file, read_only);
    if (state.moved)
        tray_moved(drive, state.open);
}

ErrorOr<void, QmpError> MachineMonitor::open_tray(size_t drive, const std::string& name, bool force,
                                                  bool& locked)
{
    locked = false;
    if (!m_hooks.drives[drive].cdrom)
        return qmp_error("Device '" + name + "' is not removable");
    const TrayState state = TRY(tray(drive, force ? TrayAction::ForceOpen : TrayAction::Open));
    if (state.moved)
        tray_moved(drive, true);
    if (!state.open) {
        locked = true;
        return qmp_error("Device '" + name +
                         "' is locked and force was not specified, "
                         "wait for tray to open and try again");
    }
    return {};
}

ErrorOr<void, QmpError> MachineMonitor::remove_medium(size_t drive, const std::string& name)
{
    MonitorDrive& d = m_hooks.drives[drive];
    if (!d.cdrom)
        return qmp_error("Device '" + name + "' is not removable");
    const TrayState state = TRY(tray(drive, TrayAction::Query));
    if (!state.open)
        return qmp_error("Tray of device '" + name + "' is not open");
    if (!d.image)
        return {};
    TRY(tray(drive, TrayAction::Remove));
    set_medium(drive, nullptr, {}, false);
    return {};
}

namespace {

// The bytes the file takes on the host (QEMU's "actual-size").
u64 allocated_bytes(const std::string& file)
{
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0)
        return 0;
    return static_cast<u64>(st.st_blocks) * 512;
}

std::string name_given(const Json& args)
{
    return args.contains("device") ? args["device"].get<std::string>()
                                   : args["id"].get<std::string>();
}

} // namespace

// qapi/block-core.json BlockInfo and BlockDeviceInfo, with the members
// QEMU 7.2 fills for -drive (no throttling, no encryption, no
// detect-zeroes: those are zeros and "off").
Json MachineMonitor::block_info(size_t drive)
{
    const MonitorDrive& d = m_hooks.drives[drive];
    TrayState state;
    if (d.cdrom) {
        ErrorOr<TrayState, QmpError> now = tray(drive, TrayAction::Query);
        if (!now.is_error())
            state = now.value();
    }
    Json info{{"device", d.device},   {"qdev", d.qdev},    {"locked", state.locked},
              {"removable", d.cdrom}, {"io-status", "ok"}, {"type", "unknown"}};
    if (d.cdrom)
        info["tray_open"] = state.open;
    if (!d.image)
        return info;
    const ImageInfo& image = d.image->info();
    Json details{{"filename", d.file},
                 {"format", image.format},
                 {"virtual-size", image.virtual_size},
                 {"actual-size", allocated_bytes(d.file)},
                 {"dirty-flag", false}};
    if (image.block_size)
        details["cluster-size"] = image.block_size;
    int depth = 0;
    if (image.parent) {
        details["backing-filename"] = *image.parent;
        details["full-backing-filename"] = *image.parent;
        depth = 1;
    }
    Json inserted{{"file", d.file},
                  {"node-name", d.node_name},
                  {"ro", d.read_only},
                  {"drv", image.format},
                  {"backing_file_depth", depth},
                  {"encrypted", false},
                  {"detect_zeroes", "off"},
                  {"bps", 0},
                  {"bps_rd", 0},
                  {"bps_wr", 0},
                  {"iops", 0},
                  {"iops_rd", 0},
                  {"iops_wr", 0},
                  {"write_threshold", 0},
                  {"cache",
                   {{"writeback", true},
                    {"direct", d.cache == CacheMode::None},
                    {"no-flush", d.cache == CacheMode::Unsafe}}},
                  {"image", details}};
    if (image.parent)
        inserted["backing_file"] = *image.parent;
    info["inserted"] = inserted;
    return info;
}

QmpError MachineMonitor::could_not_open(const std::string& file, std::string why)
{
    for (const std::string& prefix : {file + ": ", std::string("cannot open: ")})
        if (why.starts_with(prefix))
            why = why.substr(prefix.size());
    return qmp_error("Could not open '" + file + "': " + why);
}

void MachineMonitor::add_block_commands()
{
    for (MonitorDrive& d : m_hooks.drives)
        if (d.node_name.empty())
            d.node_name = "#block" + std::to_string(++m_next_node);
    for (const MonitorDrive& d : m_hooks.drives)
        if (d.image)
            m_known_media.push_back({d.image, d.file, d.read_only});
    m_commands.add("query-block", {}, [this](const Json&) -> QmpResult {
        Json list = Json::array();
        for (size_t i = 0; i < m_hooks.drives.size(); ++i)
            list.push_back(block_info(i));
        return list;
    });
    // qmp_eject (QEMU 7.2 blockdev.c): open the tray, then take the medium
    // out. A tray the guest locked only gets an eject request, and the
    // command fails unless `force` unlocks it.
    const std::vector<QmpParam> tray_params{{"device", QmpType::String, true},
                                            {"id", QmpType::String, true},
                                            {"force", QmpType::Boolean, true}};
    m_commands.add("eject", tray_params, [this](const Json& args) -> QmpResult {
        const size_t drive = TRY(find_drive(args));
        bool locked = false;
        TRY(open_tray(drive, name_given(args), args.value("force", false), locked));
        TRY(remove_medium(drive, name_given(args)));
        return Json::object();
    });
    // blockdev-open-tray: a locked tray is not an error here; the guest
    // has been asked to eject and the tray moves when it does.
    m_commands.add("blockdev-open-tray", tray_params, [this](const Json& args) -> QmpResult {
        const size_t drive = TRY(find_drive(args));
        bool locked = false;
        ErrorOr<void, QmpError> opened =
            open_tray(drive, name_given(args), args.value("force", false), locked);
        if (opened.is_error() && !locked)
            return opened.error();
        return Json::object();
    });
    m_commands.add("blockdev-close-tray",
                   {{"device", QmpType::String, true}, {"id", QmpType::String, true}},
                   [this](const Json& args) -> QmpResult {
                       const size_t drive = TRY(find_drive(args));
                       if (!m_hooks.drives[drive].cdrom)
                           return qmp_error("Device '" + name_given(args) + "' is not removable");
                       const TrayState state = TRY(tray(drive, TrayAction::Close));
                       if (state.moved)
                           tray_moved(drive, false);
                       return Json::object();
                   });
    // QEMU 7.2 names the drive of blockdev-remove-medium by its qdev id
    // only (here: the QOM path query-block gives as "qdev").
    m_commands.add("blockdev-remove-medium", {{"id", QmpType::String}},
                   [this](const Json& args) -> QmpResult {
                       const size_t drive = TRY(find_drive(args));
                       TRY(remove_medium(drive, name_given(args)));
                       return Json::object();
                   });
    // qmp_blockdev_change_medium: the image is opened first (so a file that
    // cannot be opened leaves the drive as it was), then the tray opens, the
    // old medium goes, the new one goes in and the tray closes.
    m_commands.add(
        "blockdev-change-medium",
        {{"device", QmpType::String, true},
         {"id", QmpType::String, true},
         {"filename", QmpType::String},
         {"format", QmpType::String, true},
         {"force", QmpType::Boolean, true},
         {"read-only-mode", QmpType::String, true},
         {"detect-zeroes", QmpType::String, true}},
        [this](const Json& args) -> QmpResult {
            const std::string mode = args.value("read-only-mode", "retain");
            if (mode != "retain" && mode != "read-only" && mode != "read-write")
                return qmp_error("Parameter 'read-only-mode' does not accept value '" + mode + "'");
            const std::string zeroes = args.value("detect-zeroes", "off");
            if (zeroes != "off" && zeroes != "on" && zeroes != "unmap")
                return qmp_error("Parameter 'detect-zeroes' does not accept value '" + zeroes +
                                 "'");
            const size_t drive = TRY(find_drive(args));
            MonitorDrive& d = m_hooks.drives[drive];
            if (!m_hooks.tray_refused.empty()) // before the file is opened
                return qmp_error(m_hooks.tray_refused);
            const std::string filename = args["filename"].get<std::string>();
            OpenOptions open;
            open.format = args.value("format", "");
            if (!open.format.empty() && !find_image_format(open.format))
                return qmp_error("Unknown driver '" + open.format + "'");
            open.read_only = mode == "retain" ? d.read_only : mode == "read-only";
            open.cache = d.cache;
            BlockResult<OpenedImage> opened = open_image(filename, open);
            if (opened.is_error())
                return could_not_open(filename, opened.error().message);
            std::shared_ptr<BlockImage> image(std::move(opened.value().image));
            bool locked = false;
            TRY(open_tray(drive, name_given(args), args.value("force", false), locked));
            TRY(remove_medium(drive, name_given(args)));
            // A recording keeps the file's name, format and mode: its replay
            // opens the image again at the same point.
            MediumChange insert(TrayAction::Insert);
            insert.file = filename;
            insert.format = open.format;
            insert.read_only = open.read_only;
            const TrayState state = TRY(tray(drive, insert, image));
            set_medium(drive, image, filename, open.read_only);
            if (state.moved)
                tray_moved(drive, false);
            return Json::object();
        });
}
