#include "platform/storage/scsi_disk.h"

#include "mmu/base/state_visitor.h"
#include "platform/storage/scsi.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cstring>
#include <vector>

using namespace scsi;

namespace {

// INQUIRY identification (SPC-3 6.4.2).
constexpr std::string_view VENDOR = "VIRIDIAN", PRODUCT = "VIRTUAL DISK", REVISION = "0.1";
constexpr u32 STANDARD_INQUIRY_SIZE = 36;
constexpr u8 PERIPHERAL_DISK = 0x00;
// Peripheral qualifier 3, device type 1Fh: no logical unit here (SPC-3 6.4.2).
constexpr u8 PERIPHERAL_ABSENT = 0x7F;
constexpr u8 VERSION_SPC3 = 0x05;
// Byte 3: HISUP (hierarchical LUNs), response data format 2.
constexpr u8 INQUIRY_HISUP_FORMAT2 = 0x12;
// Byte 7: CMDQUE, so the initiator may keep several commands queued.
constexpr u8 INQUIRY_CMDQUE = 0x02;

// Vital product data pages (SPC-3 7.6, SBC-3 6.5).
constexpr u8 VPD_SUPPORTED = 0x00, VPD_SERIAL = 0x80, VPD_DEVICE_ID = 0x83, VPD_BLOCK_LIMITS = 0xB0,
             VPD_BLOCK_CHARACTERISTICS = 0xB1, VPD_PROVISIONING = 0xB2;
constexpr std::array<u8, 6> SUPPORTED_VPD = {
    VPD_SUPPORTED,   VPD_SERIAL, VPD_DEVICE_ID, VPD_BLOCK_LIMITS, VPD_BLOCK_CHARACTERISTICS,
    VPD_PROVISIONING};
// The longest serial number the pages carry (VPD 83h's designator length is one byte).
constexpr size_t MAX_SERIAL = 64;

// Mode pages (SBC-3 6.4); the header's device-specific byte (SBC-3 6.4.1).
constexpr u8 PAGE_CACHING = 0x08, PAGE_ALL = 0x3F, SUBPAGE_ALL = 0xFF;
constexpr u8 CACHING_PAGE_LENGTH = 0x12;
constexpr u8 CACHING_WCE = 0x04;
constexpr u8 DEVICE_SPECIFIC_WP = 0x80, DEVICE_SPECIFIC_DPOFUA = 0x10;
enum class PageControl : u8 { Current = 0, Changeable = 1, Default = 2, Saved = 3 };

// A WRITE SAME that writes moves its pattern this many bytes at a time.
constexpr u32 WRITE_SAME_CHUNK = 1 << 20;

// The CDB length of an operation code's group (SAM-4 5.2, SPC-3 4.3.4), 0
// for the groups without one.
size_t cdb_length(u8 opcode)
{
    switch (opcode >> 5) {
    case 0:
        return 6;
    case 1:
    case 2:
        return 10;
    case 4:
        return 16;
    case 5:
        return 12;
    default:
        return 0; // reserved and vendor groups: none is supported
    }
}

} // namespace

struct ScsiDisk::Request {
    // A continuation (captureless, so the command holds no reference to itself).
    using Step = void (*)(ScsiDisk&, const CommandPtr&);

    std::array<u8, 16> cdb{};
    u32 lun = 0;
    std::span<u8> in;  // the data-in buffer (empty unless the transport reads)
    std::span<u8> out; // the data-out buffer (empty unless the transport writes)
    Done done;
    Result result;
    // Block requests submitted and not yet back; the first error among them.
    unsigned pending = 0;
    bool failed = false;
    u8 error_key = 0, error_asc = 0, error_ascq = 0;
    // What follows once every pending request succeeded; null: completion.
    Step after = nullptr;
    bool flush_after_write = false;
    // The last, partial sector of a read cut short by the buffer; the
    // pattern of a WRITE SAME.
    std::vector<u8> bounce;
    u32 partial_at = 0, partial_length = 0;
    // WRITE SAME progress, in blocks.
    u64 next_lba = 0, remaining = 0;
};

ScsiDisk::ScsiDisk(std::unique_ptr<BlockDevice> disk, ScsiDiskIdentity identity)
    : m_disk(std::move(disk)), m_identity(std::move(identity))
{
    const ImageInfo& info = m_disk->info();
    m_block_size = info.logical_sector_size;
    assert(m_block_size >= 512 && std::has_single_bit(m_block_size));
    m_blocks = info.virtual_size / m_block_size;
    m_max_transfer_blocks = std::max<u32>(1, m_identity.max_transfer_bytes / m_block_size);
    m_max_unmap_blocks = static_cast<u32>(MAX_UNMAP_BYTES / m_block_size);
    m_identity.naa[0] = static_cast<u8>(0x60 | (m_identity.naa[0] & 0x0F));
    if (m_identity.serial.size() > MAX_SERIAL)
        m_identity.serial.resize(MAX_SERIAL);
    for (char& ch : m_identity.serial)
        if (ch < 0x20 || ch > 0x7E)
            ch = ' ';
}

ScsiDisk::~ScsiDisk() = default;

void ScsiDisk::drain()
{
    m_disk->drain();
}

bool ScsiDisk::discard_enabled() const
{
    return m_identity.discard && !m_disk->read_only();
}

// A raw image punches a hole (or writes zeros); the sparse formats keep
// the blocks as they were (BlockImage::discard is advisory).
bool ScsiDisk::discard_zeroes() const
{
    return discard_enabled() && m_disk->info().format == "raw";
}

void ScsiDisk::execute(const Command& command, Done done)
{
    auto c = std::make_shared<Request>();
    const size_t given = std::min(command.cdb.size(), c->cdb.size());
    std::copy_n(command.cdb.begin(), given, c->cdb.begin());
    c->lun = command.lun;
    if (command.direction == Direction::FromDevice)
        c->in = command.data;
    else if (command.direction == Direction::ToDevice)
        c->out = command.data;
    c->done = std::move(done);
    ++m_in_flight;
    // A CDB shorter than its group's, or one asking for NACA (SAM-4 5.2:
    // the control byte; auto contingent allegiance is not supported).
    const size_t length = cdb_length(c->cdb[0]);
    if (given == 0 || given < length || (length && (c->cdb[length - 1] & 0x04)))
        return check_condition(c, ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
    run(c);
}

void ScsiDisk::complete(const CommandPtr& c)
{
    assert(c->done);
    --m_in_flight;
    Done done = std::move(c->done);
    c->done = nullptr;
    done(c->result);
}

void ScsiDisk::check_condition(const CommandPtr& c, u8 key, u8 asc, u8 ascq)
{
    // Fixed format, current error, no information field (SPC-3 4.5.3).
    Result& r = c->result;
    r.status = STATUS_CHECK_CONDITION;
    r.sense = fixed_sense(key, asc, ascq);
    r.transferred = 0;
    complete(c);
}

void ScsiDisk::reply(const CommandPtr& c, std::span<const u8> bytes, u32 allocation)
{
    const size_t n = std::min({bytes.size(), size_t(allocation), c->in.size()});
    std::copy_n(bytes.begin(), n, c->in.begin());
    c->result.transferred = static_cast<u32>(n);
    complete(c);
}

void ScsiDisk::run(const CommandPtr& c)
{
    const std::span<const u8> cdb = c->cdb;
    const u8 op = cdb[0];
    if (c->lun != 0) {
        // SPC-3 6.4.2 and 6.11: a target answers INQUIRY and REPORT LUNS for
        // any LUN; REQUEST SENSE reports the missing unit as sense data.
        if (op == INQUIRY || op == REPORT_LUNS)
            return op == INQUIRY ? inquiry(c) : report_luns(c);
        if (op != REQUEST_SENSE)
            return check_condition(c, ILLEGAL_REQUEST, ASC_LOGICAL_UNIT_NOT_SUPPORTED);
    }
    switch (op) {
    case TEST_UNIT_READY:
    case START_STOP_UNIT: // no spindle, no medium to eject: nothing to do
    case PREVENT_ALLOW_MEDIUM_REMOVAL:
        return complete(c);
    case REQUEST_SENSE: {
        // Sense is returned with each CHECK CONDITION (autosense), so none
        // is left pending here: NO SENSE, or the missing unit. Fixed format
        // even when DESC asks for descriptors (SPC-3 6.27).
        const std::vector<u8> sense =
            c->lun == 0 ? fixed_sense(NO_SENSE, 0)
                        : fixed_sense(ILLEGAL_REQUEST, ASC_LOGICAL_UNIT_NOT_SUPPORTED);
        return reply(c, sense, cdb[4]);
    }
    case INQUIRY:
        return inquiry(c);
    case REPORT_LUNS:
        return report_luns(c);
    case READ_CAPACITY_10: {
        // SBC-3 5.15: PMI is obsolete; with it clear the LBA field must be 0.
        if (!(cdb[8] & 0x01) && load_be32(cdb, 2) != 0)
            return check_condition(c, ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
        std::array<u8, 8> data{};
        // All ones when the last LBA does not fit: READ CAPACITY(16) then.
        store_be32(data, 0, static_cast<u32>(std::min<u64>(m_blocks ? m_blocks - 1 : 0, 0xFFFFFFFF)));
        store_be32(data, 4, m_block_size);
        return reply(c, data, data.size());
    }
    case SERVICE_ACTION_IN_16:
        if ((cdb[1] & 0x1F) != SA_READ_CAPACITY_16)
            return check_condition(c, ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
        return read_capacity_16(c);
    case MODE_SENSE_6:
        return mode_sense(c, false);
    case MODE_SENSE_10:
        return mode_sense(c, true);
    case MODE_SELECT_6:
        return mode_select(c, false);
    case MODE_SELECT_10:
        return mode_select(c, true);
    case READ_6:
        // A transfer length of 0 means 256 blocks (SBC-3 5.7).
        return read(c, load_be24(cdb, 1) & 0x1FFFFF, cdb[4] ? cdb[4] : 256);
    case WRITE_6:
        return write(c, load_be24(cdb, 1) & 0x1FFFFF, cdb[4] ? cdb[4] : 256, false);
    case READ_10:
    case READ_12:
    case READ_16:
        // RDPROTECT needs protection information, which the disk has not.
        if (cdb[1] & 0xE0)
            return check_condition(c, ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
        if (op == READ_10)
            return read(c, load_be32(cdb, 2), load_be16(cdb, 7));
        if (op == READ_12)
            return read(c, load_be32(cdb, 2), load_be32(cdb, 6));
        return read(c, load_be64(cdb, 2), load_be32(cdb, 10));
    case WRITE_10:
    case WRITE_12:
    case WRITE_16: {
        if (cdb[1] & 0xE0) // WRPROTECT
            return check_condition(c, ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
        const bool fua = cdb[1] & 0x08;
        if (op == WRITE_10)
            return write(c, load_be32(cdb, 2), load_be16(cdb, 7), fua);
        if (op == WRITE_12)
            return write(c, load_be32(cdb, 2), load_be32(cdb, 6), fua);
        return write(c, load_be64(cdb, 2), load_be32(cdb, 10), fua);
    }
    case VERIFY_10:
        return verify(c, load_be32(cdb, 2), load_be16(cdb, 7));
    case VERIFY_12:
        return verify(c, load_be32(cdb, 2), load_be32(cdb, 6));
    case VERIFY_16:
        return verify(c, load_be64(cdb, 2), load_be32(cdb, 10));
    case SYNCHRONIZE_CACHE_10:
        return synchronize_cache(c, load_be32(cdb, 2), load_be16(cdb, 7));
    case SYNCHRONIZE_CACHE_16:
        return synchronize_cache(c, load_be64(cdb, 2), load_be32(cdb, 10));
    case UNMAP:
        return unmap(c);
    case WRITE_SAME_10:
        return write_same(c, load_be32(cdb, 2), load_be16(cdb, 7));
    case WRITE_SAME_16:
        return write_same(c, load_be64(cdb, 2), load_be32(cdb, 10));
    default:
        return check_condition(c, ILLEGAL_REQUEST, ASC_INVALID_OPCODE);
    }
}

void ScsiDisk::inquiry(const CommandPtr& c)
{
    const std::span<const u8> cdb = c->cdb;
    const bool evpd = cdb[1] & 0x01;
    const u32 allocation = load_be16(cdb, 3);
    // CMDDT (obsolete) is refused; a page code needs EVPD (SPC-3 6.4.1).
    if ((cdb[1] & 0x02) || (!evpd && cdb[2] != 0))
        return check_condition(c, ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
    if (evpd) {
        if (c->lun != 0)
            return check_condition(c, ILLEGAL_REQUEST, ASC_LOGICAL_UNIT_NOT_SUPPORTED);
        return vpd_page(c, cdb[2], allocation);
    }
    std::array<u8, STANDARD_INQUIRY_SIZE> data{};
    data[0] = c->lun == 0 ? PERIPHERAL_DISK : PERIPHERAL_ABSENT;
    data[2] = VERSION_SPC3;
    data[3] = INQUIRY_HISUP_FORMAT2;
    data[4] = STANDARD_INQUIRY_SIZE - 5;
    data[7] = INQUIRY_CMDQUE;
    put_padded(&data[8], 8, VENDOR);
    put_padded(&data[16], 16, PRODUCT);
    put_padded(&data[32], 4, REVISION);
    reply(c, data, allocation);
}

void ScsiDisk::vpd_page(const CommandPtr& c, u8 page, u32 allocation)
{
    std::vector<u8> data(4, 0);
    data[0] = PERIPHERAL_DISK;
    data[1] = page;
    auto append = [&](std::initializer_list<u8> bytes) { data.insert(data.end(), bytes); };
    const std::string& serial = m_identity.serial;
    const u32 physical_ratio = std::max<u32>(1, m_disk->info().physical_sector_size / m_block_size);
    switch (page) {
    case VPD_SUPPORTED: // SPC-3 7.6.10, in ascending order
        data.insert(data.end(), SUPPORTED_VPD.begin(), SUPPORTED_VPD.end());
        break;
    case VPD_SERIAL: // SPC-3 7.6.11
        data.insert(data.end(), serial.begin(), serial.end());
        break;
    case VPD_DEVICE_ID: { // SPC-3 7.6.3
        // NAA, binary, associated with the logical unit (7.6.3.6).
        append({0x01, 0x03, 0x00, 16});
        data.insert(data.end(), m_identity.naa.begin(), m_identity.naa.end());
        // T10 vendor ID, ASCII: the vendor and the serial number (7.6.3.4).
        append({0x02, 0x01, 0x00, static_cast<u8>(8 + serial.size())});
        const size_t at = data.size();
        data.resize(at + 8);
        put_padded(&data[at], 8, VENDOR);
        data.insert(data.end(), serial.begin(), serial.end());
        break;
    }
    case VPD_BLOCK_LIMITS: { // SBC-3 6.5.3
        data.resize(64, 0);
        data[4] = 0x01; // WSNZ: a WRITE SAME of 0 blocks (the whole rest) is refused
        store_be16(data, 6, physical_ratio); // optimal transfer length granularity
        store_be32(data, 8, m_max_transfer_blocks);
        if (discard_enabled()) {
            store_be32(data, 20, m_max_unmap_blocks);
            store_be32(data, 24, MAX_UNMAP_DESCRIPTORS);
            store_be32(data, 28, physical_ratio); // optimal unmap granularity
        }
        store_be64(data, 36, m_max_unmap_blocks); // maximum WRITE SAME length
        break;
    }
    case VPD_BLOCK_CHARACTERISTICS: // SBC-3 6.5.2
        data.resize(64, 0);
        store_be16(data, 4, 0x0001); // medium rotation rate 1: not rotating (an SSD)
        break;
    case VPD_PROVISIONING: { // SBC-3 6.5.4
        data.resize(8, 0);
        if (discard_enabled()) {
            // LBPU (UNMAP), LBPWS and LBPWS10 (WRITE SAME with UNMAP), LBPRZ.
            data[5] = static_cast<u8>(0x80 | 0x40 | 0x20 | (discard_zeroes() ? 0x04 : 0));
            data[6] = 0x02; // provisioning type: thin
        }
        break;
    }
    default:
        return check_condition(c, ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
    }
    store_be16(data, 2, static_cast<u32>(data.size() - 4));
    reply(c, data, allocation);
}

void ScsiDisk::report_luns(const CommandPtr& c)
{
    const std::span<const u8> cdb = c->cdb;
    const u8 select = cdb[2];
    const u32 allocation = load_be32(cdb, 6);
    // SPC-3 6.21: select 0 and 2 list LUN 0, 1 the (no) well-known units; an
    // allocation length under 16 is refused.
    if (select > 2 || allocation < 16)
        return check_condition(c, ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
    std::array<u8, 16> data{};
    const u32 luns = select == 1 ? 0 : 1;
    store_be32(data, 0, luns * 8); // LUN 0 is all zeros
    reply(c, std::span(data).first(8 + luns * 8), allocation);
}

void ScsiDisk::read_capacity_16(const CommandPtr& c)
{
    // SBC-3 5.16.2.
    const std::span<const u8> cdb = c->cdb;
    if (!(cdb[14] & 0x01) && load_be64(cdb, 2) != 0) // PMI clear: the LBA must be 0
        return check_condition(c, ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
    std::array<u8, 32> data{};
    store_be64(data, 0, m_blocks ? m_blocks - 1 : 0);
    store_be32(data, 8, m_block_size);
    const u32 physical = m_disk->info().physical_sector_size;
    if (physical > m_block_size && std::has_single_bit(physical / m_block_size))
        data[13] = static_cast<u8>(std::countr_zero(physical / m_block_size) & 0x0F);
    if (discard_enabled())
        data[14] = static_cast<u8>(0x80 | (discard_zeroes() ? 0x40 : 0)); // LBPME, LBPRZ
    reply(c, data, load_be32(cdb, 10));
}

void ScsiDisk::mode_sense(const CommandPtr& c, bool ten)
{
    // SPC-3 6.9 and 6.10; the pages and block descriptors of SBC-3 6.4.
    const std::span<const u8> cdb = c->cdb;
    const bool dbd = cdb[1] & 0x08;
    const bool long_lba = ten && (cdb[1] & 0x10);
    const auto control = static_cast<PageControl>(cdb[2] >> 6);
    const u8 page = cdb[2] & 0x3F;
    const u8 subpage = cdb[3];
    const u32 allocation = ten ? load_be16(cdb, 7) : cdb[4];
    if (control == PageControl::Saved)
        return check_condition(c, ILLEGAL_REQUEST, ASC_SAVING_PARAMETERS_NOT_SUPPORTED);
    const bool all = page == PAGE_ALL && (subpage == 0 || subpage == SUBPAGE_ALL);
    if (!all && !(page == PAGE_CACHING && subpage == 0))
        return check_condition(c, ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);

    const size_t header = ten ? 8 : 4;
    std::vector<u8> data(header, 0);
    const u8 device_specific =
        static_cast<u8>((m_disk->read_only() ? DEVICE_SPECIFIC_WP : 0) | DEVICE_SPECIFIC_DPOFUA);
    data[ten ? 3 : 2] = device_specific;
    if (!dbd) {
        if (long_lba) { // long LBA block descriptor (SBC-3 6.4.2.3)
            data.resize(header + 16, 0);
            store_be64(data, header, m_blocks);
            store_be32(data, header + 12, m_block_size);
            data[4] = 0x01; // LONGLBA
        } else {            // short LBA block descriptor (6.4.2.2)
            data.resize(header + 8, 0);
            store_be32(data, header, static_cast<u32>(std::min<u64>(m_blocks, 0xFFFFFFFF)));
            store_be32(data, header + 4, m_block_size & 0xFFFFFF);
        }
    }
    const size_t descriptors = data.size() - header;
    if (ten)
        store_be16(data, 6, static_cast<u32>(descriptors));
    else
        data[3] = static_cast<u8>(descriptors);

    // The caching page (SBC-3 6.4.5): only WCE is ever set, and only WCE
    // may be changed.
    const size_t at = data.size();
    data.resize(at + 2 + CACHING_PAGE_LENGTH, 0);
    data[at] = PAGE_CACHING;
    data[at + 1] = CACHING_PAGE_LENGTH;
    switch (control) {
    case PageControl::Current:
        data[at + 2] = m_write_cache ? CACHING_WCE : 0;
        break;
    case PageControl::Changeable:
    case PageControl::Default:
        data[at + 2] = CACHING_WCE;
        break;
    case PageControl::Saved:
        break;
    }
    // MODE DATA LENGTH counts the bytes after itself.
    if (ten)
        store_be16(data, 0, static_cast<u32>(data.size() - 2));
    else
        data[0] = static_cast<u8>(data.size() - 1);
    reply(c, data, allocation);
}

void ScsiDisk::mode_select(const CommandPtr& c, bool ten)
{
    // SPC-3 6.7 and 6.8: a header, block descriptors, then pages; only the
    // caching page's WCE may differ from what MODE SENSE reports.
    const std::span<const u8> cdb = c->cdb;
    const bool pf = cdb[1] & 0x10;
    const bool sp = cdb[1] & 0x01;
    const u32 list_length = ten ? load_be16(cdb, 7) : cdb[4];
    if (sp)
        return check_condition(c, ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
    if (list_length == 0)
        return complete(c);
    if (!pf)
        return check_condition(c, ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
    const std::span<const u8> list = c->out.first(std::min<size_t>(list_length, c->out.size()));
    const size_t header = ten ? 8 : 4;
    if (list.size() < header || list.size() < list_length)
        return check_condition(c, ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR);
    const size_t descriptor_length = ten ? load_be16(list, 6) : list[3];
    const size_t descriptor_size = ten && (list[4] & 0x01) ? 16 : 8;
    if (descriptor_length > list.size() - header)
        return check_condition(c, ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR);
    if (descriptor_length % descriptor_size != 0 || descriptor_length > descriptor_size)
        return check_condition(c, ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST);
    if (descriptor_length) {
        // The block length cannot change.
        const u32 length = descriptor_size == 16 ? load_be32(list, header + 12) : load_be24(list, header + 5);
        if (length != m_block_size)
            return check_condition(c, ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST);
    }
    bool write_cache = m_write_cache;
    size_t pos = header + descriptor_length;
    while (pos < list.size()) {
        if (list.size() - pos < 2)
            return check_condition(c, ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR);
        const u8 code = list[pos] & 0x7F; // PS is reserved here; SPF (subpages) is not supported
        const size_t length = list[pos + 1];
        if (list.size() - pos - 2 < length)
            return check_condition(c, ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR);
        if (code != PAGE_CACHING || length != CACHING_PAGE_LENGTH)
            return check_condition(c, ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST);
        const u8* body = &list[pos + 2];
        // Every byte but WCE must be what the disk reports: all zero.
        if ((body[0] & ~CACHING_WCE) != 0 ||
            std::any_of(body + 1, body + length, [](u8 b) { return b != 0; }))
            return check_condition(c, ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST);
        write_cache = body[0] & CACHING_WCE;
        pos += 2 + length;
    }
    m_write_cache = write_cache;
    c->result.transferred = static_cast<u32>(list.size());
    complete(c);
}

bool ScsiDisk::check_range(const CommandPtr& c, u64 lba, u64 count)
{
    if (lba <= m_blocks && count <= m_blocks - lba)
        return true;
    check_condition(c, ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
    return false;
}

bool ScsiDisk::check_writable(const CommandPtr& c)
{
    if (!m_disk->read_only())
        return true;
    check_condition(c, DATA_PROTECT, ASC_WRITE_PROTECTED);
    return false;
}

void ScsiDisk::read(const CommandPtr& c, u64 lba, u32 count)
{
    if (count > m_max_transfer_blocks)
        return check_condition(c, ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
    if (!check_range(c, lba, count))
        return;
    // As much as the buffer holds: a real target sends it all and the
    // initiator keeps what fits (the residual tells it the rest).
    const u64 bytes = u64(count) * m_block_size;
    const u32 n = static_cast<u32>(std::min<u64>(bytes, c->in.size()));
    c->result.transferred = n;
    const u32 whole = n / m_block_size;
    const u32 partial = n % m_block_size;
    if (whole)
        submit(c, BlockOp::Read, lba * m_block_size, u64(whole) * m_block_size, c->in.data());
    if (partial) {
        c->bounce.assign(m_block_size, 0);
        c->partial_at = whole * m_block_size;
        c->partial_length = partial;
        c->after = [](ScsiDisk& self, const CommandPtr& cmd) {
            std::copy_n(cmd->bounce.begin(), cmd->partial_length,
                        cmd->in.begin() + cmd->partial_at);
            self.complete(cmd);
        };
        submit(c, BlockOp::Read, (lba + whole) * m_block_size, m_block_size, c->bounce.data());
    }
    if (!whole && !partial)
        complete(c);
}

void ScsiDisk::write(const CommandPtr& c, u64 lba, u32 count, bool fua)
{
    if (count > m_max_transfer_blocks)
        return check_condition(c, ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
    if (!check_range(c, lba, count) || !check_writable(c))
        return;
    const u64 bytes = u64(count) * m_block_size;
    // Fewer bytes than the CDB names: nothing is written (a partial sector
    // cannot be, and a partial write reported as done would lose data).
    if (c->out.size() < bytes)
        return check_condition(c, ABORTED_COMMAND, ASC_DATA_PHASE_ERROR);
    c->result.transferred = static_cast<u32>(bytes);
    if (bytes == 0)
        return complete(c);
    // FUA, or the write cache switched off: durable before GOOD.
    if (fua || !m_write_cache)
        c->after = [](ScsiDisk& self, const CommandPtr& cmd) { self.flush_then_complete(cmd); };
    submit(c, BlockOp::Write, lba * m_block_size, bytes, c->out.data());
}

void ScsiDisk::verify(const CommandPtr& c, u64 lba, u32 count)
{
    // SBC-3 5.24: VRPROTECT needs protection information; BYTCHK would
    // compare data, which the disk does not do. The medium cannot fail a
    // verification, so what remains is the range.
    if (c->cdb[1] & 0xE6)
        return check_condition(c, ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
    if (check_range(c, lba, count))
        complete(c);
}

void ScsiDisk::synchronize_cache(const CommandPtr& c, u64 lba, u32 count)
{
    // 0 blocks: to the end of the disk (SBC-3 5.18). Everything is flushed
    // either way.
    if (!check_range(c, lba, count))
        return;
    flush_then_complete(c);
}

void ScsiDisk::flush_then_complete(const CommandPtr& c)
{
    c->after = nullptr;
    submit(c, BlockOp::Flush, 0, 0, nullptr);
}

void ScsiDisk::unmap(const CommandPtr& c)
{
    // SBC-3 5.28.
    const std::span<const u8> cdb = c->cdb;
    if (!discard_enabled() && !m_disk->read_only())
        return check_condition(c, ILLEGAL_REQUEST, ASC_INVALID_OPCODE);
    if (cdb[1] & 0x01) // ANCHOR: not supported (ANC_SUP is 0)
        return check_condition(c, ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
    const u32 list_length = load_be16(cdb, 7);
    if (list_length == 0)
        return complete(c);
    if (!check_writable(c))
        return;
    const std::span<const u8> list = c->out.first(std::min<size_t>(list_length, c->out.size()));
    // The header's two lengths must fit the list, and descriptors are
    // 16 bytes each.
    if (list.size() < 8 || list.size() < list_length)
        return check_condition(c, ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR);
    const u32 data_length = load_be16(list, 0);
    const u32 descriptor_length = load_be16(list, 2);
    if (data_length + 2 > list.size() || descriptor_length + 8 > list.size() ||
        descriptor_length % 16 != 0)
        return check_condition(c, ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR);
    const u32 descriptors = descriptor_length / 16;
    if (descriptors > MAX_UNMAP_DESCRIPTORS)
        return check_condition(c, ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST);
    // Every descriptor is checked before any block is discarded.
    u64 total = 0;
    for (u32 i = 0; i < descriptors; ++i) {
        const size_t d = 8 + i * 16;
        const u64 lba = load_be64(list, d);
        const u32 count = load_be32(list, d + 8);
        if (!check_range(c, lba, count))
            return;
        total += count;
    }
    if (total > m_max_unmap_blocks)
        return check_condition(c, ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST);
    c->result.transferred = static_cast<u32>(list.size());
    for (u32 i = 0; i < descriptors; ++i) {
        const size_t d = 8 + i * 16;
        const u32 count = load_be32(list, d + 8);
        if (count)
            submit(c, BlockOp::Discard, load_be64(list, d) * m_block_size, u64(count) * m_block_size, nullptr);
    }
    if (c->pending == 0)
        complete(c);
}

void ScsiDisk::write_same(const CommandPtr& c, u64 lba, u32 count)
{
    // SBC-3 5.41, 5.42: WRPROTECT, ANCHOR, PBDATA and LBDATA are not
    // supported, nor NDOB (SBC-4, 16 only); WSNZ refuses 0 blocks.
    const u8 flags = c->cdb[1];
    const bool unmap_bit = flags & 0x08;
    if ((flags & 0xF7) != 0 || count == 0 || count > m_max_unmap_blocks)
        return check_condition(c, ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
    if (!check_range(c, lba, count) || !check_writable(c))
        return;
    if (c->out.size() < m_block_size)
        return check_condition(c, ABORTED_COMMAND, ASC_DATA_PHASE_ERROR);
    const std::span<const u8> pattern = c->out.first(m_block_size);
    c->result.transferred = m_block_size;
    // Unmapped blocks must read back as the pattern: only a discard that
    // leaves zeros may stand in for writing zeros.
    const bool zeros = std::all_of(pattern.begin(), pattern.end(), [](u8 b) { return b == 0; });
    if (unmap_bit && zeros && discard_zeroes())
        return submit(c, BlockOp::Discard, lba * m_block_size, u64(count) * m_block_size, nullptr);
    const u32 chunk_blocks = std::max<u32>(1, WRITE_SAME_CHUNK / m_block_size);
    const u32 blocks = static_cast<u32>(std::min<u64>(count, chunk_blocks));
    c->bounce.resize(size_t(blocks) * m_block_size);
    for (u32 b = 0; b < blocks; ++b)
        std::copy(pattern.begin(), pattern.end(), c->bounce.begin() + size_t(b) * m_block_size);
    c->next_lba = lba;
    c->remaining = count;
    c->flush_after_write = !m_write_cache;
    write_same_next(c);
}

void ScsiDisk::write_same_next(const CommandPtr& c)
{
    if (c->remaining == 0) {
        if (c->flush_after_write)
            return flush_then_complete(c);
        return complete(c);
    }
    const u64 n = std::min<u64>(c->remaining, c->bounce.size() / m_block_size);
    c->after = [](ScsiDisk& self, const CommandPtr& cmd) { self.write_same_next(cmd); };
    const u64 offset = c->next_lba * m_block_size;
    c->next_lba += n;
    c->remaining -= n;
    submit(c, BlockOp::Write, offset, n * m_block_size, c->bounce.data());
}

void ScsiDisk::submit(const CommandPtr& c, BlockOp op, u64 offset, u64 length, u8* buffer)
{
    ++c->pending;
    m_disk->submit(BlockRequest{op, offset, length, buffer},
                   [this, c, op](BlockStatus status) { block_done(c, op, status); });
}

void ScsiDisk::block_done(const CommandPtr& c, BlockOp op, const BlockStatus& status)
{
    if (status.is_error() && !c->failed) {
        c->failed = true;
        // The block layer's refusals keep their meaning; a host I/O error
        // is a medium error of the read or the write (SPC-3 annex D).
        switch (status.error().kind) {
        case BlockErrorKind::ReadOnly:
            c->error_key = DATA_PROTECT;
            c->error_asc = ASC_WRITE_PROTECTED;
            break;
        case BlockErrorKind::NoSpace:
            c->error_key = DATA_PROTECT;
            c->error_asc = ASC_WRITE_PROTECTED;
            c->error_ascq = ASCQ_SPACE_ALLOCATION_FAILED;
            break;
        case BlockErrorKind::OutOfRange:
            c->error_key = ILLEGAL_REQUEST;
            c->error_asc = ASC_LBA_OUT_OF_RANGE;
            break;
        default:
            c->error_key = MEDIUM_ERROR;
            c->error_asc = op == BlockOp::Read ? ASC_UNRECOVERED_READ_ERROR : ASC_WRITE_ERROR;
            break;
        }
    }
    if (--c->pending > 0)
        return;
    if (c->failed)
        return check_condition(c, c->error_key, c->error_asc, c->error_ascq);
    const Request::Step step = c->after;
    c->after = nullptr;
    if (!step)
        return complete(c);
    step(*this, c);
}

void ScsiDisk::visit_state(StateVisitor& v)
{
    v.section("scsi-disk", 1);
    v.field("write_cache", m_write_cache);
}
