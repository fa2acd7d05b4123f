// Record and replay (platform/replay/): the recording file's round trip and
// refusals, and a machine recorded with typed input and replayed from its
// file: the same output at the same instruction, divergence caught.
#include "platform/replay/replay_log.h"
#include "platform/replay/replay_navigator.h"

#include "tests/platform/block/temp_dir.h"
#include "tests/platform/block/test_image.h"

#include <doctest/doctest.h>
#include <fstream>
#include <iterator>
#include <random>

#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <unistd.h>

using namespace replay;

namespace {

Recording sample_recording()
{
    Recording rec;
    rec.header.build = recording_build_identity();
    rec.header.args = {"--kernel", "vmlinuz", "--cpus", "2", "--deterministic"};
    rec.header.files = {{"kernel", "vmlinuz", 1234, 0xABCDEF0123456789ull}};
    rec.header.input_can_wake = true;
    rec.header.sync_interval = 5000;
    rec.header.rng_seed = 42;
    Record typed;
    typed.type = Record::Type::Input;
    typed.poll = 3;
    typed.retired = 200000;
    typed.input = {HostInput::Kind::SerialByte, 'x', {}};
    Record frame = typed;
    frame.poll = 7;
    frame.input = {HostInput::Kind::NetFrame, 0, {1, 2, 3, 4, 5}};
    Record sync;
    sync.type = Record::Type::Sync;
    sync.poll = 7;
    sync.retired = 600000;
    sync.vcpus = {{300000, 0x1111}, {300000, 0x2222}};
    sync.memory_hash = 0x3333;
    sync.dirty_pages = 17;
    Record end;
    end.type = Record::Type::End;
    end.poll = 9;
    end.retired = 800000;
    end.end_kind = static_cast<u8>(RunOutcome::Kind::PowerOff);
    end.end_status = -1;
    end.total_retired = 900000;
    rec.records = {typed, frame, sync, end};
    return rec;
}

std::string refusal(std::span<const u8> bytes)
{
    ErrorOr<Recording> parsed = parse_recording(bytes);
    REQUIRE(parsed.is_error());
    return parsed.error().message;
}

// A finished recording's end marker, CRC-32 and length (version 3 on).
constexpr size_t END_TRAILER_BYTES = 20;

// The same records as a file of an older format version: before version 3
// the event stream ended the file.
std::vector<u8> as_version(std::vector<u8> bytes, u8 version)
{
    bytes[8] = version;
    if (version < 3)
        bytes.resize(bytes.size() - END_TRAILER_BYTES);
    return bytes;
}

std::string temporary_path(const char* name)
{
    return "/tmp/viridian-replay-test-" + std::to_string(::getpid()) + "-" + name;
}

// Real mode: poll COM1's LSR; echo each byte, add it to BL; 'q' exits with
// status (('q' << 1) | 1) & 0xFF through the debug-exit port.
const std::vector<u8> ECHO = {0xBA, 0xFD, 0x03, 0xEC, 0xA8, 0x01, 0x74, 0xF8, 0xBA, 0xF8,
                              0x03, 0xEC, 0x00, 0xC3, 0xEE, 0x3C, 0x71, 0x75, 0xED, 0xBA,
                              0xF4, 0x00, 0xEE, 0xF4};

struct EchoMachine {
    std::string com1;
    std::unique_ptr<Machine> machine;

    explicit EchoMachine(bool jit = true, std::vector<MachineDrive> drives = {})
    {
        MachineConfig config;
        config.memory_bytes = 32ull << 20;
        config.deterministic = true;
        config.jit = jit;
        config.drives = std::move(drives);
        config.com1_output = [this](u8 byte) { com1.push_back(static_cast<char>(byte)); };
        ErrorOr<std::unique_ptr<Machine>> created = Machine::create(config);
        REQUIRE_FALSE(created.is_error());
        machine = created.release_value();
        REQUIRE(machine->memory().write_bytes(0x7C00, ECHO.data(), ECHO.size()));
        CpuState state = machine->vcpu_state(0);
        state.seg[CS].selector = 0;
        state.seg[CS].base = 0;
        state.rip = 0x7C00;
        machine->set_vcpu_state(0, state);
    }
};

struct Recorded {
    std::string com1;
    RunOutcome outcome;
    u64 retired = 0;
};

// A recorder writing `path`, a sync record every 50,000 instructions.
std::unique_ptr<Recorder> recorder_at(const std::string& path)
{
    RecordingHeader header;
    header.build = recording_build_identity();
    header.sync_interval = 50000;
    ErrorOr<std::unique_ptr<RecordingWriter>> writer = RecordingWriter::create(path, header);
    REQUIRE_FALSE(writer.is_error());
    return std::make_unique<Recorder>(writer.release_value(), header.sync_interval);
}

// Records the echo machine with `typed` bytes typed at those host polls
// (counted from 1); the host stops it at poll `stop_at` if the guest has not
// ended the run by then.
Recorded record_echo(const std::string& path, const std::map<unsigned, char>& typed, unsigned stop_at = 1000,
                     unsigned reset_at = 0)
{
    const std::unique_ptr<Recorder> log = recorder_at(path);
    Recorder& recorder = *log;
    EchoMachine t;
    t.machine->set_input_log(&recorder);
    recorder.begin(*t.machine);
    unsigned polls = 0;
    const RunOutcome outcome = t.machine->run([&]() -> std::optional<int> {
        ++polls;
        if (auto it = typed.find(polls); it != typed.end())
            t.machine->serial_input(static_cast<u8>(it->second));
        if (polls == reset_at)
            t.machine->request_reset(); // QMP system_reset
        if (polls == stop_at)
            return 7;
        return std::nullopt;
    });
    const int status = outcome.kind == RunOutcome::Kind::HostStop ? outcome.status : 0;
    REQUIRE_FALSE(recorder.finish(outcome.kind, status, t.machine->retired(), t.machine->retired()).is_error());
    CHECK(recorder.syncs() > 0);
    return {t.com1, outcome, t.machine->retired()};
}

struct Replayed {
    std::string com1;
    RunOutcome outcome;
    u64 retired = 0;
    std::optional<std::string> divergence;
    std::optional<std::string> end_differs;
};

// Replays `path` on `t`'s machine; `live` runs at every host poll (its
// input is dropped).
Replayed replay_on(EchoMachine& t, const std::string& path, const std::function<void()>& live,
                   std::optional<u64> alter = {})
{
    ErrorOr<Recording> rec = read_recording(path);
    REQUIRE_FALSE(rec.is_error());
    Replayer replayer(rec.release_value());
    if (alter)
        replayer.alter_serial_input(*alter);
    t.machine->set_input_log(&replayer);
    replayer.begin(*t.machine);
    const RunOutcome outcome = t.machine->run([&]() -> std::optional<int> {
        live();
        return std::nullopt;
    });
    const int status = outcome.kind == RunOutcome::Kind::HostStop ? outcome.status : 0;
    return {t.com1, outcome, t.machine->retired(), replayer.divergence(),
            replayer.check_end(outcome.kind, status, t.machine->retired())};
}

Replayed replay_echo(const std::string& path, std::optional<u64> alter = {}, bool jit = true)
{
    EchoMachine t(jit);
    return replay_on(t, path, [&] { t.machine->serial_input('z'); }, alter);
}

} // namespace

TEST_CASE("A recording survives a round trip through its file format")
{
    const Recording rec = sample_recording();
    ErrorOr<Recording> parsed = parse_recording(serialize_recording(rec));
    REQUIRE_FALSE(parsed.is_error());
    const Recording& back = parsed.value();
    CHECK(back.header.args == rec.header.args);
    REQUIRE(back.header.files.size() == 1);
    CHECK(back.header.files[0].hash == 0xABCDEF0123456789ull);
    CHECK(back.header.files[0].size == 1234);
    CHECK(back.header.input_can_wake);
    CHECK(back.header.sync_interval == 5000);
    REQUIRE(back.records.size() == 4);
    CHECK(back.records[0].poll == 3);
    CHECK(back.records[0].input.value == 'x');
    CHECK(back.records[1].input.kind == HostInput::Kind::NetFrame);
    CHECK(back.records[1].input.bytes == std::vector<u8>{1, 2, 3, 4, 5});
    CHECK(back.records[2].vcpus[1].state_hash == 0x2222);
    CHECK(back.records[2].dirty_pages == 17);
    CHECK(back.records[3].end_status == -1);
    CHECK(back.records[3].total_retired == 900000);
}

TEST_CASE("A file that is not a recording is refused")
{
    const std::string text = "hello, this is not a recording at all";
    CHECK(refusal({reinterpret_cast<const u8*>(text.data()), text.size()}) == "not a viridian recording");
}

TEST_CASE("A recording of another format version is refused with both versions")
{
    std::vector<u8> bytes = serialize_recording(sample_recording());
    bytes[8] = 99;
    CHECK(refusal(bytes).find("format version 99; this viridian reads versions 1 to 3") != std::string::npos);
}

TEST_CASE("A recording made by another build is refused")
{
    Recording rec = sample_recording();
    rec.header.build = "viridian 0.0.1 (CpuState 1 bytes)";
    CHECK(refusal(serialize_recording(rec)).find("recorded by viridian 0.0.1") != std::string::npos);
}

TEST_CASE("A recording with a damaged header or event stream is refused")
{
    const std::vector<u8> good = serialize_recording(sample_recording());
    std::vector<u8> header = good;
    header[20] ^= 0x40;
    CHECK(refusal(header).find("checksum") != std::string::npos);
    std::vector<u8> stream = good;
    stream[stream.size() - 3] ^= 0xFF; // inside the Adler-32 or the last block
    CHECK(refusal(stream).find("damaged") != std::string::npos);
}

TEST_CASE("No damaged byte of a finished recording passes for a recording cut short")
{
    // A killed recording replays to its last sync record; a finished one
    // that is damaged must be refused. zlib alone cannot tell them apart
    // when the damage makes the stream's last block ask for more input (the
    // CI's linux-replay met one), and its Adler-32 lets some changes of
    // repetitive records through, so a finished recording says it finished
    // and carries a CRC-32 of its stream. Written as the recorder writes,
    // flushed at each sync record.
    const Recording sample = sample_recording();
    const std::string path = temporary_path("finished.vrr");
    ErrorOr<std::unique_ptr<RecordingWriter>> writer = RecordingWriter::create(path, sample.header);
    REQUIRE_FALSE(writer.is_error());
    std::mt19937 rng(5);
    Record typed = sample.records[0], frame = sample.records[1], sync = sample.records[2];
    // The last stretch goes without a flush: a long final block, where damage
    // can turn the end-of-block code into data that runs past the Adler-32.
    for (int i = 0; i < 120; ++i) {
        typed.poll += 1 + rng() % 3;
        typed.input.value = rng() % 256;
        REQUIRE_FALSE(writer.value()->append(typed).is_error());
        frame.poll = typed.poll;
        frame.input.bytes.resize(14 + rng() % 200);
        for (u8& b : frame.input.bytes)
            b = static_cast<u8>(rng() % 7); // frames compress, but not to nothing
        REQUIRE_FALSE(writer.value()->append(frame).is_error());
        if (i % 20 == 19 || i >= 60) {
            sync.poll = typed.poll;
            sync.memory_hash = u64{rng()} << 32 | rng();
            sync.vcpus[0].state_hash = u64{rng()} << 32 | rng();
            REQUIRE_FALSE(writer.value()->append(sync).is_error());
            if (i < 60)
                REQUIRE_FALSE(writer.value()->flush().is_error());
        }
    }
    Record end = sample.records[3];
    end.poll = typed.poll;
    REQUIRE_FALSE(writer.value()->finish(end).is_error());
    std::ifstream in(path, std::ios::binary);
    const std::vector<u8> good{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    ErrorOr<Recording> whole = parse_recording(good);
    REQUIRE_FALSE(whole.is_error());
    const std::vector<u8> content = serialize_recording(whole.value());
    // The event stream begins after the magic, the version, the header's
    // length, the header and its CRC (which guards the header on its own).
    const size_t header_length = good[12] | good[13] << 8 | good[14] << 16 | size_t{good[15]} << 24;
    const size_t stream_start = 16 + header_length + 4;
    size_t accepted = 0;
    for (size_t at = stream_start; at < good.size(); ++at)
        for (u8 flip : {u8{0x01}, u8{0x80}, u8(~good[at])}) {
            std::vector<u8> damaged = good;
            damaged[at] ^= flip; // the last one sets it to 0xFF
            const int value = damaged[at];
            // A byte zlib never reads (the padding after an empty stored
            // block's header) changes nothing; anything else is refused.
            ErrorOr<Recording> parsed = parse_recording(damaged);
            if (!parsed.is_error() &&
                (parsed.value().cut_short || serialize_recording(parsed.value()) != content)) {
                ++accepted;
                const std::string how = parsed.value().cut_short ? " as cut short" : "";
                MESSAGE("byte " << at << " of " << good.size() << " set to " << value << " was accepted"
                                << how);
            }
        }
    CHECK(accepted == 0);
}

TEST_CASE("A truncated recording is refused as truncated")
{
    Recording no_sync = sample_recording();
    no_sync.records.erase(no_sync.records.begin() + 2); // the sync record
    const std::vector<u8> good = serialize_recording(no_sync);
    const std::vector<u8> cut(good.begin(), good.end() - 6 - END_TRAILER_BYTES);
    CHECK(refusal(cut).find("truncated") != std::string::npos);
    Recording no_end = sample_recording();
    no_end.records.pop_back();
    CHECK(refusal(serialize_recording(no_end)).find("no end record") != std::string::npos);
}

TEST_CASE("A killed recording replays to its last sync record and stops there as the host had")
{
    const std::string path = temporary_path("killed.vrr");
    const Recorded recorded = record_echo(path, {{3, 'a'}, {5, 'b'}, {9, 'q'}});
    REQUIRE(recorded.com1 == "abq");
    // The same records written as the recorder writes them (flushed at
    // each sync record) and never finished: the .tmp a killed run leaves.
    ErrorOr<Recording> whole = read_recording(path);
    REQUIRE_FALSE(whole.is_error());
    const std::string killed = temporary_path("killed-2.vrr");
    ErrorOr<std::unique_ptr<RecordingWriter>> writer = RecordingWriter::create(killed, whole.value().header);
    REQUIRE_FALSE(writer.is_error());
    for (size_t i = 0; i + 1 < whole.value().records.size(); ++i) {
        REQUIRE_FALSE(writer.value()->append(whole.value().records[i]).is_error());
        if (whole.value().records[i].type == Record::Type::Sync)
            REQUIRE_FALSE(writer.value()->flush().is_error());
    }
    ErrorOr<Recording> cut = read_recording(killed + ".tmp");
    REQUIRE_MESSAGE(!cut.is_error(), cut.error().message);
    CHECK(cut.value().cut_short);
    const Record& end = cut.value().records.back();
    CHECK(end.type == Record::Type::End);
    CHECK(end.end_kind == static_cast<u8>(RunOutcome::Kind::HostStop));
    REQUIRE(cut.value().records.size() >= 2);
    CHECK(cut.value().records[cut.value().records.size() - 2].type == Record::Type::Sync);

    Replayer replayer(cut.release_value());
    EchoMachine t;
    t.machine->set_input_log(&replayer);
    replayer.begin(*t.machine);
    const RunOutcome outcome = t.machine->run();
    CHECK(outcome.kind == RunOutcome::Kind::HostStop);
    CHECK(t.machine->retired() == end.retired);
    CHECK_FALSE(replayer.divergence());
    CHECK_FALSE(replayer.check_end(outcome.kind, outcome.status, t.machine->retired()));
    CHECK(recorded.com1.starts_with(t.com1));
    writer.value().reset();
    std::remove(path.c_str());
    std::remove((killed + ".tmp").c_str());
}

TEST_CASE("A recording is written to a temporary file and renamed when the run ends")
{
    const std::string path = temporary_path("written.vrr");
    const Recording rec = sample_recording();
    ErrorOr<std::unique_ptr<RecordingWriter>> writer = RecordingWriter::create(path, rec.header);
    REQUIRE_FALSE(writer.is_error());
    for (size_t i = 0; i + 1 < rec.records.size(); ++i)
        REQUIRE_FALSE(writer.value()->append(rec.records[i]).is_error());
    REQUIRE_FALSE(writer.value()->flush().is_error());
    CHECK(::access(path.c_str(), F_OK) != 0);
    // What was flushed is a readable prefix, replayable to its sync record.
    ErrorOr<Recording> prefix = read_recording(path + ".tmp");
    REQUIRE_FALSE(prefix.is_error());
    CHECK(prefix.value().cut_short);
    CHECK(prefix.value().records.size() == rec.records.size()); // the inputs, the sync and an End there
    CHECK(prefix.value().records.back().retired == rec.records[2].retired);
    REQUIRE_FALSE(writer.value()->finish(rec.records.back()).is_error());
    CHECK(::access((path + ".tmp").c_str(), F_OK) != 0);
    ErrorOr<Recording> read = read_recording(path);
    REQUIRE_FALSE(read.is_error());
    CHECK(read.value().records.size() == rec.records.size());
    std::remove(path.c_str());
}

TEST_CASE("A replay delivers each typed byte at the host poll it was recorded at")
{
    const std::string path = temporary_path("echo.vrr");
    const Recorded recorded = record_echo(path, {{3, 'a'}, {5, 'b'}, {9, 'q'}});
    CHECK(recorded.outcome.kind == RunOutcome::Kind::GuestExit);
    CHECK(recorded.com1 == "abq");
    const Replayed replayed = replay_echo(path);
    CHECK_FALSE(replayed.divergence);
    CHECK_FALSE(replayed.end_differs);
    CHECK(replayed.com1 == "abq");
    CHECK(replayed.outcome.kind == RunOutcome::Kind::GuestExit);
    CHECK(replayed.outcome.status == recorded.outcome.status);
    CHECK(replayed.retired == recorded.retired);
    std::remove(path.c_str());
}

TEST_CASE("A replay with the JIT off matches a recording made with it on")
{
    const std::string path = temporary_path("echo-nojit.vrr");
    const Recorded recorded = record_echo(path, {{2, 'x'}, {4, 'q'}});
    const Replayed replayed = replay_echo(path, {}, false);
    CHECK_FALSE(replayed.divergence);
    CHECK(replayed.com1 == recorded.com1);
    CHECK(replayed.retired == recorded.retired);
    std::remove(path.c_str());
}

TEST_CASE("A replay stops where the host stopped the recording")
{
    const std::string path = temporary_path("stopped.vrr");
    const Recorded recorded = record_echo(path, {{2, 'h'}}, 6);
    CHECK(recorded.outcome.kind == RunOutcome::Kind::HostStop);
    const Replayed replayed = replay_echo(path);
    CHECK(replayed.outcome.kind == RunOutcome::Kind::HostStop);
    CHECK(replayed.outcome.status == 7);
    CHECK(replayed.retired == recorded.retired);
    CHECK_FALSE(replayed.end_differs);
    std::remove(path.c_str());
}

TEST_CASE("A host reset is recorded and replayed at the same point")
{
    const std::string path = temporary_path("reset.vrr");
    const Recorded recorded = record_echo(path, {{2, 'r'}}, 1000, 4);
    CHECK(recorded.outcome.kind == RunOutcome::Kind::Reset);
    CHECK(recorded.outcome.by_host);
    const Replayed replayed = replay_echo(path);
    CHECK(replayed.outcome.kind == RunOutcome::Kind::Reset);
    CHECK(replayed.outcome.by_host);
    CHECK(replayed.retired == recorded.retired);
    CHECK(replayed.com1 == "r");
    CHECK_FALSE(replayed.end_differs);
    std::remove(path.c_str());
}

TEST_CASE("A replay whose input was changed stops at the next sync record and says where")
{
    const std::string path = temporary_path("altered.vrr");
    record_echo(path, {{3, 'a'}, {5, 'b'}, {9, 'q'}});
    const Replayed replayed = replay_echo(path, 0);
    REQUIRE(replayed.divergence);
    CHECK(replayed.outcome.kind == RunOutcome::Kind::HostStop);
    CHECK(replayed.outcome.status == DIVERGED);
    // Typed at the third poll, caught by the sync record of the fourth.
    CHECK(replayed.divergence->find("(host poll 4): ") != std::string::npos);
    CHECK(replayed.divergence->find("vCPU 0's registers differ") != std::string::npos);
    CHECK(replayed.end_differs == replayed.divergence);
    std::remove(path.c_str());
}

TEST_CASE("A replay refuses to run past the end of its recording")
{
    const std::string path = temporary_path("short.vrr");
    {
        RecordingHeader header;
        header.build = recording_build_identity();
        ErrorOr<std::unique_ptr<RecordingWriter>> writer = RecordingWriter::create(path, header);
        REQUIRE_FALSE(writer.is_error());
        Record end;
        end.type = Record::Type::End;
        end.poll = 2;
        end.retired = Machine::QUANTUM;
        end.end_kind = static_cast<u8>(RunOutcome::Kind::PowerOff);
        REQUIRE_FALSE(writer.value()->finish(end).is_error());
    }
    const Replayed replayed = replay_echo(path);
    REQUIRE(replayed.divergence);
    CHECK(replayed.divergence->find("the recording ended at instruction 100000") != std::string::npos);
    std::remove(path.c_str());
}

TEST_CASE("The register hash sees a changed register and ignores nothing it covers")
{
    CpuState a;
    CpuState b = a;
    CHECK(hash_cpu_state(a) == hash_cpu_state(b));
    b.gpr[RCX] = 1;
    CHECK(hash_cpu_state(a) != hash_cpu_state(b));
    b = a;
    b.fpu.ymm_high[15][1] = 1;
    CHECK(hash_cpu_state(a) != hash_cpu_state(b));
}

namespace {

constexpr u64 ECHO_OUT = 0x7C0E; // the echo's OUT: a breakpoint there stops at each typed byte

// Runs until the next stop at a breakpoint (true) or the end of the run.
bool run_to_breakpoint(Machine& machine, const std::vector<u64>& breakpoints)
{
    machine.resume();
    machine.set_debug_points(breakpoints, {});
    const RunOutcome outcome = machine.run();
    return outcome.kind == RunOutcome::Kind::DebugStop && outcome.debug.kind == DebugEvent::Kind::Breakpoint;
}

// Off a breakpoint: the vCPU's next unit with the breakpoints out.
void step_off(Machine& machine)
{
    machine.set_debug_points({}, {});
    machine.stop_at_position(Machine::Position{0, machine.vcpu_units(0) + 1});
    REQUIRE(machine.run().kind == RunOutcome::Kind::DebugStop);
}

} // namespace

TEST_CASE("Reverse execution comes back to the states the replay passed: a step back and earlier breakpoint hits")
{
    const std::string path = temporary_path("reverse.vrr");
    const Recorded recorded = record_echo(path, {{3, 'a'}, {5, 'b'}, {7, 'c'}, {30, 'q'}});
    REQUIRE(recorded.com1 == "abcq");
    for (bool jit : {true, false}) {
        CAPTURE(jit);
        ErrorOr<Recording> rec = read_recording(path);
        REQUIRE_FALSE(rec.is_error());
        Replayer replayer(rec.release_value());
        replayer.keep_snapshots(64ull << 20);
        EchoMachine t(jit);
        t.machine->set_input_log(&replayer);
        replayer.begin(*t.machine);
        Machine& machine = *t.machine;
        // Forward to the third echo, noting where each one stopped.
        std::vector<std::pair<u64, u64>> hits; // units, register hash
        for (int i = 0; i < 3; ++i) {
            if (i > 0)
                step_off(machine);
            REQUIRE(run_to_breakpoint(machine, {ECHO_OUT}));
            hits.emplace_back(machine.vcpu_units(0), hash_cpu_state(machine.vcpu_state(0)));
        }
        CHECK(replayer.snapshot_count() > 2);
        Navigator navigator(replayer);
        // One step back: the ADD before the OUT, one unit earlier.
        Navigator::Stop stop = navigator.step_back(machine, 0);
        REQUIRE(stop.outcome.kind == RunOutcome::Kind::DebugStop);
        CHECK(machine.vcpu_units(0) == hits[2].first - 1);
        CHECK(machine.vcpu_state(0).rip == ECHO_OUT - 2);
        // Back to the second and the first echo, then the start.
        for (int i = 1; i >= 0; --i) {
            stop = navigator.continue_back(machine, 0, {ECHO_OUT}, {});
            REQUIRE(stop.outcome.kind == RunOutcome::Kind::DebugStop);
            CHECK(stop.outcome.debug.kind == DebugEvent::Kind::Breakpoint);
            CHECK_FALSE(stop.history_begin);
            CHECK(machine.vcpu_units(0) == hits[static_cast<size_t>(i)].first);
            CHECK(hash_cpu_state(machine.vcpu_state(0)) == hits[static_cast<size_t>(i)].second);
        }
        stop = navigator.continue_back(machine, 0, {ECHO_OUT}, {});
        CHECK(stop.history_begin);
        CHECK(machine.retired() == 0);
        // Forward again to the third echo: the same state.
        stop = navigator.go_to(machine, Machine::Position{0, hits[2].first});
        CHECK(machine.vcpu_units(0) == hits[2].first);
        CHECK(hash_cpu_state(machine.vcpu_state(0)) == hits[2].second);
        // And on to the end, as recorded (every sync record on the way agrees).
        machine.resume();
        const RunOutcome end = machine.run();
        CHECK_FALSE(replayer.divergence());
        CHECK(end.kind == RunOutcome::Kind::GuestExit);
        CHECK(machine.retired() == recorded.retired);
        CHECK_FALSE(replayer.check_end(end.kind, 0, machine.retired()));
    }
    std::remove(path.c_str());
}

// ---- QMP tray and medium commands as recorded inputs (HostInput::Kind::Medium) ----

namespace {

// The echo machine with a CD-ROM drive (secondary master) holding disc A.
struct CdEchoMachine : EchoMachine {
    explicit CdEchoMachine(const std::string& disc_a, bool jit = true)
        : EchoMachine(jit, {{open_raw_image(disc_a, true), 2, true, false}})
    {
    }
};

void write_file(const std::string& path, size_t size, char fill)
{
    std::FILE* f = std::fopen(path.c_str(), "wb");
    REQUIRE(f);
    const std::string bytes(size, fill);
    REQUIRE(std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size());
    std::fclose(f);
}

// What the drive went through, as the machine's medium listener heard it.
struct MediumSeen {
    TrayAction action;
    u64 retired;
    u64 disc_bytes; // the inserted image's size (0: none)
    bool open;
    bool operator==(const MediumSeen&) const = default;
};

void listen_media(Machine& machine, std::vector<MediumSeen>& seen)
{
    machine.set_medium_listener([&machine, &seen](size_t drive, const MediumChange& change,
                                                  const std::shared_ptr<BlockImage>& image, const TrayState& state) {
        CHECK(drive == 0);
        seen.push_back({change.action, machine.retired(), image ? image->info().virtual_size : 0, state.open});
    });
}

// Records the CD echo machine: at poll 3 the host ejects disc A (the tray
// opens, the disc goes), at poll 5 blockdev-change-medium puts `disc_b` in
// (the tray shuts), at poll 7 'q' ends the run.
Recorded record_medium_change(const std::string& path, const std::string& disc_a, const std::string& disc_b,
                              std::vector<MediumSeen>& seen)
{
    const std::unique_ptr<Recorder> log = recorder_at(path);
    Recorder& recorder = *log;
    CdEchoMachine t(disc_a);
    t.machine->set_input_log(&recorder);
    listen_media(*t.machine, seen);
    recorder.begin(*t.machine);
    unsigned polls = 0;
    const RunOutcome outcome = t.machine->run([&]() -> std::optional<int> {
        ++polls;
        if (polls == 3) {
            CHECK(t.machine->tray(0, TrayAction::Open).moved);
            t.machine->tray(0, TrayAction::Remove);
        }
        if (polls == 5) {
            MediumChange insert(TrayAction::Insert);
            insert.file = disc_b;
            insert.format = "raw";
            CHECK(t.machine->tray(0, insert, open_raw_image(disc_b, true)).moved);
        }
        if (polls == 7)
            t.machine->serial_input('q');
        return polls == 1000 ? std::optional<int>(7) : std::nullopt;
    });
    REQUIRE_FALSE(recorder.finish(outcome.kind, 0, t.machine->retired(), t.machine->retired()).is_error());
    CHECK(recorder.inputs() == 4);
    return {t.com1, outcome, t.machine->retired()};
}

// Discs A (64 KiB) and B (128 KiB) in a fresh directory, and the CD echo
// machine's disc change recorded in cd.vrr there.
struct RecordedDiscChange {
    TempDir dir;
    std::string path = dir.file("cd.vrr");
    std::vector<MediumSeen> media; // as the recording's machine heard them
    Recorded recorded;

    RecordedDiscChange()
    {
        write_file(dir.file("a.iso"), 64 << 10, 'a');
        write_file(dir.file("b.iso"), 128 << 10, 'b');
        recorded = record_medium_change(path, dir.file("a.iso"), dir.file("b.iso"), media);
        REQUIRE(media.size() == 3);
    }
};

Replayed replay_medium_change(const std::string& path, const std::string& disc_a, std::vector<MediumSeen>& seen,
                              bool jit = true)
{
    CdEchoMachine t(disc_a, jit);
    listen_media(*t.machine, seen);
    return replay_on(t, path, [&] {
        // A live tray command in a replay is dropped: the tray stays as the recording has it.
        const bool open = t.machine->tray(0, TrayAction::Query).open;
        CHECK(t.machine->tray(0, open ? TrayAction::Close : TrayAction::Open).open == open);
    });
}

} // namespace

TEST_CASE("A tray or medium input survives a round trip through the file, the insert's file and identity with it")
{
    Recording rec = sample_recording();
    MediumChange insert(TrayAction::Insert);
    insert.file = "/discs/b.iso";
    insert.format = "raw";
    insert.read_only = true;
    insert.size = 1 << 20;
    insert.hash = 0x0123456789ABCDEFull;
    Record medium = rec.records[0];
    medium.input = {HostInput::Kind::Medium, 1, encode_medium(insert)};
    Record eject = rec.records[0];
    eject.input = {HostInput::Kind::Medium, 1, encode_medium(TrayAction::ForceOpen)};
    rec.records.insert(rec.records.begin() + 1, {eject, medium});
    ErrorOr<Recording> parsed = parse_recording(serialize_recording(rec));
    REQUIRE_FALSE(parsed.is_error());
    REQUIRE(parsed.value().records.size() == 6);
    const HostInput& back_eject = parsed.value().records[1].input;
    CHECK(back_eject.kind == HostInput::Kind::Medium);
    CHECK(back_eject.value == 1);
    REQUIRE(decode_medium(back_eject.bytes));
    CHECK(decode_medium(back_eject.bytes)->action == TrayAction::ForceOpen);
    const std::optional<MediumChange> back = decode_medium(parsed.value().records[2].input.bytes);
    REQUIRE(back);
    CHECK(back->action == TrayAction::Insert);
    CHECK(back->file == "/discs/b.iso");
    CHECK(back->format == "raw");
    CHECK(back->read_only);
    CHECK(back->size == 1 << 20);
    CHECK(back->hash == 0x0123456789ABCDEFull);

    // A damaged medium input, and one in a version 1 file (which knew no such kind), are refused.
    rec.records[2].input.bytes.pop_back();
    CHECK(refusal(serialize_recording(rec)).find("tray or medium input does not parse") != std::string::npos);
    rec.records[2].input.bytes = encode_medium(insert);
    std::vector<u8> old = as_version(serialize_recording(rec), 1);
    CHECK(refusal(old).find("an input of unknown kind 7") != std::string::npos);
}

TEST_CASE("A recording of format version 1 (before the tray and medium inputs) still loads")
{
    std::vector<u8> bytes = serialize_recording(sample_recording());
    REQUIRE(bytes[8] == FORMAT_VERSION);
    ErrorOr<Recording> parsed = parse_recording(as_version(bytes, 1));
    REQUIRE_FALSE(parsed.is_error());
    CHECK(parsed.value().records.size() == 4);
}

TEST_CASE("A recorded disc change replays at the same point: the drive gets the new disc where it did")
{
    const RecordedDiscChange r;
    const TempDir& dir = r.dir;
    const std::vector<MediumSeen>& recorded_media = r.media;
    std::vector<MediumSeen> replayed_media;
    CHECK(r.recorded.outcome.kind == RunOutcome::Kind::GuestExit);
    CHECK(recorded_media[0].action == TrayAction::Open);
    CHECK(recorded_media[0].open);
    CHECK(recorded_media[1].action == TrayAction::Remove);
    CHECK(recorded_media[2].action == TrayAction::Insert);
    CHECK(recorded_media[2].disc_bytes == 128 << 10);
    CHECK_FALSE(recorded_media[2].open);
    CHECK(recorded_media[2].retired > recorded_media[0].retired);
    for (const bool jit : {true, false}) {
        CAPTURE(jit);
        replayed_media.clear();
        const Replayed replayed = replay_medium_change(r.path, dir.file("a.iso"), replayed_media, jit);
        CHECK_FALSE(replayed.divergence);
        CHECK_FALSE(replayed.end_differs);
        CHECK(replayed.com1 == r.recorded.com1);
        CHECK(replayed.retired == r.recorded.retired);
        // The same actions at the same instruction counts, disc B opened again by the machine.
        CHECK(replayed_media == recorded_media);
    }
}

TEST_CASE("A replay whose inserted disc changed or went missing stops there with one line")
{
    const RecordedDiscChange r;
    const TempDir& dir = r.dir;
    const std::string& path = r.path;
    std::vector<MediumSeen> replayed_media;
    write_file(dir.file("b.iso"), 128 << 10, 'c'); // the same size, other bytes
    Replayed replayed = replay_medium_change(path, dir.file("a.iso"), replayed_media);
    REQUIRE(replayed.divergence);
    CHECK(replayed.outcome.kind == RunOutcome::Kind::HostStop);
    CHECK(replayed.outcome.status == DIVERGED);
    CHECK(replayed.divergence->find("instruction " + std::to_string(r.media[2].retired)) != std::string::npos);
    CHECK(replayed.divergence->find("the medium '" + dir.file("b.iso") + "' put into drive 0 changed since the "
                                    "recording") != std::string::npos);
    CHECK(replayed.divergence->find('\n') == std::string::npos);
    CHECK(replayed_media.size() == 2); // opened and emptied; never the other disc

    std::remove(dir.file("b.iso").c_str());
    replayed_media.clear();
    replayed = replay_medium_change(path, dir.file("a.iso"), replayed_media);
    REQUIRE(replayed.divergence);
    CHECK(replayed.outcome.status == DIVERGED);
    CHECK(replayed.divergence->find("No such file") != std::string::npos);
}

TEST_CASE("Going back across a recorded disc change puts the earlier disc back, and forward again the new one")
{
    const RecordedDiscChange r;
    const std::vector<MediumSeen>& recorded_media = r.media;
    const Recorded& recorded = r.recorded;
    ErrorOr<Recording> rec = read_recording(r.path);
    REQUIRE_FALSE(rec.is_error());
    Replayer replayer(rec.release_value());
    replayer.keep_snapshots(64ull << 20);
    CdEchoMachine t(r.dir.file("a.iso"));
    Machine& machine = *t.machine;
    std::vector<MediumSeen> seen;
    listen_media(machine, seen);
    machine.set_input_log(&replayer);
    replayer.begin(machine);
    // Forward past the change, then back to before the eject.
    machine.stop_at_retired(recorded_media[2].retired + 1000);
    REQUIRE(machine.run().kind == RunOutcome::Kind::DebugStop);
    REQUIRE(machine.discs()[0].image->info().virtual_size == 128 << 10);
    Navigator navigator(replayer);
    Navigator::Stop stop = navigator.seek(machine, recorded_media[0].retired - 1);
    REQUIRE(stop.outcome.kind == RunOutcome::Kind::DebugStop);
    REQUIRE(machine.discs()[0].image);
    CHECK(machine.discs()[0].image->info().virtual_size == 64 << 10);
    CHECK(machine.discs()[0].inserted.action == TrayAction::Query); // the disc it started with
    CHECK_FALSE(machine.tray(0, TrayAction::Query).open);
    REQUIRE(seen.size() == 4);
    CHECK(seen[3].action == TrayAction::Insert); // the listener heard disc A go back in
    CHECK(seen[3].disc_bytes == 64 << 10);
    // On to the end as recorded: the change comes again at its point.
    seen.clear();
    machine.resume();
    const RunOutcome end = machine.run();
    CHECK_FALSE(replayer.divergence());
    CHECK(end.kind == RunOutcome::Kind::GuestExit);
    CHECK(machine.retired() == recorded.retired);
    CHECK(t.com1 == recorded.com1);
    CHECK(seen == recorded_media);
}
