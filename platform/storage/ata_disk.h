// An ATA hard disk (ATA/ATAPI-6, T13/1410D, with the 48-bit and cache
// commands of ATA8-ACS) on a BlockDevice: IDENTIFY DEVICE, PIO reads and
// writes one DRQ block at a time (one sector, or the SET MULTIPLE MODE
// count), bus-master DMA for a whole command at once, LBA28, LBA48 and CHS
// addressing, a write cache that FLUSH CACHE empties (and that, switched off
// with SET FEATURES, makes every write durable before it completes), and the
// power-management commands as no-ops. Anything else, or a command whose
// sectors lie past the end of the disk, ends with ERR and ABRT (or IDNF).
#pragma once

#include "platform/storage/ide_channel.h"

#include <string>

class AtaDisk final : public IdeDevice {
public:
    // ATA commands (ATA/ATAPI-6 chapter 8, ATA8-ACS).
    enum Command : u8 {
        DEVICE_RESET = 0x08,
        RECALIBRATE = 0x10,
        READ_SECTORS = 0x20,
        READ_SECTORS_NORETRY = 0x21,
        READ_SECTORS_EXT = 0x24,
        READ_DMA_EXT = 0x25,
        READ_MULTIPLE_EXT = 0x29,
        WRITE_SECTORS = 0x30,
        WRITE_SECTORS_NORETRY = 0x31,
        WRITE_SECTORS_EXT = 0x34,
        WRITE_DMA_EXT = 0x35,
        WRITE_MULTIPLE_EXT = 0x39,
        READ_VERIFY = 0x40,
        READ_VERIFY_NORETRY = 0x41,
        READ_VERIFY_EXT = 0x42,
        EXECUTE_DEVICE_DIAGNOSTIC = 0x90,
        INITIALIZE_DEVICE_PARAMETERS = 0x91,
        READ_MULTIPLE = 0xC4,
        WRITE_MULTIPLE = 0xC5,
        SET_MULTIPLE_MODE = 0xC6,
        READ_DMA = 0xC8,
        READ_DMA_NORETRY = 0xC9,
        WRITE_DMA = 0xCA,
        WRITE_DMA_NORETRY = 0xCB,
        STANDBY_IMMEDIATE = 0xE0,
        IDLE_IMMEDIATE = 0xE1,
        STANDBY = 0xE2,
        IDLE = 0xE3,
        CHECK_POWER_MODE = 0xE5,
        SLEEP = 0xE6,
        FLUSH_CACHE = 0xE7,
        FLUSH_CACHE_EXT = 0xEA,
        IDENTIFY_DEVICE = 0xEC,
        SET_FEATURES = 0xEF,
    };
    // The largest DRQ block READ/WRITE MULTIPLE may use (IDENTIFY word 47).
    static constexpr u8 MAX_MULTIPLE = 16;

    // `serial` is the drive's serial number in IDENTIFY (20 characters at most).
    AtaDisk(std::unique_ptr<BlockDevice> disk, std::string serial);

    bool is_atapi() const override { return false; }
    void execute(u8 command) override;
    void visit_state(StateVisitor& v) override;

    u64 sectors() const { return m_sectors; }
    bool write_cache_enabled() const { return m_write_cache; }
    // The 256 words IDENTIFY DEVICE returns now.
    std::array<u16, 256> identify() const;

protected:
    void set_signature() override;
    void pio_block_done() override;
    void dma_done(bool ok) override;

private:
    enum class Transfer : u8 { None, PioRead, PioWrite, DmaRead, DmaWrite };

    // Where the command's sectors start and how many, from the task file;
    // false (and the command aborted) when they do not fit the disk.
    bool take_range(bool lba48);
    void read_next_block();
    void write_block();
    void finish_write(bool ok);
    void write_done();
    void set_features();
    void complete();

    std::string m_serial;
    u64 m_sectors = 0;
    // Default CHS geometry (IDENTIFY words 1, 3, 6) and the current one
    // (INITIALIZE DEVICE PARAMETERS).
    u16 m_cylinders = 0;
    u8 m_heads = 16, m_sectors_per_track = 63;
    u8 m_current_heads = 16, m_current_sectors = 63;
    u8 m_multiple = 0; // SET MULTIPLE MODE; 0 = READ/WRITE MULTIPLE refused
    bool m_write_cache = true;
    u8 m_transfer_mode = 0; // SET FEATURES 03h: 0x2n MWDMA n, 0x4n UDMA n, else PIO
    // The command in progress.
    Transfer m_transfer = Transfer::None;
    u64 m_lba = 0;
    u32 m_remaining = 0;
    u32 m_block = 0; // sectors in the current DRQ block
    bool m_multiple_command = false;
};
