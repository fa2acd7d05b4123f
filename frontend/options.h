// The command line, in QEMU's spirit with GNU long options
// (`--kernel FILE` or `--kernel=FILE`). Parsing is a pure function from
// arguments to Options or one error message, so it is unit-tested without
// running a machine.
#pragma once

#include "cpu/state/cpu_vendor.h"
#include "mmu/base/types.h"
#include "mmu/base/error_or.h"
#include "platform/host/event_loop.h"
#include "platform/net/slirp_backend.h"
#include "platform/net/switch_port.h"
#include "platform/net/tap_backend.h"

#include <array>

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

struct SerialTarget {
    enum class Kind : u8 { Stdio, File, None }; // None: output discarded
    Kind kind = Kind::Stdio;
    std::string path; // for Kind::File
};

// Where a machine is saved to or restored from, as QEMU's migration URIs
// spell it: `file:PATH`, `exec:COMMAND` (a shell command that reads the
// snapshot on its stdin when saving, writes it on its stdout when restoring)
// or `tcp:HOST:PORT` (live migration: the target listens, the source
// connects).
struct MigrationUri {
    enum class Kind : u8 { File, Exec, Tcp };
    Kind kind = Kind::File;
    std::string target; // the path, the command, or HOST:PORT
    std::string host;   // Tcp
    u16 port = 0;       // Tcp
};
ErrorOr<MigrationUri> parse_migration_uri(std::string_view option, std::string_view text);

struct SaveAt {
    u64 instructions = 0;
    MigrationUri uri;
};

// --qmp: a QMP server socket, in QEMU's -qmp spelling
// (unix:PATH,server,wait=off or tcp:HOST:PORT,server,wait=off).
struct QmpSpec {
    ListenAddress address;
    // wait=on (QEMU's default for a server): the guest starts only once a
    // client has connected.
    bool wait = true;
};

// --drive, in QEMU's -drive spelling: file=PATH[,format=raw|vpc|vhd|vhdx]
// [,if=ide|scsi][,media=disk|cdrom][,readonly=on|off]
// [,cache=writeback|unsafe|none][,index=N][,snapshot=on|off] (docs/storage.md).
struct DriveSpec {
    enum class Interface : u8 { Ide, Scsi };
    enum class Media : u8 { Disk, Cdrom };
    enum class Cache : u8 { Writeback, Unsafe, None };
    static constexpr unsigned IDE_SLOTS = 4;   // primary/secondary x master/slave
    static constexpr unsigned SCSI_SLOTS = 64; // LUNs of the synthetic SCSI controller

    std::string file;
    std::string format; // "" = probe
    Interface interface = Interface::Ide;
    Media media = Media::Disk;
    bool read_only = false; // a cdrom always is
    // snapshot=on: the image opens read-only and the guest's writes stay in
    // memory (platform/block/overlay_image.h), as QEMU's -drive snapshot=on.
    bool snapshot = false;
    Cache cache = Cache::Writeback;
    // IDE: 0 primary master, 1 primary slave, 2 secondary master, 3
    // secondary slave. SCSI: the LUN. parse_options gives a drive without
    // one the next free index of its interface.
    std::optional<unsigned> index;
};
// One --drive value; the checks that need the other drives (a free index)
// are parse_options's.
ErrorOr<DriveSpec> parse_drive_spec(std::string_view text);

// --nic, in QEMU's -nic spelling (docs/network.md): `none`, or
// `user[,model=netvsc|e1000][,mac=52:54:00:XX:XX:XX][,hostfwd=[tcp|udp]:[HOSTADDR]:
// HOSTPORT-[GUESTADDR]:GUESTPORT]...[,restrict=on|off]`. Without model= the
// adapter is netvsc, the Hyper-V machine's own, or the e1000 when
// --enlightenments off leaves no VMBus (main.cpp decides).
// Or `switch,name=NAME[,type=private|internal][,model=...][,mac=...]`: a port
// on the virtual switch NAME that other viridian machines of this user share
// (platform/net/switch_port.h); internal gives the switch a host port with
// user-mode networking, which takes hostfwd and restrict
// (platform/net/switch_host_port.h).
struct NicSpec {
    enum class Model : u8 { E1000, Netvsc };
    enum class Backend : u8 { User, Switch, Tap };
    Model model = Model::Netvsc;
    bool model_given = false;
    std::array<u8, 6> mac = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56}; // QEMU's first NIC's
    Backend backend = Backend::User;
    SlirpOptions user;
    SwitchOptions network_switch;
    TapOptions tap;
    bool internal_switch = false;
};
ErrorOr<std::optional<NicSpec>> parse_nic_spec(std::string_view text);
// hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT, as --nic
// and QMP's netdev_add take it; nothing when it is not one.
std::optional<SlirpOptions::HostForward> parse_hostfwd(std::string_view text);
// 52:54:00:12:34:56; nothing when it is not six hex pairs.
std::optional<std::array<u8, 6>> parse_mac(std::string_view text);

struct Options {
    static constexpr u64 DEFAULT_MEMORY = 512ull << 20;
    // RAM past the PCI hole continues from 4 GiB (mmu/pc_memory_map.h); the
    // host backing is reserved lazily, so the limit is what the firmware
    // tables and the guest-physical address width comfortably describe.
    static constexpr u64 MAX_MEMORY = 1ull << 40;
    static constexpr u64 MIN_MEMORY = 2ull << 20;
    static constexpr unsigned MAX_CPUS = 64;

    std::optional<std::string> kernel;
    std::string append;
    std::optional<std::string> initrd;
    u64 memory_bytes = DEFAULT_MEMORY;
    unsigned cpus = 1;
    bool trace = false;
    bool stats = false;
    // Each serial line begins with the instruction count it was written at
    // (--mark-output), as rr's --mark-stdio: where to seek a replay to.
    bool mark_output = false;
    bool deterministic = false; // virtual time from retired instructions
    bool enlightenments = true; // the Hyper-V partition interface (docs/hyperv.md)
    bool jit = true; // translate hot 64-bit blocks to host code (cpu/jit/)
    bool perfmap = false; // name translated blocks for perf (/tmp/perf-PID.map)
    bool kvm = false; // --accel kvm: vCPUs on the host's hardware assist (docs/kvm.md)
    bool vcpu_threads = false; // --accel kvm,thread=multi: a host thread per vCPU
    bool hyperv_test_device = false; // kvm-unit-tests' control port at 0x3000
    bool pc_testdev = false;         // QEMU's pc-testdev (kvm-unit-tests)
    bool demo = false; // run the built-in demo rather than the default Linux guest
    std::optional<std::string> bios; // --bios: boot through this system ROM
    bool no_reboot = false; // a guest reboot ends the run instead of restarting it
    CpuVendor cpu_vendor = CpuVendor::Intel; // --cpu intel|amd
    std::string cpu_features; // CpuidModel::apply_feature_spec narrowing, e.g. "-avx2,-aes"
    std::optional<u64> max_instructions;
    std::optional<MigrationUri> incoming; // --incoming: restore instead of booting
    std::optional<SaveAt> save_at;        // --save-at N,URI
    SerialTarget serial;
    SerialTarget serial2{SerialTarget::Kind::None, {}}; // COM2
    SerialTarget debugcon{SerialTarget::Kind::None, {}}; // port 0x402
    std::vector<QmpSpec> qmp; // each --qmp, in order
    // --gdb (or -s: tcp::1234): the gdb remote stub's socket (docs/gdb.md).
    std::optional<ListenAddress> gdb;
    // -S: the machine starts paused until gdb or QMP cont resumes it.
    bool start_paused = false;
    std::vector<DriveSpec> drives; // each --drive, in order, every index assigned
    std::optional<NicSpec> nic;    // --nic user; none without --nic or with --nic none
    // Record and replay (docs/replay.md).
    std::optional<std::string> record;
    std::optional<std::string> replay;
    std::optional<u64> sync_interval;
    std::optional<u64> replay_alter_input; // tests: the N-th typed byte is replayed changed
    // --replay-goto N: the replay stops (paused) at instruction N of the run
    // for --gdb or --qmp to take over there.
    std::optional<u64> replay_goto;
    bool help = false;
    bool version = false;
};

// `args` excludes the program name. The error message has no "viridian: "
// prefix; the caller adds it.
ErrorOr<Options> parse_options(std::span<const std::string_view> args);

// "512M", "2G", "1048576K", plain "256" (MiB, as QEMU's -m).
ErrorOr<u64> parse_memory_size(std::string_view text);

ErrorOr<QmpSpec> parse_qmp_spec(std::string_view text);
// --gdb: tcp::PORT, tcp:HOST:PORT or unix:PATH (QEMU's -gdb spellings).
ErrorOr<ListenAddress> parse_gdb_address(std::string_view text);

std::string usage_text();
std::string version_text();
