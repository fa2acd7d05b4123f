// The machine's QMP monitor (docs/qmp.md): the QMP sockets, the machine's
// commands (query-status, stop, cont, system_reset, system_powerdown, quit,
// query-cpus-fast, query-kvm, x-query-accel, x-switch-accel, migrate,
// migrate_cancel, query-migrate,
// migrate-set-capabilities, x-query-integration-services, set_link, and the
// block commands query-block, eject, blockdev-open-tray, blockdev-close-tray,
// blockdev-remove-medium, blockdev-change-medium, and for disks added
// while the guest runs blockdev-add, blockdev-del, device_add, device_del)
// and its events (STOP, RESUME, RESET, POWERDOWN, SHUTDOWN, MIGRATION,
// MIGRATION_PASS, DEVICE_TRAY_MOVED, DEVICE_DELETED).
// Runs on the event loop's thread; what a command does to the machine goes
// through the hooks, which the frontend runs on the machine's thread.
#pragma once

#include "frontend/qmp/qmp_server.h"
#include "frontend/qmp/qmp_session.h"
#include "platform/block/image_format.h"
#include "platform/machine/machine.h"
#include "platform/machine/migration.h"
#include "platform/net/slirp_backend.h"

#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

// A drive as QMP's block commands know it (qapi/block-core.json BlockInfo).
struct MonitorDrive {
    std::string device; // QEMU's name for the -drive: "ide0-hd0", "ide1-cd0", "scsi0-hd0"
    std::string qdev;   // the QOM path QEMU's pc machine gives its device; also its "id"
    bool cdrom = false; // removable, with a tray
    // The medium (null: none), as it was opened.
    std::shared_ptr<BlockImage> image;
    std::string file;
    std::string node_name;
    bool read_only = false;
    CacheMode cache = CacheMode::Writeback;
    int scsi_lun = -1; // a disk on the synthetic SCSI controller: its LUN
};

// The names QEMU 7.2 gives -drive if=ide (index N: "ide<N/2>-hd<N%2>", "cd"
// for a CD-ROM) and if=scsi (seven units a bus: "scsi<N/7>-hd<N%7>"), and
// the QOM paths of its pc machine with -nodefaults: the devices are made
// unattached after the vCPUs (and the NIC), the IDE ones in index order.
std::vector<MonitorDrive> monitor_drives(const std::vector<MachineDrive>& drives, unsigned cpus,
                                         bool nic);

// QEMU's id_wellformed (util/id.c), for device, node and netdev ids: a
// letter, then letters, digits, '-', '.', '_'.
bool well_formed_id(const std::string& id);

// Runs `change` on CD drive `drive` of the running machine (null between
// two machines) and keeps `drives` (what the next machine starts with)
// holding the drive's disc. On the machine's thread.
TrayState apply_tray_action(Machine* machine, std::vector<MachineDrive>& drives, size_t drive,
                            const MediumChange& change, std::shared_ptr<BlockImage> image);

// The KVP service's pools as x-query-kvp reports them.
struct KvpPools {
    std::string state; // the integration service's: "closed", "negotiating", "ready"
    std::map<std::string, std::string> auto_items, guest_items, host_items;
    bool refreshing = false;
    u64 reads = 0;
};

// What the commands ask of the machine. Each returns false when the
// machine's thread has ended (the command then fails with an error).
struct MachineMonitorHooks {
    unsigned cpu_count = 1;
    // The host thread that runs the vCPUs (QEMU reports each vCPU's thread;
    // viridian's vCPUs share one).
    std::function<long()> vcpu_thread_id;
    // Pauses or resumes and returns once the machine has done so.
    std::function<bool(bool paused)> set_paused;
    // Asked, not waited for: the machine acts at its next poll point.
    std::function<bool()> reset;
    std::function<bool()> power_button;
    std::function<bool()> quit;
    // Starts sending the machine to `uri` (checked: file:, exec: or
    // tcp:HOST:PORT) at the machine's next poll point; the machine reports
    // through MachineMonitor::migration_update. cancel_migration asks it to
    // give up.
    std::function<bool(const std::string& uri)> migrate;
    std::function<bool()> cancel_migration;
    // The names set_link knows the network adapter by (none: no adapter),
    // and the cable: up or down, as the guest will see it.
    std::vector<std::string> nic_names;
    std::function<bool(bool up)> set_link;
    // The adapter's receive filter, read on the machine's thread (nothing
    // while no machine runs).
    std::function<bool(std::optional<RxFilter>& out)> rx_filter;
    // Fills in the integration services' states, read on the machine's thread.
    std::function<bool(std::vector<IntegrationServiceState>& out)> integration_services;
    // The key-value pair service on the machine's thread: its pools (and,
    // with `refresh`, a new read of the guest's asked for), and a change
    // of the host's pool (a value, or none to delete), which `error`
    // refuses when set. Empty: no enlightenments.
    std::function<bool(bool refresh, KvpPools& out)> kvp_query;
    std::function<bool(const std::string& key, const std::optional<std::string>& value, std::string& error)>
        kvp_change;
    // The backup service on the machine's thread: asks the guest to freeze
    // (true) or thaw its filesystems; `error` set when it cannot be asked.
    // Empty: no enlightenments.
    std::function<bool(bool freeze, std::string& error)> vss_request;
    // Guest file copy on the machine's thread: x-guest-file-copy,
    // x-guest-file-copy-cancel (`error` set when refused) and
    // x-query-guest-file-copy. Empty: no enlightenments.
    std::function<bool(const FileCopyRequest& request, std::optional<std::string>& error)> file_copy_start;
    std::function<bool(std::optional<std::string>& error)> file_copy_cancel;
    std::function<bool(FileCopyStatus& out)> file_copy_status;
    // Non-empty: x-kvp-set, x-kvp-delete, x-vss-freeze, x-vss-thaw,
    // x-guest-file-copy and its cancel fail with this, and x-query-kvp does
    // not read the guest's pools again (not recorded yet).
    std::string integration_refused;
    // Non-empty: the commands that would change the guest (system_reset,
    // system_powerdown, set_link, migrate) fail with this (a replay's input
    // is its recording's).
    std::string guest_input_refused;
    // Non-empty: migrate fails with this (a recording hashes the dirty log
    // that migration reads).
    std::string migration_refused;
    // Non-empty: the tray and medium commands fail with this (a replay
    // takes no live input; a recording records them).
    std::string tray_refused;
    // The drives (query-block, eject, blockdev-*), and what a tray command
    // does, on the machine's thread (apply_tray_action). An insert's change
    // names the file, format and read-only mode the image was opened with.
    std::vector<MonitorDrive> drives;
    std::function<bool(size_t drive, const MediumChange& change, std::shared_ptr<BlockImage> image,
                       TrayState& out)>
        tray;
    // Disks hot-plugged on the synthetic SCSI controller (device_add
    // scsi-hd, device_del; frontend/machine_monitor_hotplug.cpp), on the
    // machine's thread: the disk joins (or leaves) the running machine and
    // the drives the next reboot starts with. `error` is set when the
    // machine refused. Empty functions: no SCSI controller (enlightenments off).
    std::function<bool(const MachineDrive& drive, std::optional<std::string>& error)> scsi_attach;
    // The backend that runs the vCPUs ("kvm" or "interp"), whether they can
    // move to the other (a machine started with --accel kvm) and how often
    // they have, read on the machine's thread (query-kvm, x-query-accel);
    // x-switch-accel's move there, `error` set when the machine refused.
    struct AccelState {
        std::string running;
        bool switchable = false;
        u64 switches = 0;
        u64 last_switch_ns = 0; // how long the last move kept the guest stopped
    };
    std::function<bool(AccelState& out)> accel_state;
    std::function<bool(const std::string& accel, std::optional<std::string>& error)> switch_accel;
    std::function<bool(u8 lun, std::optional<std::string>& error)> scsi_detach;
    // Network adapters added while the guest runs (netdev_add, device_add
    // netvsc, device_del, netdev_del; frontend/machine_monitor_nic_hotplug.cpp):
    // a user-mode network opened on the loop's thread, and on the machine's
    // thread the adapter joining (or leaving) the running machine and the
    // adapters the next reboot starts with; `error` is set when the machine
    // refused. Empty functions: no VMBus (enlightenments off).
    std::function<ErrorOr<std::shared_ptr<NetBackend>>(const SlirpOptions& options)> open_user_network;
    std::function<bool(const MachineNic& nic, std::optional<std::string>& error)> nic_attach;
    std::function<bool(const std::string& id, std::optional<std::string>& error)> nic_detach;
    // Non-empty: device_add and device_del fail with this (not recorded yet).
    std::string hotplug_refused;
    // Record and replay (qapi/replay.json; frontend/machine_monitor_replay.cpp):
    // "none", "record" or "play", the recording's file, and on the machine's
    // thread the run's instruction count (--mark-output's). replay_break
    // (none: delete it) and replay_seek answer an error message or nothing;
    // a seek or a break reached stops the machine (STOP).
    std::string replay_mode = "none";
    std::string replay_file;
    std::function<bool(u64& icount)> replay_icount;
    std::function<std::optional<std::string>(std::optional<u64> icount)> replay_break;
    std::function<std::optional<std::string>(u64 icount)> replay_seek;
};

// QEMU's ShutdownCause (qapi/run-state.json), for the SHUTDOWN and RESET
// events' "reason".
enum class ShutdownCause {
    HostError,
    HostQmpQuit,
    HostQmpSystemReset,
    HostSignal,
    HostUi,
    GuestShutdown,
    GuestReset,
    GuestPanic,
};
const char* shutdown_cause_name(ShutdownCause cause);
bool shutdown_cause_is_guest(ShutdownCause cause);

class MachineMonitor {
public:
    explicit MachineMonitor(EventLoop& loop, MachineMonitorHooks hooks, QmpClock clock = qmp_host_time);
    ~MachineMonitor();

    // Serves QMP on `address`; `on_connection` is told of each client.
    ErrorOr<void> listen(const ListenAddress& address, std::function<void()> on_connection = {});
    const std::vector<std::unique_ptr<QmpServer>>& servers() const { return m_servers; }

    // The machine's run state as query-status reports it. The frontend
    // sets it when a machine starts paused; the commands keep it.
    bool paused() const { return m_paused; }
    void set_paused(bool paused) { m_paused = paused; }

    // Events, sent to every client at once.
    void emit_event(std::string_view name, const Json& data = Json());
    void emit_reset(ShutdownCause cause);
    // Once: the machine's end after quit repeats nothing.
    void emit_shutdown(ShutdownCause cause);

    // Sends what is queued, then closes every client and server.
    void close();

    // The machine's thread, through the loop: where an outgoing migration
    // is. Sends MIGRATION and MIGRATION_PASS (when the "events" capability
    // is on) and, on completion, STOP: the source stays paused
    // ("postmigrate"), as in QEMU.
    void migration_update(const MigrationProgress& progress);
    // --incoming: "inmigrate" until the machine has been received.
    void set_incoming(bool incoming) { m_incoming = incoming; }

    // The guest moved CD drive `drive`'s tray: DEVICE_TRAY_MOVED.
    void tray_moved(size_t drive, bool open);
    // A replay applied a recorded tray or medium command (Machine's medium
    // listener): query-block shows its medium, and a tray it moved sends
    // DEVICE_TRAY_MOVED as the command did when recorded. An Insert that
    // names no file puts back a disc shown before (a replay gone back).
    void medium_replayed(size_t drive, const MediumChange& change, std::shared_ptr<BlockImage> image,
                         const TrayState& state);

    // Where more commands plug in.
    QmpCommands& commands() { return m_commands; }
    QmpMonitor& monitor() { return m_monitor; }

private:
    void add_run_state_commands();
    void add_cpu_commands();
    void add_accel_commands();
    void add_migration_commands();
    void add_network_commands();
    void add_block_commands();
    void add_replay_commands();
    void add_hotplug_commands();
    void add_netdev_commands();
    QmpResult device_add_nic(const Json& args);
    QmpResult device_del_nic(const std::string& id);
    // QEMU's device ids are one namespace: disks and adapters alike.
    bool device_id_taken(const std::string& id) const;
    void add_kvp_commands();
    void add_file_copy_commands();
    QmpResult device_add(const Json& args);
    // QEMU's "Could not open 'PATH': REASON" (block.c), the reason as the
    // block layer words it after the path.
    static QmpError could_not_open(const std::string& file, std::string why);
    ErrorOr<size_t, QmpError> find_drive(const Json& args) const;
    Json block_info(size_t drive);
    ErrorOr<TrayState, QmpError> tray(size_t drive, const MediumChange& change,
                                      std::shared_ptr<BlockImage> image = {});
    // Drive `drive` holds `image` (null: none), opened from `file`.
    void set_medium(size_t drive, std::shared_ptr<BlockImage> image, const std::string& file, bool read_only);
    // QEMU's do_open_tray and blockdev_remove_medium (blockdev.c): `name`
    // is the device or id the client gave.
    ErrorOr<void, QmpError> open_tray(size_t drive, const std::string& name, bool force,
                                      bool& locked);
    ErrorOr<void, QmpError> remove_medium(size_t drive, const std::string& name);
    bool migration_running() const;
    Json query_migrate() const;

    EventLoop& m_loop;
    MachineMonitorHooks m_hooks;
    // Every medium query-block has shown, by image: a replay going back
    // puts one in again without naming its file.
    struct KnownMedium {
        std::weak_ptr<BlockImage> image;
        std::string file;
        bool read_only = false;
    };
    std::vector<KnownMedium> m_known_media;
    QmpCommands m_commands;
    QmpMonitor m_monitor;
    std::vector<std::unique_ptr<QmpServer>> m_servers;
    bool m_paused = false;
    bool m_prelaunch = false; // reset while stopped (QEMU's RUN_STATE_PRELAUNCH)
    bool m_shutdown_sent = false;
    bool m_incoming = false;
    bool m_postmigrate = false; // paused by a completed migration
    std::optional<MigrationProgress> m_migration;
    bool m_cancelling = false;
    bool m_migration_events = false; // migrate-set-capabilities "events"
    u64 m_passes_sent = 0;           // MIGRATION_PASS events of this migration
    u64 m_next_node = 0;             // for the "#blockN" node names of new media
    // blockdev-add's nodes by node-name, and the devices device_add made.
    struct BlockNode {
        std::shared_ptr<BlockImage> image;
        std::string file;
        bool read_only = false;
        CacheMode cache = CacheMode::Writeback;
        std::string user; // the device that has it ("" : none)
    };
    std::map<std::string, BlockNode> m_nodes;
    struct HotDisk {
        std::string id;
        std::string node;
        u8 lun = 0;
    };
    std::vector<HotDisk> m_hot_disks;
    u64 m_anonymous_devices = 0; // QEMU's /machine/peripheral-anon/device[N]
    // netdev_add's networks by id, and the adapters device_add put on them.
    struct Netdev {
        std::shared_ptr<NetBackend> backend;
        std::string user; // the adapter on it ("": none)
    };
    std::map<std::string, Netdev> m_netdevs;
    struct HotNic {
        std::string id;
        std::string netdev;
    };
    std::vector<HotNic> m_hot_nics;
    unsigned m_macs_given = 0; // QEMU's 52:54:00:12:34:56 + N for adapters without one
};
