#include "platform/storage/atapi_cdrom.h"

#include "mmu/base/state_visitor.h"
#include "platform/storage/scsi.h"

#include <algorithm>
#include <cstring>

using namespace ata;
// The byte helpers and additional sense codes of SPC-3 (MMC-3's own are below).
using namespace scsi;

namespace {

// ASCQs of MEDIUM NOT PRESENT that Linux's sr reads as the tray state.
constexpr u8 ASCQ_TRAY_CLOSED = 0x01, ASCQ_TRAY_OPEN = 0x02;
constexpr u8 ASCQ_MEDIUM_REMOVAL_PREVENTED = 0x02;

// Profiles (MMC-3 5.3.1) and features (5.3.2-5.3.5).
constexpr u16 PROFILE_CD_ROM = 0x0008, PROFILE_DVD_ROM = 0x0010;
constexpr u16 FEATURE_PROFILE_LIST = 0x0000, FEATURE_CORE = 0x0001, FEATURE_MORPHING = 0x0002,
              FEATURE_REMOVABLE_MEDIUM = 0x0003;
// Feature descriptor byte 2: version in bits 5:2, Persistent, Current.
constexpr u8 FEATURE_PERSISTENT = 0x02, FEATURE_CURRENT = 0x01;
// GET EVENT STATUS NOTIFICATION (MMC-3 6.5): the media class.
constexpr u8 EVENT_CLASS_MEDIA = 4, EVENT_NEA = 0x80;
// Mode pages (MMC-3 6.3, 7.2).
constexpr u8 PAGE_ERROR_RECOVERY = 0x01, PAGE_CD_DEVICE = 0x0D, PAGE_CAPABILITIES = 0x2A,
             PAGE_ALL = 0x3F;
// A CD's first block lies 2 seconds (150 frames) into the disc (MMC-3 4.2.3.6).
constexpr u32 MSF_OFFSET = 150;

// A TOC address: a logical block, or minute/second/frame with MSF set.
void put_address(std::span<u8> p, u64 lba, bool msf)
{
    if (!msf)
        return store_be32(p, 0, static_cast<u32>(std::min<u64>(lba, 0xFFFFFFFF)));
    const u64 frames = lba + MSF_OFFSET;
    p[0] = 0;
    p[1] = static_cast<u8>(std::min<u64>(frames / (60 * 75), 0xFF));
    p[2] = static_cast<u8>(frames / 75 % 60);
    p[3] = static_cast<u8>(frames % 75);
}

} // namespace

AtapiCdrom::AtapiCdrom(std::unique_ptr<BlockDevice> disc, std::string serial)
    : IdeDevice(std::move(disc)), m_serial(std::move(serial))
{
}

u64 AtapiCdrom::blocks() const
{
    return m_disk ? m_disk->info().virtual_size / BLOCK_SIZE : 0;
}

void AtapiCdrom::set_signature()
{
    // Packet device signature (ATA/ATAPI-6 9.12): cylinder EB14h. DRDY
    // stays clear after a reset of a packet device.
    TaskFile& r = regs();
    r.count = 1;
    r.lba_low = 1;
    r.lba_mid = 0x14;
    r.lba_high = 0xEB;
    r.device = 0xA0 | (r.device & DEVICE_DEV);
    r.error = 0x01;
    r.status = 0;
    m_phase = Phase::None;
    m_pos = m_end = 0;
    m_remaining = 0;
}

std::array<u16, 256> AtapiCdrom::identify() const
{
    std::array<u16, 256> w{};
    // ATAPI, CD-ROM device type 05h, removable, DRQ within 50 us of PACKET
    // (so no interrupt asks for the CDB), 12-byte packets (8.16.1).
    w[0] = 0x8000 | 0x0500 | 0x0080 | 0x0040;
    put_identify_string(w, 10, 10, m_serial);
    put_identify_string(w, 23, 4, "0.1");
    put_identify_string(w, 27, 20, "VIRIDIAN DVD-ROM");
    w[49] = (1u << 11) | (1u << 9) | (1u << 8); // IORDY, LBA, DMA
    w[53] = 0x0006;                             // words 64-70 and 88 are valid
    w[64] = 0x0003;
    w[65] = w[66] = w[67] = w[68] = 120;
    w[80] = 0x0070; // ATA/ATAPI-4 to -6
    // PACKET feature set (82.4), DEVICE RESET (82.9), NOP (82.14).
    w[82] = (1u << 14) | (1u << 9) | (1u << 4);
    w[83] = 0x4000;
    w[84] = 0x4000;
    w[85] = w[82];
    w[87] = 0x4000;
    put_dma_modes(w, m_transfer_mode);
    w[93] = 0x6001;
    seal_identify(w);
    return w;
}

void AtapiCdrom::execute(u8 command)
{
    TaskFile& r = regs();
    switch (command) {
    case DEVICE_RESET:
        // 8.7: the signature, no interrupt, DRDY clear.
        return reset();
    case EXECUTE_DEVICE_DIAGNOSTIC:
        set_signature();
        return raise_irq();
    case IDENTIFY_PACKET_DEVICE:
        r.error = 0;
        m_phase = Phase::None;
        return send_identify(identify());
    case IDENTIFY_DEVICE:
    case READ_SECTORS:
        // A packet device aborts these and shows its signature, so a host
        // probing for a disk finds a packet device instead (8.15.5).
        r.count = 1;
        r.lba_low = 1;
        r.lba_mid = 0x14;
        r.lba_high = 0xEB;
        return abort_command();
    case PACKET:
        r.error = 0;
        m_dma = r.feature & 0x01;
        m_byte_limit = static_cast<u16>(r.lba_high << 8 | r.lba_mid);
        m_phase = Phase::Cdb;
        m_pos = m_end = 0;
        r.count = REASON_COD;
        m_buffer->assign(CDB_SIZE, 0);
        return start_pio_out(0, CDB_SIZE, false);
    case SET_FEATURES:
        if (r.feature == 0x03) {
            if (!set_transfer_mode(r.count, m_transfer_mode))
                return abort_command();
        } else if (r.feature != 0x02 && r.feature != 0x82 && r.feature != 0x55 &&
                   r.feature != 0xAA && r.feature != 0x66 && r.feature != 0xCC) {
            return abort_command();
        }
        r.error = 0;
        set_status_ok();
        return raise_irq();
    case CHECK_POWER_MODE:
        r.count = 0xFF;
        [[fallthrough]];
    case STANDBY_IMMEDIATE:
    case IDLE_IMMEDIATE:
    case SLEEP:
        r.error = 0;
        set_status_ok();
        return raise_irq();
    default:
        // NOP always aborts (8.22); the disk commands do not apply.
        return abort_command();
    }
}

void AtapiCdrom::pio_block_done()
{
    switch (m_phase) {
    case Phase::Cdb:
        return take_cdb();
    case Phase::Reply:
        return next_pio_block();
    case Phase::ReadPio:
        if (m_pos < m_end)
            return next_pio_block();
        if (m_remaining)
            return read_next_chunk();
        return command_ok();
    case Phase::ReadDma:
    case Phase::None:
        // IDENTIFY PACKET DEVICE's block was read.
        set_status_ok();
        return;
    }
}

void AtapiCdrom::dma_done(bool ok)
{
    if (!ok)
        return check_condition(ABORTED_COMMAND, 0);
    command_ok();
}

void AtapiCdrom::command_ok()
{
    m_phase = Phase::None;
    m_pos = m_end = 0;
    m_sense_key = NO_SENSE;
    m_asc = m_ascq = 0;
    TaskFile& r = regs();
    r.error = 0;
    r.count = REASON_IO | REASON_COD;
    set_status_ok();
    raise_irq();
}

void AtapiCdrom::check_condition(u8 key, u8 asc, u8 ascq)
{
    // The sense key in the error register's high nibble, ERR in status
    // (ATA/ATAPI-6 8.21 "Error outputs").
    m_phase = Phase::None;
    m_pos = m_end = 0;
    m_sense_key = key;
    m_asc = asc;
    m_ascq = ascq;
    regs().count = REASON_IO | REASON_COD;
    abort_command(static_cast<u8>(key << 4));
}

bool AtapiCdrom::medium_ready()
{
    if (m_disk && !m_tray_open)
        return true;
    check_condition(NOT_READY, ASC_MEDIUM_NOT_PRESENT, m_tray_open ? ASCQ_TRAY_OPEN : ASCQ_TRAY_CLOSED);
    return false;
}

void AtapiCdrom::take_cdb()
{
    std::copy_n(m_buffer->begin(), CDB_SIZE, m_cdb.begin());
    run_cdb();
}

void AtapiCdrom::reply(u32 length, u32 allocation)
{
    const u32 n = std::min(length, allocation);
    m_buffer->resize(std::max<size_t>(m_buffer->size(), n));
    m_pos = 0;
    m_end = n;
    if (n == 0)
        return command_ok();
    m_phase = Phase::Reply;
    if (m_dma)
        return start_dma(n, true);
    next_pio_block();
}

void AtapiCdrom::next_pio_block()
{
    if (m_pos >= m_end)
        return command_ok();
    // The byte count limit bounds a DRQ block; an odd limit with more to
    // come is taken one lower, so blocks stay whole words (9.10). 0 is no
    // limit a transfer could keep.
    const u32 left = m_end - m_pos;
    const u32 limit = m_byte_limit == 0xFFFF ? 0xFFFE : m_byte_limit;
    const u32 block = left <= limit ? left : (limit & ~1u);
    if (block == 0)
        return check_condition(ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
    TaskFile& r = regs();
    r.count = REASON_IO;
    r.lba_mid = static_cast<u8>(block);
    r.lba_high = static_cast<u8>(block >> 8);
    const u32 offset = m_pos;
    m_pos += block;
    start_pio_in(offset, block, true);
}

void AtapiCdrom::read_sectors(u64 lba, u64 count)
{
    if (!medium_ready())
        return;
    const u64 total = blocks();
    if (lba > total || count > total - lba)
        return check_condition(ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
    if (count == 0)
        return command_ok();
    if (!m_dma) {
        m_phase = Phase::ReadPio;
        m_lba = lba;
        m_remaining = count;
        return read_next_chunk();
    }
    if (count > MAX_DMA_BLOCKS)
        return check_condition(ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
    m_phase = Phase::ReadDma;
    const u32 bytes = static_cast<u32>(count) * BLOCK_SIZE;
    submit(BlockOp::Read, lba * BLOCK_SIZE, bytes, 0, [this, bytes](bool ok) {
        if (!ok)
            return check_condition(MEDIUM_ERROR, ASC_UNRECOVERED_READ_ERROR);
        start_dma(bytes, true);
    });
}

void AtapiCdrom::read_next_chunk()
{
    // The disc may have been taken out between two chunks.
    if (!medium_ready())
        return;
    const u32 n = static_cast<u32>(std::min<u64>(m_remaining, PIO_CHUNK_BLOCKS));
    if (m_lba > blocks() || n > blocks() - m_lba)
        return check_condition(ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
    submit(BlockOp::Read, m_lba * BLOCK_SIZE, n * BLOCK_SIZE, 0, [this, n](bool ok) {
        if (!ok)
            return check_condition(MEDIUM_ERROR, ASC_UNRECOVERED_READ_ERROR);
        m_lba += n;
        m_remaining -= n;
        m_pos = 0;
        m_end = n * BLOCK_SIZE;
        next_pio_block();
    });
}

void AtapiCdrom::run_cdb()
{
    const u8 op = m_cdb[0];
    // A pending UNIT ATTENTION ends the next command, except those that
    // report status without touching the medium (SPC-3 5.9.7, MMC-3 4.1.6).
    const bool reports_ua = op != INQUIRY && op != REQUEST_SENSE && op != GET_CONFIGURATION &&
                            op != GET_EVENT_STATUS_NOTIFICATION;
    if (m_unit_attention && reports_ua) {
        m_unit_attention = false;
        return check_condition(UNIT_ATTENTION, ASC_MEDIUM_MAY_HAVE_CHANGED);
    }
    std::vector<u8>& buf = *m_buffer;
    switch (op) {
    case TEST_UNIT_READY:
        if (medium_ready())
            command_ok();
        return;
    case REQUEST_SENSE: {
        // Fixed-format sense data (SPC-3 4.5.3); a pending unit attention
        // is reported and cleared here.
        if (m_unit_attention) {
            m_unit_attention = false;
            m_sense_key = UNIT_ATTENTION;
            m_asc = ASC_MEDIUM_MAY_HAVE_CHANGED;
            m_ascq = 0;
        }
        buf.assign(18, 0);
        buf[0] = 0x70;
        buf[2] = m_sense_key;
        buf[7] = 10;
        buf[12] = m_asc;
        buf[13] = m_ascq;
        return reply(18, m_cdb[4]);
    }
    case INQUIRY:
        return inquiry();
    case READ_CAPACITY: {
        if (!medium_ready())
            return;
        buf.assign(8, 0);
        const u64 total = blocks();
        store_be32(buf, 0, static_cast<u32>(std::min<u64>(total ? total - 1 : 0, 0xFFFFFFFF)));
        store_be32(buf, 4, BLOCK_SIZE);
        return reply(8, 8);
    }
    case READ_10:
        return read_sectors(load_be32(m_cdb, 2), load_be16(m_cdb, 7));
    case READ_12:
        return read_sectors(load_be32(m_cdb, 2), load_be32(m_cdb, 6));
    case READ_TOC:
        return read_toc();
    case GET_CONFIGURATION:
        return get_configuration();
    case GET_EVENT_STATUS_NOTIFICATION:
        return get_event_status();
    case MODE_SENSE_10:
        return mode_sense();
    case START_STOP_UNIT:
        return start_stop_unit();
    case PREVENT_ALLOW_MEDIUM_REMOVAL:
        m_locked = m_cdb[4] & 0x01;
        return command_ok();
    case READ_DISC_INFORMATION:
        return read_disc_information();
    case MECHANISM_STATUS:
        return mechanism_status();
    case SET_CD_SPEED:
        // The speed is the host's: accepted and ignored (MMC-3 6.37).
        return command_ok();
    default:
        return check_condition(ILLEGAL_REQUEST, ASC_INVALID_OPCODE);
    }
}

void AtapiCdrom::inquiry()
{
    // Standard data only (SPC-3 6.4.2); no vital product data pages.
    if ((m_cdb[1] & 0x01) || m_cdb[2])
        return check_condition(ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
    std::vector<u8>& buf = *m_buffer;
    buf.assign(36, 0);
    buf[0] = 0x05; // CD/DVD device
    buf[1] = 0x80; // removable medium
    buf[2] = 0x00; // the version ATAPI drives report (MMC-3 7.1)
    buf[3] = 0x21; // response data format 1, as ATAPI drives answer
    buf[4] = 36 - 5;
    put_padded(&buf[8], 8, "VIRIDIAN");
    put_padded(&buf[16], 16, "DVD-ROM");
    put_padded(&buf[32], 4, "0.1");
    reply(36, load_be16(m_cdb, 3));
}

void AtapiCdrom::mode_sense()
{
    const u8 control = m_cdb[2] >> 6;
    const u8 page = m_cdb[2] & 0x3F;
    if (control == 3)
        return check_condition(ILLEGAL_REQUEST, ASC_SAVING_PARAMETERS_NOT_SUPPORTED);
    if (m_cdb[3] != 0 || (page != PAGE_ERROR_RECOVERY && page != PAGE_CD_DEVICE &&
                          page != PAGE_CAPABILITIES && page != PAGE_ALL))
        return check_condition(ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
    // Page control 1 asks which fields may be changed: none may.
    const bool changeable = control == 1;
    std::vector<u8>& buf = *m_buffer;
    buf.assign(8, 0); // mode parameter header(10), no block descriptors
    auto add_page = [&](u8 code, std::initializer_list<u8> body) {
        buf.push_back(code);
        buf.push_back(static_cast<u8>(body.size()));
        for (u8 b : body)
            buf.push_back(changeable ? 0 : b);
    };
    if (page == PAGE_ERROR_RECOVERY || page == PAGE_ALL)
        // Read retry count 5 (MMC-3 7.3).
        add_page(PAGE_ERROR_RECOVERY, {0x00, 0x05, 0, 0, 0, 0, 0, 0, 0, 0});
    if (page == PAGE_CD_DEVICE || page == PAGE_ALL)
        // 60 seconds a minute, 75 frames a second (MMC-2 5.5.10).
        add_page(PAGE_CD_DEVICE, {0, 0, 0, 60, 0, 75});
    if (page == PAGE_CAPABILITIES || page == PAGE_ALL) {
        const u8 lock = static_cast<u8>(0x01 | (m_locked ? 0x02 : 0));
        // MMC-3 6.3.11: reads CD-R, CD-RW, DVD-ROM, DVD-R, DVD-RAM media;
        // writes none; mode 2 form 1 and 2, multi-session; a tray that
        // locks and ejects; 16x (2816 kB/s) at most and now.
        add_page(PAGE_CAPABILITIES,
                 {0x3B, 0x00, 0x70, 0x00, static_cast<u8>(0x28 | lock), 0x00, 0x0B, 0x00, 0x00,
                  0x00, 0x02, 0x00, 0x0B, 0x00, 0, 0, 0, 0, 0, 0});
    }
    store_be16(buf, 0, static_cast<u32>(buf.size() - 2));
    reply(static_cast<u32>(buf.size()), load_be16(m_cdb, 7));
}

void AtapiCdrom::read_toc()
{
    if (!medium_ready())
        return;
    const bool msf = m_cdb[1] & 0x02;
    // The format in byte 2, or in byte 9's top bits as older hosts (and
    // Linux's multisession query) put it (SFF-8020i 10.8.8).
    u8 format = m_cdb[2] & 0x0F;
    if (format == 0)
        format = m_cdb[9] >> 6;
    const u8 start_track = m_cdb[6];
    const u64 total = blocks();
    std::vector<u8>& buf = *m_buffer;
    switch (format) {
    case 0: { // formatted TOC: one data track and the lead-out (MMC-3 6.26.3.2)
        if (start_track > 1 && start_track != 0xAA)
            return check_condition(ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
        buf.assign(4, 0);
        buf[2] = 1; // first track
        buf[3] = 1; // last track
        auto add_track = [&](u8 number, u64 lba) {
            const size_t at = buf.size();
            buf.resize(at + 8, 0);
            buf[at + 1] = 0x14; // ADR 1 (Q sub-channel position), control 4: data track
            buf[at + 2] = number;
            put_address(std::span(buf).subspan(at + 4), lba, msf);
        };
        if (start_track <= 1)
            add_track(1, 0);
        add_track(0xAA, total);
        break;
    }
    case 1: // session information: one session, its first track at block 0
        buf.assign(12, 0);
        buf[2] = 1;
        buf[3] = 1;
        buf[5] = 0x14;
        buf[6] = 1;
        put_address(std::span(buf).subspan(8), 0, msf);
        break;
    default:
        return check_condition(ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
    }
    store_be16(buf, 0, static_cast<u32>(buf.size() - 2));
    reply(static_cast<u32>(buf.size()), load_be16(m_cdb, 7));
}

void AtapiCdrom::get_configuration()
{
    const u8 requested = m_cdb[1] & 0x03;
    const u16 start = static_cast<u16>(load_be16(m_cdb, 2));
    if (requested == 3)
        return check_condition(ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
    const bool present = m_disk && !m_tray_open;
    const bool dvd = blocks() > CD_MAX_BLOCKS;
    const u16 profile = !present ? 0 : dvd ? PROFILE_DVD_ROM : PROFILE_CD_ROM;
    std::vector<u8>& buf = *m_buffer;
    buf.assign(8, 0); // feature header (MMC-3 5.3.2)
    store_be16(buf, 6, profile);
    auto add_feature = [&](u16 code, u8 version, bool current, std::initializer_list<u8> data) {
        if (requested == 2 ? code != start : code < start)
            return;
        if (requested == 1 && !current)
            return;
        buf.push_back(static_cast<u8>(code >> 8));
        buf.push_back(static_cast<u8>(code));
        buf.push_back(static_cast<u8>(version << 2 | FEATURE_PERSISTENT | (current ? FEATURE_CURRENT : 0)));
        buf.push_back(static_cast<u8>(data.size()));
        buf.insert(buf.end(), data);
    };
    // Profile list, DVD-ROM first (the higher-numbered profile).
    add_feature(FEATURE_PROFILE_LIST, 0, true,
                {0x00, static_cast<u8>(PROFILE_DVD_ROM), static_cast<u8>(profile == PROFILE_DVD_ROM), 0,
                 0x00, static_cast<u8>(PROFILE_CD_ROM), static_cast<u8>(profile == PROFILE_CD_ROM), 0});
    // Core: the physical interface is ATAPI (MMC-3 5.3.2, interface 2).
    add_feature(FEATURE_CORE, 0, true, {0, 0, 0, 2});
    // Morphing: operational changes are reported as events (OCEvent).
    add_feature(FEATURE_MORPHING, 1, true, {0x02, 0, 0, 0});
    // Removable medium: a tray (type 001b) that ejects and locks.
    add_feature(FEATURE_REMOVABLE_MEDIUM, 0, true, {0x29, 0, 0, 0});
    store_be32(buf, 0, static_cast<u32>(buf.size() - 4));
    reply(static_cast<u32>(buf.size()), load_be16(m_cdb, 7));
}

void AtapiCdrom::get_event_status()
{
    // Only polled operation (MMC-3 6.5: asynchronous is optional).
    if (!(m_cdb[1] & 0x01))
        return check_condition(ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
    std::vector<u8>& buf = *m_buffer;
    constexpr u8 SUPPORTED_CLASSES = 1u << EVENT_CLASS_MEDIA;
    if (!(m_cdb[4] & SUPPORTED_CLASSES)) {
        buf.assign(4, 0);
        store_be16(buf, 0, 2);
        buf[2] = EVENT_NEA;
        buf[3] = SUPPORTED_CLASSES;
        return reply(4, load_be16(m_cdb, 7));
    }
    buf.assign(8, 0);
    store_be16(buf, 0, 6);
    buf[2] = EVENT_CLASS_MEDIA;
    buf[3] = SUPPORTED_CLASSES;
    buf[4] = static_cast<u8>(m_media_event);
    // Media status: medium present (bit 1), tray open (bit 0).
    buf[5] = static_cast<u8>((m_disk && !m_tray_open ? 0x02 : 0) | (m_tray_open ? 0x01 : 0));
    m_media_event = MediaEvent::None;
    reply(8, load_be16(m_cdb, 7));
}

void AtapiCdrom::start_stop_unit()
{
    const bool load_eject = m_cdb[4] & 0x02;
    const bool start = m_cdb[4] & 0x01;
    if (!load_eject)
        return command_ok(); // the spindle: nothing to do
    if (start) {
        if (m_tray_open && m_disk)
            m_media_event = MediaEvent::NewMedia;
        const bool moved = m_tray_open;
        m_tray_open = false;
        if (moved && m_tray_listener)
            m_tray_listener(false);
        return command_ok();
    }
    if (m_locked)
        return check_condition(ILLEGAL_REQUEST, ASC_MEDIUM_REMOVAL_PREVENTED,
                               ASCQ_MEDIUM_REMOVAL_PREVENTED);
    if (!m_tray_open && m_disk)
        m_media_event = MediaEvent::MediaRemoval;
    const bool moved = !m_tray_open;
    m_tray_open = true;
    if (moved && m_tray_listener)
        m_tray_listener(true);
    command_ok();
}

void AtapiCdrom::read_disc_information()
{
    if (!medium_ready())
        return;
    // Standard disc information only (data type 000b).
    if (m_cdb[1] & 0x07)
        return check_condition(ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
    std::vector<u8>& buf = *m_buffer;
    buf.assign(34, 0);
    store_be16(buf, 0, 32);
    buf[2] = 0x0E; // last session complete, disc finalized
    buf[3] = 1;    // first track
    buf[4] = 1;    // sessions
    buf[5] = 1;    // first track of the last session
    buf[6] = 1;    // last track of the last session
    // No next session: lead-in and last lead-out addresses all ones.
    std::fill(buf.begin() + 16, buf.begin() + 24, 0xFF);
    reply(34, load_be16(m_cdb, 7));
}

void AtapiCdrom::mechanism_status()
{
    // MMC-3 6.9: no changer, no slots; the door bit is the tray.
    std::vector<u8>& buf = *m_buffer;
    buf.assign(8, 0);
    buf[1] = m_tray_open ? 0x10 : 0;
    reply(8, load_be16(m_cdb, 8));
}

void AtapiCdrom::remove_disc()
{
    if (!m_disk)
        return;
    m_disk->drain();
    m_disk.reset();
    m_media_event = MediaEvent::MediaRemoval;
}

void AtapiCdrom::insert_disc(std::unique_ptr<BlockDevice> disc)
{
    remove_disc();
    m_disk = std::move(disc);
    m_tray_open = false;
    if (m_disk) {
        m_unit_attention = true;
        m_media_event = MediaEvent::NewMedia;
    }
}

bool AtapiCdrom::host_open_tray(bool force)
{
    if (m_tray_open)
        return false;
    if (m_locked) {
        m_media_event = MediaEvent::EjectRequest;
        if (!force)
            return false;
        m_locked = false;
    }
    if (m_disk)
        m_media_event = MediaEvent::MediaRemoval;
    m_tray_open = true;
    return true;
}

bool AtapiCdrom::host_close_tray()
{
    if (!m_tray_open)
        return false;
    m_tray_open = false;
    if (m_disk) {
        m_unit_attention = true;
        m_media_event = MediaEvent::NewMedia;
    }
    return true;
}

void AtapiCdrom::visit_state(StateVisitor& v)
{
    v.section("atapi-cdrom", 1);
    IdeDevice::visit_state(v);
    bool disc = m_disk != nullptr;
    v.field("disc", disc);
    v.field("phase", m_phase);
    v.field("cdb", m_cdb);
    v.field("dma", m_dma);
    v.field("byte_limit", m_byte_limit);
    v.field("pos", m_pos);
    v.field("end", m_end);
    v.field("lba", m_lba);
    v.field("remaining", m_remaining);
    v.field("sense_key", m_sense_key);
    v.field("asc", m_asc);
    v.field("ascq", m_ascq);
    v.field("unit_attention", m_unit_attention);
    v.field("media_event", m_media_event);
    v.field("tray_open", m_tray_open);
    v.field("locked", m_locked);
    v.field("transfer_mode", m_transfer_mode);
    if (!v.loading())
        return;
    if (disc != (m_disk != nullptr))
        return v.fail("the snapshot's CD-ROM disc differs from this machine's");
    // What a damaged snapshot could make out of range. The next block of a
    // READ is checked against the disc before every refill, so a disc
    // changed since (or a damaged m_lba) ends the read with the protocol's
    // error instead.
    const bool bad_phase = m_phase > Phase::ReadDma;
    const bool bad_event =
        m_media_event != MediaEvent::None && m_media_event != MediaEvent::EjectRequest &&
        m_media_event != MediaEvent::NewMedia && m_media_event != MediaEvent::MediaRemoval;
    if (bad_phase || bad_event || m_pos > m_end || m_end > m_buffer->size()) {
        m_phase = Phase::None;
        m_pos = m_end = 0;
        m_lba = m_remaining = 0;
        m_media_event = MediaEvent::None;
        v.fail("ATAPI CD-ROM state out of range");
    }
}
