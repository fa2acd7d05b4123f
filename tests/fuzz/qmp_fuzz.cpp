// Fuzz target: the bytes a QMP client sends (frontend/qmp/qmp_session.h).
// Whatever arrives, the session must not crash, hang, assert or hold more
// than its input limit, and everything it sends must be well-formed QMP:
// CRLF-terminated lines of ASCII, each one JSON object that is a greeting, a
// return, an error with a known class, or an event. A violation aborts so
// the fuzzer reports it.
//
// The first byte chooses how the rest is read: bit 0 set means each byte
// picks a JSON fragment from a dictionary (so the seeded smoke run, whose
// inputs are random bytes, still builds requests that reach the commands);
// bit 1 negotiates capabilities first; the upper bits set how many bytes go
// to each receive() call, to exercise values split across reads.
//
// Built two ways, like the others: with libFuzzer (scripts/fuzz.sh) and with
// the seeded driver fuzz_driver.cpp, run in the tests.
#include "frontend/qmp/qmp_session.h"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

const char* const FRAGMENTS[] = {
    "{", "}", "[", "]", ",", ":", " ", "\n", "\"", "'", "\\", "\\'", "\\u00e9", "\\ud800", "\x01", "\xff",
    "\"execute\"", "\"arguments\"", "\"id\"", "\"enable\"", "\"oob\"", "\"qmp_capabilities\"",
    "\"query-version\"", "\"query-commands\"", "\"probe\"", "\"name\"", "\"up\"", "\"count\"",
    "\"list\"", "\"any\"", "'execute'", "'probe'", "0", "-1", "1.5e3", "18446744073709551616", "true",
    "null", "tru", "\"x\"", "{\"execute\": \"probe\", \"arguments\": {",
    "{\"execute\": \"qmp_capabilities\"}", "\xc3\xa9", "\xc3",
};
constexpr size_t FRAGMENT_COUNT = sizeof(FRAGMENTS) / sizeof(FRAGMENTS[0]);

[[noreturn]] void fail(const char* what, const std::string& line)
{
    std::fprintf(stderr, "qmp_fuzz: %s: %.300s\n", what, line.c_str());
    std::abort();
}

void check_output(const std::string& out)
{
    size_t start = 0;
    while (start < out.size()) {
        size_t end = out.find("\r\n", start);
        if (end == std::string::npos)
            fail("output line without CRLF", out.substr(start));
        std::string line = out.substr(start, end - start);
        start = end + 2;
        for (char c : line) {
            if (static_cast<unsigned char>(c) >= 0x80 || c == '\n' || c == '\r')
                fail("non-ASCII or raw newline in output", line);
        }
        Json message = Json::parse(line, nullptr, false);
        if (message.is_discarded() || !message.is_object())
            fail("output is not a JSON object", line);
        if (message.contains("error")) {
            const Json& error = message["error"];
            if (!error.is_object() || error.size() != 2 || !error.contains("desc") ||
                !error["desc"].is_string() || !error.contains("class"))
                fail("malformed error", line);
            const Json& cls = error["class"];
            if (cls != "GenericError" && cls != "CommandNotFound" && cls != "DeviceNotActive" &&
                cls != "DeviceNotFound" && cls != "KVMMissingCap")
                fail("unknown error class", line);
        } else if (!message.contains("return") && !message.contains("event") && !message.contains("QMP")) {
            fail("neither return, error, event nor greeting", line);
        }
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    if (size == 0)
        return 0;
    const uint8_t mode = data[0];
    ++data;
    --size;

    std::string input;
    if (mode & 1) {
        // Capped so that one input stays fast with one byte per receive().
        for (size_t i = 0; i < size && input.size() < 8192; ++i)
            input += FRAGMENTS[data[i] % FRAGMENT_COUNT];
    } else {
        input.assign(reinterpret_cast<const char*>(data), size);
    }

    QmpLimits limits;
    limits.input.max_value_bytes = 512;
    limits.input.max_depth = 16;
    limits.max_pending_output = 1 << 16;
    QmpCommands commands;
    int64_t tick = 0;
    QmpMonitor monitor(commands, [&tick] { return QmpTimestamp{tick, tick % 1000000}; }, limits);
    commands.add("probe",
                 {{"name", QmpType::String}, {"up", QmpType::Boolean, true}, {"count", QmpType::Integer, true},
                  {"list", QmpType::Array, true, QmpType::Uint64}, {"any", QmpType::Any, true}},
                 [&](const Json& args) -> QmpResult {
                     // Events in the middle of replies, as the machine will send them.
                     monitor.emit_event("PROBE", Json{{"name", args["name"]}});
                     if (args.contains("up"))
                         return QmpError{QmpErrorClass::DeviceNotActive, "down"};
                     return args;
                 });

    QmpSession session(monitor);
    std::string out = session.take_output();
    if (mode & 2)
        session.receive("{\"execute\": \"qmp_capabilities\"}");

    const size_t chunk = 1 + (mode >> 2);
    for (size_t pos = 0; pos < input.size(); pos += chunk) {
        session.receive(std::string_view(input).substr(pos, chunk));
        if (session.pending_output() > (1u << 20))
            fail("output grew past its bound", "");
        if (++tick % 16 == 0)
            monitor.emit_event("TICK");
        out += session.take_output();
        if (out.size() > 4096 || pos + chunk >= input.size()) {
            check_output(out);
            out.clear();
        }
    }
    return 0;
}
