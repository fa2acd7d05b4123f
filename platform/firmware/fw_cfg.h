// QEMU's firmware configuration device (docs/specs/fw_cfg.rst in QEMU), the
// traditional I/O interface only: a 16-bit selector at 0x510 and an 8-bit
// data port at 0x511 that reads the selected item byte by byte (past its end:
// zeros). Bare-metal test suites written for QEMU read it for the CPU count
// and RAM size. Items: signature "QEMU" (0x0000), interface ID (0x0001:
// bit 0 = traditional interface, no DMA), RAM size (0x0003), CPU count
// (0x0005, 16-bit LE) and maximum CPUs (0x000F), and the file directory
// (0x0019: big-endian count, then per file size, select key, name[56]) for
// named files added with add_file (keys from 0x0020).
#pragma once

#include "mmu/bus/io_device.h"

#include <map>
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

    FwCfg(u16 cpu_count, u64 ram_bytes);

    void add_bytes(u16 key, std::vector<u8> data);
    void add_u16(u16 key, u16 value);
    void add_u32(u16 key, u32 value);
    void add_u64(u16 key, u64 value);
    // A named blob in the file directory; returns its key.
    u16 add_file(std::string_view name, std::vector<u8> data);

    u16 selector() const { return m_selector; }

    u64 io_read(u64 offset, unsigned size) override;
    void io_write(u64 offset, unsigned size, u64 value) override;

    // The selector and read position; the items are configuration.
    void visit_state(StateVisitor& v);

private:
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
};
