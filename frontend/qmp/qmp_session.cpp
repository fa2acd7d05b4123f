#include "frontend/qmp/qmp_session.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <ctime>

QmpTimestamp qmp_host_time()
{
    timespec now{};
    if (clock_gettime(CLOCK_REALTIME, &now) != 0)
        return QmpTimestamp{};
    return QmpTimestamp{static_cast<int64_t>(now.tv_sec), static_cast<int64_t>(now.tv_nsec / 1000)};
}

namespace {

void append_json(std::string& out, const Json& value)
{
    if (value.is_object()) {
        out += '{';
        bool first = true;
        for (auto it = value.begin(); it != value.end(); ++it) {
            if (!first)
                out += ", ";
            first = false;
            out += Json(it.key()).dump(-1, ' ', true, Json::error_handler_t::replace);
            out += ": ";
            append_json(out, it.value());
        }
        out += '}';
    } else if (value.is_array()) {
        out += '[';
        bool first = true;
        for (const Json& element : value) {
            if (!first)
                out += ", ";
            first = false;
            append_json(out, element);
        }
        out += ']';
    } else {
        out += value.dump(-1, ' ', true, Json::error_handler_t::replace);
    }
}

// Every message of the protocol goes through here, so the member order of
// the envelopes is QEMU 7.2's (a client must not depend on it, but it makes
// our replies diff cleanly against QEMU's).
struct Member {
    const char* key;
    const Json* value;
};

std::string object_line(std::initializer_list<Member> members)
{
    std::string out = "{";
    bool first = true;
    for (const Member& member : members) {
        if (!member.value)
            continue;
        if (!first)
            out += ", ";
        first = false;
        out += '"';
        out += member.key;
        out += "\": ";
        append_json(out, *member.value);
    }
    out += '}';
    return out;
}

// docs/interop/qmp-spec.rst "Issuing Commands" and QEMU 7.2's
// qmp_dispatch_check_obj(): the members a request may have.
ErrorOr<void, QmpError> check_request(const Json& request)
{
    // QEMU walks the members in its hash table's order; we check execute,
    // then arguments, then the rest in key order, which gives the same
    // answer for every request QEMU 7.2 was seen to answer.
    if (auto it = request.find("execute"); it != request.end() && !it->is_string())
        return qmp_error("QMP input member 'execute' must be a string");
    if (auto it = request.find("arguments"); it != request.end() && !it->is_object())
        return qmp_error("QMP input member 'arguments' must be an object");
    for (auto it = request.begin(); it != request.end(); ++it) {
        if (it.key() != "execute" && it.key() != "arguments" && it.key() != "id")
            return qmp_error("QMP input member '" + it.key() + "' is unexpected");
    }
    if (!request.contains("execute"))
        return qmp_error("QMP input lacks member 'execute'");
    return {};
}

} // namespace

std::string qmp_to_string(const Json& value)
{
    std::string out;
    append_json(out, value);
    return out;
}

QmpMonitor::QmpMonitor(QmpCommands& commands, QmpClock clock, QmpLimits limits)
    : m_commands(commands), m_clock(std::move(clock)), m_limits(limits)
{
}

QmpMonitor::~QmpMonitor()
{
    // Sessions that outlive the monitor keep their output but get no more
    // events or commands.
    for (QmpSession* session : m_sessions)
        session->m_monitor = nullptr;
}

void QmpMonitor::emit_event(std::string_view name)
{
    emit_event(name, Json());
}

void QmpMonitor::emit_event(std::string_view name, const Json& data)
{
    const QmpTimestamp time = m_clock ? m_clock() : QmpTimestamp{};
    // Spelt out because Json's sorted members would put microseconds
    // first; QEMU writes seconds first.
    std::string stamp = "{\"seconds\": " + Json(time.seconds).dump() +
                        ", \"microseconds\": " + Json(time.microseconds).dump() + "}";
    const Json event_name = std::string(name);
    std::string line = "{\"timestamp\": " + stamp + ", \"event\": ";
    append_json(line, event_name);
    if (!data.is_null()) {
        line += ", \"data\": ";
        append_json(line, data);
    }
    line += '}';
    for (QmpSession* session : m_sessions) {
        if (session->m_negotiated)
            session->queue_event(line);
    }
}

QmpSession::QmpSession(QmpMonitor& monitor)
    : m_monitor(&monitor), m_input(monitor.limits().input)
{
    monitor.m_sessions.push_back(this);
    const QmpVersion& version = monitor.commands().version();
    // QEMU's greeting, with an empty capability list: we do not offer "oob"
    // (out-of-band execution), the only capability QMP defines.
    std::string qemu = "{\"micro\": " + Json(version.micro).dump() +
                       ", \"minor\": " + Json(version.minor).dump() +
                       ", \"major\": " + Json(version.major).dump() + "}";
    std::string line = "{\"QMP\": {\"version\": {\"qemu\": " + qemu + ", \"package\": ";
    append_json(line, Json(version.package));
    line += "}, \"capabilities\": []}}";
    send_line(std::move(line));
}

QmpSession::~QmpSession()
{
    if (m_monitor) {
        auto& sessions = m_monitor->m_sessions;
        sessions.erase(std::remove(sessions.begin(), sessions.end(), this), sessions.end());
    }
}

void QmpSession::receive(std::string_view bytes)
{
    m_input.feed(bytes, [this](JsonStream::Item item) { handle_item(std::move(item)); });
}

std::string QmpSession::take_output()
{
    std::string out = std::move(m_output);
    m_output.clear();
    return out;
}

void QmpSession::send_line(std::string line)
{
    m_output += line;
    m_output += "\r\n";
}

void QmpSession::queue_event(std::string line)
{
    if (m_output.size() >= m_monitor->limits().max_pending_output) {
        ++m_dropped_events;
        return;
    }
    send_line(std::move(line));
}

void QmpSession::send_return(const Json& value, const Json* id)
{
    send_line(object_line({{"return", &value}, {"id", id}}));
}

void QmpSession::send_error(const QmpError& error, const Json* id)
{
    const Json body{{"class", qmp_error_class_name(error.error_class)}, {"desc", error.desc}};
    send_line(object_line({{"id", id}, {"error", &body}}));
}

void QmpSession::handle_item(JsonStream::Item item)
{
    if (item.is_error) {
        send_error(qmp_error(std::move(item.text)), nullptr);
        return;
    }
    Json request;
    try {
        request = Json::parse(item.text);
    } catch (const Json::exception& e) {
        // nlohmann's text is "[json.exception.parse_error.101] parse error at
        // line 1, column 5: syntax error while parsing value - ..."; the
        // client gets QEMU's prefix and what follows the position.
        std::string what = e.what();
        size_t detail = what.find(": ");
        send_error(qmp_error("JSON parse error, " +
                             (detail == std::string::npos ? what : what.substr(detail + 2))),
                   nullptr);
        return;
    }
    handle_request(request);
}

void QmpSession::handle_request(const Json& request)
{
    if (!request.is_object()) {
        send_error(qmp_error("QMP input must be a JSON object"), nullptr);
        return;
    }
    auto id_it = request.find("id");
    const Json* id = id_it != request.end() ? &*id_it : nullptr;
    if (auto checked = check_request(request); checked.is_error()) {
        send_error(checked.error(), id);
        return;
    }
    if (!m_monitor) {
        send_error(qmp_error("The machine has gone away"), id);
        return;
    }
    const std::string& name = request["execute"].get_ref<const std::string&>();
    const Json no_arguments = Json::object();
    auto args_it = request.find("arguments");
    const Json& args = args_it != request.end() ? *args_it : no_arguments;

    QmpResult result = run(name, args);
    if (result.is_error())
        send_error(result.error(), id);
    else
        send_return(result.value(), id);
}

QmpResult QmpSession::run(const std::string& name, const Json& args)
{
    // qmp-spec.rst "Capabilities Negotiation": only qmp_capabilities until it
    // has succeeded; everything else, known or not, is CommandNotFound.
    if (!m_negotiated && name != "qmp_capabilities")
        return QmpError{QmpErrorClass::CommandNotFound,
                        "Expecting capabilities negotiation with 'qmp_capabilities'"};
    const QmpCommands::Command* command = m_monitor->commands().find(name);
    if (!command)
        return QmpError{QmpErrorClass::CommandNotFound, "The command " + name + " has not been found"};
    if (auto checked = check_qmp_arguments(args, command->params); checked.is_error())
        return checked.error();
    if (command->handler) {
        try {
            return command->handler(args);
        } catch (const Json::exception& e) {
            // A handler that misreads its (already checked) arguments is our
            // bug, but the client gets an error, not a dead host.
            return qmp_error(std::string("Internal error: ") + e.what());
        }
    }

    // qmp_capabilities (QEMU's monitor/qmp-cmds-control.c behaviour).
    if (m_negotiated)
        return QmpError{QmpErrorClass::CommandNotFound,
                        "Capabilities negotiation is already complete, command ignored"};
    if (auto enable = args.find("enable"); enable != args.end()) {
        // The QMPCapability enum has one value, "oob"; we offer none.
        std::string unavailable;
        for (const Json& capability : *enable) {
            const std::string& value = capability.get_ref<const std::string&>();
            if (value != "oob") {
                // QEMU 7.2 names a list element 'null' in this message.
                return qmp_error("Parameter 'null' does not accept value '" + value + "'");
            }
            unavailable += unavailable.empty() ? value : ", " + value;
        }
        if (!unavailable.empty())
            return qmp_error("Capability " + unavailable + " not available");
    }
    m_negotiated = true;
    return Json::object();
}
