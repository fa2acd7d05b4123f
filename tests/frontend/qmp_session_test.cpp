// The QMP protocol layer (frontend/qmp/) against QEMU's behaviour.
//
// The oracle is QEMU 7.2 itself (Debian's 1:7.2+dfsg-7+deb12u18):
//   qemu-system-x86_64 -display none -machine none -qmp stdio
// fed the same requests. Every error text below marked "QEMU 7.2" was copied
// from one of its actual replies; the member order of the envelopes
// ({"return", "id"}, {"id", "error"}, {"timestamp", "event", "data"}) and the
// ", " / ": " spacing are also what it printed. Where we differ on purpose
// (docs/qmp.md): the text after "JSON parse error, " for errors found by the
// parser, the package field, no "oob" capability, and one error per value
// refused for size or nesting (QEMU resynchronises token by token and may
// answer many).
#include "frontend/qmp/qmp_session.h"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

namespace {

struct Fixture {
    QmpCommands commands{QmpVersion{7, 2, 0, "viridian test"}};
    QmpTimestamp now{1700000000, 123456};
    QmpLimits limits;
    QmpMonitor monitor{commands, [this] { return now; }, limits};

    Fixture() = default;
    explicit Fixture(QmpLimits l) : limits(l) {}
};

// The session's output split into lines; every line must end with CRLF.
std::vector<std::string> lines(QmpSession& session)
{
    std::string out = session.take_output();
    std::vector<std::string> result;
    size_t start = 0;
    while (start < out.size()) {
        size_t end = out.find("\r\n", start);
        REQUIRE(end != std::string::npos);
        result.push_back(out.substr(start, end - start));
        start = end + 2;
    }
    return result;
}

std::vector<std::string> replies_to(QmpSession& session, std::string_view input)
{
    session.receive(input);
    return lines(session);
}

std::string one(QmpSession& session, std::string_view input)
{
    auto replies = replies_to(session, input);
    REQUIRE(replies.size() == 1);
    return replies[0];
}

void negotiate(QmpSession& session)
{
    lines(session); // the greeting
    REQUIRE(one(session, R"({"execute": "qmp_capabilities"})") == R"({"return": {}})");
}

std::string generic(std::string_view desc)
{
    return R"({"error": {"class": "GenericError", "desc": ")" + std::string(desc) + "\"}}";
}

} // namespace

TEST_CASE("QMP greets with the version triple, viridian's package and no capabilities")
{
    Fixture f;
    QmpSession session(f.monitor);
    auto greeting = lines(session);
    REQUIRE(greeting.size() == 1);
    // QEMU 7.2's shape: {"QMP": {"version": {"qemu": {"micro", "minor",
    // "major"}, "package"}, "capabilities": ["oob"]}}.
    CHECK(greeting[0] == R"({"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, )"
                         R"("package": "viridian test"}, "capabilities": []}})");
    CHECK(QmpVersion::viridian().package.rfind("viridian ", 0) == 0);
}

TEST_CASE("QMP answers every command but qmp_capabilities with CommandNotFound before negotiation")
{
    Fixture f;
    QmpSession session(f.monitor);
    lines(session);
    // QEMU 7.2: the same reply for a known command, one with bad arguments
    // and an unknown one.
    const std::string expecting =
        R"("error": {"class": "CommandNotFound", "desc": "Expecting capabilities negotiation with 'qmp_capabilities'"}})";
    CHECK(one(session, R"({"execute": "query-version"})") == "{" + expecting);
    CHECK(one(session, R"({"execute": "query-version", "arguments": {"x": 1}, "id": 2})") ==
          R"({"id": 2, )" + expecting);
    CHECK(one(session, R"({"execute": "nonexistent", "id": 1})") == R"({"id": 1, )" + expecting);
    CHECK_FALSE(session.negotiated());
}

TEST_CASE("qmp_capabilities enters command mode once and refuses a second call")
{
    Fixture f;
    QmpSession session(f.monitor);
    lines(session);
    CHECK(one(session, R"({"execute": "qmp_capabilities", "id": 1})") == R"({"return": {}, "id": 1})");
    CHECK(session.negotiated());
    // QEMU 7.2.
    CHECK(one(session, R"({"execute": "qmp_capabilities", "id": 2})") ==
          R"({"id": 2, "error": {"class": "CommandNotFound", "desc": "Capabilities negotiation is already complete, command ignored"}})");
    // Arguments are checked before the mode, as QEMU 7.2 does.
    CHECK(one(session, R"({"execute": "qmp_capabilities", "arguments": {"x": 1}})") ==
          generic("Parameter 'x' is unexpected"));
}

TEST_CASE("qmp_capabilities checks its enable list with QEMU's messages")
{
    Fixture f;
    QmpSession session(f.monitor);
    lines(session);
    // QEMU 7.2, all four before negotiation; none of them completes it.
    CHECK(one(session, R"({"execute": "qmp_capabilities", "arguments": {"enable": "oob"}, "id": 5})") ==
          R"({"id": 5, "error": {"class": "GenericError", "desc": "Invalid parameter type for 'enable', expected: array"}})");
    CHECK(one(session, R"({"execute": "qmp_capabilities", "arguments": {"enable": ["foo"]}})") ==
          generic("Parameter 'null' does not accept value 'foo'"));
    CHECK(one(session, R"({"execute": "qmp_capabilities", "arguments": {"enable": [1]}})") ==
          generic("Invalid parameter type for 'enable[0]', expected: string"));
    CHECK(one(session, R"({"execute": "qmp_capabilities", "arguments": {"x": 1}})") ==
          generic("Parameter 'x' is unexpected"));
    // QEMU's text for a capability it did not offer (monitor/qmp-cmds-control.c);
    // QEMU 7.2 offers oob on stdio, we never do.
    CHECK(one(session, R"({"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}})") ==
          generic("Capability oob not available"));
    CHECK_FALSE(session.negotiated());
    CHECK(one(session, R"({"execute": "qmp_capabilities", "arguments": {"enable": []}})") == R"({"return": {}})");
    CHECK(session.negotiated());
}

TEST_CASE("QMP echoes any JSON value given as id")
{
    Fixture f;
    QmpSession session(f.monitor);
    negotiate(session);
    CHECK(one(session, R"({"execute": "query-version", "id": {"a": [1, 2]}})") ==
          R"({"return": {"package": "viridian test", "qemu": {"major": 7, "micro": 0, "minor": 2}}, "id": {"a": [1, 2]}})");
    CHECK(one(session, R"({"id": "x", "execute": "query-commands"})").ends_with(R"(, "id": "x"})"));
    CHECK(one(session, R"({"execute": "nonexistent", "id": null})").starts_with(R"({"id": null, "error")"));
    CHECK(one(session, R"({"execute": "qmp_capabilities", "id": 1.5})").starts_with(R"({"id": 1.5, )"));
}

TEST_CASE("QMP answers an unknown command with CommandNotFound")
{
    Fixture f;
    QmpSession session(f.monitor);
    negotiate(session);
    // QEMU 7.2.
    CHECK(one(session, R"({"execute": "nonexistent", "id": "x"})") ==
          R"({"id": "x", "error": {"class": "CommandNotFound", "desc": "The command nonexistent has not been found"}})");
}

TEST_CASE("QMP reports a JSON parse error without an id and reads the next request")
{
    Fixture f;
    QmpSession session(f.monitor);
    negotiate(session);
    auto replies = replies_to(session, "{\"execute\": }\n{\"execute\": \"query-version\", \"id\": 9}\n");
    REQUIRE(replies.size() == 2);
    CHECK(replies[0].starts_with(R"({"error": {"class": "GenericError", "desc": "JSON parse error, )"));
    CHECK(replies[1].starts_with(R"({"return": )"));
    // A closing bracket with nothing open is an error of its own, as in QEMU 7.2.
    replies = replies_to(session, "{\"id\": 3, \"execute\": \"query-version\"}}\n");
    REQUIRE(replies.size() == 2);
    CHECK(replies[0].ends_with(R"("id": 3})"));
    CHECK(replies[1].starts_with(R"({"error": {"class": "GenericError", "desc": "JSON parse error, )"));
}

TEST_CASE("QMP refuses input that is not a JSON object")
{
    Fixture f;
    QmpSession session(f.monitor);
    negotiate(session);
    // QEMU 7.2, for each.
    auto replies = replies_to(session, "[1, 2]\n42\n\"str\"\ntrue ");
    REQUIRE(replies.size() == 4);
    for (const std::string& reply : replies)
        CHECK(reply == generic("QMP input must be a JSON object"));
}

TEST_CASE("QMP refuses a request with a missing execute, a bad member or an unexpected one")
{
    Fixture f;
    QmpSession session(f.monitor);
    negotiate(session);
    // QEMU 7.2, all with the id when there is one.
    CHECK(one(session, "{}") == generic("QMP input lacks member 'execute'"));
    CHECK(one(session, R"({"arguments": {}, "id": 4})") ==
          R"({"id": 4, "error": {"class": "GenericError", "desc": "QMP input lacks member 'execute'"}})");
    CHECK(one(session, R"({"foo": 1})") == generic("QMP input member 'foo' is unexpected"));
    CHECK(one(session, R"({"execute": "query-version", "foo": 1, "id": 5})") ==
          R"({"id": 5, "error": {"class": "GenericError", "desc": "QMP input member 'foo' is unexpected"}})");
    CHECK(one(session, R"({"execute": "query-version", "arguments": [1], "id": 6})") ==
          R"({"id": 6, "error": {"class": "GenericError", "desc": "QMP input member 'arguments' must be an object"}})");
    CHECK(one(session, R"({"execute": 12, "id": 7})") ==
          R"({"id": 7, "error": {"class": "GenericError", "desc": "QMP input member 'execute' must be a string"}})");
    CHECK(one(session, R"({"foo": 1, "execute": 12})") ==
          generic("QMP input member 'execute' must be a string"));
    CHECK(one(session, R"({"exec-oob": "query-version", "id": 11})") ==
          R"({"id": 11, "error": {"class": "GenericError", "desc": "QMP input member 'exec-oob' is unexpected"}})");
    CHECK(one(session, R"({"execute": "query-version", "control": {}})") ==
          generic("QMP input member 'control' is unexpected"));
}

TEST_CASE("QMP checks a command's arguments with QEMU's messages before it runs")
{
    Fixture f;
    int runs = 0;
    f.commands.add("set_link",
                   {{"name", QmpType::String}, {"up", QmpType::Boolean}, {"count", QmpType::Integer, true},
                    {"size", QmpType::Uint64, true}, {"ratio", QmpType::Number, true},
                    {"list", QmpType::Array, true, QmpType::Integer}},
                   [&](const Json& args) -> QmpResult {
                       ++runs;
                       return Json{{"name", args["name"]}};
                   });
    QmpSession session(f.monitor);
    negotiate(session);
    // QEMU 7.2 (set_link and memsave's members gave these texts).
    CHECK(one(session, R"({"execute": "set_link"})") == generic("Parameter 'name' is missing"));
    CHECK(one(session, R"({"execute": "set_link", "arguments": {"name": 1, "up": true}})") ==
          generic("Invalid parameter type for 'name', expected: string"));
    CHECK(one(session, R"({"execute": "set_link", "arguments": {"name": "x", "up": null}})") ==
          generic("Invalid parameter type for 'up', expected: boolean"));
    CHECK(one(session, R"({"execute": "set_link", "arguments": {"name": "x", "up": true, "count": 1.5}})") ==
          generic("Invalid parameter type for 'count', expected: integer"));
    CHECK(one(session, R"({"execute": "set_link", "arguments": {"name": "x", "up": true, "count": 18446744073709551615}})") ==
          generic("Invalid parameter type for 'count', expected: integer"));
    CHECK(one(session, R"({"execute": "set_link", "arguments": {"name": "x", "up": true, "x": 1}})") ==
          generic("Parameter 'x' is unexpected"));
    // From QEMU's input visitor (qapi/qobject-input-visitor.c), not seen live.
    CHECK(one(session, R"({"execute": "set_link", "arguments": {"name": "x", "up": true, "size": "1"}})") ==
          generic("Parameter 'size' expects uint64"));
    CHECK(one(session, R"({"execute": "set_link", "arguments": {"name": "x", "up": true, "ratio": "1"}})") ==
          generic("Invalid parameter type for 'ratio', expected: number"));
    CHECK(one(session, R"({"execute": "set_link", "arguments": {"name": "x", "up": true, "list": [1, "a"]}})") ==
          generic("Invalid parameter type for 'list[1]', expected: integer"));
    CHECK(runs == 0);
    CHECK(one(session,
              R"({"execute": "set_link", "arguments": {"name": "eth0", "up": false, "count": -1, "size": -1, "ratio": 2, "list": []}})") ==
          R"({"return": {"name": "eth0"}})");
    CHECK(runs == 1);
}

TEST_CASE("QMP passes a handler's error class through")
{
    Fixture f;
    f.commands.add("dev", {{"class", QmpType::Integer}}, [](const Json& args) -> QmpResult {
        return QmpError{static_cast<QmpErrorClass>(args["class"].get<int>()), "it failed"};
    });
    QmpSession session(f.monitor);
    negotiate(session);
    const char* names[] = {"GenericError", "CommandNotFound", "DeviceNotActive", "DeviceNotFound",
                           "KVMMissingCap"};
    for (int i = 0; i < 5; ++i) {
        CHECK(one(session, R"({"execute": "dev", "arguments": {"class": )" + std::to_string(i) + "}}") ==
              R"({"error": {"class": ")" + std::string(names[i]) + R"(", "desc": "it failed"}})");
    }
}

TEST_CASE("QMP answers several requests in one read and one request split across reads")
{
    Fixture f;
    QmpSession session(f.monitor);
    negotiate(session);
    auto replies = replies_to(session, "{\"execute\": \"query-version\", \"id\": 9} "
                                     "{\"execute\": \"query-version\", \"id\": 10}\r\n\t\n"
                                     "{\"execute\":\"query-commands\",\"id\":11}");
    REQUIRE(replies.size() == 3);
    CHECK(replies[0].ends_with("\"id\": 9}"));
    CHECK(replies[1].ends_with("\"id\": 10}"));
    CHECK(replies[2].ends_with("\"id\": 11}"));

    const std::string request = R"({"execute": "query-version", "arguments": {}, "id": "split \"}\" here"})";
    for (char c : request.substr(0, request.size() - 1))
        CHECK(replies_to(session, std::string(1, c)).empty());
    replies = replies_to(session, "}");
    REQUIRE(replies.size() == 1);
    CHECK(replies[0].ends_with(R"("id": "split \"}\" here"})"));
}

TEST_CASE("QMP accepts QEMU's single-quoted strings and the \\' escape")
{
    Fixture f;
    QmpSession session(f.monitor);
    negotiate(session);
    // QEMU 7.2 answered {'execute': 'query-version', 'id': 13} normally.
    CHECK(one(session, R"({'execute': 'query-version', 'id': 'it\'s "q"'})").ends_with(R"("id": "it's \"q\""})"));
    CHECK(one(session, R"({"execute": "query-version", "id": "a\'b"})").ends_with(R"("id": "a'b"})"));
}

TEST_CASE("QMP drops a partial request at a control character, as the spec's resync asks")
{
    Fixture f;
    QmpSession session(f.monitor);
    negotiate(session);
    // QEMU 7.2 answers a lone \x01 with "JSON parse error, stray '\u0001'".
    auto replies = replies_to(session, std::string("{\"execute\": \"query-ver") + '\x01' +
                                         "{\"execute\": \"query-version\", \"id\": 1}");
    REQUIRE(replies.size() == 2);
    CHECK(replies[0] == generic("JSON parse error, stray '\\u0001'"));
    CHECK(replies[1].ends_with("\"id\": 1}"));
    // 0xFF, the resync byte the spec suggests for old servers.
    replies = replies_to(session, "{\"a\xff{\"execute\": \"query-version\", \"id\": 2}");
    REQUIRE(replies.size() == 2);
    CHECK(replies[0] == generic("JSON parse error, stray '\\ufffd'"));
    CHECK(replies[1].ends_with("\"id\": 2}"));
}

TEST_CASE("QMP replies are ASCII whatever the client sent")
{
    Fixture f;
    QmpSession session(f.monitor);
    negotiate(session);
    CHECK(one(session, "{\"execute\": \"query-version\", \"id\": \"\xc3\xa9\"}").ends_with(R"("id": "\u00e9"})"));
    // Ill-formed UTF-8 in a string is a parse error.
    CHECK(one(session, "{\"execute\": \"query-version\", \"id\": \"\xc3(\"}")
              .starts_with(R"({"error": {"class": "GenericError", "desc": "JSON parse error, )"));
    for (const std::string& line : replies_to(session, "{\"execute\": \"\xe2\x82\xac\x80\"}")) {
        for (char c : line)
            CHECK(static_cast<unsigned char>(c) < 0x80);
    }
}

TEST_CASE("QMP events reach only negotiated sessions, stamped by the injected clock")
{
    Fixture f;
    QmpSession early(f.monitor);
    QmpSession late(f.monitor);
    negotiate(late);
    lines(early);
    f.monitor.emit_event("POWERDOWN");
    f.now = {1700000001, 7};
    f.monitor.emit_event("SHUTDOWN", Json{{"guest", true}, {"reason", "guest-shutdown"}});
    CHECK(lines(early).empty());
    auto events = lines(late);
    REQUIRE(events.size() == 2);
    // QEMU 7.2's order; an event without data has no data member.
    CHECK(events[0] == R"({"timestamp": {"seconds": 1700000000, "microseconds": 123456}, "event": "POWERDOWN"})");
    CHECK(events[1] == R"({"timestamp": {"seconds": 1700000001, "microseconds": 7}, "event": "SHUTDOWN", )"
                       R"("data": {"guest": true, "reason": "guest-shutdown"}})");
}

TEST_CASE("QMP events drop for a client that stops reading, replies do not")
{
    QmpLimits limits;
    limits.max_pending_output = 1000;
    Fixture f(limits);
    QmpSession session(f.monitor);
    negotiate(session);
    for (int i = 0; i < 100; ++i)
        f.monitor.emit_event("STOP");
    CHECK(session.pending_output() < 1100);
    CHECK(session.dropped_events() > 80);
    session.receive(R"({"execute": "query-version", "id": 1})");
    CHECK(lines(session).back().ends_with("\"id\": 1}"));
}

TEST_CASE("QMP refuses a value over the size limit with one error and without holding it")
{
    QmpLimits limits;
    limits.input.max_value_bytes = 4096;
    Fixture f(limits);
    QmpSession session(f.monitor);
    negotiate(session);
    session.receive(R"({"execute": "query-version", "id": [)");
    for (int i = 0; i < 1000; ++i) {
        session.receive("\"0123456789\", ");
        CHECK(session.pending_output() < 200);
        CHECK(session.buffered_input() <= 4096);
    }
    session.receive("1]}");
    session.receive(R"({"execute": "query-version", "id": 2})");
    auto replies = lines(session);
    REQUIRE(replies.size() == 2);
    CHECK(replies[0] == generic("JSON token size limit exceeded"));
    CHECK(replies[1].ends_with("\"id\": 2}"));

    // A single over-long top-level string, split across reads.
    session.receive("\"");
    for (int i = 0; i < 1000; ++i) {
        session.receive("ab}]{[\\\"");
        CHECK(session.buffered_input() <= 4096);
    }
    session.receive("\" {\"execute\": \"query-version\", \"id\": 3}");
    replies = lines(session);
    REQUIRE(replies.size() == 2);
    CHECK(replies[0] == generic("JSON token size limit exceeded"));
    CHECK(replies[1].ends_with("\"id\": 3}"));
}

TEST_CASE("QMP refuses nesting deeper than the limit with QEMU's message and recovers")
{
    Fixture f;
    QmpSession session(f.monitor);
    negotiate(session);
    // QEMU 7.2's text for 1100 nested arrays; it then answers the rest token
    // by token, we skip the refused value whole.
    auto replies = replies_to(session, std::string(1100, '[') + std::string(1100, ']') +
                                         "{\"execute\": \"query-version\", \"id\": 8}");
    REQUIRE(replies.size() == 2);
    CHECK(replies[0] == generic("JSON nesting depth limit exceeded"));
    CHECK(replies[1].ends_with("\"id\": 8}"));
    // 1024 levels are still fine (QEMU's MAX_NESTING).
    CHECK(one(session, std::string(1024, '[') + std::string(1024, ']')) ==
          generic("QMP input must be a JSON object"));
}

TEST_CASE("query-commands lists the built-in and the registered commands")
{
    Fixture f;
    f.commands.add("stop", {}, [](const Json&) -> QmpResult { return Json::object(); });
    QmpSession session(f.monitor);
    negotiate(session);
    CHECK(one(session, R"({"execute": "query-commands"})") ==
          R"({"return": [{"name": "qmp_capabilities"}, {"name": "query-version"}, )"
          R"({"name": "query-commands"}, {"name": "stop"}]})");
    CHECK(one(session, R"({"execute": "stop"})") == R"({"return": {}})");
}

TEST_CASE("A QMP session outliving its monitor answers with an error")
{
    QmpCommands commands;
    auto monitor = std::make_unique<QmpMonitor>(commands);
    QmpSession session(*monitor);
    negotiate(session);
    monitor.reset();
    CHECK(one(session, R"({"execute": "query-version"})") == generic("The machine has gone away"));
}
