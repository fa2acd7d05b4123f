// One IDE channel (ATA/ATAPI-6, T13/1410D, chapters 5-9): the command block
// registers (data, error/features, sector count, LBA low/mid/high, device,
// status/command) and the control block (alternate status / device
// control), shared by a master and a slave. Writes to the task file reach
// both devices; reads come from the one the device register selects. The
// channel drives one interrupt line (IRQ 14 or 15 in compatibility mode):
// the selected device's INTRQ unless device control's nIEN masks it.
//
// IdeDevice is what an ATA disk and an ATAPI drive share: their task file,
// the PIO data buffer the host reads or writes a DRQ block at a time, the
// DMA handshake with the bus-master engine, and the asynchronous requests to
// their BlockDevice. A request in flight keeps BSY set; its result is taken
// on the machine thread, and a reset in between makes it stale.
#pragma once

#include "platform/block/block_device.h"
#include "platform/storage/bus_master_dma.h"

#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

class StateVisitor;
class IdeChannel;

namespace ata {
// Status register (ATA/ATAPI-6 7.15.6).
constexpr u8 STATUS_BSY = 0x80, STATUS_DRDY = 0x40, STATUS_DF = 0x20, STATUS_DSC = 0x10,
             STATUS_DRQ = 0x08, STATUS_ERR = 0x01;
// Error register (7.9.6).
constexpr u8 ERROR_AMNF = 0x01, ERROR_ABRT = 0x04, ERROR_IDNF = 0x10, ERROR_UNC = 0x40;
// Device control register (7.8.6).
constexpr u8 CONTROL_NIEN = 0x02, CONTROL_SRST = 0x04, CONTROL_HOB = 0x80;
// Device register (7.10.6).
constexpr u8 DEVICE_DEV = 0x10, DEVICE_LBA = 0x40;
constexpr u32 SECTOR_SIZE = 512;
} // namespace ata

// What the host wrote and reads back. The count and LBA registers are
// two-deep FIFOs for the 48-bit commands: `hob_*` holds the value written
// before the last one (ATA/ATAPI-6 6.20).
struct TaskFile {
    u8 feature = 0, count = 0, lba_low = 0, lba_mid = 0, lba_high = 0;
    u8 hob_feature = 0, hob_count = 0, hob_lba_low = 0, hob_lba_mid = 0, hob_lba_high = 0;
    u8 device = 0;
    u8 status = 0;
    u8 error = 0;

    u64 lba28() const
    {
        return u64(device & 0x0F) << 24 | u64(lba_high) << 16 | u64(lba_mid) << 8 | lba_low;
    }
    u64 lba48() const
    {
        return u64(hob_lba_high) << 40 | u64(hob_lba_mid) << 32 | u64(hob_lba_low) << 24 |
               u64(lba_high) << 16 | u64(lba_mid) << 8 | lba_low;
    }
    // A count of 0 means 256 (28-bit) or 65536 (48-bit) sectors.
    u32 count28() const { return count ? count : 256; }
    u32 count48() const
    {
        const u32 n = u32(hob_count) << 8 | count;
        return n ? n : 65536;
    }
    void set_lba(u64 lba, bool lba48);
    void visit_state(StateVisitor& v);
};

class IdeDevice {
public:
    virtual ~IdeDevice();
    IdeDevice(const IdeDevice&) = delete;
    IdeDevice& operator=(const IdeDevice&) = delete;

    virtual bool is_atapi() const = 0;
    // Power-on, SRST or DEVICE RESET: the signature in the task file
    // (ATA/ATAPI-6 9.12) and nothing in progress.
    void reset();
    // The host wrote the command register (the channel has checked BSY/DRQ).
    virtual void execute(u8 command) = 0;

    // PIO data port: 2 or 4 bytes; nothing moves unless DRQ is set in the
    // right direction.
    u32 read_data(unsigned size);
    void write_data(unsigned size, u32 value);
    // The bus-master engine was started: a DMA command waiting for it goes on.
    void dma_started();

    bool intrq() const { return m_intrq; }
    void clear_intrq() { m_intrq = false; }
    BlockDevice& disk() { return *m_disk; }
    TaskFile& regs() { return *m_regs; }

    // The device's state; a derived device calls this first, then saves its own.
    virtual void visit_state(StateVisitor& v);

protected:
    explicit IdeDevice(std::unique_ptr<BlockDevice> disk);
    // The signature and resting status after a reset.
    virtual void set_signature() = 0;
    // The host has read or written the last byte of a DRQ block.
    virtual void pio_block_done() = 0;

    // Completion rules: status with DRDY (and DSC for a disk), raise INTRQ.
    void raise_irq();
    // ABRT and the other error bits: ERR set, DRQ and BSY clear, INTRQ.
    void abort_command(u8 error = ata::ERROR_ABRT);
    // The next DRQ block: `bytes` of m_buffer from `offset` for the host.
    void start_pio_in(u32 offset, u32 bytes, bool interrupt);
    void start_pio_out(u32 offset, u32 bytes, bool interrupt);
    // Moves m_buffer[0, bytes) by bus-master DMA when the engine runs, then
    // calls dma_done(ok): ok false after a DMA error (BMIS.Error is set
    // then). A DMA waiting for the engine is plain data, saved with the
    // device.
    void start_dma(u32 bytes, bool to_memory);
    virtual void dma_done(bool ok) = 0;
    // A request on the disk; `then(ok)` on the machine thread unless a reset
    // came first. Reads land in m_buffer from `buffer_offset`, writes take
    // from there. BSY stays set until `then` decides.
    void submit(BlockOp op, u64 byte_offset, u32 bytes, u32 buffer_offset,
                std::function<void(bool ok)> then);
    bool set_status_ok(u8 extra = 0);

    // IDENTIFY (PACKET) DEVICE data, as disks and packet devices share it.
    using IdentifyWords = std::array<u16, 256>;
    // ASCII, space padded, two characters a word with the first in the high
    // byte (ATA/ATAPI-6 8.15.9 "String").
    static void put_identify_string(IdentifyWords& words, unsigned first, unsigned count,
                                    std::string_view text);
    // The DMA modes supported and the one SET FEATURES selected (words 63, 88).
    static void put_dma_modes(IdentifyWords& words, u8 transfer_mode);
    // The integrity word (8.15.60): signature A5h and a checksum that makes
    // the 512 bytes sum to zero.
    static void seal_identify(IdentifyWords& words);
    // The words as one PIO data-in block, with an interrupt.
    void send_identify(const IdentifyWords& words);
    // SET FEATURES 03h (8.37.10): false for a mode that does not exist;
    // a DMA mode is kept in `transfer_mode`, a PIO mode changes nothing.
    static bool set_transfer_mode(u8 mode, u8& transfer_mode);

    IdeChannel* m_channel = nullptr;
    TaskFile* m_regs = nullptr;
    std::unique_ptr<BlockDevice> m_disk;
    // The data of the command in progress (shared with a request in flight,
    // so a reset that drops the request never frees what the disk fills).
    std::shared_ptr<std::vector<u8>> m_buffer = std::make_shared<std::vector<u8>>();

private:
    friend class IdeChannel;
    enum class Pio : u8 { None, In, Out };
    struct PendingDma {
        u32 bytes = 0;
        bool to_memory = false;
    };
    void try_dma();

    bool m_intrq = false;
    Pio m_pio = Pio::None;
    u32 m_pio_pos = 0;
    u32 m_pio_end = 0;
    // Bumped by every reset: requests from before it are dropped.
    u64 m_generation = 0;
    std::optional<PendingDma> m_dma;
};

class IdeChannel {
public:
    static constexpr unsigned COMMAND_PORTS = 8;

    explicit IdeChannel(BusMasterDma& bus_master);
    IdeChannel(const IdeChannel&) = delete;
    IdeChannel& operator=(const IdeChannel&) = delete;

    // slot 0 = master, 1 = slave.
    void attach(unsigned slot, std::unique_ptr<IdeDevice> device);
    IdeDevice* device(unsigned slot) { return m_devices[slot].get(); }
    void set_irq_line(std::function<void(bool)> line) { m_irq_line = std::move(line); }

    // Command block (offset 0-7) and control block (alternate status /
    // device control) accesses.
    u64 read_command(u64 offset, unsigned size);
    void write_command(u64 offset, unsigned size, u64 value);
    u8 read_alt_status();
    void write_device_control(u8 value);

    BusMasterDma& bus_master() { return m_bus_master; }
    bool irq_level() const { return m_irq_level; }
    // A device's INTRQ changed.
    void update_irq();
    // Power-on (not SRST): both devices reset, nIEN clear, master selected.
    void reset();
    // Requests in flight on either device (the machine drains them).
    size_t in_flight() const;
    void drain();
    void visit_state(StateVisitor& v);

private:
    IdeDevice* selected() { return m_devices[m_selected].get(); }
    u8 status_of_selected();

    BusMasterDma& m_bus_master;
    std::array<std::unique_ptr<IdeDevice>, 2> m_devices;
    std::array<TaskFile, 2> m_regs;
    unsigned m_selected = 0;
    u8 m_control = 0;
    bool m_irq_level = false;
    std::function<void(bool)> m_irq_line;
};
