// The QMP command registry: what the machine offers a management client
// (docs/qmp.md). The machine registers a handler per command name with the
// members its arguments may have; the registry checks the arguments with
// QEMU's messages before the handler runs, so a handler only reads members
// it declared, with the types it declared. qmp_capabilities, query-version
// and query-commands are built in.
#pragma once

#include "mmu/base/error_or.h"

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

using Json = nlohmann::json;

// QEMU's ErrorClass (qapi/error.json). GenericError is what almost every
// command returns; the others exist for old clients that test the class.
enum class QmpErrorClass {
    GenericError,
    CommandNotFound,
    DeviceNotActive,
    DeviceNotFound,
    KVMMissingCap,
};

const char* qmp_error_class_name(QmpErrorClass error_class);

struct QmpError {
    QmpErrorClass error_class = QmpErrorClass::GenericError;
    std::string desc;
};

inline QmpError qmp_error(std::string desc)
{
    return QmpError{QmpErrorClass::GenericError, std::move(desc)};
}

// A command's reply: the "return" value (an empty object when the command has
// nothing to say) or the error.
using QmpResult = ErrorOr<Json, QmpError>;

// The argument types a command can declare, with the word QEMU's input
// visitor puts in "Invalid parameter type for 'x', expected: WORD".
enum class QmpType {
    String,  // "string"
    Boolean, // "boolean"
    Integer, // "integer": fits in int64
    Uint64,  // "uint64": any integer that fits u64 or i64 (QEMU takes negatives too)
    Number,  // "number": any integer or float
    Object,  // "object"
    Array,   // "array"; each element then has the type `element`
    Any,     // anything at all (QAPI's 'any')
};

struct QmpParam {
    std::string name;
    QmpType type = QmpType::Any;
    bool optional = false;
    QmpType element = QmpType::Any; // the element type when type is Array
};

// A member of this name in a command's params lets any further members
// through unchecked (QAPI's free-form arguments: device_add's properties,
// which its handler checks itself).
inline constexpr const char* QMP_MORE_MEMBERS = "*";

// Checks `args` (an object) against `params` the way QEMU's generated
// marshallers do: members in declaration order (missing, then wrong type),
// then any member not declared.
ErrorOr<void, QmpError> check_qmp_arguments(const Json& args, const std::vector<QmpParam>& params);

// What the greeting and query-version report.
struct QmpVersion {
    // The QEMU release whose QMP behaviour viridian follows: clients such as
    // libvirt and qemu.qmp gate features on this triple, so it names the
    // protocol we speak, not our own release (see QmpVersion::viridian()).
    int64_t major = 7;
    int64_t minor = 2;
    int64_t micro = 0;
    // QEMU fills this free-form field with its distribution package version;
    // we put our own name and release there so a client can tell it is
    // talking to viridian.
    std::string package;

    static QmpVersion viridian();
};

Json qmp_version_json(const QmpVersion& version);

class QmpCommands {
public:
    using Handler = std::function<QmpResult(const Json& args)>;

    explicit QmpCommands(QmpVersion version = QmpVersion::viridian());
    // The built-in handlers point back at the registry.
    QmpCommands(const QmpCommands&) = delete;
    QmpCommands& operator=(const QmpCommands&) = delete;

    // Registers (or replaces) a command. The handler sees an object holding
    // only declared members, already type-checked.
    void add(std::string name, std::vector<QmpParam> params, Handler handler);

    struct Command {
        std::string name;
        std::vector<QmpParam> params;
        Handler handler; // empty for qmp_capabilities, which the session runs
    };
    const Command* find(std::string_view name) const;
    const std::vector<Command>& all() const { return m_commands; }
    const QmpVersion& version() const { return m_version; }

private:
    QmpVersion m_version;
    std::vector<Command> m_commands;
};
