#include "frontend/options.h"

#include "cpu/state/cpuid_model.h"

#include <arpa/inet.h>

#include <array>
#include <cctype>
#include <charconv>
#include <cstdio>

#ifndef VIRIDIAN_VERSION
#define VIRIDIAN_VERSION "unknown"
#endif

namespace {

// Each option once, with whether it takes a value. Written by hand instead
// of getopt_long so that parsing has no global state and reports errors as
// values.
enum class Opt : u8 {
    Kernel,
    Append,
    Initrd,
    Memory,
    Cpus,
    Trace,
    Stats,
    MarkOutput,
    Demo,
    Bios,
    Debugcon,
    NoReboot,
    CpuFeatures,
    Cpu,
    Deterministic,
    Enlightenments,
    Jit,
    Perfmap,
    HypervTestDevice,
    PcTestdev,
    Accel,
    MaxInstructions,
    Incoming,
    SaveAt,
    Serial,
    Serial2,
    Qmp,
    Gdb,
    Drive,
    Nic,
    Record,
    Replay,
    SyncInterval,
    ReplayAlterInput,
    ReplayGoto,
    Help,
    Version
};

struct OptionSpec {
    std::string_view name;
    Opt id;
    bool takes_value;
};

constexpr OptionSpec OPTION_SPECS[] = {
    {"kernel", Opt::Kernel, true},    {"append", Opt::Append, true},
    {"initrd", Opt::Initrd, true},    {"memory", Opt::Memory, true},
    {"cpus", Opt::Cpus, true},        {"trace", Opt::Trace, false},
    {"stats", Opt::Stats, false},     {"demo", Opt::Demo, false},
    {"mark-output", Opt::MarkOutput, false},
    {"deterministic", Opt::Deterministic, false},
    {"enlightenments", Opt::Enlightenments, true},
    {"jit", Opt::Jit, true},
    {"perfmap", Opt::Perfmap, false},
    {"accel", Opt::Accel, true},
    {"hyperv-test-device", Opt::HypervTestDevice, false},
    {"pc-testdev", Opt::PcTestdev, false},
    {"max-instructions", Opt::MaxInstructions, true},
    {"incoming", Opt::Incoming, true},
    {"save-at", Opt::SaveAt, true},
    {"no-reboot", Opt::NoReboot, false},
    {"cpu-features", Opt::CpuFeatures, true},
    {"cpu", Opt::Cpu, true},
    {"serial", Opt::Serial, true},    {"serial2", Opt::Serial2, true},
    {"qmp", Opt::Qmp, true},
    {"gdb", Opt::Gdb, true},
    {"drive", Opt::Drive, true},
    {"nic", Opt::Nic, true},
    {"bios", Opt::Bios, true},
    {"debugcon", Opt::Debugcon, true},
    {"record", Opt::Record, true},
    {"replay", Opt::Replay, true},
    {"sync-interval", Opt::SyncInterval, true},
    {"replay-alter-input", Opt::ReplayAlterInput, true},
    {"replay-goto", Opt::ReplayGoto, true},
    {"help", Opt::Help, false},
    {"version", Opt::Version, false},
};

const OptionSpec* find_option(std::string_view name)
{
    for (const OptionSpec& spec : OPTION_SPECS)
        if (spec.name == name)
            return &spec;
    return nullptr;
}

std::string quoted(std::string_view text)
{
    // Appended piece by piece: `"'" + std::string(...)` trips GCC 12's false
    // -Wrestrict positive at -O3.
    std::string out;
    out.reserve(text.size() + 2);
    out += '\'';
    out += text;
    out += '\'';
    return out;
}

// Takes the next comma-separated item off the front of `text`.
std::string_view take_item(std::string_view& text)
{
    const size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    return item;
}

std::optional<u64> parse_u64(std::string_view text)
{
    u64 value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || text.empty())
        return std::nullopt;
    return value;
}

std::string size_text(u64 bytes)
{
    if (bytes % (1ull << 30) == 0)
        return std::to_string(bytes >> 30) + "G";
    return std::to_string(bytes >> 20) + "M";
}

std::optional<unsigned> suffix_shift(std::string_view suffix)
{
    constexpr std::string_view units = "KMGT";
    size_t unit =
        units.find(static_cast<char>(std::toupper(static_cast<unsigned char>(suffix[0]))));
    std::string_view rest = suffix.substr(1);
    if (unit == std::string_view::npos ||
        !(rest.empty() || rest == "B" || rest == "b" || rest == "iB"))
        return std::nullopt;
    return static_cast<unsigned>(10 * (unit + 1));
}

ErrorOr<unsigned> parse_cpus(std::string_view text)
{
    std::optional<u64> n = parse_u64(text);
    if (!n || *n < 1 || *n > Options::MAX_CPUS)
        return make_error("--cpus: " + quoted(text) + " is not a CPU count from 1 to " +
                          std::to_string(Options::MAX_CPUS));
    return static_cast<unsigned>(*n);
}

ErrorOr<SerialTarget> parse_serial(std::string_view option, std::string_view text)
{
    if (text == "stdio")
        return SerialTarget{};
    if (text == "none")
        return SerialTarget{SerialTarget::Kind::None, {}};
    constexpr std::string_view file_prefix = "file:";
    if (text.starts_with(file_prefix) && text.size() > file_prefix.size())
        return SerialTarget{SerialTarget::Kind::File, std::string(text.substr(file_prefix.size()))};
    return make_error(std::string(option) + ": " + quoted(text) +
                      " is not 'stdio', 'none' or 'file:PATH'");
}

ErrorOr<void> apply(Options& options, Opt id, std::string_view value)
{
    switch (id) {
    case Opt::Kernel:
        options.kernel = std::string(value);
        break;
    case Opt::Append:
        options.append = std::string(value);
        break;
    case Opt::Initrd:
        options.initrd = std::string(value);
        break;
    case Opt::Memory: {
        ErrorOr<u64> size = parse_memory_size(value);
        if (size.is_error())
            return make_error("--memory: " + size.error().message);
        options.memory_bytes = size.value();
        break;
    }
    case Opt::Cpus: {
        ErrorOr<unsigned> cpus = parse_cpus(value);
        if (cpus.is_error())
            return cpus.error();
        options.cpus = cpus.value();
        break;
    }
    case Opt::Trace:
        options.trace = true;
        break;
    case Opt::Stats:
        options.stats = true;
        break;
    case Opt::MarkOutput:
        options.mark_output = true;
        break;
    case Opt::Demo:
        options.demo = true;
        break;
    case Opt::Bios:
        options.bios = std::string(value);
        break;
    case Opt::Debugcon: {
        ErrorOr<SerialTarget> target = parse_serial("--debugcon", value);
        if (target.is_error())
            return target.error();
        options.debugcon = target.release_value();
        break;
    }
    case Opt::Deterministic:
        options.deterministic = true;
        break;
    case Opt::Enlightenments:
        if (value != "on" && value != "off")
            return make_error("--enlightenments: " + quoted(value) + " is not 'on' or 'off'");
        options.enlightenments = value == "on";
        break;
    case Opt::Jit:
        if (value != "on" && value != "off")
            return make_error("--jit: " + quoted(value) + " is not 'on' or 'off'");
        options.jit = value == "on";
        break;
    case Opt::Perfmap:
        options.perfmap = true;
        break;
    case Opt::PcTestdev:
        options.pc_testdev = true;
        break;
    case Opt::Accel: {
        // QEMU's spelling names TCG "tcg"; viridian's own backend is "interp".
        // `thread=single|multi` is QEMU's -accel tcg property: here it says
        // whether KVM's vCPUs take turns on one thread or run at once.
        const size_t comma = value.find(',');
        const std::string name(value.substr(0, comma));
        if (name != "interp" && name != "kvm")
            return make_error("--accel: " + quoted(name) + " is not 'interp' or 'kvm'");
        options.kvm = name == "kvm";
        if (comma != std::string::npos) {
            const std::string property(value.substr(comma + 1));
            if (!options.kvm || (property != "thread=single" && property != "thread=multi"))
                return make_error("--accel: " + quoted(property) +
                                  " is not a property viridian knows (kvm takes thread=single or thread=multi)");
            options.vcpu_threads = property == "thread=multi";
        }
        break;
    }
    case Opt::HypervTestDevice:
        options.hyperv_test_device = true;
        break;
    case Opt::NoReboot:
        options.no_reboot = true;
        break;
    case Opt::Cpu: {
        const std::optional<CpuVendor> vendor = parse_cpu_vendor(value);
        if (!vendor)
            return make_error("--cpu: " + quoted(value) + " is not 'intel' or 'amd'");
        options.cpu_vendor = *vendor;
        break;
    }
    case Opt::CpuFeatures: {
        // Checked here against a scratch model so that a bad name is a usage
        // error before anything starts; the machine applies it again.
        CpuidModel scratch;
        ErrorOr<void> narrowed = scratch.apply_feature_spec(value);
        if (narrowed.is_error())
            return make_error("--cpu-features: " + narrowed.error().message);
        options.cpu_features = std::string(value);
        break;
    }
    case Opt::MaxInstructions: {
        std::optional<u64> n = parse_u64(value);
        if (!n || *n == 0)
            return make_error("--max-instructions: " + quoted(value) +
                              " is not a positive instruction count");
        options.max_instructions = *n;
        break;
    }
    case Opt::Record:
        if (value.empty())
            return make_error("--record needs a file name");
        options.record = std::string(value);
        options.deterministic = true; // a recording is of a deterministic run
        break;
    case Opt::Replay:
        if (value.empty())
            return make_error("--replay needs a file name");
        options.replay = std::string(value);
        break;
    case Opt::SyncInterval:
    case Opt::ReplayAlterInput: {
        std::optional<u64> n = parse_u64(value);
        const char* name = id == Opt::SyncInterval ? "--sync-interval" : "--replay-alter-input";
        if (!n || (id == Opt::SyncInterval && *n == 0))
            return make_error(std::string(name) + ": " + quoted(value) + " is not a positive count");
        (id == Opt::SyncInterval ? options.sync_interval : options.replay_alter_input) = *n;
        break;
    }
    case Opt::ReplayGoto: {
        const std::optional<u64> n = parse_u64(value);
        if (!n)
            return make_error("--replay-goto: " + quoted(value) + " is not an instruction count");
        options.replay_goto = *n;
        break;
    }
    case Opt::Incoming:
        options.incoming = TRY(parse_migration_uri("--incoming", value));
        break;
    case Opt::SaveAt: {
        const size_t comma = value.find(',');
        std::optional<u64> n = comma == std::string_view::npos ? std::nullopt : parse_u64(value.substr(0, comma));
        if (!n)
            return make_error("--save-at: " + quoted(value) +
                              " is not INSTRUCTIONS,URI (e.g. 50000000,file:boot.snap)");
        options.save_at = SaveAt{*n, TRY(parse_migration_uri("--save-at", value.substr(comma + 1)))};
        break;
    }
    case Opt::Serial:
    case Opt::Serial2: {
        ErrorOr<SerialTarget> serial = parse_serial(id == Opt::Serial ? "--serial" : "--serial2", value);
        if (serial.is_error())
            return serial.error();
        (id == Opt::Serial ? options.serial : options.serial2) = serial.release_value();
        break;
    }
    case Opt::Qmp: {
        ErrorOr<QmpSpec> spec = parse_qmp_spec(value);
        if (spec.is_error())
            return spec.error();
        options.qmp.push_back(spec.release_value());
        break;
    }
    case Opt::Gdb:
        options.gdb = TRY(parse_gdb_address(value));
        break;
    case Opt::Drive: {
        DriveSpec drive = TRY(parse_drive_spec(value));
        if (drive.interface == DriveSpec::Interface::Scsi && drive.media == DriveSpec::Media::Cdrom)
            return make_error("--drive: if=scsi: the synthetic SCSI controller has disks only; "
                              "put a CD-ROM on if=ide");
        options.drives.push_back(std::move(drive));
        break;
    }
    case Opt::Nic: {
        std::optional<NicSpec> nic = TRY(parse_nic_spec(value));
        if (nic && options.nic)
            return make_error("--nic: one network adapter for now; a second --nic user is not supported");
        options.nic = std::move(nic);
        break;
    }
    case Opt::Help:
        options.help = true;
        break;
    case Opt::Version:
        options.version = true;
        break;
    }
    return {};
}

ErrorOr<void> assign_drive_indices(std::vector<DriveSpec>& drives, DriveSpec::Interface interface)
{
    const bool ide = interface == DriveSpec::Interface::Ide;
    const unsigned slots = ide ? DriveSpec::IDE_SLOTS : DriveSpec::SCSI_SLOTS;
    const char* name = ide ? "if=ide" : "if=scsi";
    std::vector<bool> taken(slots);
    for (const DriveSpec& drive : drives) {
        if (drive.interface != interface || !drive.index)
            continue;
        if (taken[*drive.index])
            return make_error("--drive: two " + std::string(name) + " drives with index=" +
                              std::to_string(*drive.index));
        taken[*drive.index] = true;
    }
    for (DriveSpec& drive : drives) {
        if (drive.interface != interface || drive.index)
            continue;
        unsigned free = 0;
        while (free < slots && taken[free])
            ++free;
        if (free == slots)
            return make_error(ide ? std::string("--drive: more than 4 IDE drives (two channels, master and slave)")
                                  : "--drive: more than " + std::to_string(slots) + " SCSI drives");
        drive.index = free;
        taken[free] = true;
    }
    return {};
}

} // namespace

ErrorOr<DriveSpec> parse_drive_spec(std::string_view text)
{
    DriveSpec drive;
    bool have_file = false;
    auto bad = [&](std::string_view why) {
        return make_error("--drive: " + quoted(text) + ": " + std::string(why));
    };
    while (!text.empty()) {
        const std::string_view item = take_item(text);
        const size_t eq = item.find('=');
        if (eq == std::string_view::npos)
            return bad(quoted(item) + " is not KEY=VALUE");
        const std::string_view key = item.substr(0, eq), value = item.substr(eq + 1);
        auto on_off = [&](bool& out) -> ErrorOr<void> {
            if (value != "on" && value != "off")
                return bad(std::string(key) + "=" + quoted(value) + " is not 'on' or 'off'");
            out = value == "on";
            return {};
        };
        if (key == "file") {
            if (value.empty())
                return bad("file= names no file");
            drive.file = std::string(value);
            have_file = true;
        } else if (key == "format") {
            if (value != "raw" && value != "vpc" && value != "vhd" && value != "vhdx")
                return bad("format=" + quoted(value) + " is not raw, vpc (vhd) or vhdx");
            drive.format = value == "vhd" ? "vpc" : std::string(value);
        } else if (key == "if") {
            if (value == "ide")
                drive.interface = DriveSpec::Interface::Ide;
            else if (value == "scsi")
                drive.interface = DriveSpec::Interface::Scsi;
            else
                return bad("if=" + quoted(value) + " is not ide or scsi");
        } else if (key == "media") {
            if (value == "disk")
                drive.media = DriveSpec::Media::Disk;
            else if (value == "cdrom")
                drive.media = DriveSpec::Media::Cdrom;
            else
                return bad("media=" + quoted(value) + " is not disk or cdrom");
        } else if (key == "readonly") {
            TRY(on_off(drive.read_only));
        } else if (key == "snapshot") {
            TRY(on_off(drive.snapshot));
        } else if (key == "cache") {
            if (value == "writeback")
                drive.cache = DriveSpec::Cache::Writeback;
            else if (value == "unsafe")
                drive.cache = DriveSpec::Cache::Unsafe;
            else if (value == "none")
                drive.cache = DriveSpec::Cache::None;
            else
                return bad("cache=" + quoted(value) + " is not writeback, unsafe or none");
        } else if (key == "index") {
            // Checked against the interface (which may come later) below.
            const std::optional<u64> n = parse_u64(value);
            if (!n || *n >= DriveSpec::SCSI_SLOTS)
                return bad("index=" + quoted(value) + " is not a number from 0 to " +
                           std::to_string(DriveSpec::SCSI_SLOTS - 1));
            drive.index = static_cast<unsigned>(*n);
        } else {
            return bad("unknown key " + quoted(key));
        }
    }
    if (!have_file)
        return bad("no file=PATH");
    if (drive.interface == DriveSpec::Interface::Ide && drive.index && *drive.index >= DriveSpec::IDE_SLOTS)
        return bad("index=" + std::to_string(*drive.index) + " is not 0-3 (primary master, primary "
                   "slave, secondary master, secondary slave)");
    if (drive.media == DriveSpec::Media::Cdrom)
        drive.read_only = true;
    return drive;
}

namespace {

std::optional<u16> parse_port(std::string_view text, bool zero_ok)
{
    const std::optional<u64> n = parse_u64(text);
    if (!n || *n > 0xFFFF || (*n == 0 && !zero_ok))
        return std::nullopt;
    return static_cast<u16>(*n);
}

bool is_ipv4(std::string_view text)
{
    in_addr address{};
    return inet_pton(AF_INET, std::string(text).c_str(), &address) == 1;
}

} // namespace

// hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT (QEMU's
// slirp_hostfwd): an empty host address is every address, an empty guest
// address the DHCP address.
std::optional<SlirpOptions::HostForward> parse_hostfwd(std::string_view text)
{
    SlirpOptions::HostForward forward;
    const size_t colon = text.find(':');
    const size_t dash = text.find('-');
    if (colon == std::string_view::npos || dash == std::string_view::npos || dash < colon)
        return std::nullopt;
    const std::string_view protocol = text.substr(0, colon);
    if (protocol != "" && protocol != "tcp" && protocol != "udp")
        return std::nullopt;
    forward.udp = protocol == "udp";
    const std::string_view host = text.substr(colon + 1, dash - colon - 1);
    const std::string_view guest = text.substr(dash + 1);
    const size_t host_colon = host.rfind(':'), guest_colon = guest.rfind(':');
    if (host_colon == std::string_view::npos || guest_colon == std::string_view::npos)
        return std::nullopt;
    forward.host_address = std::string(host.substr(0, host_colon));
    forward.guest_address = std::string(guest.substr(0, guest_colon));
    const std::optional<u16> host_port = parse_port(host.substr(host_colon + 1), true);
    const std::optional<u16> guest_port = parse_port(guest.substr(guest_colon + 1), false);
    if (!host_port || !guest_port || (!forward.host_address.empty() && !is_ipv4(forward.host_address)) ||
        (!forward.guest_address.empty() && !is_ipv4(forward.guest_address)))
        return std::nullopt;
    forward.host_port = *host_port;
    forward.guest_port = *guest_port;
    return forward;
}

std::optional<std::array<u8, 6>> parse_mac(std::string_view text)
{
    std::array<u8, 6> mac{};
    if (text.size() != 17)
        return std::nullopt;
    for (size_t i = 0; i < 6; ++i) {
        if (i < 5 && text[3 * i + 2] != ':')
            return std::nullopt;
        const std::string_view pair = text.substr(3 * i, 2);
        auto [end, ec] = std::from_chars(pair.data(), pair.data() + 2, mac[i], 16);
        if (ec != std::errc{} || end != pair.data() + 2)
            return std::nullopt;
    }
    return mac;
}

ErrorOr<std::optional<NicSpec>> parse_nic_spec(std::string_view text)
{
    auto bad = [&](std::string_view why) {
        return make_error("--nic: " + quoted(text) + ": " + std::string(why));
    };
    std::string_view rest = text;
    const std::string_view type = take_item(rest);
    if (type == "none") {
        if (!rest.empty())
            return bad("none takes no options");
        return std::optional<NicSpec>();
    }
    if (type == "socket" || type == "bridge" || type == "stream" || type == "dgram")
        return bad(quoted(type) + " networking is not available yet; use user, switch, tap or none");
    if (type != "user" && type != "switch" && type != "tap")
        return bad(quoted(type) + " is not user, switch, tap or none");
    NicSpec nic;
    nic.backend = type == "switch" ? NicSpec::Backend::Switch
                  : type == "tap"  ? NicSpec::Backend::Tap
                                   : NicSpec::Backend::User;
    const bool user = nic.backend == NicSpec::Backend::User;
    const bool tap = nic.backend == NicSpec::Backend::Tap;
    while (!rest.empty()) {
        const std::string_view item = take_item(rest);
        const size_t eq = item.find('=');
        if (eq == std::string_view::npos)
            return bad(quoted(item) + " is not KEY=VALUE");
        const std::string_view key = item.substr(0, eq), value = item.substr(eq + 1);
        if (key == "model") {
            if (value != "e1000" && value != "netvsc")
                return bad("model=" + quoted(value) + " is not netvsc or e1000");
            nic.model = value == "e1000" ? NicSpec::Model::E1000 : NicSpec::Model::Netvsc;
            nic.model_given = true;
        } else if (key == "mac") {
            const std::optional<std::array<u8, 6>> mac = parse_mac(value);
            if (!mac)
                return bad("mac=" + quoted(value) + " is not XX:XX:XX:XX:XX:XX");
            if ((*mac)[0] & 1)
                return bad("mac=" + quoted(value) + " is a multicast address");
            nic.mac = *mac;
        } else if (key == "ifname" && tap) {
            if (!TapBackend::valid_name(value))
                return bad("ifname=" + quoted(value) + " is not a network interface name (1 to 15 characters)");
            nic.tap.ifname = value;
        } else if ((key == "script" || key == "downscript") && tap) {
            // QEMU runs /etc/qemu-ifup and -ifdown by default; viridian
            // runs nothing, so only "no" (as QEMU users write it) is taken.
            if (value != "no")
                return bad(std::string(key) + "=" + quoted(value) +
                           " is not supported: configure the interface beforehand and give " + std::string(key) +
                           "=no");
        } else if (key == "name" && !user && !tap) {
            if (!SwitchPort::valid_name(value))
                return bad("name=" + quoted(value) + " is not 1 to 32 of A-Z a-z 0-9 _ . -");
            nic.network_switch.name = value;
        } else if (key == "type" && !user && !tap) {
            if (value != "private" && value != "internal")
                return bad("type=" + quoted(value) + " is not private or internal");
            nic.internal_switch = value == "internal";
        } else if (key == "hostfwd") {
            const std::optional<SlirpOptions::HostForward> forward = parse_hostfwd(value);
            if (!forward)
                return bad("hostfwd=" + quoted(value) +
                           " is not [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT");
            nic.user.forwards.push_back(*forward);
        } else if (key == "restrict") {
            if (value != "on" && value != "off" && value != "yes" && value != "no")
                return bad("restrict=" + quoted(value) + " is not 'on' or 'off'");
            nic.user.restricted = value == "on" || value == "yes";
        } else {
            if (key == "name" || key == "type")
                return bad(quoted(key) + " is for a switch, not " + (tap ? "a tap" : "user networking"));
            if (key == "ifname" || key == "script" || key == "downscript")
                return bad(quoted(key) + " is for a tap");
            return bad("unknown key " + quoted(key));
        }
    }
    if (tap && (nic.user.restricted || !nic.user.forwards.empty()))
        return bad("hostfwd and restrict are for user networking or an internal switch");
    if (!user && !tap && nic.network_switch.name.empty())
        return bad("a switch needs name=NAME");
    if (!user && !nic.internal_switch && (nic.user.restricted || !nic.user.forwards.empty()))
        return bad("hostfwd and restrict are for user networking or an internal switch");
    return std::optional<NicSpec>(std::move(nic));
}

ErrorOr<MigrationUri> parse_migration_uri(std::string_view option, std::string_view text)
{
    for (auto [prefix, kind] : {std::pair{std::string_view("file:"), MigrationUri::Kind::File},
                                std::pair{std::string_view("exec:"), MigrationUri::Kind::Exec}}) {
        if (text.substr(0, prefix.size()) != prefix)
            continue;
        if (text.size() == prefix.size())
            break;
        return MigrationUri{kind, std::string(text.substr(prefix.size())), {}, 0};
    }
    if (text.substr(0, 4) == "tcp:") {
        // tcp:HOST:PORT; the host may be a bracketed IPv6 address.
        const std::string_view rest = text.substr(4);
        const size_t colon = rest.rfind(':');
        std::optional<u64> port = colon == std::string_view::npos ? std::nullopt : parse_u64(rest.substr(colon + 1));
        if (port && *port > 0 && *port <= 0xFFFF && colon > 0) {
            std::string host(rest.substr(0, colon));
            if (host.size() > 2 && host.front() == '[' && host.back() == ']')
                host = host.substr(1, host.size() - 2);
            return MigrationUri{MigrationUri::Kind::Tcp, std::string(rest), host, static_cast<u16>(*port)};
        }
    }
    return make_error(std::string(option) + ": " + quoted(text) +
                      " is not a migration URI (file:PATH, exec:COMMAND or tcp:HOST:PORT)");
}

ErrorOr<u64> parse_memory_size(std::string_view text)
{
    size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9')
        ++digits;
    std::optional<u64> number = parse_u64(text.substr(0, digits));
    std::string_view suffix = text.substr(digits);
    // Like QEMU: a bare number is MiB; K, M, G, T (either case, optionally
    // followed by "B" or "iB") scale by powers of 1024.
    std::optional<unsigned> shift = suffix.empty() ? 20 : suffix_shift(suffix);
    if (!number || !shift)
        return make_error(quoted(text) + " is not a size (examples: 512M, 2G, 256 for MiB)");
    if (*number == 0)
        return make_error("memory size must not be zero");
    if (*number > (Options::MAX_MEMORY >> *shift))
        return make_error(quoted(text) + " is more than the " + size_text(Options::MAX_MEMORY) +
                          " viridian supports");
    u64 bytes = *number << *shift;
    if (bytes < Options::MIN_MEMORY)
        return make_error(quoted(text) + " is less than the " + size_text(Options::MIN_MEMORY) +
                          " a guest needs (RAM above 1 MiB)");
    // Whole pages only, rounded up as QEMU aligns -m.
    return (bytes + PAGE_SIZE - 1) & PAGE_MASK;
}

ErrorOr<ListenAddress> parse_gdb_address(std::string_view text)
{
    const auto bad = [&](const std::string& why) {
        return make_error("--gdb: " + quoted(text) + ": " + why + " (expected tcp::PORT, tcp:HOST:PORT or unix:PATH)");
    };
    ListenAddress address;
    if (text.starts_with("unix:")) {
        address.kind = ListenAddress::Kind::Unix;
        address.path = std::string(text.substr(5));
        if (address.path.empty())
            return bad("no socket path");
        return address;
    }
    if (!text.starts_with("tcp:"))
        return bad("not a tcp: or unix: address");
    address.kind = ListenAddress::Kind::Tcp;
    const std::string_view rest = text.substr(4);
    const size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos)
        return bad("no port");
    std::string_view host = rest.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    const std::optional<u64> port = parse_u64(rest.substr(colon + 1));
    if (!port || *port > 65535)
        return bad(quoted(rest.substr(colon + 1)) + " is not a port number");
    address.host = std::string(host);
    address.port = static_cast<u16>(*port);
    return address;
}

ErrorOr<QmpSpec> parse_qmp_spec(std::string_view text)
{
    // QEMU's legacy character-device syntax (qemu-options.hx, -chardev and
    // -serial): the address, then comma-separated flags. "server" and
    // "nowait" are the old spellings of server=on and wait=off.
    const auto bad = [&](const std::string& why) {
        return make_error("--qmp: " + quoted(text) + ": " + why +
                          " (expected unix:PATH,server,wait=off or tcp:HOST:PORT,server,wait=off)");
    };
    std::vector<std::string_view> parts;
    for (size_t start = 0;;) {
        const size_t comma = text.find(',', start);
        parts.push_back(text.substr(start, comma == std::string_view::npos ? comma : comma - start));
        if (comma == std::string_view::npos)
            break;
        start = comma + 1;
    }
    QmpSpec spec;
    const std::string_view where = parts[0];
    if (where.starts_with("unix:")) {
        spec.address.kind = ListenAddress::Kind::Unix;
        spec.address.path = std::string(where.substr(5));
        if (spec.address.path.empty())
            return bad("no socket path");
    } else if (where.starts_with("tcp:")) {
        spec.address.kind = ListenAddress::Kind::Tcp;
        std::string_view rest = where.substr(4);
        const size_t colon = rest.rfind(':');
        if (colon == std::string_view::npos)
            return bad("no port");
        std::string_view host = rest.substr(0, colon);
        if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
            host = host.substr(1, host.size() - 2); // [::1]
        const std::optional<u64> port = parse_u64(rest.substr(colon + 1));
        if (!port || *port > 65535)
            return bad(quoted(rest.substr(colon + 1)) + " is not a port number");
        spec.address.host = std::string(host);
        spec.address.port = static_cast<u16>(*port);
    } else {
        return bad("not a unix: or tcp: address");
    }
    bool server = false;
    for (size_t i = 1; i < parts.size(); ++i) {
        const std::string_view flag = parts[i];
        if (flag == "server" || flag == "server=on") {
            server = true;
        } else if (flag == "server=off") {
            server = false;
        } else if (flag == "wait=on" || flag == "wait") {
            spec.wait = true;
        } else if (flag == "wait=off" || flag == "nowait") {
            spec.wait = false;
        } else {
            return bad(quoted(flag) + " is not supported (server, wait=on|off)");
        }
    }
    if (!server)
        return bad("viridian only listens: add ',server'");
    return spec;
}

ErrorOr<Options> parse_options(std::span<const std::string_view> args)
{
    Options options;
    // --replay takes the machine from its recording: only the options that
    // change how the host shows the run go with it.
    std::optional<std::string_view> machine_option;
    for (size_t i = 0; i < args.size(); ++i) {
        std::string_view arg = args[i];
        if (arg == "-h")
            arg = "--help";
        // QEMU's short forms: -s is -gdb tcp::1234, -S starts paused.
        if (arg == "-s")
            arg = "--gdb=tcp::1234";
        if (arg == "-S") {
            options.start_paused = true;
            continue;
        }
        if (!arg.starts_with("--") || arg.size() == 2)
            return make_error("unexpected argument " + quoted(arg) + " (options start with --)");

        std::string_view name = arg.substr(2);
        std::optional<std::string_view> inline_value;
        if (size_t eq = name.find('='); eq != std::string_view::npos) {
            inline_value = name.substr(eq + 1);
            name = name.substr(0, eq);
        }
        const OptionSpec* spec = find_option(name);
        if (!spec)
            return make_error("unknown option " + quoted("--" + std::string(name)) +
                              " (try --help)");

        std::string_view value;
        if (spec->takes_value) {
            if (inline_value) {
                value = *inline_value;
            } else if (i + 1 < args.size()) {
                value = args[++i];
            } else {
                return make_error("option --" + std::string(name) + " needs an argument");
            }
        } else if (inline_value) {
            return make_error("option --" + std::string(name) + " takes no argument");
        }
        switch (spec->id) {
        case Opt::Replay: case Opt::ReplayAlterInput: case Opt::ReplayGoto: case Opt::Serial: case Opt::Serial2:
        case Opt::Debugcon: case Opt::Qmp: case Opt::Stats: case Opt::Trace: case Opt::Jit:
        case Opt::Perfmap:
        case Opt::MarkOutput: case Opt::Gdb:
        case Opt::Help: case Opt::Version:
            break;
        default:
            machine_option = spec->name;
        }
        ErrorOr<void> applied = apply(options, spec->id, value);
        if (applied.is_error())
            return applied.error();
    }
    // Drives with index= take theirs; the others the next free slot of their
    // interface, in order.
    for (DriveSpec::Interface interface : {DriveSpec::Interface::Ide, DriveSpec::Interface::Scsi})
        TRY(assign_drive_indices(options.drives, interface));
    for (const DriveSpec& drive : options.drives)
        if (drive.interface == DriveSpec::Interface::Scsi && !options.enlightenments)
            return make_error("--drive: if=scsi is the Hyper-V synthetic SCSI controller, on VMBus, "
                              "which --enlightenments off removes");
    if (options.replay && machine_option)
        return make_error("--replay takes the machine from the recording; --" + std::string(*machine_option) +
                          " does not go with it (only --serial, --serial2, --debugcon, --qmp, --stats, "
                          "--trace, --jit, --perfmap, --mark-output, --gdb, -S, --replay-goto)");
    if (options.kvm) {
        // What needs the interpreter: instruction counts, single instructions.
        const char* needs_interp = options.deterministic    ? "--deterministic"
                                   : options.record         ? "--record"
                                   : options.replay         ? "--replay"
                                   : options.trace          ? "--trace"
                                   : options.gdb            ? "--gdb"
                                   : options.max_instructions ? "--max-instructions"
                                                            : nullptr;
        if (needs_interp)
            return make_error(std::string("--accel kvm: ") + needs_interp +
                              " needs instruction counts that only --accel interp keeps");
    }
    if (options.replay_alter_input && !options.replay)
        return make_error("--replay-alter-input needs --replay");
    if (options.replay_goto && !options.replay)
        return make_error("--replay-goto needs --replay");
    if (options.replay_goto && !options.gdb && options.qmp.empty())
        return make_error("--replay-goto stops the replay for a debugger or QMP: give --gdb or --qmp");
    if (options.sync_interval && !options.record)
        return make_error("--sync-interval needs --record");
    // A debugger writes registers and memory: input a recording does not
    // hold. A replay takes one (it refuses the writes and can go back).
    if (options.record && options.gdb)
        return make_error("--gdb does not go with --record (debug the replay: --replay FILE --gdb ...)");
    if (options.record && (options.incoming || options.save_at))
        return make_error("--record starts from power-on: it does not go with --incoming or --save-at");
    if (options.record)
        for (const DriveSpec& drive : options.drives)
            if (drive.media != DriveSpec::Media::Cdrom && !drive.read_only && !drive.snapshot)
                return make_error("--record: the disk '" + drive.file +
                                  "' is writable; a recording needs its disks unchanged (readonly=on, or "
                                  "snapshot=on to keep the guest's writes in memory)");
    if (options.initrd && !options.kernel)
        return make_error("--initrd needs --kernel");
    if (options.bios && (options.kernel || options.demo))
        return make_error("--bios boots through firmware; it does not go with --kernel or --demo");
    if (options.hyperv_test_device && !options.enlightenments)
        return make_error("--hyperv-test-device needs --enlightenments on");
    return options;
}

std::string usage_text()
{
    return "Usage: viridian [options]\n"
           "Runs an x86-64 guest on viridian's interpreter. With no --kernel it boots the\n"
           "default Linux guest (guest/, built by scripts/fetch-guest.sh), or else the\n"
           "firmware (SeaBIOS), which boots from the machine's disks.\n"
           "\n"
           "  --kernel FILE            kernel to boot: a Linux bzImage (entered in 64-bit mode)\n"
           "                           or a multiboot v1 kernel (ELF32 or a.out kludge)\n"
           "  --append STR             kernel command line\n"
           "  --initrd FILE            Linux: the initrd (initramfs) to load\n"
           "  --initrd FILE[ ARGS]     multiboot: FILE is the module, ARGS its command line\n"
           "  --memory SIZE            guest RAM, e.g. 512M, 2G; a bare number is MiB\n"
           "                           (default 512M, at most 1T)\n"
           "  --cpus N                 number of vCPUs, 1..64 (default 1)\n"
           "  --serial stdio|none|file:PATH\n"
           "                           where COM1 output goes (default stdio)\n"
           "  --serial2 stdio|none|file:PATH\n"
           "                           where COM2 output goes (default none: discarded)\n"
           "  --drive file=PATH[,format=raw|vpc|vhdx][,if=ide|scsi][,media=disk|cdrom][,index=N]\n"
           "          [,readonly=on][,snapshot=on][,cache=writeback|unsafe|none]\n"
           "                           a disk or CD-ROM on the IDE controller (index 0-3), or a disk on\n"
           "                           the synthetic SCSI controller on VMBus (if=scsi, index = LUN 0-63);\n"
           "                           repeatable (docs/storage.md, docs/vmbus.md)\n"
           "  --nic user[,model=netvsc|e1000][,mac=52:54:00:XX:XX:XX][,restrict=on]\n"
           "        [,hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT]...\n"
           "  --nic switch,name=NAME[,type=private|internal][,model=netvsc|e1000][,mac=...]\n"
           "        [,hostfwd=...][,restrict=on] (hostfwd and restrict: internal only)\n"
           "  --nic tap[,ifname=NAME][,script=no][,downscript=no][,model=netvsc|e1000][,mac=...]\n"
           "  --nic none               a network adapter on user-mode networking (libslirp: DHCP gives\n"
           "                           the guest 10.0.2.15, the host is 10.0.2.2, DNS 10.0.2.3), on\n"
           "                           the virtual switch NAME that this user's machines share, or on\n"
           "                           the host's tap interface NAME (made and configured beforehand:\n"
           "                           no scripts run): the synthetic netvsc on VMBus (an e1000 with\n"
           "                           --enlightenments off), or no adapter, the default\n"
           "                           (docs/network.md)\n"
           "  --gdb tcp::PORT | tcp:HOST:PORT | unix:PATH\n"
           "                           serve the gdb remote protocol there (docs/gdb.md)\n"
           "  -s                       --gdb tcp::1234\n"
           "  -S                       start paused until gdb or QMP cont resumes the machine\n"
           "  --qmp unix:PATH,server,wait=off\n"
           "  --qmp tcp:HOST:PORT,server,wait=off\n"
           "                           serve QMP, the QEMU Machine Protocol (docs/qmp.md); wait=on\n"
           "                           (the default) starts the guest when the first client connects\n"
           "  --trace                  print each executed instruction to stderr\n"
           "  --mark-output            begin each line of serial and debugcon output with the count\n"
           "                           of instructions (all vCPUs) before its first byte: [N] text\n"
           "  --stats                  print the retired instructions, port and MMIO accesses and\n"
           "                           interrupts taken to stderr at exit (and on SIGUSR1)\n"
           "  --demo                   run the built-in bare-metal demo instead of the default guest\n"
           "  --debugcon stdio|none|file:PATH\n"
           "                           QEMU's debug console at port 0x402, where SeaBIOS logs\n"
           "                           (default: no such device)\n"
           "  --bios FILE              boot through this system ROM (a SeaBIOS build) rather than\n"
           "                           a kernel (default without a guest: /usr/share/seabios/bios.bin)\n"
           "  --deterministic          virtual time from retired instructions: a run repeats exactly\n"
           "  --enlightenments on|off  the Hyper-V interface: CPUID leaves, synthetic MSRs,\n"
           "                           hypercalls, SynIC, timers (default on)\n"
           "  --accel interp|kvm[,thread=single|multi]\n"
           "                           what runs the vCPUs: viridian's interpreter and JIT, or the\n"
           "                           host's hardware assist through /dev/kvm (default interp;\n"
           "                           docs/kvm.md); KVM's vCPUs take turns on one thread, or with\n"
           "                           thread=multi run at once, a host thread each\n"
           "  --jit on|off             translate hot blocks of 64-bit code to host code\n"
           "                           (default on; off interprets everything, same results)\n"
           "  --perfmap                write /tmp/perf-PID.map, which names each translated block\n"
           "                           by its guest address in Linux perf's profiles (QEMU's -perfmap)\n"
           "  --hyperv-test-device     the Hyper-V test device kvm-unit-tests drive (port 0x3000)\n"
           "  --pc-testdev             QEMU's pc-testdev for kvm-unit-tests (ports 0xE0-0xEB and\n"
           "                           0x2000-0x2017, 64 KiB of MMIO at 0xFF000000)\n"
           "  --max-instructions N     stop after N instructions (exit status 5)\n"
           "  --incoming URI           restore a saved machine instead of booting: file:PATH,\n"
           "                           exec:COMMAND or tcp:HOST:PORT (listen for a live migration;\n"
           "                           the same options as the source)\n"
           "  --save-at N,URI          after N instructions (at the next boundary between vCPU\n"
           "                           turns) save the machine to file:PATH, exec:COMMAND or\n"
           "                           tcp:HOST:PORT, exit 0\n"
           "  --record FILE            record the run's host input (typed bytes, QMP commands\n"
           "                           that change the guest, network frames) to FILE; implies\n"
           "                           --deterministic; disks must be read-only (docs/replay.md)\n"
           "  --replay FILE            run a recording again: the machine, its files and its\n"
           "                           input come from FILE; stops with status 9 where it diverges;\n"
           "                           with --gdb it can run backwards (docs/replay.md)\n"
           "  --replay-goto N          with --replay: stop (paused) at instruction N of the run\n"
           "                           (--mark-output's count), for --gdb or --qmp\n"
           "  --sync-interval N        with --record: a sync record (registers, written memory)\n"
           "                           every N instructions (default 10000000)\n"
           "  --no-reboot              end the run when the guest reboots (default: restart it)\n"
           "  --cpu intel|amd          the CPU model's vendor: its CPUID and the behaviour\n"
           "                           where Intel and AMD processors differ (default intel)\n"
           "  --cpu-features LIST      narrow the CPU model, e.g. -avx2,-aes (names as in\n"
           "                           /proc/cpuinfo; removing one removes what needs it)\n"
           "  --help                   show this help and exit\n"
           "  --version                show the version and exit\n"
           "\n"
           "Exit status: the guest's isa-debug-exit status ((v << 1) | 1, at port 0xF4),\n"
           "0 when the demo succeeds, 2 usage or input error, 4 triple fault,\n"
           "5 instruction limit reached, 6 vCPU halted with nothing to wake it,\n"
           "8 the guest reported a crash through the Hyper-V crash MSRs.\n";
}

std::string version_text()
{
    return std::string("viridian ") + VIRIDIAN_VERSION + "\n";
}
