#include "frontend/options.h"

#include <doctest/doctest.h>

#include <initializer_list>
#include <vector>

namespace {

ErrorOr<Options> parse(std::initializer_list<std::string_view> args)
{
    std::vector<std::string_view> v(args);
    return parse_options(v);
}

Options parse_ok(std::initializer_list<std::string_view> args)
{
    ErrorOr<Options> r = parse(args);
    if (r.is_error())
        FAIL("unexpected error: " << r.error().message);
    return r.value();
}

std::string parse_error(std::initializer_list<std::string_view> args)
{
    ErrorOr<Options> r = parse(args);
    REQUIRE(r.is_error());
    return r.error().message;
}

bool contains(const std::string& haystack, std::string_view needle)
{
    return haystack.find(needle) != std::string::npos;
}

} // namespace

TEST_CASE("options default to the demo with 512 MiB and one vCPU")
{
    Options o = parse_ok({});
    CHECK_FALSE(o.kernel.has_value());
    CHECK(o.memory_bytes == 512ull << 20);
    CHECK(o.cpus == 1);
    CHECK_FALSE(o.trace);
    CHECK(o.enlightenments);
    CHECK_FALSE(o.hyperv_test_device);
    CHECK_FALSE(o.no_reboot);
    CHECK(o.serial.kind == SerialTarget::Kind::Stdio);
}

TEST_CASE("options take values as the next argument or after an equals sign")
{
    Options o = parse_ok({"--kernel", "k.elf", "--append=a b=c", "--initrd", "m.img arg"});
    CHECK(o.kernel == "k.elf");
    CHECK(o.append == "a b=c");
    CHECK(o.initrd == "m.img arg");
}

TEST_CASE("options accept the flags")
{
    Options o = parse_ok(
        {"--trace", "--stats", "--help", "--version", "--cpus", "4", "--max-instructions=1000",
         "--no-reboot", "--deterministic", "--cpu-features=-avx2,-aes", "--perfmap"});
    CHECK(o.cpu_features == "-avx2,-aes");
    CHECK(o.perfmap);
    CHECK_FALSE(parse_ok({"--stats"}).perfmap);
    CHECK(o.trace);
    CHECK(o.no_reboot);
    CHECK(o.deterministic);
    CHECK(o.stats);
    CHECK(o.help);
    CHECK(o.version);
    CHECK(o.cpus == 4);
    CHECK(o.max_instructions == 1000u);
    CHECK(parse_ok({"-h"}).help);
}

TEST_CASE("options parse --serial stdio and file:PATH")
{
    CHECK(parse_ok({"--serial", "stdio"}).serial.kind == SerialTarget::Kind::Stdio);
    Options o = parse_ok({"--serial=file:/tmp/out.txt"});
    CHECK(o.serial.kind == SerialTarget::Kind::File);
    CHECK(o.serial.path == "/tmp/out.txt");
    CHECK(contains(parse_error({"--serial", "tcp:1234"}), "--serial"));
    CHECK(contains(parse_error({"--serial", "file:"}), "--serial"));
    CHECK(parse_ok({"--serial", "none"}).serial.kind == SerialTarget::Kind::None);
}

TEST_CASE("options parse --serial2 (COM2), discarded by default")
{
    CHECK(parse_ok({}).serial2.kind == SerialTarget::Kind::None);
    Options o = parse_ok({"--serial2", "file:/tmp/com2.txt"});
    CHECK(o.serial2.kind == SerialTarget::Kind::File);
    CHECK(o.serial2.path == "/tmp/com2.txt");
    CHECK(o.serial.kind == SerialTarget::Kind::Stdio);
    CHECK(parse_ok({"--serial2=stdio"}).serial2.kind == SerialTarget::Kind::Stdio);
    CHECK(contains(parse_error({"--serial2", "pty"}), "--serial2"));
}

TEST_CASE("--enlightenments takes on or off")
{
    CHECK_FALSE(parse_ok({"--enlightenments", "off"}).enlightenments);
    CHECK(parse_ok({"--enlightenments=off", "--enlightenments=on"}).enlightenments);
    CHECK(parse_error({"--enlightenments", "yes"}) ==
          "--enlightenments: 'yes' is not 'on' or 'off'");
    CHECK(parse_error({"--enlightenments"}) == "option --enlightenments needs an argument");
}

TEST_CASE("--hyperv-test-device is a switch that needs the enlightenments")
{
    CHECK(parse_ok({"--hyperv-test-device"}).hyperv_test_device);
    CHECK(parse_ok({"--pc-testdev"}).pc_testdev);
    CHECK_FALSE(parse_ok({}).pc_testdev);
    CHECK(parse_error({"--hyperv-test-device=on"}) ==
          "option --hyperv-test-device takes no argument");
    CHECK(parse_error({"--enlightenments", "off", "--hyperv-test-device"}) ==
          "--hyperv-test-device needs --enlightenments on");
}

TEST_CASE("memory sizes follow QEMU: suffixes K M G, bare numbers in MiB")
{
    CHECK(parse_ok({"--memory", "512M"}).memory_bytes == 512ull << 20);
    CHECK(parse_ok({"--memory", "2G"}).memory_bytes == 2ull << 30);
    CHECK(parse_ok({"--memory", "2g"}).memory_bytes == 2ull << 30);
    CHECK(parse_ok({"--memory", "256"}).memory_bytes == 256ull << 20);
    CHECK(parse_ok({"--memory", "65536K"}).memory_bytes == 64ull << 20);
    CHECK(parse_ok({"--memory", "1GiB"}).memory_bytes == 1ull << 30);
    CHECK(parse_ok({"--memory", "3G"}).memory_bytes == 3ull << 30);
    CHECK(parse_ok({"--memory", "64G"}).memory_bytes == 64ull << 30);
    CHECK(parse_ok({"--memory", "1T"}).memory_bytes == 1ull << 40);
    CHECK(parse_ok({"--memory", "4097K"}).memory_bytes == (4097ull << 10) + 3072);
}

TEST_CASE("memory sizes that are zero, garbage, too small or above 1T are rejected")
{
    CHECK(contains(parse_error({"--memory", "0"}), "zero"));
    CHECK(contains(parse_error({"--memory", "lots"}), "not a size"));
    CHECK(contains(parse_error({"--memory", "12Q"}), "not a size"));
    CHECK(contains(parse_error({"--memory", "-5"}), "not a size"));
    CHECK(contains(parse_error({"--memory", ""}), "not a size"));
    CHECK(contains(parse_error({"--memory", "1025G"}), "more than"));
    CHECK(contains(parse_error({"--memory", "99999999999999999999G"}), "--memory"));
    CHECK(contains(parse_error({"--memory", "2T"}), "more than"));
    CHECK(contains(parse_error({"--memory", "1M"}), "less than"));
}

TEST_CASE("cpu counts outside 1..64 are rejected")
{
    CHECK(contains(parse_error({"--cpus", "0"}), "--cpus"));
    CHECK(contains(parse_error({"--cpus", "65"}), "--cpus"));
    CHECK(contains(parse_error({"--cpus", "two"}), "--cpus"));
    CHECK(parse_ok({"--cpus", "64"}).cpus == 64);
}

TEST_CASE("an unknown option is an error that names it")
{
    CHECK(parse_error({"--bogus"}) == "unknown option '--bogus' (try --help)");
    CHECK(contains(parse_error({"--bogus=1"}), "'--bogus'"));
    CHECK(contains(parse_error({"-kernel"}), "unexpected argument '-kernel'"));
    CHECK(contains(parse_error({"kernel.elf"}), "unexpected argument"));
}

TEST_CASE("an option without its argument is an error")
{
    CHECK(parse_error({"--kernel"}) == "option --kernel needs an argument");
    CHECK(contains(parse_error({"--trace=yes"}), "takes no argument"));
}

TEST_CASE("--max-instructions must be a positive number")
{
    CHECK(contains(parse_error({"--max-instructions", "0"}), "--max-instructions"));
    CHECK(contains(parse_error({"--max-instructions", "1e6"}), "--max-instructions"));
}

TEST_CASE("--initrd without --kernel is an error")
{
    CHECK(contains(parse_error({"--initrd", "x"}), "--initrd needs --kernel"));
}

TEST_CASE("the usage text lists every option")
{
    std::string usage = usage_text();
    for (std::string_view opt :
         {"--kernel", "--append", "--initrd", "--memory", "--cpus", "--trace", "--stats",
          "--max-instructions", "--serial", "--serial2", "--help", "--version", "--no-reboot", "--deterministic",
          "--demo", "--cpu", "--cpu-features", "--enlightenments", "--hyperv-test-device", "--pc-testdev"})
        CHECK(contains(usage, opt));
}

TEST_CASE("--cpu picks the vendor of the CPU model, Intel by default")
{
    CHECK(parse_ok({}).cpu_vendor == CpuVendor::Intel);
    CHECK(parse_ok({"--cpu", "amd"}).cpu_vendor == CpuVendor::Amd);
    CHECK(parse_ok({"--cpu=intel"}).cpu_vendor == CpuVendor::Intel);
    const std::string bad = parse_error({"--cpu", "pentium"});
    CHECK(contains(bad, "--cpu"));
    CHECK(contains(bad, "pentium"));
}

TEST_CASE("--cpu-features rejects unknown names and unsigned items with one message")
{
    const std::string unknown = parse_error({"--cpu-features", "-avx9"});
    CHECK(contains(unknown, "--cpu-features"));
    CHECK(contains(unknown, "avx9"));
    CHECK(contains(parse_error({"--cpu-features", "avx2"}), "sign"));
}

TEST_CASE("--qmp takes QEMU's unix: and tcp: server specs, more than once")
{
    const Options o = parse_ok({"--qmp", "unix:/tmp/q.sock,server,wait=off", "--qmp=tcp:localhost:4444,server=on,nowait",
                                "--qmp", "tcp::5555,server"});
    REQUIRE(o.qmp.size() == 3);
    CHECK(o.qmp[0].address.kind == ListenAddress::Kind::Unix);
    CHECK(o.qmp[0].address.path == "/tmp/q.sock");
    CHECK_FALSE(o.qmp[0].wait);
    CHECK(o.qmp[1].address.kind == ListenAddress::Kind::Tcp);
    CHECK(o.qmp[1].address.host == "localhost");
    CHECK(o.qmp[1].address.port == 4444);
    CHECK_FALSE(o.qmp[1].wait);
    CHECK(o.qmp[2].address.host.empty()); // every address, as QEMU's tcp::PORT
    CHECK(o.qmp[2].wait);                 // QEMU's default for a server
}

TEST_CASE("--qmp refuses client mode, unknown flags, bad ports and other transports with one message")
{
    CHECK(contains(parse_error({"--qmp", "unix:/tmp/q.sock"}), "add ',server'"));
    CHECK(contains(parse_error({"--qmp", "unix:/tmp/q.sock,server,bogus=1"}), "'bogus=1' is not supported"));
    CHECK(contains(parse_error({"--qmp", "tcp:localhost:99999,server"}), "'99999' is not a port number"));
    CHECK(contains(parse_error({"--qmp", "tcp:localhost,server"}), "no port"));
    CHECK(contains(parse_error({"--qmp", "stdio"}), "not a unix: or tcp: address"));
    CHECK(contains(parse_error({"--qmp", "unix:,server"}), "no socket path"));
    CHECK(contains(usage_text(), "--qmp"));
}

TEST_CASE("A tcp: migration URI names a host and a port, a bracketed IPv6 host too")
{
    ErrorOr<MigrationUri> uri = parse_migration_uri("--incoming", "tcp:127.0.0.1:4444");
    REQUIRE_FALSE(uri.is_error());
    CHECK(uri.value().kind == MigrationUri::Kind::Tcp);
    CHECK(uri.value().host == "127.0.0.1");
    CHECK(uri.value().port == 4444);
    CHECK(parse_migration_uri("migrate", "tcp:[::1]:5").value().host == "::1");
    CHECK(parse_migration_uri("migrate", "tcp:host").is_error());
    CHECK(parse_migration_uri("migrate", "tcp:host:0").is_error());
    CHECK(parse_migration_uri("migrate", "tcp:host:70000").is_error());
}

TEST_CASE("--drive takes QEMU's keys and gives drives without index= the next free one")
{
    Options o = parse_ok({"--drive", "file=a.img,index=0", "--drive=file=b.vhd,format=vhd,readonly=on,cache=unsafe",
                          "--drive", "file=c.img,index=1"});
    REQUIRE(o.drives.size() == 3);
    CHECK(o.drives[0].file == "a.img");
    CHECK(o.drives[0].format.empty());
    CHECK(o.drives[1].format == "vpc");
    CHECK(o.drives[1].read_only);
    CHECK(o.drives[1].cache == DriveSpec::Cache::Unsafe);
    CHECK(*o.drives[1].index == 2);
    CHECK(*o.drives[2].index == 1);
    CHECK(o.drives[0].interface == DriveSpec::Interface::Ide);
}

TEST_CASE("--drive refuses bad keys, values, indexes and more than four IDE drives")
{
    CHECK(contains(parse_error({"--drive", "format=raw"}), "no file=PATH"));
    CHECK(contains(parse_error({"--drive", "file=a,format=qcow2"}), "qcow2"));
    CHECK(contains(parse_error({"--drive", "file=a,index=4"}), "0-3"));
    CHECK(contains(parse_error({"--drive", "file=a,bogus=1"}), "bogus"));
    CHECK(contains(parse_error({"--drive", "file=a,readonly=yes"}), "'on' or 'off'"));
    CHECK(contains(parse_error({"--drive", "file=a,index=1", "--drive", "file=b,index=1"}), "index=1"));
    CHECK(contains(parse_error({"--drive", "file=a", "--drive", "file=b", "--drive", "file=c",
                                "--drive", "file=d", "--drive", "file=e"}),
                   "more than 4"));
}

TEST_CASE("--drive if=scsi numbers its own LUNs apart from the IDE slots; no SCSI CD-ROM; cache=none is taken")
{
    ErrorOr<DriveSpec> scsi = parse_drive_spec("file=a,if=scsi,media=cdrom");
    REQUIRE(!scsi.is_error());
    CHECK(scsi.value().interface == DriveSpec::Interface::Scsi);
    CHECK(scsi.value().read_only); // a CD-ROM always is
    CHECK(contains(parse_error({"--drive", "file=a,if=scsi,media=cdrom"}), "disks only"));
    Options o = parse_ok({"--drive", "file=a,if=scsi", "--drive", "file=b", "--drive", "file=c,if=scsi,index=9",
                          "--drive", "file=d,if=scsi"});
    CHECK(*o.drives[0].index == 0);
    CHECK(*o.drives[1].index == 0); // IDE primary master
    CHECK(*o.drives[2].index == 9);
    CHECK(*o.drives[3].index == 1);
    CHECK(contains(parse_error({"--drive", "file=a,index=9,if=scsi", "--drive", "file=b,if=scsi,index=9"}),
                   "two if=scsi drives with index=9"));
    CHECK(contains(parse_error({"--drive", "file=a,if=scsi,index=64"}), "0 to 63"));
    CHECK(contains(parse_error({"--drive", "file=a,index=9"}), "0-3"));
    Options direct = parse_ok({"--drive", "file=a,cache=none"});
    CHECK(direct.drives[0].cache == DriveSpec::Cache::None);
}

TEST_CASE("--drive takes media=cdrom on IDE as a read-only drive")
{
    ErrorOr<Options> options = parse({"--drive", "file=a.iso,media=cdrom"});
    REQUIRE(!options.is_error());
    REQUIRE(options.value().drives.size() == 1);
    CHECK(options.value().drives[0].media == DriveSpec::Media::Cdrom);
    CHECK(options.value().drives[0].read_only);
    CHECK(options.value().drives[0].format.empty()); // probed: an ISO is raw
}

TEST_CASE("--nic user takes QEMU's model, mac, hostfwd and restrict keys")
{
    Options o = parse_ok({"--nic", "user,model=e1000,mac=52:54:00:ab:cd:0e,hostfwd=tcp::5555-:22,"
                                   "hostfwd=udp:127.0.0.1:6000-10.0.2.15:7000,restrict=on"});
    REQUIRE(o.nic.has_value());
    CHECK(o.nic->model == NicSpec::Model::E1000);
    CHECK(o.nic->mac == std::array<u8, 6>{0x52, 0x54, 0x00, 0xAB, 0xCD, 0x0E});
    CHECK(o.nic->user.restricted);
    REQUIRE(o.nic->user.forwards.size() == 2);
    const SlirpOptions::HostForward& tcp = o.nic->user.forwards[0];
    CHECK_FALSE(tcp.udp);
    CHECK(tcp.host_address.empty());
    CHECK(tcp.host_port == 5555);
    CHECK(tcp.guest_address.empty());
    CHECK(tcp.guest_port == 22);
    const SlirpOptions::HostForward& udp = o.nic->user.forwards[1];
    CHECK(udp.udp);
    CHECK(udp.host_address == "127.0.0.1");
    CHECK(udp.guest_address == "10.0.2.15");
    CHECK(udp.guest_port == 7000);
}

TEST_CASE("--nic user defaults to netvsc with QEMU's first MAC address, and no --nic or --nic none to no adapter")
{
    Options o = parse_ok({"--nic", "user"});
    REQUIRE(o.nic.has_value());
    CHECK(o.nic->model == NicSpec::Model::Netvsc);
    CHECK_FALSE(o.nic->model_given);
    CHECK(parse_ok({"--nic", "user,model=netvsc"}).nic->model_given);
    CHECK(o.nic->mac == std::array<u8, 6>{0x52, 0x54, 0x00, 0x12, 0x34, 0x56});
    CHECK_FALSE(o.nic->user.restricted);
    CHECK_FALSE(parse_ok({}).nic.has_value());
    CHECK_FALSE(parse_ok({"--nic", "none"}).nic.has_value());
}

TEST_CASE("--nic tap takes QEMU's ifname, script=no and downscript=no")
{
    const Options o = parse_ok({"--nic", "tap,ifname=vtap0,script=no,downscript=no,model=e1000"});
    REQUIRE(o.nic.has_value());
    CHECK(o.nic->backend == NicSpec::Backend::Tap);
    CHECK(o.nic->tap.ifname == "vtap0");
    CHECK(o.nic->model == NicSpec::Model::E1000);
    CHECK(parse_ok({"--nic", "tap"}).nic->tap.ifname.empty()); // the kernel names it
}

TEST_CASE("--nic rejects other models and backends, bad MACs and bad hostfwd rules in one line")
{
    CHECK(contains(parse_error({"--nic", "user,model=virtio"}), "is not netvsc or e1000"));
    CHECK(contains(parse_error({"--nic", "socket,listen=:1234"}), "not available yet"));
    CHECK(contains(parse_error({"--nic", "bogus"}), "is not user, switch, tap or none"));
    CHECK(contains(parse_error({"--nic", "tap,ifname=tap0,script=/etc/qemu-ifup"}), "is not supported"));
    CHECK(contains(parse_error({"--nic", "tap,ifname=much-too-long-name"}), "ifname="));
    CHECK(contains(parse_error({"--nic", "tap,ifname=a/b"}), "ifname="));
    CHECK(contains(parse_error({"--nic", "tap,name=x"}), "not a tap"));
    CHECK(contains(parse_error({"--nic", "tap,hostfwd=tcp::5555-:22"}), "hostfwd and restrict"));
    CHECK(contains(parse_error({"--nic", "none,model=e1000"}), "none takes no options"));
    CHECK(contains(parse_error({"--nic", "user,mac=52:54:00:12:34"}), "mac="));
    CHECK(contains(parse_error({"--nic", "user,mac=01:54:00:12:34:56"}), "multicast"));
    CHECK(contains(parse_error({"--nic", "user,mac=52:54:00:12:34:zz"}), "mac="));
    CHECK(contains(parse_error({"--nic", "user,hostfwd=tcp::5555"}), "hostfwd="));
    CHECK(contains(parse_error({"--nic", "user,hostfwd=sctp::1-:2"}), "hostfwd="));
    CHECK(contains(parse_error({"--nic", "user,hostfwd=tcp::70000-:22"}), "hostfwd="));
    CHECK(contains(parse_error({"--nic", "user,hostfwd=tcp::5555-:0"}), "hostfwd="));
    CHECK(contains(parse_error({"--nic", "user,hostfwd=tcp:1.2.3:5555-:22"}), "hostfwd="));
    CHECK(contains(parse_error({"--nic", "user,restrict=maybe"}), "restrict="));
    CHECK(contains(parse_error({"--nic", "user,ifname=x"}), "is for a tap"));
    CHECK(contains(parse_error({"--nic", "user", "--nic", "user"}), "second --nic"));
}

TEST_CASE("--gdb takes QEMU's tcp::PORT, tcp:HOST:PORT and unix:PATH; -s and -S are QEMU's short forms")
{
    Options o = parse_ok({"--gdb", "tcp::1234"});
    REQUIRE(o.gdb);
    CHECK(o.gdb->kind == ListenAddress::Kind::Tcp);
    CHECK(o.gdb->host.empty());
    CHECK(o.gdb->port == 1234);
    CHECK_FALSE(o.start_paused);
    o = parse_ok({"--gdb=unix:/tmp/g.sock", "-S"});
    CHECK(o.gdb->kind == ListenAddress::Kind::Unix);
    CHECK(o.gdb->path == "/tmp/g.sock");
    CHECK(o.start_paused);
    o = parse_ok({"-s"});
    CHECK(o.gdb->port == 1234);
    CHECK(parse_ok({"--gdb", "tcp:127.0.0.1:0"}).gdb->host == "127.0.0.1");
    CHECK(contains(usage_text(), "--gdb"));
}

TEST_CASE("--gdb refuses other transports, bad ports and empty paths with one message")
{
    CHECK(contains(parse_error({"--gdb", "1234"}), "not a tcp: or unix: address"));
    CHECK(contains(parse_error({"--gdb", "tcp::99999"}), "'99999' is not a port number"));
    CHECK(contains(parse_error({"--gdb", "tcp:localhost"}), "no port"));
    CHECK(contains(parse_error({"--gdb", "unix:"}), "no socket path"));
    CHECK(contains(parse_error({"-x"}), "unexpected argument"));
}

TEST_CASE("--nic switch takes a name, a type, a model and a MAC, and hostfwd and restrict only when internal")
{
    Options o = parse_ok({"--nic", "switch,name=lab-1,type=private,model=e1000,mac=52:54:00:00:00:02"});
    REQUIRE(o.nic.has_value());
    CHECK(o.nic->backend == NicSpec::Backend::Switch);
    CHECK(o.nic->network_switch.name == "lab-1");
    CHECK(o.nic->model == NicSpec::Model::E1000);
    CHECK(o.nic->mac[5] == 2);
    CHECK(parse_ok({"--nic", "user"}).nic->backend == NicSpec::Backend::User);
    CHECK(contains(parse_error({"--nic", "switch"}), "a switch needs name=NAME"));
    CHECK(contains(parse_error({"--nic", "switch,name=a/b"}), "name='a/b' is not 1 to 32"));
    CHECK(contains(parse_error({"--nic", "switch,name=lab,type=external"}), "is not private or internal"));
    CHECK(contains(parse_error({"--nic", "switch,name=lab,hostfwd=tcp::1-:2"}), "or an internal switch"));
    CHECK(contains(parse_error({"--nic", "switch,name=lab,restrict=on,type=private"}), "or an internal switch"));
    Options internal = parse_ok({"--nic", "switch,hostfwd=tcp::2222-:22,name=lab,type=internal"});
    CHECK(internal.nic->internal_switch);
    CHECK(internal.nic->user.forwards.size() == 1);
    CHECK_FALSE(o.nic->internal_switch);
    CHECK(contains(parse_error({"--nic", "user,name=lab"}), "is for a switch"));
}

TEST_CASE("--accel kvm takes QEMU's thread=single|multi; nothing else takes properties")
{
    CHECK_FALSE(parse_ok({"--accel", "kvm"}).vcpu_threads);
    CHECK_FALSE(parse_ok({"--accel", "kvm,thread=single"}).vcpu_threads);
    const Options multi = parse_ok({"--accel", "kvm,thread=multi"});
    CHECK(multi.kvm);
    CHECK(multi.vcpu_threads);
    CHECK(parse_error({"--accel", "kvm,thread=many"}).find("thread=many") != std::string::npos);
    CHECK(parse_error({"--accel", "interp,thread=multi"}).find("thread=multi") != std::string::npos);
    CHECK(parse_error({"--accel", "tcg"}).find("'tcg'") != std::string::npos);
}
