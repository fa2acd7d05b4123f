// Disks added to and removed from the running machine's synthetic SCSI
// controller (QMP device_add/device_del; docs/qmp.md "Devices added while the guest runs").
#include "platform/machine/machine.h"

#include <algorithm>

std::optional<std::string> Machine::hot_add_scsi_disk(const MachineDrive& drive)
{
    if (!m_storvsp)
        return "Bus 'scsi0.0' not found"; // no enlightenments: no synthetic controller
    if (!drive.scsi || drive.cdrom || !drive.image)
        return "only a disk can be added to the SCSI controller";
    if (drive.index >= ScsiBus::MAX_LUNS)
        return "bad scsi device lun: " + std::to_string(drive.index);
    const u8 lun = static_cast<u8>(drive.index);
    if (m_scsi_bus.unit(lun))
        return "lun already used by another disk";
    if (!m_commands && m_clock.mode() == VirtualClock::Mode::Host)
        return "the machine has no queue for disk completions"; // the frontend always gives one
    attach_scsi_disk(drive, make_block_device(drive.image));
    m_config.drives.push_back(drive);
    m_discs.push_back({drive.image, {}});
    m_storvsp->bus_changed();
    return {};
}

std::optional<std::string> Machine::hot_remove_scsi_disk(u8 lun)
{
    const auto drive = std::find_if(m_config.drives.begin(), m_config.drives.end(),
                                    [lun](const MachineDrive& d) { return d.scsi && d.index == lun; });
    ScsiTarget* unit = m_scsi_bus.unit(lun);
    const auto disk = std::find_if(m_scsi_disks.begin(), m_scsi_disks.end(),
                                   [unit](const std::unique_ptr<ScsiDisk>& d) { return d.get() == unit; });
    if (drive == m_config.drives.end() || disk == m_scsi_disks.end())
        return "no disk at lun " + std::to_string(lun);
    // New commands find the LUN gone; those in flight finish (their
    // completions reach the guest) and what they wrote reaches the image.
    m_scsi_bus.detach(lun);
    (*disk)->drain();
    (void)(*disk)->block_device().image().flush();
    m_scsi_disks.erase(disk);
    const size_t index = static_cast<size_t>(drive - m_config.drives.begin());
    m_config.drives.erase(drive);
    m_discs.erase(m_discs.begin() + static_cast<std::ptrdiff_t>(index));
    m_storvsp->bus_changed();
    return {};
}
