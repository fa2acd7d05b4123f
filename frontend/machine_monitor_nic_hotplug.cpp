// Synthetic network adapters added to and removed from the running machine
// (docs/qmp.md "Devices added while the guest runs"), in QEMU 7.2's two steps:
// netdev_add opens a user-mode network under an id, device_add puts a
// netvsc adapter on it (offered to the guest on VMBus), device_del takes
// the adapter away (the channel rescinded; DEVICE_DELETED) and netdev_del
// closes the network. Replies and error texts are QEMU's for the same
// requests with its e1000; "netvsc" is viridian's own device model.
#include "frontend/machine_monitor.h"

#include "frontend/options.h"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace {

// netdev_add type=user's members as QEMU's qapi/net.json NetdevUserOptions
// has them; the ones viridian takes.
ErrorOr<SlirpOptions, QmpError> user_network_options(const Json& args)
{
    SlirpOptions options;
    for (auto it = args.begin(); it != args.end(); ++it)
        if (it.key() != "type" && it.key() != "id" && it.key() != "restrict" && it.key() != "hostfwd")
            return qmp_error("Parameter '" + it.key() + "' is unexpected");
    if (args.contains("restrict")) {
        if (!args["restrict"].is_boolean())
            return qmp_error("Invalid parameter type for 'restrict', expected: boolean");
        options.restricted = args["restrict"].get<bool>();
    }
    if (!args.contains("hostfwd"))
        return options;
    // A list of {"str": RULE} (qapi/common.json String).
    if (!args["hostfwd"].is_array())
        return qmp_error("Invalid parameter type for 'hostfwd', expected: array");
    for (const Json& rule : args["hostfwd"]) {
        if (!rule.is_object() || !rule.contains("str") || !rule["str"].is_string() || rule.size() != 1)
            return qmp_error("Invalid parameter type for 'hostfwd[0]', expected: object with 'str'");
        const std::string text = rule["str"].get<std::string>();
        const std::optional<SlirpOptions::HostForward> forward = parse_hostfwd(text);
        if (!forward)
            return qmp_error("Invalid host forwarding rule '" + text + "'");
        options.forwards.push_back(*forward);
    }
    return options;
}

} // namespace

void MachineMonitor::add_netdev_commands()
{
    m_commands.add("netdev_add",
                   {{"type", QmpType::String}, {"id", QmpType::String, true}, {QMP_MORE_MEMBERS, QmpType::Any, true}},
                   [this](const Json& args) -> QmpResult {
                       const std::string type = args["type"].get<std::string>();
                       if (type != "user")
                           return qmp_error("Parameter 'type' does not accept value '" + type + "'");
                       if (!args.contains("id"))
                           return qmp_error("Parameter 'id' is missing");
                       if (!args["id"].is_string() || !well_formed_id(args["id"].get<std::string>()))
                           return qmp_error("Parameter 'id' expects an identifier");
                       const std::string id = args["id"].get<std::string>();
                       if (m_netdevs.count(id))
                           return qmp_error("Duplicate ID '" + id + "'");
                       const SlirpOptions options = TRY(user_network_options(args));
                       if (!m_hooks.open_user_network)
                           return qmp_error("network backends cannot be added to this machine");
                       ErrorOr<std::shared_ptr<NetBackend>> opened = m_hooks.open_user_network(options);
                       if (opened.is_error())
                           return qmp_error(opened.error().message);
                       m_netdevs[id] = {opened.release_value(), ""};
                       return Json::object();
                   });
    m_commands.add("netdev_del", {{"id", QmpType::String}}, [this](const Json& args) -> QmpResult {
        const std::string id = args["id"].get<std::string>();
        auto it = m_netdevs.find(id);
        if (it == m_netdevs.end())
            return QmpError{QmpErrorClass::DeviceNotFound, "Device '" + id + "' not found"};
        // QEMU would leave the adapter on a dead network; here it goes first.
        if (!it->second.user.empty())
            return qmp_error("Netdev '" + id + "' is in use by device '" + it->second.user +
                             "': device_del it first");
        m_netdevs.erase(it); // the network closes with its last user
        return Json::object();
    });
}

QmpResult MachineMonitor::device_add_nic(const Json& args)
{
    for (auto it = args.begin(); it != args.end(); ++it) {
        static const std::vector<std::string> known{"driver", "id", "bus", "netdev", "mac"};
        if (std::find(known.begin(), known.end(), it.key()) == known.end())
            return qmp_error("Property 'netvsc." + it.key() + "' not found");
        if (!it->is_string())
            return qmp_error("Parameter '" + it.key() + "' expects a string");
    }
    const std::string id = args.value("id", "");
    if (args.contains("id") && !well_formed_id(id))
        return qmp_error("Parameter 'id' expects an identifier");
    if (!id.empty() && device_id_taken(id))
        return qmp_error("Duplicate device ID '" + id + "'");
    if (!m_hooks.nic_attach)
        return qmp_error("No 'vmbus' bus found for device 'netvsc'");
    if (args.contains("bus") && args["bus"] != "vmbus")
        return qmp_error("Bus '" + args["bus"].get<std::string>() + "' not found");
    // An adapter with no network would be a cable to nowhere.
    if (!args.contains("netdev"))
        return qmp_error("Property 'netvsc.netdev' is missing: give the id of a netdev_add network");
    const std::string netdev = args["netdev"].get<std::string>();
    auto network = m_netdevs.find(netdev);
    if (network == m_netdevs.end())
        return qmp_error("Property 'netvsc.netdev' can't find value '" + netdev + "'");
    if (!network->second.user.empty())
        return qmp_error("Property 'netvsc.netdev' can't take value '" + netdev + "', it's in use");
    MachineNic nic;
    nic.model = MachineNic::Model::Netvsc;
    nic.backend = network->second.backend;
    if (args.contains("mac")) {
        const std::optional<std::array<u8, 6>> mac = parse_mac(args["mac"].get<std::string>());
        if (!mac || ((*mac)[0] & 1))
            return qmp_error("Property 'netvsc.mac' doesn't take value '" + args["mac"].get<std::string>() + "'");
        std::copy(mac->begin(), mac->end(), nic.mac.begin());
    } else {
        // QEMU's qemu_macaddr_default_if_unset: the first adapter (--nic's
        // or this one) :56, the next :57 ...
        const unsigned index = m_macs_given++ + (m_hooks.nic_names.empty() ? 0 : 1);
        nic.mac = {0x52, 0x54, 0x00, 0x12, 0x34, static_cast<u8>(0x56 + index)};
    }
    if (!m_hooks.hotplug_refused.empty())
        return qmp_error(m_hooks.hotplug_refused);
    nic.id = id.empty() ? "/machine/peripheral-anon/device[" + std::to_string(m_anonymous_devices++) + "]" : id;
    std::optional<std::string> refused;
    if (!m_hooks.nic_attach(nic, refused))
        return qmp_error("The machine has stopped running");
    if (refused)
        return qmp_error(*refused);
    network->second.user = nic.id;
    m_hot_nics.push_back({nic.id, netdev});
    return Json::object();
}

QmpResult MachineMonitor::device_del_nic(const std::string& id)
{
    auto nic = std::find_if(m_hot_nics.begin(), m_hot_nics.end(), [&id](const HotNic& n) { return n.id == id; });
    if (nic == m_hot_nics.end())
        return QmpError{QmpErrorClass::DeviceNotFound, "Device '" + id + "' not found"};
    if (!m_hooks.hotplug_refused.empty())
        return qmp_error(m_hooks.hotplug_refused);
    std::optional<std::string> refused;
    if (!m_hooks.nic_detach(id, refused))
        return qmp_error("The machine has stopped running");
    if (refused)
        return qmp_error(*refused);
    if (auto network = m_netdevs.find(nic->netdev); network != m_netdevs.end())
        network->second.user.clear();
    m_hot_nics.erase(nic);
    emit_event("DEVICE_DELETED", Json{{"device", id}, {"path", "/machine/peripheral/" + id}});
    return Json::object();
}
