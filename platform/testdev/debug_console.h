// QEMU's ISA debug console (hw/char/debugcon.c, `-debugcon`): bytes written
// to port 0x402 go to the host; reads return 0xE9, the value Bochs and
// SeaBIOS (src/hw/serialio.c qemu_debug_preinit) check before they use it.
// SeaBIOS writes its debug log there.
#pragma once

#include "mmu/bus/io_device.h"

#include <functional>

class DebugConsole final : public IoDevice {
public:
    static constexpr u16 DEFAULT_BASE = 0x402;
    static constexpr u32 PORT_COUNT = 1;
    static constexpr u8 READBACK = 0xE9;

    explicit DebugConsole(std::function<void(u8)> sink) : m_sink(std::move(sink)) {}

    u64 io_read(u64 offset, unsigned size) override;
    // The low byte of each write.
    void io_write(u64 offset, unsigned size, u64 value) override;

private:
    std::function<void(u8)> m_sink;
};
