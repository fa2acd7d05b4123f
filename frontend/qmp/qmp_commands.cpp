#include "frontend/qmp/qmp_commands.h"

#include <nlohmann/json.hpp>

#include <limits>

#ifndef VIRIDIAN_VERSION
#define VIRIDIAN_VERSION "unknown"
#endif

const char* qmp_error_class_name(QmpErrorClass error_class)
{
    switch (error_class) {
    case QmpErrorClass::GenericError:
        return "GenericError";
    case QmpErrorClass::CommandNotFound:
        return "CommandNotFound";
    case QmpErrorClass::DeviceNotActive:
        return "DeviceNotActive";
    case QmpErrorClass::DeviceNotFound:
        return "DeviceNotFound";
    case QmpErrorClass::KVMMissingCap:
        return "KVMMissingCap";
    }
    return "GenericError";
}

namespace {

const char* type_word(QmpType type)
{
    switch (type) {
    case QmpType::String:
        return "string";
    case QmpType::Boolean:
        return "boolean";
    case QmpType::Integer:
        return "integer";
    case QmpType::Uint64:
        return "uint64";
    case QmpType::Number:
        return "number";
    case QmpType::Object:
        return "object";
    case QmpType::Array:
        return "array";
    case QmpType::Any:
        return "any";
    }
    return "any";
}

bool has_type(const Json& value, QmpType type)
{
    switch (type) {
    case QmpType::String:
        return value.is_string();
    case QmpType::Boolean:
        return value.is_boolean();
    case QmpType::Integer:
        // A JSON integer above INT64_MAX is parsed unsigned; QEMU refuses it
        // for an int64 member.
        return value.is_number_integer() &&
               (!value.is_number_unsigned() ||
                value.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()));
    case QmpType::Uint64:
        return value.is_number_integer();
    case QmpType::Number:
        return value.is_number();
    case QmpType::Object:
        return value.is_object();
    case QmpType::Array:
        return value.is_array();
    case QmpType::Any:
        return true;
    }
    return false;
}

// QEMU words a uint64 mismatch as a bad value rather than a bad type
// (qapi/qobject-input-visitor.c, QERR_INVALID_PARAMETER_VALUE).
QmpError type_error(const std::string& name, QmpType type)
{
    if (type == QmpType::Uint64)
        return qmp_error("Parameter '" + name + "' expects uint64");
    return qmp_error("Invalid parameter type for '" + name + "', expected: " + type_word(type));
}

} // namespace

ErrorOr<void, QmpError> check_qmp_arguments(const Json& args, const std::vector<QmpParam>& params)
{
    if (!args.is_object())
        return type_error("<anonymous>", QmpType::Object);
    bool free_form = false;
    for (const QmpParam& param : params) {
        if (param.name == QMP_MORE_MEMBERS) {
            free_form = true;
            continue;
        }
        auto it = args.find(param.name);
        if (it == args.end()) {
            if (param.optional)
                continue;
            return qmp_error("Parameter '" + param.name + "' is missing");
        }
        if (!has_type(*it, param.type))
            return type_error(param.name, param.type);
        if (param.type == QmpType::Array) {
            size_t index = 0;
            for (const Json& element : *it) {
                if (!has_type(element, param.element))
                    return type_error(param.name + "[" + std::to_string(index) + "]", param.element);
                ++index;
            }
        }
    }
    for (auto it = args.begin(); it != args.end() && !free_form; ++it) {
        bool declared = false;
        for (const QmpParam& param : params)
            declared = declared || param.name == it.key();
        if (!declared)
            return qmp_error("Parameter '" + it.key() + "' is unexpected");
    }
    return {};
}

QmpVersion QmpVersion::viridian()
{
    QmpVersion version;
    version.package = std::string("viridian ") + VIRIDIAN_VERSION;
    return version;
}

Json qmp_version_json(const QmpVersion& version)
{
    return Json{{"qemu", {{"micro", version.micro}, {"minor", version.minor}, {"major", version.major}}},
                {"package", version.package}};
}

QmpCommands::QmpCommands(QmpVersion version) : m_version(std::move(version))
{
    // QAPI schema qapi/control.json: enable is an optional list of the
    // QMPCapability enum; the session checks the values and the mode.
    add("qmp_capabilities", {{"enable", QmpType::Array, true, QmpType::String}}, nullptr);
    add("query-version", {}, [this](const Json&) -> QmpResult { return qmp_version_json(m_version); });
    add("query-commands", {}, [this](const Json&) -> QmpResult {
        Json list = Json::array();
        for (const Command& command : m_commands)
            list.push_back(Json{{"name", command.name}});
        return list;
    });
}

void QmpCommands::add(std::string name, std::vector<QmpParam> params, Handler handler)
{
    for (Command& command : m_commands) {
        if (command.name == name) {
            command.params = std::move(params);
            command.handler = std::move(handler);
            return;
        }
    }
    m_commands.push_back(Command{std::move(name), std::move(params), std::move(handler)});
}

const QmpCommands::Command* QmpCommands::find(std::string_view name) const
{
    for (const Command& command : m_commands) {
        if (command.name == name)
            return &command;
    }
    return nullptr;
}
