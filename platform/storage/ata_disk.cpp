#include "platform/storage/ata_disk.h"

#include "mmu/base/state_visitor.h"

#include <algorithm>

using namespace ata;

namespace {

constexpr u64 LBA28_LIMIT = 0x0FFFFFFF; // words 60-61 hold at most this

} // namespace

AtaDisk::AtaDisk(std::unique_ptr<BlockDevice> disk, std::string serial)
    : IdeDevice(std::move(disk)), m_serial(std::move(serial))
{
    m_sectors = m_disk->info().virtual_size / SECTOR_SIZE;
    // The geometry BIOSes guess for a large disk: 16 heads, 63 sectors per
    // track, as many cylinders as fit (at most 16383, ATA/ATAPI-6 6.2.1).
    m_cylinders = static_cast<u16>(std::clamp<u64>(m_sectors / (16 * 63), 1, 16383));
}

void AtaDisk::set_signature()
{
    // ATA device signature (9.12): count 1, LBA 1, cylinder 0.
    TaskFile& r = regs();
    r.count = 1;
    r.lba_low = 1;
    r.lba_mid = 0;
    r.lba_high = 0;
    r.device = 0xA0 | (r.device & DEVICE_DEV);
    r.error = 0x01; // diagnostics passed
    m_transfer = Transfer::None;
    m_remaining = 0;
    set_status_ok();
}

std::array<u16, 256> AtaDisk::identify() const
{
    std::array<u16, 256> w{};
    const u64 lba28 = std::min(m_sectors, LBA28_LIMIT);
    w[0] = 0x0040; // fixed device
    w[1] = m_cylinders;
    w[3] = m_heads;
    w[6] = m_sectors_per_track;
    put_identify_string(w, 10, 10, m_serial);
    put_identify_string(w, 23, 4, "0.1");
    put_identify_string(w, 27, 20, "VIRIDIAN HARDDISK");
    w[47] = 0x8000 | MAX_MULTIPLE;
    w[49] = (1u << 11) | (1u << 9) | (1u << 8); // IORDY, LBA, DMA
    w[50] = 0x4000;
    w[51] = 0x0200; // PIO timing mode 2 (obsolete field)
    w[53] = 0x0007; // words 54-58, 64-70 and 88 are valid
    const u64 chs_sectors = u64(m_cylinders) * m_current_heads * m_current_sectors;
    w[54] = m_cylinders;
    w[55] = m_current_heads;
    w[56] = m_current_sectors;
    w[57] = static_cast<u16>(chs_sectors);
    w[58] = static_cast<u16>(chs_sectors >> 16);
    w[59] = m_multiple ? static_cast<u16>(0x0100 | m_multiple) : 0;
    w[60] = static_cast<u16>(lba28);
    w[61] = static_cast<u16>(lba28 >> 16);
    w[64] = 0x0003; // PIO modes 3 and 4
    w[65] = w[66] = w[67] = w[68] = 120; // cycle times, ns
    w[80] = 0x00F0;                     // ATA/ATAPI-4 to -7
    w[81] = 0x0016;
    // Supported: write cache (82.5), power management (82.3); FLUSH CACHE
    // (83.12), FLUSH CACHE EXT (83.13) and 48-bit addresses (83.10).
    w[82] = (1u << 5) | (1u << 3);
    w[83] = 0x4000 | (1u << 13) | (1u << 12) | (1u << 10);
    w[84] = 0x4000;
    w[85] = static_cast<u16>((m_write_cache ? 1u << 5 : 0) | (1u << 3));
    w[86] = (1u << 13) | (1u << 12) | (1u << 10);
    w[87] = 0x4000;
    put_dma_modes(w, m_transfer_mode);
    w[93] = 0x6001; // hardware reset result: device 0 passed, 80-conductor cable
    w[100] = static_cast<u16>(m_sectors);
    w[101] = static_cast<u16>(m_sectors >> 16);
    w[102] = static_cast<u16>(m_sectors >> 32);
    w[103] = static_cast<u16>(m_sectors >> 48);
    seal_identify(w);
    return w;
}

bool AtaDisk::take_range(bool lba48)
{
    TaskFile& r = regs();
    u64 lba = 0;
    // Taken only once the range fits: a refused command leaves the saved
    // transfer state as it was (consistent with m_lba).
    u32 count = 0;
    if (lba48) {
        lba = r.lba48();
        count = r.count48();
    } else {
        count = r.count28();
        if (r.device & DEVICE_LBA) {
            lba = r.lba28();
        } else {
            // CHS (6.2.1): sectors count from 1, within the current geometry.
            const u64 cylinder = u64(r.lba_high) << 8 | r.lba_mid;
            const u64 head = r.device & 0x0F;
            const u64 sector = r.lba_low;
            if (sector == 0 || sector > m_current_sectors || head >= m_current_heads) {
                abort_command(ERROR_IDNF | ERROR_ABRT);
                return false;
            }
            lba = (cylinder * m_current_heads + head) * m_current_sectors + sector - 1;
        }
    }
    if (lba > m_sectors || count > m_sectors - lba) {
        abort_command(ERROR_IDNF);
        return false;
    }
    m_lba = lba;
    m_remaining = count;
    return true;
}

void AtaDisk::complete()
{
    m_transfer = Transfer::None;
    set_status_ok();
    raise_irq();
}

void AtaDisk::execute(u8 command)
{
    TaskFile& r = regs();
    r.error = 0;
    m_transfer = Transfer::None;
    const bool lba48 = command == READ_SECTORS_EXT || command == READ_DMA_EXT ||
                       command == READ_MULTIPLE_EXT || command == WRITE_SECTORS_EXT ||
                       command == WRITE_DMA_EXT || command == WRITE_MULTIPLE_EXT ||
                       command == READ_VERIFY_EXT;
    switch (command) {
    case IDENTIFY_DEVICE:
        m_remaining = 0;
        return send_identify(identify());
    case READ_MULTIPLE:
    case READ_MULTIPLE_EXT:
    case WRITE_MULTIPLE:
    case WRITE_MULTIPLE_EXT:
        if (!m_multiple)
            return abort_command();
        [[fallthrough]];
    case READ_SECTORS:
    case READ_SECTORS_NORETRY:
    case READ_SECTORS_EXT:
    case WRITE_SECTORS:
    case WRITE_SECTORS_NORETRY:
    case WRITE_SECTORS_EXT: {
        if (!take_range(lba48))
            return;
        m_multiple_command = command == READ_MULTIPLE || command == READ_MULTIPLE_EXT ||
                             command == WRITE_MULTIPLE || command == WRITE_MULTIPLE_EXT;
        const bool write = command == WRITE_SECTORS || command == WRITE_SECTORS_NORETRY ||
                           command == WRITE_SECTORS_EXT || command == WRITE_MULTIPLE ||
                           command == WRITE_MULTIPLE_EXT;
        m_transfer = write ? Transfer::PioWrite : Transfer::PioRead;
        if (!write)
            return read_next_block();
        m_block = m_multiple_command ? std::min<u32>(m_multiple, m_remaining) : 1;
        // The first block of a PIO write is asked for without an interrupt (9.8).
        return start_pio_out(0, m_block * SECTOR_SIZE, false);
    }
    case READ_DMA:
    case READ_DMA_NORETRY:
    case READ_DMA_EXT:
        if (!take_range(lba48))
            return;
        m_transfer = Transfer::DmaRead;
        return submit(BlockOp::Read, m_lba * SECTOR_SIZE, m_remaining * SECTOR_SIZE, 0,
                      [this](bool ok) {
                          if (!ok)
                              return abort_command(ERROR_UNC | ERROR_ABRT);
                          start_dma(m_remaining * SECTOR_SIZE, true);
                      });
    case WRITE_DMA:
    case WRITE_DMA_NORETRY:
    case WRITE_DMA_EXT:
        if (!take_range(lba48))
            return;
        m_transfer = Transfer::DmaWrite;
        return start_dma(m_remaining * SECTOR_SIZE, false);
    case READ_VERIFY:
    case READ_VERIFY_NORETRY:
    case READ_VERIFY_EXT:
        // Nothing can fail to read back from an image that opened.
        if (take_range(lba48))
            complete();
        return;
    case FLUSH_CACHE:
    case FLUSH_CACHE_EXT:
        return submit(BlockOp::Flush, 0, 0, 0, [this](bool ok) {
            if (!ok)
                return abort_command();
            complete();
        });
    case SET_MULTIPLE_MODE: {
        // A power of two up to the IDENTIFY word 47 limit; 0 turns it off.
        const u8 count = r.count;
        if (count > MAX_MULTIPLE || (count & (count - 1)))
            return abort_command();
        m_multiple = count;
        return complete();
    }
    case SET_FEATURES:
        return set_features();
    case INITIALIZE_DEVICE_PARAMETERS:
        if (r.count == 0)
            return abort_command();
        m_current_heads = static_cast<u8>((r.device & 0x0F) + 1);
        m_current_sectors = r.count;
        return complete();
    case CHECK_POWER_MODE:
        r.count = 0xFF; // active or idle
        return complete();
    case RECALIBRATE:
    case STANDBY_IMMEDIATE:
    case IDLE_IMMEDIATE:
    case STANDBY:
    case IDLE:
    case SLEEP:
        return complete();
    case EXECUTE_DEVICE_DIAGNOSTIC:
        set_signature();
        return raise_irq();
    default:
        // DEVICE RESET is for packet devices only (8.7); everything else
        // this disk does not know.
        return abort_command();
    }
}

void AtaDisk::set_features()
{
    TaskFile& r = regs();
    switch (r.feature) {
    case 0x02: // enable write cache
        m_write_cache = true;
        return complete();
    case 0x82: // disable write cache: flush what it holds first
        m_write_cache = false;
        return submit(BlockOp::Flush, 0, 0, 0, [this](bool ok) {
            if (!ok)
                return abort_command();
            complete();
        });
    case 0x03: // set transfer mode
        if (!set_transfer_mode(r.count, m_transfer_mode))
            return abort_command();
        return complete();
    case 0x55: // read look-ahead off/on, reverting to defaults off/on: accepted
    case 0xAA:
    case 0x66:
    case 0xCC:
        return complete();
    default:
        return abort_command();
    }
}

void AtaDisk::read_next_block()
{
    m_block = m_multiple_command ? std::min<u32>(m_multiple, m_remaining) : 1;
    submit(BlockOp::Read, m_lba * SECTOR_SIZE, m_block * SECTOR_SIZE, 0, [this](bool ok) {
        if (!ok)
            return abort_command(ERROR_UNC | ERROR_ABRT);
        // Every DRQ block of a PIO read is announced with an interrupt (9.7).
        start_pio_in(0, m_block * SECTOR_SIZE, true);
    });
}

void AtaDisk::write_block()
{
    submit(BlockOp::Write, m_lba * SECTOR_SIZE, m_block * SECTOR_SIZE, 0,
           [this](bool ok) { finish_write(ok); });
}

void AtaDisk::finish_write(bool ok)
{
    if (!ok)
        return abort_command();
    if (m_write_cache)
        return write_done();
    // Without a write cache a write completes once it is on the medium.
    submit(BlockOp::Flush, 0, 0, 0, [this](bool flushed) {
        if (!flushed)
            return abort_command();
        write_done();
    });
}

void AtaDisk::write_done()
{
    if (m_transfer == Transfer::PioWrite) {
        m_remaining -= m_block;
        m_lba += m_block;
        if (m_remaining) {
            m_block = m_multiple_command ? std::min<u32>(m_multiple, m_remaining) : 1;
            // Each later block is asked for with an interrupt (9.8).
            return start_pio_out(0, m_block * SECTOR_SIZE, true);
        }
    }
    complete();
}

void AtaDisk::pio_block_done()
{
    switch (m_transfer) {
    case Transfer::PioRead:
        m_remaining -= m_block;
        m_lba += m_block;
        if (m_remaining)
            return read_next_block();
        // The last block read: no interrupt (9.7).
        m_transfer = Transfer::None;
        set_status_ok();
        return;
    case Transfer::PioWrite:
        return write_block();
    default:
        // IDENTIFY's block read.
        set_status_ok();
        return;
    }
}

void AtaDisk::dma_done(bool ok)
{
    if (!ok)
        return abort_command();
    if (m_transfer == Transfer::DmaWrite) {
        m_block = m_remaining;
        return submit(BlockOp::Write, m_lba * SECTOR_SIZE, m_remaining * SECTOR_SIZE, 0,
                      [this](bool written) { finish_write(written); });
    }
    complete();
}

void AtaDisk::visit_state(StateVisitor& v)
{
    v.section("ata-disk", 1);
    IdeDevice::visit_state(v);
    v.field("current_heads", m_current_heads);
    v.field("current_sectors", m_current_sectors);
    v.field("multiple", m_multiple);
    v.field("write_cache", m_write_cache);
    v.field("transfer_mode", m_transfer_mode);
    v.field("transfer", m_transfer);
    v.field("lba", m_lba);
    v.field("remaining", m_remaining);
    v.field("block", m_block);
    v.field("multiple_command", m_multiple_command);
    if (v.loading()) {
        // What a damaged snapshot could make out of range.
        if (m_current_heads == 0 || m_current_heads > 16 || m_current_sectors == 0 ||
            m_multiple > MAX_MULTIPLE || m_block > 65536 || m_lba > m_sectors ||
            m_remaining > m_sectors - m_lba)
            v.fail("ATA disk state out of range");
    }
}
