// --record and --replay on the command line (frontend/options.cpp,
// frontend/replay_session.cpp).
#include "frontend/options.h"
#include "frontend/replay_session.h"

#include <doctest/doctest.h>

#include <vector>

namespace {

ErrorOr<Options> parse(std::vector<std::string_view> args) { return parse_options(args); }

std::string parse_error(std::vector<std::string_view> args)
{
    ErrorOr<Options> r = parse(std::move(args));
    REQUIRE(r.is_error());
    return r.error().message;
}

bool contains(const std::string& text, std::string_view part) { return text.find(part) != std::string::npos; }

} // namespace

TEST_CASE("--record implies --deterministic")
{
    ErrorOr<Options> o = parse({"--record", "run.vrr"});
    REQUIRE_FALSE(o.is_error());
    CHECK(o.value().deterministic);
    CHECK(*o.value().record == "run.vrr");
}

TEST_CASE("--replay takes the machine from the recording and refuses machine options")
{
    CHECK(contains(parse_error({"--replay", "run.vrr", "--cpus", "2"}), "--cpus does not go with it"));
    ErrorOr<Options> o = parse({"--replay", "run.vrr", "--serial", "none", "--jit", "off", "--stats"});
    REQUIRE_FALSE(o.is_error());
    CHECK_FALSE(o.value().jit);
}

TEST_CASE("--record refuses a writable disk and snapshots")
{
    CHECK(contains(parse_error({"--record", "r", "--drive", "file=disk.img,format=raw"}), "is writable"));
    CHECK_FALSE(parse({"--record", "r", "--drive", "file=disk.img,format=raw,readonly=on"}).is_error());
    CHECK_FALSE(parse({"--record", "r", "--drive", "file=disk.img,format=raw,snapshot=on"}).is_error());
    CHECK(contains(parse_error({"--record", "r", "--drive", "file=disk.img,snapshot=maybe"}), "is not 'on' or 'off'"));
    CHECK(contains(parse_error({"--record", "r", "--save-at", "5,file:x"}), "--save-at"));
    CHECK(contains(parse_error({"--sync-interval", "5"}), "needs --record"));
    CHECK(contains(parse_error({"--record", "r", "--gdb", "tcp::1234"}), "--gdb does not go with --record"));
    CHECK(contains(parse_error({"--replay-alter-input", "5"}), "needs --replay"));
    CHECK(contains(parse_error({"--replay-goto", "5"}), "needs --replay"));
    CHECK(contains(parse_error({"--replay", "r", "--replay-goto", "5"}), "give --gdb or --qmp"));
    CHECK(contains(parse_error({"--replay", "r", "--replay-goto", "x", "--gdb", "tcp::1"}), "not an instruction count"));
}

TEST_CASE("the usage text lists --record, --replay and --sync-interval")
{
    for (std::string_view opt : {"--record", "--replay", "--sync-interval"})
        CHECK(contains(usage_text(), opt));
}

TEST_CASE("a recording keeps the command line without --record and with --deterministic")
{
    const std::vector<std::string_view> args = {"--cpus", "2", "--record", "a.vrr", "--sync-interval=5",
                                                "--record=b.vrr", "--stats"};
    CHECK(recorded_arguments(args) == std::vector<std::string>{"--cpus", "2", "--stats", "--deterministic"});
    const std::vector<std::string_view> deterministic = {"--deterministic", "--record", "a.vrr"};
    CHECK(recorded_arguments(deterministic) == std::vector<std::string>{"--deterministic"});
}

TEST_CASE("a replay takes the host's serial targets and --jit only when given")
{
    replay::RecordingHeader header;
    header.args = {"--cpus", "2", "--jit", "off", "--serial", "none", "--deterministic"};
    ErrorOr<Options> host = parse({"--replay", "r.vrr", "--stats"});
    REQUIRE_FALSE(host.is_error());
    const std::vector<std::string_view> host_args = {"--replay", "r.vrr", "--stats"};
    ErrorOr<Options> merged = replay_options(header, host.value(), host_args);
    REQUIRE_FALSE(merged.is_error());
    CHECK(merged.value().cpus == 2);
    CHECK_FALSE(merged.value().jit); // as recorded: --jit was not given here
    CHECK(merged.value().stats);
    CHECK(merged.value().serial.kind == SerialTarget::Kind::Stdio);
    CHECK(merged.value().deterministic);
}

TEST_CASE("a replay takes a debugger, -S, --mark-output and --replay-goto from the host's command line")
{
    replay::RecordingHeader header;
    header.args = {"--cpus", "2", "--deterministic"};
    const std::vector<std::string_view> host_args = {"--replay", "r.vrr", "--gdb", "tcp::1234", "-S",
                                                     "--mark-output", "--replay-goto", "1234"};
    ErrorOr<Options> host = parse(host_args);
    REQUIRE_FALSE(host.is_error());
    ErrorOr<Options> merged = replay_options(header, host.value(), host_args);
    REQUIRE_FALSE(merged.is_error());
    REQUIRE(merged.value().gdb);
    CHECK(merged.value().start_paused);
    CHECK(merged.value().mark_output);
    CHECK(merged.value().replay_goto == 1234u);
    CHECK(merged.value().cpus == 2);
}
