// Disks added to and removed from the running machine (docs/qmp.md
// "Devices added while the guest runs"; network adapters:
// machine_monitor_nic_hotplug.cpp), in QEMU 7.2's two steps: blockdev-add
// opens an image as a named node, device_add puts a scsi-hd on that node at a LUN
// of the synthetic SCSI controller; device_del takes the disk away again
// (DEVICE_DELETED once the machine has let go of it) and blockdev-del
// closes the node. Replies and error texts are QEMU's for the same
// requests on its pc machine with a SCSI controller.
#include "frontend/machine_monitor.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>

bool well_formed_id(const std::string& id)
{
    if (id.empty() || !std::isalpha(static_cast<unsigned char>(id[0])))
        return false;
    return std::all_of(id.begin(), id.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
    });
}

bool MachineMonitor::device_id_taken(const std::string& id) const
{
    const auto drive = std::find_if(m_hooks.drives.begin(), m_hooks.drives.end(),
                                    [&id](const MonitorDrive& d) { return d.qdev == id; });
    const auto nic = std::find_if(m_hot_nics.begin(), m_hot_nics.end(),
                                  [&id](const HotNic& n) { return n.id == id; });
    return drive != m_hooks.drives.end() || nic != m_hot_nics.end();
}

namespace {

// blockdev-add's "cache" member: {direct, no-flush}, as -drive's cache= modes.
CacheMode cache_mode_of(const Json& args)
{
    if (!args.contains("cache") || !args["cache"].is_object())
        return CacheMode::Writeback;
    const Json& cache = args["cache"];
    if (cache.value("no-flush", false))
        return CacheMode::Unsafe;
    return cache.value("direct", false) ? CacheMode::None : CacheMode::Writeback;
}

// The file a format node (raw, vpc, vhdx) sits on: {"driver": "file",
// "filename": ...}; or for a protocol node (driver "file") its own filename.
ErrorOr<std::string, QmpError> image_file(const std::string& driver, const Json& args)
{
    if (driver == "file") {
        if (!args.contains("filename") || !args["filename"].is_string())
            return qmp_error("Parameter 'filename' is missing");
        return args["filename"].get<std::string>();
    }
    if (args.contains("filename"))
        return qmp_error("Parameter 'filename' is unexpected");
    if (!args.contains("file"))
        return qmp_error("A block device must be specified for \"file\"");
    const Json& file = args["file"];
    if (!file.is_object())
        return qmp_error("a node name for \"file\" is not supported: give {\"driver\": \"file\", \"filename\": ...}");
    for (auto it = file.begin(); it != file.end(); ++it)
        if (it.key() != "driver" && it.key() != "filename")
            return qmp_error("Parameter 'file." + it.key() + "' is unexpected");
    if (file.value("driver", "") != "file")
        return qmp_error("Parameter 'file.driver' does not accept value '" + file.value("driver", "") + "'");
    if (!file.contains("filename") || !file["filename"].is_string())
        return qmp_error("Parameter 'file.filename' is missing");
    return file["filename"].get<std::string>();
}

} // namespace

void MachineMonitor::add_hotplug_commands()
{
    m_commands.add(
        "blockdev-add",
        {{"driver", QmpType::String},
         {"node-name", QmpType::String, true},
         {"file", QmpType::Any, true},
         {"filename", QmpType::String, true},
         {"read-only", QmpType::Boolean, true},
         {"auto-read-only", QmpType::Boolean, true},
         {"cache", QmpType::Object, true},
         {"discard", QmpType::String, true},
         {"detect-zeroes", QmpType::String, true}},
        [this](const Json& args) -> QmpResult {
            const std::string driver = args["driver"].get<std::string>();
            // The formats this machine reads; "file" is a raw image by itself.
            if (driver != "file" && driver != "raw" && driver != "vpc" && driver != "vhdx")
                return qmp_error("Parameter 'driver' does not accept value '" + driver + "'");
            if (!args.contains("node-name"))
                return qmp_error("'node-name' must be specified for the root node");
            const std::string node = args["node-name"].get<std::string>();
            if (!well_formed_id(node))
                return qmp_error("Invalid node-name: '" + node + "'");
            if (m_nodes.count(node))
                return qmp_error("Duplicate nodes with node-name='" + node + "'");
            const std::string file = TRY(image_file(driver, args));
            OpenOptions open;
            open.format = driver == "file" ? "raw" : driver;
            open.read_only = args.value("read-only", false);
            open.cache = cache_mode_of(args);
            BlockResult<OpenedImage> opened = open_image(file, open);
            if (opened.is_error())
                return could_not_open(file, opened.error().message);
            m_nodes[node] = {std::shared_ptr<BlockImage>(std::move(opened.value().image)), file,
                             open.read_only, open.cache, ""};
            return Json::object();
        });
    m_commands.add("blockdev-del", {{"node-name", QmpType::String}}, [this](const Json& args) -> QmpResult {
        const std::string node = args["node-name"].get<std::string>();
        auto it = m_nodes.find(node);
        if (it == m_nodes.end())
            return qmp_error("Failed to find node with node-name='" + node + "'");
        if (!it->second.user.empty())
            return qmp_error("Node " + node + " is in use");
        m_nodes.erase(it); // the image closes with its last user
        return Json::object();
    });
    m_commands.add("device_add",
                   {{"driver", QmpType::String},
                    {"id", QmpType::String, true},
                    {"bus", QmpType::String, true},
                    {QMP_MORE_MEMBERS, QmpType::Any, true}},
                   [this](const Json& args) -> QmpResult { return device_add(args); });
    m_commands.add("device_del", {{"id", QmpType::String}}, [this](const Json& args) -> QmpResult {
        const std::string id = args["id"].get<std::string>();
        auto disk = std::find_if(m_hot_disks.begin(), m_hot_disks.end(),
                                 [&id](const HotDisk& d) { return d.id == id; });
        if (disk == m_hot_disks.end())
            return device_del_nic(id);
        if (!m_hooks.hotplug_refused.empty())
            return qmp_error(m_hooks.hotplug_refused);
        std::optional<std::string> refused;
        if (!m_hooks.scsi_detach(disk->lun, refused))
            return qmp_error("The machine has stopped running");
        if (refused)
            return qmp_error(*refused);
        // The drive leaves query-block where the machine's list lost it.
        auto drive = std::find_if(m_hooks.drives.begin(), m_hooks.drives.end(),
                                  [&](const MonitorDrive& d) { return d.scsi_lun == disk->lun; });
        if (drive != m_hooks.drives.end())
            m_hooks.drives.erase(drive);
        m_nodes[disk->node].user.clear();
        m_hot_disks.erase(disk);
        emit_event("DEVICE_DELETED", Json{{"device", id}, {"path", "/machine/peripheral/" + id}});
        return Json::object();
    });
}

QmpResult MachineMonitor::device_add(const Json& args)
{
    const std::string driver = args["driver"].get<std::string>();
    if (driver == "netvsc")
        return device_add_nic(args);
    if (driver != "scsi-hd")
        return qmp_error("'" + driver + "' is not a valid device model name");
    const std::string id = args.value("id", "");
    if (args.contains("id") && !well_formed_id(id))
        return qmp_error("Parameter 'id' expects an identifier");
    for (auto it = args.begin(); it != args.end(); ++it) {
        static const std::vector<std::string> known{"driver", "id", "bus", "drive", "lun", "scsi-id", "channel"};
        if (std::find(known.begin(), known.end(), it.key()) == known.end())
            return qmp_error("Property 'scsi-hd." + it.key() + "' not found");
        if ((it.key() == "lun" || it.key() == "scsi-id" || it.key() == "channel") && !it->is_number_integer())
            return qmp_error("Parameter '" + it.key() + "' expects integer");
        if (it.key() == "drive" && !it->is_string())
            return qmp_error("Parameter 'drive' expects a string");
    }
    if (!id.empty() && device_id_taken(id))
        return qmp_error("Duplicate device ID '" + id + "'");
    if (!m_hooks.scsi_attach)
        return qmp_error("No 'SCSI' bus found for device 'scsi-hd'");
    if (args.contains("bus") && args["bus"] != "scsi0.0")
        return qmp_error("Bus '" + args["bus"].get<std::string>() + "' not found");
    if (!args.contains("drive"))
        return qmp_error("drive property not set");
    const std::string node_name = args["drive"].get<std::string>();
    auto node = m_nodes.find(node_name);
    if (node == m_nodes.end())
        return qmp_error("Property 'scsi-hd.drive' can't find value '" + node_name + "'");
    if (!node->second.user.empty())
        return qmp_error("Drive '" + node_name + "' is already in use by another device");
    // One target (storvsp's path 0, target 0) with LUNs 0-63.
    if (const i64 target = args.value("scsi-id", i64{0}); target != 0)
        return qmp_error("bad scsi device id: " + std::to_string(target));
    if (const i64 channel = args.value("channel", i64{0}); channel != 0)
        return qmp_error("bad scsi channel id: " + std::to_string(channel));
    i64 lun = args.value("lun", i64{-1});
    auto user_of = [this](i64 l) -> const MonitorDrive* {
        for (const MonitorDrive& d : m_hooks.drives)
            if (d.scsi_lun == l)
                return &d;
        return nullptr;
    };
    if (lun == -1) // the first free one, as QEMU picks
        for (lun = 0; lun < ScsiBus::MAX_LUNS && user_of(lun); ++lun) {}
    if (lun < 0 || lun >= ScsiBus::MAX_LUNS)
        return qmp_error("bad scsi device lun: " + std::to_string(lun));
    if (const MonitorDrive* user = user_of(lun))
        return qmp_error("lun already used by '" + (user->device.empty() ? user->qdev : user->device) + "'");
    if (!m_hooks.hotplug_refused.empty())
        return qmp_error(m_hooks.hotplug_refused);

    MachineDrive drive;
    drive.image = node->second.image;
    drive.index = static_cast<unsigned>(lun);
    drive.scsi = true;
    std::optional<std::string> refused;
    if (!m_hooks.scsi_attach(drive, refused))
        return qmp_error("The machine has stopped running");
    if (refused)
        return qmp_error(*refused);
    const std::string qdev =
        id.empty() ? "/machine/peripheral-anon/device[" + std::to_string(m_anonymous_devices++) + "]" : id;
    MonitorDrive shown;
    shown.qdev = qdev;
    shown.image = node->second.image;
    shown.file = node->second.file;
    shown.node_name = node_name;
    shown.read_only = node->second.read_only;
    shown.cache = node->second.cache;
    shown.scsi_lun = static_cast<int>(lun);
    m_hooks.drives.push_back(shown);
    node->second.user = qdev;
    m_hot_disks.push_back({qdev, node_name, static_cast<u8>(lun)});
    return Json::object();
}
