// QEMU's firmware configuration device (docs/specs/fw_cfg.rst in QEMU), the
// traditional I/O interface only: a 16-bit selector at 0x510 and an 8-bit
// data port at 0x511 that reads the selected item byte by byte (past its end:
// zeros). Bare-metal test suites written for QEMU read it for the CPU count
// and RAM size. Items: signature "QEMU" (0x0000), interface ID (0x0001:
// bit 0 = traditional interface, no DMA), RAM size (0x0003), CPU count
// (0x0005, 16-bit LE) and maximum CPUs (0x000F), and the file directory
// (0x0019: big-endian count, then per file size, select key, name[56]) for
// named files added with add_file (keys from 0x0020).
//
// With enable_dma, the DMA interface too (what SeaBIOS uses when the ID
// item offers it): a guest writes the guest-physical address of an
// FWCfgDmaAccess {be32 control; be32 length; be64 address} to ports
// 0x514 (high half) and 0x518 (low half, which starts the transfer), both
// big-endian; the device selects (control bit 3, key in bits 31:16), then
// reads the item into guest memory (bit 1; past the item's end: zeros),
// skips (bit 2) or writes (bit 4: no item here is writable, so an error),
// and stores 0 into control when done or the error bit (bit 0) when a copy
// touched anything but RAM. Guest memory is reached only through the
// checked accessor (mmu/guest_memory.h). Reading the DMA ports gives the
// signature "QEMU CFG".
#pragma once

#include "mmu/bus/io_device.h"
#include "mmu/guest_memory.h"

#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

class StateVisitor;

class FwCfg final : public IoDevice {
public:
    static constexpr u16 DEFAULT_BASE = 0x510;
    static constexpr u32 PORT_COUNT = 2; // selector (0), data (1)

    // Item keys (QEMU include/standard-headers/linux/qemu_fw_cfg.h).
    static constexpr u16 KEY_SIGNATURE = 0x0000, KEY_ID = 0x0001, KEY_UUID = 0x0002,
                         KEY_RAM_SIZE = 0x0003, KEY_NOGRAPHIC = 0x0004, KEY_NB_CPUS = 0x0005,
                         KEY_MAX_CPUS = 0x000F, KEY_FILE_DIR = 0x0019, KEY_FILE_FIRST = 0x0020;

    // The DMA address registers: at DMA_BASE, DMA_PORT_COUNT ports.
    static constexpr u16 DMA_BASE = 0x514;
    static constexpr u32 DMA_PORT_COUNT = 8;
    // FWCfgDmaAccess control bits (QEMU docs/specs/fw_cfg.rst).
    static constexpr u32 DMA_CTL_ERROR = 0x01, DMA_CTL_READ = 0x02, DMA_CTL_SKIP = 0x04,
                         DMA_CTL_SELECT = 0x08, DMA_CTL_WRITE = 0x10;

    FwCfg(u16 cpu_count, u64 ram_bytes);

    // Offers the DMA interface (the ID item's bit 1) over `memory`; map
    // dma_ports() at DMA_BASE.
    void enable_dma(GuestMemory memory);
    IoDevice& dma_ports() { return m_dma_ports; }

    void add_bytes(u16 key, std::vector<u8> data);
    void add_u16(u16 key, u16 value);
    void add_u32(u16 key, u32 value);
    void add_u64(u16 key, u64 value);
    // A named blob in the file directory; returns its key.
    u16 add_file(std::string_view name, std::vector<u8> data);

    u16 selector() const { return m_selector; }

    u64 io_read(u64 offset, unsigned size) override;
    void io_write(u64 offset, unsigned size, u64 value) override;

    // The selector, read position and DMA address high half; the items are
    // configuration.
    void visit_state(StateVisitor& v);

private:
    class DmaPorts final : public IoDevice {
    public:
        explicit DmaPorts(FwCfg& fw_cfg) : m_fw_cfg(fw_cfg) {}
        u64 io_read(u64 offset, unsigned size) override;
        void io_write(u64 offset, unsigned size, u64 value) override;

    private:
        FwCfg& m_fw_cfg;
    };
    void select(u16 key);
    void dma_transfer(GuestPhys descriptor);
    // One DMA step: returns false on an error.
    bool dma_read(GuestPhys address, u32 length);

    struct File {
        std::string name;
        u16 key;
        u32 size;
    };
    void rebuild_directory();
    u8 next_byte();

    std::map<u16, std::vector<u8>> m_items;
    std::vector<File> m_files;
    u16 m_selector = 0;
    u32 m_offset = 0;
    std::optional<GuestMemory> m_dma;
    DmaPorts m_dma_ports{*this};
    u64 m_dma_address = 0; // the high half written so far
};
