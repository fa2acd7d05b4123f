// The host's side of the CD-ROM drives: QMP eject, blockdev-open-tray,
// blockdev-close-tray, blockdev-change-medium (docs/qmp.md "Block devices").
#include "platform/machine/machine.h"
#include "platform/storage/atapi_cdrom.h"

namespace {

AtapiCdrom* cdrom_of(const MachineConfig& config, PcBoard& board, size_t drive)
{
    if (drive >= config.drives.size() || !config.drives[drive].cdrom || config.drives[drive].scsi)
        return nullptr;
    const unsigned index = config.drives[drive].index;
    return static_cast<AtapiCdrom*>(board.ide().channel(index / 2).device(index % 2));
}

} // namespace

TrayState Machine::tray(size_t drive, TrayAction action, std::shared_ptr<BlockImage> image)
{
    AtapiCdrom* cd = cdrom_of(m_config, *m_board, drive);
    if (!cd)
        return {};
    TrayState state;
    switch (action) {
    case TrayAction::Query:
        break;
    case TrayAction::Open:
    case TrayAction::ForceOpen:
        state.moved = cd->host_open_tray(action == TrayAction::ForceOpen);
        break;
    case TrayAction::Close:
        state.moved = cd->host_close_tray();
        break;
    case TrayAction::Remove:
        cd->remove_disc();
        break;
    case TrayAction::Insert:
        state.moved = cd->tray_open();
        cd->insert_disc(image ? make_block_device(std::move(image)) : nullptr);
        break;
    }
    state.open = cd->tray_open();
    state.locked = cd->locked();
    return state;
}

void Machine::set_tray_listener(std::function<void(size_t drive, bool open)> listener)
{
    for (size_t drive = 0; drive < m_config.drives.size(); ++drive) {
        if (AtapiCdrom* cd = cdrom_of(m_config, *m_board, drive))
            cd->set_tray_listener([listener, drive](bool open) {
                if (listener)
                    listener(drive, open);
            });
    }
}
