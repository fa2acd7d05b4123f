// The whole PC as one object (docs/coding-style.md "State"): guest memory,
// the buses, the board and its devices, the Hyper-V partition and the vCPUs
// behind their backend interface (accel/vcpu_backend.h). It is built from a
// configuration alone, so a test can make one in-process; a kernel is loaded
// into it as a separate step; run() runs it until something ends the run
// and says what did. Printing and exit statuses are the frontend's.
#pragma once

#include "accel/vcpu_backend.h"
#include "mmu/base/error_or.h"
#include "mmu/bus/msr_bus.h"
#include "mmu/bus/port_bus.h"
#include "mmu/physical_memory.h"
#include "paravirt/hv_test_device.h"
#include "paravirt/vmbus/fcopy_ic.h"
#include "paravirt/vmbus/heartbeat_ic.h"
#include "paravirt/vmbus/kvp_ic.h"
#include "paravirt/vmbus/shutdown_ic.h"
#include "paravirt/vmbus/vss_ic.h"
#include "paravirt/vmbus/timesync_ic.h"
#include "paravirt/vmbus/netvsp.h"
#include "paravirt/vmbus/storvsp.h"
#include "paravirt/vmbus/vmbus_server.h"
#include "platform/block/block_image.h"
#include "platform/board/pc_board.h"
#include "platform/boot/bios_image.h" // for the frontend: read_bios_image
#include "platform/clock/virtual_clock.h"
#include "platform/host/command_queue.h"
#include "platform/machine/hyperv_glue.h"
#include "platform/machine/machine_input.h"
#include "platform/machine/vcpu_threads.h"
#include "platform/net/e1000.h"
#include "platform/net/net_backend.h"
#include "platform/serial/uart16550.h"
#include "platform/storage/scsi_bus.h"
#include "platform/storage/scsi_disk.h"
#include "platform/testdev/debug_console.h"
#include "platform/testdev/debug_exit.h"
#include "platform/testdev/pc_testdev.h"

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

// Where a serial port's bytes go (the frontend: stdout or a file; a test: a
// string). Empty: discarded.
using ByteSink = std::function<void(u8)>;

// A disk on the IDE controller (--drive). The image is opened by whoever
// makes the machine and shared with the machines of later reboots; the
// machine flushes it when it is destroyed.
struct MachineDrive {
    std::shared_ptr<BlockImage> image;
    // 0 primary master, 1 primary slave, 2 secondary master, 3 secondary slave.
    unsigned index = 0;
    // An ATAPI CD/DVD-ROM drive with this image as its disc (media=cdrom);
    // `image` is null when the drive is empty (after a QMP eject).
    bool cdrom = false;
    // A disk on the synthetic SCSI controller (storvsp over VMBus; needs the
    // enlightenments) at LUN `index`, instead of an IDE slot.
    bool scsi = false;
};

// A CD-ROM tray as the machine reports it after a TrayAction.
struct TrayState {
    bool open = false;
    bool locked = false;
    bool moved = false; // the action opened or closed it
};
// TrayAction and MediumChange: platform/machine/machine_input.h.

// A network adapter (--nic): an e1000 at 00:03.0 or the synthetic adapter
// on VMBus (netvsp; needs the enlightenments) with this MAC address, plugged
// into `backend`, which the frontend made and which outlives the machines of
// every reboot.
struct MachineNic {
    enum class Model : u8 { E1000, Netvsc };
    std::shared_ptr<NetBackend> backend;
    MacAddress mac{};
    Model model = Model::E1000;
    // The QMP device id of a synthetic adapter added while the machine runs
    // (device_add; empty for --nic's).
    std::string id;
};

struct MachineConfig {
    u64 memory_bytes = 512ull << 20;
    unsigned cpu_count = 1;
    CpuVendor cpu_vendor = CpuVendor::Intel;
    // CpuidModel::apply_feature_spec narrowing ("-avx2,-aes"); empty: none.
    std::string cpu_features;
    // Virtual time derives from retired instructions (and idle skips), the
    // RTC starts at a fixed date: the same inputs give the same run.
    bool deterministic = false;
    // The Hyper-V partition interface (--enlightenments on|off).
    bool enlightenments = true;
    bool jit = true; // block translation (cpu/jit/); off: interpreter only
    // Name translated blocks for host profilers in /tmp/perf-PID.map (--perfmap).
    bool perf_map = false;
    // What runs the vCPUs (--accel): the interpreter and JIT, or Linux KVM
    // (docs/kvm.md); the devices are the same either way.
    enum class Accel : u8 { Interp, Kvm };
    Accel accel = Accel::Interp;
    // A backend whose vCPUs can run at once on threads of their own (KVM)
    // does so (--accel kvm,thread=multi); otherwise they take turns on the
    // machine's thread. Off by default: docs/kvm.md "Threads".
    bool vcpu_threads = false;
    // Tests: makes the accelerator in place of `accel`'s.
    std::function<std::unique_ptr<Accelerator>(const AcceleratorWiring&)> make_accelerator;
    // kvm-unit-tests' Hyper-V test device at port 0x3000 (--hyperv-test-device).
    bool hyperv_test_device = false;
    bool pc_testdev = false;
    // The system ROM to boot through (read_bios_image); empty: a kernel is
    // loaded directly (load_kernel).
    std::vector<u8> bios;
    ByteSink com1_output;
    ByteSink com2_output;
    // QEMU's debug console at port 0x402 (--debugcon), where SeaBIOS logs;
    // empty: no device there.
    ByteSink debugcon_output;
    // Called before every instruction of every vCPU (--trace); empty: none.
    VcpuBackend::TraceHook trace;
    // Whether host input can still arrive (a terminal on stdin): with no
    // timer armed, halted vCPUs then wait for it instead of ending the run.
    bool input_can_wake = false;
    // Commands from the host (QMP, the console): run() runs them at its
    // HostPoll points, and idle or paused waits end when one is posted.
    // Null: nothing but the HostPoll talks to the machine.
    CommandQueue* commands = nullptr;
    std::vector<MachineDrive> drives;
    std::optional<MachineNic> nic;
    // Synthetic adapters added at run time (Machine::hot_add_nic), in the
    // order added; the frontend keeps them for the next reboot, as Hyper-V
    // keeps an added adapter with the machine.
    std::vector<MachineNic> added_nics;
    // The host's key-value pool (the KVP service's External pool), kept by
    // the frontend across reboots as Hyper-V keeps it with the machine.
    std::map<std::string, std::string> kvp_host_items;
};

// The kernel a machine boots: a multiboot image or a Linux bzImage, chosen
// by the file's content.
struct KernelSpec {
    std::string path;
    // The name the guest sees first on its command line (QEMU shows the path
    // as given on its own command line).
    std::string name;
    std::string append;
    std::optional<std::string> initrd;
};

// What the guest made the machine do so far (--stats): port and MMIO
// accesses (the device exits a hardware VMM would take) and the external
// interrupts its vCPUs took.
struct MachineStats {
    u64 port_accesses = 0;
    u64 mmio_accesses = 0;
    u64 interrupts = 0;
    // VMBus (docs/vmbus.md): channel-management messages both ways, and
    // channel signals guest to host (HvSignalEvent) and host to guest.
    u64 vmbus_messages = 0;
    u64 vmbus_signals_in = 0;
    u64 vmbus_signals_out = 0;
    // Guest requests the VMBus host refused (malformed or impossible; a
    // well-behaved guest makes none).
    u64 vmbus_refused = 0;
    // The heartbeat integration service: the state the guest left it in
    // (HeartbeatIc::state_name, or "not offered" without the
    // enlightenments), requests answered and missed; time-sync messages sent.
    std::string heartbeat = "not offered";
    u64 heartbeats_answered = 0;
    u64 heartbeats_missed = 0;
    u64 time_sync_messages = 0;
    u64 msr_accesses = 0; // to the devices' MSRs (the LAPIC's, the synthetic ones)
    VcpuExitCounts exits; // a hardware backend's exits to viridian
    // The synthetic network adapter (empty without one): frames received on
    // each of its channels (the primary first, then the vRSS sub-channels
    // the guest opened), and whether the guest turned RSS on.
    std::vector<u64> netvsc_frames_by_channel;
    bool netvsc_rss = false;
    u64 netvsc_large_sends = 0; // the guest's packets the host cut into segments
};

// One integration service as QMP x-query-integration-services shows it.
struct IntegrationServiceState {
    std::string name;  // "shutdown", "heartbeat", "time-sync", "kvp", "vss", "fcopy"
    // "not offered" (no enlightenments), "closed", "negotiating", "ready";
    // the heartbeat's, the backup service's and the file copy's own states
    // (HeartbeatIc::state_name, VssIc::state_name, FcopyIc::state_name)
    // once negotiated.
    std::string state;
    u32 version = 0; // the negotiated service version ((major << 16) | minor), 0 before
};

// A host file to copy into the guest (QMP x-guest-file-copy; Hyper-V's
// Copy-VMFile), and how the last copy went (x-query-guest-file-copy).
struct FileCopyRequest {
    std::string source;      // the host's file
    std::string destination; // absolute, with the file name, in the guest
    bool create_path = false;
    bool overwrite = false;
};
struct FileCopyStatus {
    std::string state; // FcopyIc::state_name, or "not offered"
    std::string source, destination;
    u64 size = 0, written = 0;
    std::string error; // why it failed, empty otherwise
};

// Why run() returned.
struct RunOutcome {
    enum class Kind {
        GuestExit,        // the guest wrote the debug-exit port: `status`
        PowerOff,         // ACPI S5
        Reset,            // the guest reset the machine (0xCF9, port 0x92, ...)
        TripleFault,      // on vCPU `vcpu`, by `fault`
        InstructionLimit, // run()'s limit was reached
        HaltedForever,    // every vCPU halted and nothing can wake them
        GuestCrash,       // the Hyper-V crash MSRs: `crash`
        HostStop,         // the HostPoll asked: `status`
        Checkpoint,       // the instruction count set by stop_at() was reached
        DebugStop,        // the debugger's breakpoint, watchpoint or step on `vcpu`: `debug`
    };
    Kind kind = Kind::PowerOff;
    int status = 0;
    unsigned vcpu = 0;
    Fault fault{};
    std::optional<HvCrashReport> crash;
    // Reset: the host asked for it (Machine::request_reset, QMP
    // system_reset), not the guest.
    bool by_host = false;
    bool suspended = false; // HaltedForever: in ACPI S3 with no wake event left
    DebugEvent debug{};     // DebugStop: what stopped the vCPU

    static RunOutcome of(Kind kind, int status = 0)
    {
        RunOutcome outcome;
        outcome.kind = kind;
        outcome.status = status;
        return outcome;
    }
};

// What the run loop asks of whoever runs the machine (the frontend's console
// now): called about every QUANTUM retired instructions and after every idle
// wait; it may feed input (Machine::serial_input) and returns a status to
// stop the run with (RunOutcome::Kind::HostStop), or nothing to go on.
using HostPoll = std::function<std::optional<int>()>;
// Host work that may use the time every vCPU spends waiting for an interrupt
// (an outgoing migration's sending): in host-time mode the run loop calls it
// instead of sleeping, with the time until the next timer deadline (at most
// 10 ms) as its budget; it returns false when it has nothing to do, and the
// loop sleeps as before. On the machine's thread, like the HostPoll.
using IdleWork = std::function<bool(u64 budget_ns)>;

class Machine {
public:
    // Instructions per round of the run loop. With one vCPU it runs them all
    // in one call; with several, each runs VCPU_SLICE instructions in turn
    // (round-robin on this thread, so a run is deterministic) and PAUSE ends a
    // slice early, so a vCPU spinning on a lock lets the holder run.
    static constexpr u64 QUANTUM = 100000;
    static constexpr u64 VCPU_SLICE = 20000;
    // The shortest slice when a timer deadline is near or past.
    static constexpr u64 MIN_TIMER_SLICE = 100;

    // A powered-on machine: firmware tables in place, every vCPU at its
    // reset state (the boot vCPU at F000:FFF0, the others waiting for SIPI).
    static ErrorOr<std::unique_ptr<Machine>> create(const MachineConfig& config);
    ~Machine();
    Machine(const Machine&) = delete;
    Machine& operator=(const Machine&) = delete;

    // Loads a kernel and points the boot vCPU at its entry.
    ErrorOr<void> load_kernel(const KernelSpec& kernel);
    // Boots through the system ROM (MachineConfig::bios) instead: the boot
    // vCPU at its power-on state, at the reset vector F000:FFF0.
    void start_firmware() { m_vcpus[0]->backend->reset(); }

    // Runs until the guest or the host ends the run, or until
    // `max_instructions` more have retired (all vCPUs together).
    RunOutcome run(const HostPoll& poll = {}, std::optional<u64> max_instructions = {});

    // Ends run() with RunOutcome::Kind::Checkpoint at the first boundary
    // between rounds of the run loop at or after `retired` instructions (all
    // vCPUs together). Such a boundary is where an uninterrupted run passes
    // too, so a machine saved there and restored runs on exactly as it would
    // have (deterministic mode).
    void stop_at(std::optional<u64> retired) { m_stop_at = retired; }
    // Work done in the guest's idle waits instead of sleeping (IdleWork).
    void set_idle_work(IdleWork work) { m_idle_work = std::move(work); }

    // The whole machine but RAM, in a fixed order: vCPUs, clock, board,
    // serial ports, the Hyper-V partition (platform/machine/snapshot.h adds
    // the header and RAM). Fails (v.fail) for devices that have no saved
    // state (the kvm-unit-tests test devices).
    void visit_state(StateVisitor& v);
    const MachineConfig& config() const { return m_config; }

    // Instructions retired by all vCPUs together.
    u64 retired() const;
    MachineStats stats() const;
    // Shutdown, heartbeat, time sync, KVP, VSS and file copy, in that order.
    std::vector<IntegrationServiceState> integration_services() const;
    // The key-value pair service (QMP x-query-kvp, x-kvp-set,
    // x-kvp-delete; docs/vmbus.md): null without the enlightenments.
    KvpIc* kvp() { return m_kvp_ic.get(); }
    // The backup service (QMP x-vss-freeze, x-vss-thaw): null likewise.
    VssIc* vss() { return m_vss_ic.get(); }
    // ---- Guest file copy (platform/machine/machine_file_copy.cpp) ----
    // Opens the host's file and starts copying it into the guest through
    // the file copy service; the error (one sentence) when it cannot start.
    // The copy goes on as the guest answers; file_copy_status() tells how
    // far it got. A reboot ends a copy under way (the new machine has a new
    // service; the guest's daemon removes nothing it had not finished).
    std::optional<std::string> start_file_copy(const FileCopyRequest& request);
    std::optional<std::string> cancel_file_copy();
    FileCopyStatus file_copy_status() const;
    unsigned vcpu_count() const { return static_cast<unsigned>(m_vcpus.size()); }
    CpuState vcpu_state(unsigned vcpu) const { return m_vcpus[vcpu]->backend->get_state(); }
    void set_vcpu_state(unsigned vcpu, const CpuState& state) { m_vcpus[vcpu]->backend->set_state(state); }
    PhysicalMemory& memory() { return m_memory; }
    u64 vcpu_retired(unsigned vcpu) const { return m_vcpus[vcpu]->backend->retired(); }
    // A byte typed on the host for COM1.
    void serial_input(u8 byte) { host_input({HostInput::Kind::SerialByte, byte, {}}); }
    // Record and replay (docs/replay.md): every host input below goes
    // through the log, which records it or (replaying) drops it; the log
    // applies recorded inputs with apply_input.
    void set_input_log(MachineInputLog* log) { m_input_log = log; }
    void apply_input(const HostInput& input);

    // Host commands, called on the machine's thread (from a CommandQueue
    // command or the HostPoll). A paused machine runs no instructions and
    // fires no timers; in host mode its virtual time stands still (the gap
    // is hidden as host preemption is), as QEMU's stopped VM clock does.
    void pause()
    {
        // Reading the clock ends a pending idle wait's claim on host time, so
        // the paused interval is hidden rather than counted as idle.
        (void)m_clock.now_ns();
        m_paused = true;
    }
    void resume() { m_paused = false; }
    bool paused() const { return m_paused; }
    // QMP system_powerdown: through the shutdown integration service when
    // the guest has opened it (as Hyper-V's Stop-VM), else the power button.
    void request_powerdown() { host_input({HostInput::Kind::Powerdown, 0, {}}); }
    // The ACPI fixed power button (QMP system_powerdown): the guest's OSPM
    // sees PWRBTN_STS and an SCI, and decides what to do.
    void press_power_button() { host_input({HostInput::Kind::PowerButton, 0, {}}); }
    // Ends the run with a host reset (RunOutcome::Kind::Reset, by_host).
    void request_reset() { host_input({HostInput::Kind::Reset, 0, {}}); }
    // QMP set_link: the network adapter's cable (no adapter: nothing).
    void set_nic_link(bool up) { host_input({HostInput::Kind::SetLink, up ? 1u : 0u, {}}); }
    // The network adapter's receive filter (QMP query-rx-filter); nothing
    // without an adapter.
    std::optional<RxFilter> nic_rx_filter() const;
    // QMP's tray and medium commands on the CD-ROM drive of
    // config.drives[drive] (platform/machine/machine_media.cpp); a drive
    // that is not one reports a closed, unlocked tray and does nothing.
    // Every action but Query is a host input (Kind::Medium): recorded, or
    // dropped while replaying. An Insert puts `image` in, which the host
    // opened from `change.file`; a recorded insert, with no image, is
    // opened here from the file the change names.
    TrayState tray(size_t drive, const MediumChange& change, std::shared_ptr<BlockImage> image = {});
    // Told when the guest opens or closes a CD-ROM tray itself.
    void set_tray_listener(std::function<void(size_t drive, bool open)> listener);
    // Told of every tray or medium action applied, live or replayed, with
    // the image an Insert put in and the tray after it: the host's view of
    // the drives (QMP query-block, the next reboot's drives) follows it.
    using MediumListener = std::function<void(size_t drive, const MediumChange& change,
                                              const std::shared_ptr<BlockImage>& image, const TrayState& state)>;
    void set_medium_listener(MediumListener listener) { m_medium_listener = std::move(listener); }
    // Each drive's disc (null: none) and the insert that put it there
    // (action Query: the disc the machine started with).
    struct DriveDisc {
        std::shared_ptr<BlockImage> image;
        MediumChange inserted;
    };
    const std::vector<DriveDisc>& discs() const { return m_discs; }
    // A replay going back (replay_log.cpp): the discs of an earlier point go
    // back in their drives before that point's state is loaded (which sets
    // the trays); the medium listener hears of each (an Insert, or Remove).
    void restore_discs(const std::vector<DriveDisc>& discs);
    // A disk for `image`, made as the machine makes its drives' (the I/O
    // off the vCPU thread).
    std::unique_ptr<BlockDevice> make_block_device(std::shared_ptr<BlockImage> image);
    // ---- Disks hot-plugged on the synthetic SCSI controller (platform/machine/machine_hotplug.cpp) ----
    // QMP device_add/device_del, as on Hyper-V a disk added to or removed
    // from a running machine's SCSI controller: the guest is told to scan
    // its bus (storvsp's ENUMERATE_BUS). `drive` (scsi, LUN in `index`)
    // joins the machine's drives (last, as the frontend keeps them for the
    // next reboot); a removed disk finishes its requests and is flushed
    // first. The error, worded as QEMU words it, when it cannot be.
    std::optional<std::string> hot_add_scsi_disk(const MachineDrive& drive);
    std::optional<std::string> hot_remove_scsi_disk(u8 lun);
    // A synthetic network adapter (netvsc) added to the running machine:
    // offered on VMBus at once, and joining the machine's added_nics. Its
    // removal rescinds the channel (the guest's driver lets go of it; the
    // relid is reused only after the guest released it) and stops its
    // frames. platform/machine/machine_network.cpp.
    std::optional<std::string> hot_add_nic(const MachineNic& nic);
    std::optional<std::string> hot_remove_nic(const std::string& id);
    // ---- Backends (platform/machine/machine_accel.cpp; docs/kvm.md "Switching") ----
    // The backend that runs the vCPUs now.
    MachineConfig::Accel accelerator() const { return m_running_accel; }
    // A machine started on KVM can move its vCPUs to the interpreter and
    // back (its CPU model is what both run, its hypercall page the KVM
    // gate, which the interpreter takes too); one started on the
    // interpreter has no KVM VM to move to.
    bool can_switch_accelerator() const { return m_config.accel == MachineConfig::Accel::Kvm; }
    // Moves every vCPU to `target` between rounds (on the machine's thread,
    // as a host command): each finishes what it had under way (quiesce), and
    // its state goes to the other backend, where it goes on. The KVM vCPUs
    // wait, parked, while the interpreter runs; the interpreter's are made
    // afresh each time, so no translation of code that the guest rewrote
    // under KVM survives. The devices, clock and partition stay as they are.
    // Returns the reason, worded for QMP, when it cannot be done.
    std::optional<std::string> switch_accelerator(MachineConfig::Accel target);
    u64 accelerator_switches() const { return m_accel_switches; }
    // How long the last switch kept the guest stopped, in host nanoseconds.
    u64 last_switch_ns() const { return m_last_switch_ns; }

    // ---- A debugger (platform/machine/machine_debug.cpp; the gdb stub) ----
    // Breakpoints and watchpoints on every vCPU, kept in the emulator: run()
    // returns DebugStop when one stops a vCPU (all-stop: the others stop
    // with it). Calling run() again continues every vCPU.
    void set_debug_points(const std::vector<u64>& breakpoints, const std::vector<Watchpoint>& watchpoints);
    // The next run() single-steps vCPU `vcpu` and returns DebugStop: one
    // instruction (or one delivered event) while the others stay stopped; a
    // halted vCPU waits for its interrupt while the others run.
    void step_vcpu(unsigned vcpu);
    // Guest memory for a debugger, through `vcpu`'s page tables (or at
    // physical addresses): RAM and ROM only, never a device; the page tables'
    // accessed and dirty bits are left alone. Returns how many bytes from
    // the start were copied before an unmapped page or a hole.
    size_t debug_read(unsigned vcpu, u64 address, u8* out, size_t length, bool physical);
    size_t debug_write(unsigned vcpu, u64 address, const u8* data, size_t length, bool physical);
    // An AP that has not been started (or was sent INIT) waits for a SIPI.
    bool vcpu_waits_for_sipi(unsigned vcpu) const;

    // ---- Positions of a deterministic run (record/replay, docs/replay.md) ----
    // A point of the run: vCPU `vcpu` about to execute (or take) the unit
    // after its `units`-th (VcpuBackend::units). A stop inside a round and
    // the next run() go on in the slice where it stopped, so a run that
    // stops schedules as an uninterrupted one, and a position names one
    // machine state of a deterministic run.
    struct Position {
        unsigned vcpu = 0;
        u64 units = 0;
        bool operator==(const Position&) const = default;
    };
    // run() returns DebugStop (a Step on `vcpu`) at the first point where
    // the vCPU has `units` units and is about to run: inside its slice, or
    // at the start of its next one. Once: the stop clears it.
    void stop_at_position(std::optional<Position> position) { m_stop_position = position; }
    // run() returns DebugStop (a Step on the vCPU that runs then) at the
    // first point where all vCPUs together have retired `retired`
    // instructions (the count --mark-output prints) and one is about to
    // run. Once.
    void stop_at_retired(std::optional<u64> retired) { m_stop_retired = retired; }
    u64 vcpu_units(unsigned vcpu) const { return m_vcpus[vcpu]->backend->units(); }
    // Every vCPU's units together: they only grow, one at a time.
    u64 units() const;
    // Where the machine stands for a debugger that last stopped on `vcpu`.
    Position position_of(unsigned vcpu) const { return {vcpu, vcpu_units(vcpu)}; }
    // run() returns Checkpoint at the first boundary between rounds where
    // every vCPU's units together reach `units` (where a replay snapshot
    // with that key was taken). Once.
    void stop_at_units(std::optional<u64> units) { m_stop_units = units; }
    // Ends the run() in progress (paused or not) with a DebugStop of kind
    // None: the debugger has work for the frontend between runs (reverse
    // execution restores a snapshot).
    void interrupt_for_debugger();
    // The machine was put back to a point between rounds (a replay
    // snapshot): no round, stop or ending is pending any more.
    void forget_round();

    // Runs every disk request's completion now (before a snapshot, at exit).
    void drain_disks();
    // Requests submitted to the disks and not yet completed.
    void create_scsi_controller();
    void attach_scsi_disk(const MachineDrive& drive, std::unique_ptr<BlockDevice> disk);
    size_t disks_in_flight() const;
    // The virtual time a disk request takes with --deterministic: its
    // completion is delivered then, so a run replays exactly.
    static constexpr u64 DETERMINISTIC_DISK_LATENCY_NS = 20'000;
    // Where a deterministic run's wall clock starts (the RTC, time sync):
    // 2026-01-01 00:00:00 UTC, in seconds since 1970.
    static constexpr i64 DETERMINISTIC_START = 1767225600;

    // ---- Replay snapshots (platform/machine/machine_rewind.cpp; platform/replay/replay_snapshots.h) ----
    // A disk request is in flight or waits for its deterministic completion
    // time: saving the state now would drain it (visit_state), which changes
    // the run.
    bool disk_requests_pending() const;
    // The retired count from which run() next asks the host (poll_host): not
    // the guest's state, but where the run is; a machine put back to a point
    // must ask the host again where it did then.
    u64 next_host_poll() const { return m_next_host_poll; }
    // Puts this machine, which has run since, back to the state that
    // visit_state saved as `state` (between rounds of run()): vCPUs, clock
    // and devices load, the vCPUs' TLBs are dropped, and run() next polls
    // the host at `next_host_poll`. Before it: drain_disks() (a completion
    // in flight belongs to the abandoned future; it may write RAM), then
    // RAM, which devices read as they load. Refused while a disk request is
    // pending.
    ErrorOr<void> rewind_state(std::vector<u8> state, u64 next_host_poll);

private:
    // One virtual processor: the backend that runs it, and the start-up
    // requests its local APIC has received since it last ran (applied
    // between slices, never inside another vCPU's instruction).
    struct Vcpu {
        std::unique_ptr<VcpuBackend> backend;
        // Its KVM vCPU while the interpreter runs it (switch_accelerator).
        std::unique_ptr<VcpuBackend> parked;
        bool pending_init = false;
        std::optional<u8> pending_sipi;
        // On a thread of its own: how many times its local APIC has had
        // something new for it (an interrupt, NMI, INIT or SIPI). A halted
        // vCPU's thread waits for this to change.
        u64 wakes = 0;
    };

    explicit Machine(const MachineConfig& config);
    ErrorOr<void> boot_linux(const KernelSpec& kernel);
    std::unique_ptr<Accelerator> make_accelerator();
    AcceleratorWiring accelerator_wiring();
    void create_vcpus();
    void connect_board();
    void offer_integration_services();
    // UTC in ns since 1970 as the guest should see it: the host's clock, or
    // with --deterministic DETERMINISTIC_START plus virtual time.
    u64 utc_time_ns() const;
    void connect_vcpu(unsigned index);
    void apply_startup_requests(Vcpu& vcpu);
    void attach_drives();
    void attach_nic();
    void attach_boot_nic();
    // A synthetic adapter: the channel it is offered on, the frames it is
    // sent tagged with.
    struct SyntheticNic {
        MachineNic nic;
        u32 tag = 0;
        u32 relid = 0;
        std::unique_ptr<Netvsp> device;
    };
    std::unique_ptr<SyntheticNic> make_netvsc(const MachineNic& nic, u32 tag);
    // Frames the backend receives reach the adapter `tag` names (0: --nic's)
    // on the machine's thread.
    void route_frames(NetBackend& backend, u32 tag);
    Netvsp* netvsc(u32 tag) const;
    // RunOnMachine in deterministic mode: `deliver` runs at a fixed point
    // of virtual time.
    void deliver_at_disk_latency(std::function<void()> deliver);
    void run_due_disk_deliveries();
    // The start of a round: the host's poll, a pause, the limits; starts
    // m_round unless paused. Returns why the run ends, if it does.
    std::optional<RunOutcome> begin_round(const HostPoll& poll, std::optional<u64> max_instructions,
                                          u64 start);
    std::optional<RunOutcome> poll_host(const HostPoll& poll);
    // The host's commands and its HostPoll, without the input log's point.
    std::optional<RunOutcome> run_host_commands(const HostPoll& poll);
    // Waits (100 ms at most) for a host command while paused.
    void wait_for_host();
    // Runs every vCPU that can run for one slice, from where m_round says.
    // Returns why the run ended, if something ended it (m_round then says
    // where the next run() goes on).
    std::optional<RunOutcome> run_round();
    // The rest of vCPU `i`'s slice, up to a stop point.
    std::optional<RunOutcome> run_slice(unsigned i);
    // The outcome of vCPU `i`'s TripleFault exit.
    RunOutcome triple_fault(unsigned i) const;
    // The units vCPU `i` (now at `now`) may reach before a stop point.
    u64 stop_cap(unsigned i, u64 now) const;
    RunOutcome position_stop(unsigned i);
    u64 slice_until_next_timer(u64 slice) const;
    // Every vCPU is halted: waits (in virtual time) for the next timer.
    // Returns false when nothing can ever wake any of them.
    bool wait_for_interrupt();
    // Back from ACPI S3: the vCPUs reset, the BSP in real mode at the OS's
    // waking vector; false when the OS set none (then the machine resets).
    bool resume_from_suspend();
    // Ends the slice of the vCPU that is running (a device asked to stop),
    // or, when they run at once, the round.
    void stop_running_vcpu();
    // ---- vCPUs on threads of their own (KVM; docs/architecture.md "Threads") ----
    bool runs_in_parallel() const { return m_config.vcpu_threads && m_accel->vcpus_on_threads(); }
    // One round with every vCPU on its own thread for the round's time,
    // while this thread fires the timers.
    std::optional<RunOutcome> run_parallel_round();
    // vCPU `index`'s part of it, on its thread.
    void run_vcpu_thread(unsigned index);
    // Until vCPU `vcpu`'s wakes differ from `wakes` or the round ends.
    void wait_for_vcpu_wake(std::unique_lock<std::mutex>& devices, const Vcpu& vcpu, u64 wakes);
    // Its local APIC has something new for vCPU `index` (device lock held).
    void vcpu_woken(unsigned index);
    // Ends the parallel round now: every vCPU leaves the guest.
    void stop_all_vcpus();
    void end_run(RunOutcome outcome);
    void host_input(HostInput input);
    // A tray or medium action applied (machine_media.cpp), live or recorded.
    TrayState apply_medium(size_t drive, const MediumChange& change, std::shared_ptr<BlockImage> image);
    // While paused: waits for a host command and takes it.
    std::optional<RunOutcome> wait_while_paused(const HostPoll& poll);
    // The debugger (machine_debug.cpp): each vCPU's set; whether run_round
    // leaves vCPU `index` out while another single-steps; the outcome of a
    // vCPU's DebugStop.
    void apply_guest_debug();
    bool skipped_for_step(unsigned index);
    RunOutcome debug_stop(unsigned index);

    MachineConfig m_config;
    // The device lock (QEMU's big lock): while vCPUs run on threads of their
    // own, every device access, timer and interrupt goes under it. Before
    // everything it guards.
    std::mutex m_device_lock;
    std::condition_variable m_vcpu_wake;    // a vCPU thread's wait: its wakes, the round's end
    std::condition_variable m_machine_wake; // the machine thread's: an earlier deadline, the vCPUs done
    PhysicalMemory m_memory;
    PortBus m_ports;
    MsrBus m_msrs;
    VirtualClock m_clock;
    CpuidModel m_cpuid;
    std::unique_ptr<Accelerator> m_accel; // before m_vcpus: they use what it shares
    std::unique_ptr<Accelerator> m_parked_accel; // KVM's, while the interpreter runs the vCPUs
    MachineConfig::Accel m_running_accel = MachineConfig::Accel::Interp;
    u64 m_tsc_hz = 0; // the guest's TSC rate: the first backend's, whichever runs later
    u64 m_accel_switches = 0;
    u64 m_last_switch_ns = 0;
    u64 m_dropped_interrupts = 0; // taken by interpreter vCPUs since switched away
    std::vector<std::unique_ptr<Vcpu>> m_vcpus;
    Uart16550 m_uart;
    // COM2 at 0x2F8, IRQ 3 (declared in the DSDT).
    Uart16550 m_com2;
    DebugExit m_debug_exit;
    std::unique_ptr<DebugConsole> m_debugcon;
    std::unique_ptr<PcBoard> m_board;
    std::unique_ptr<HypervGlue> m_hyperv;
    std::unique_ptr<HvTestDevice> m_hv_test_device; // after m_hyperv: it uses the partition
    std::unique_ptr<VmbusServer> m_vmbus;           // likewise; with the enlightenments only
    // The synthetic SCSI controller, always there with the enlightenments
    // (as in a Hyper-V Generation 2 machine), so disks can be added while
    // the guest runs: its disks by LUN behind one storvsp channel and its
    // sub-channels.
    std::vector<std::unique_ptr<ScsiDisk>> m_scsi_disks;
    ScsiBus m_scsi_bus;
    std::unique_ptr<Storvsp> m_storvsp;
    // The integration services, with the VMBus: always offered, as on Hyper-V.
    std::unique_ptr<ShutdownIc> m_shutdown_ic;
    std::unique_ptr<HeartbeatIc> m_heartbeat_ic;
    std::unique_ptr<TimesyncIc> m_timesync_ic;
    std::unique_ptr<KvpIc> m_kvp_ic;
    std::unique_ptr<VssIc> m_vss_ic;
    std::unique_ptr<FcopyIc> m_fcopy_ic;
    FileCopyRequest m_file_copy; // the last copy started, for its status
    u32 m_shutdown_relid = 0, m_heartbeat_relid = 0, m_timesync_relid = 0, m_kvp_relid = 0, m_vss_relid = 0,
        m_fcopy_relid = 0;
    u32 m_storvsp_relid = 0;
    std::unique_ptr<PcTestdev> m_pc_testdev;
    // The network adapter, shared so that a frame posted for it finds it
    // gone (a weak pointer) after this machine ends; or the synthetic one.
    std::shared_ptr<E1000> m_nic;
    // The synthetic adapters: --nic's (tag 0) when it is one, then those
    // added at run time (tags 1, 2, ... never reused in a machine's life,
    // so neither a frame nor a VMBus instance can reach the wrong one).
    std::vector<std::unique_ptr<SyntheticNic>> m_netvsc;
    u32 m_next_nic_tag = 1;
    // Why the run ends, once a device or the guest has said so.
    std::optional<RunOutcome> m_ending;
    std::optional<u64> m_stop_at;
    bool m_resume_pending = false; // a wake event ended S3; resume before the next round
    unsigned m_running = 0; // the vCPU whose slice is running
    bool m_paused = false;
    u64 m_next_host_poll = 0;
    Accelerator::RunSlices m_slices{QUANTUM, VCPU_SLICE}; // the backend's, where it has its own
    // Where disk completions are posted in host mode: the host's queue, or
    // the machine's own when it has none (tests). Shared, because the
    // network backend's receiver may be called after this machine ended.
    std::shared_ptr<CommandQueue> m_own_commands = std::make_shared<CommandQueue>();
    CommandQueue* m_commands = nullptr;
    IdleWork m_idle_work;
    // Deterministic mode: completions waiting for their virtual time.
    std::deque<std::pair<u64, std::function<void()>>> m_disk_deliveries;
    std::unique_ptr<ClockTimer> m_disk_timer;
    MachineInputLog* m_input_log = nullptr;
    MediumListener m_medium_listener;
    std::vector<DriveDisc> m_discs; // by config.drives index
    bool m_poll_again = false; // the next poll is the same point (paused)
    // Live frames for the adapter come through host_input; a frame posted
    // after this machine ended finds the token gone.
    std::shared_ptr<Machine*> m_alive = std::make_shared<Machine*>(this);
    GuestDebugSet m_guest_debug; // the debugger's, without the step
    std::optional<unsigned> m_step_vcpu;
    std::optional<Position> m_stop_position;
    std::optional<u64> m_stop_units;
    std::optional<u64> m_stop_retired;
    // Where run() left the round it returned from (a debug stop): the next
    // run() goes on from there, and only a new round polls the host.
    struct Round {
        bool active = false;
        unsigned next = 0;     // the vCPU to run next
        bool in_slice = false; // `next` stopped inside its slice
        u64 slice_end = 0;     // its units when that slice is over
        u64 slice = 0;         // the round's slice
        bool progressed = false; // some vCPU retired an instruction
    };
    Round m_round;
    // The parallel round under way (run_parallel_round), under the device lock.
    struct ParallelRound {
        bool active = false;
        bool over = false;        // the vCPUs stop (its time is up, or the run ends)
        bool progressed = false;  // some vCPU was not idle (halted, before its SIPI) at the end
        u64 end_ns = 0;           // host_monotonic_ns()
        u64 wake_at = ~0ull;      // the machine thread's next wake-up, in virtual time
        unsigned running = 0;     // vCPU threads still in the round
        std::optional<RunOutcome> fault; // the first vCPU's triple fault
    };
    ParallelRound m_parallel;
    // Last: its threads are joined before anything they use goes.
    VcpuThreads m_vcpu_threads;
};
