// The host's side of the CD-ROM drives: QMP eject, blockdev-open-tray,
// blockdev-close-tray, blockdev-remove-medium, blockdev-change-medium
// (docs/qmp.md "Block devices"), as host inputs that a recording keeps and
// a replay applies at the same point (docs/replay.md).
#include "platform/machine/machine.h"

#include "mmu/base/byte_reader.h"
#include "platform/block/image_format.h"
#include "platform/storage/atapi_cdrom.h"

namespace {

AtapiCdrom* cdrom_of(const MachineConfig& config, PcBoard& board, size_t drive)
{
    if (drive >= config.drives.size() || !config.drives[drive].cdrom || config.drives[drive].scsi)
        return nullptr;
    const unsigned index = config.drives[drive].index;
    return static_cast<AtapiCdrom*>(board.ide().channel(index / 2).device(index % 2));
}

// Longer than this is not a file name a recording of ours holds.
constexpr size_t MAX_NAME = 1 << 12;

void put_name(std::vector<u8>& out, const std::string& name)
{
    const size_t n = std::min(name.size(), MAX_NAME);
    out.push_back(static_cast<u8>(n));
    out.push_back(static_cast<u8>(n >> 8));
    out.insert(out.end(), name.begin(), name.begin() + static_cast<std::ptrdiff_t>(n));
}

void put_le64(std::vector<u8>& out, u64 v)
{
    for (int i = 0; i < 8; ++i)
        out.push_back(static_cast<u8>(v >> (8 * i)));
}

std::string get_name(ByteReader& in)
{
    const u64 n = in.fixed(2);
    if (n > MAX_NAME)
        in.fail();
    const std::vector<u8> bytes = in.bytes(in.ok() ? n : 0);
    return std::string(bytes.begin(), bytes.end());
}

} // namespace

// The action; an insert adds its read-only flag, format, file, size and
// hash (little-endian; names as a 16-bit length and the bytes).
std::vector<u8> encode_medium(const MediumChange& change)
{
    std::vector<u8> out{static_cast<u8>(change.action)};
    if (change.action != TrayAction::Insert)
        return out;
    out.push_back(change.read_only ? 1 : 0);
    put_name(out, change.format);
    put_name(out, change.file);
    put_le64(out, change.size);
    put_le64(out, change.hash);
    return out;
}

std::optional<MediumChange> decode_medium(std::span<const u8> bytes)
{
    ByteReader in(bytes);
    const u8 action = in.u8_();
    if (action < static_cast<u8>(TrayAction::Open) || action > static_cast<u8>(TrayAction::Insert))
        return std::nullopt;
    MediumChange change(static_cast<TrayAction>(action));
    if (change.action == TrayAction::Insert) {
        const u8 read_only = in.u8_();
        change.read_only = read_only == 1;
        change.format = get_name(in);
        change.file = get_name(in);
        change.size = in.fixed(8);
        change.hash = in.fixed(8);
        if (read_only > 1 || change.file.empty())
            in.fail();
    }
    if (!in.ok() || !in.at_end())
        return std::nullopt;
    return change;
}

TrayState Machine::tray(size_t drive, const MediumChange& change, std::shared_ptr<BlockImage> image)
{
    AtapiCdrom* cd = cdrom_of(m_config, *m_board, drive);
    if (!cd)
        return {};
    if (change.action != TrayAction::Query && drive <= 0xFF && m_input_log &&
        !m_input_log->live_input(*this, {HostInput::Kind::Medium, static_cast<u32>(drive), encode_medium(change)}))
        return tray(drive, TrayAction::Query); // replaying: no live input
    return apply_medium(drive, change, std::move(image));
}

TrayState Machine::apply_medium(size_t drive, const MediumChange& change, std::shared_ptr<BlockImage> image)
{
    AtapiCdrom* cd = cdrom_of(m_config, *m_board, drive);
    if (!cd)
        return {};
    if (change.action == TrayAction::Insert && !image) {
        // A recorded change: the replayer found the file as it was recorded
        // just before. One that fails to open now leaves the drive as it
        // was, and the next sync record reports where the replay went apart.
        OpenOptions options;
        options.format = change.format;
        options.read_only = change.read_only;
        BlockResult<OpenedImage> opened = open_image(change.file, options);
        if (opened.is_error())
            return tray(drive, TrayAction::Query);
        image = std::move(opened.value().image);
    }
    TrayState state;
    switch (change.action) {
    case TrayAction::Query:
        break;
    case TrayAction::Open:
    case TrayAction::ForceOpen:
        state.moved = cd->host_open_tray(change.action == TrayAction::ForceOpen);
        break;
    case TrayAction::Close:
        state.moved = cd->host_close_tray();
        break;
    case TrayAction::Remove:
        cd->remove_disc();
        m_discs[drive] = {};
        break;
    case TrayAction::Insert:
        state.moved = cd->tray_open();
        cd->insert_disc(image ? make_block_device(image) : nullptr);
        m_discs[drive] = {image, change};
        break;
    }
    state.open = cd->tray_open();
    state.locked = cd->locked();
    if (change.action != TrayAction::Query && m_medium_listener)
        m_medium_listener(drive, change, change.action == TrayAction::Insert ? image : nullptr, state);
    return state;
}

void Machine::restore_discs(const std::vector<DriveDisc>& discs)
{
    for (size_t drive = 0; drive < discs.size() && drive < m_discs.size(); ++drive) {
        AtapiCdrom* cd = cdrom_of(m_config, *m_board, drive);
        const std::shared_ptr<BlockImage>& image = discs[drive].image;
        if (!cd || image == m_discs[drive].image)
            continue;
        cd->insert_disc(image ? make_block_device(image) : nullptr);
        m_discs[drive] = discs[drive];
        MediumChange change = discs[drive].inserted;
        change.action = image ? TrayAction::Insert : TrayAction::Remove;
        if (m_medium_listener)
            m_medium_listener(drive, change, image, TrayState{cd->tray_open(), cd->locked(), false});
    }
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
