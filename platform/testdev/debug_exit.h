// QEMU's isa-debug-exit device (hw/misc/debugexit.c): a guest write of value
// v ends the run with process exit status (v << 1) | 1, so a test program can
// report success or failure without a real power-off path. Mapped at 0xF4
// with 4 ports, as in `-device isa-debug-exit,iobase=0xf4,iosize=4`.
#pragma once

#include "mmu/bus/io_device.h"

#include <functional>

class DebugExit final : public IoDevice {
public:
    static constexpr u16 DEFAULT_BASE = 0xF4;
    static constexpr u32 DEFAULT_SIZE = 4;

    // Receives the exit status the guest asked for.
    using ExitHandler = std::function<void(u64 status)>;

    explicit DebugExit(ExitHandler handler) : m_handler(std::move(handler)) {}

    // QEMU answers reads with 0: a guest can tell the device is there.
    u64 io_read(u64 offset, unsigned size) override;
    // Any offset and width (1, 2 or 4 bytes) exits; the value is taken as
    // written, zero-extended, like QEMU.
    void io_write(u64 offset, unsigned size, u64 value) override;

    static u64 exit_status(u64 value) { return (value << 1) | 1; }

private:
    ExitHandler m_handler;
};
