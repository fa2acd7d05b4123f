// A function on the PCI bus as its configuration space shows it (PCI Local
// Bus Spec 3.0 chapter 6; PCIe extends the space to 4 KiB for ECAM). The
// base class keeps the bytes with a write mask and a write-1-to-clear mask per
// byte, sizes BARs the standard way (software writes all ones and reads back
// the size mask), reports where each BAR decodes, and raises INTx through the
// host bridge. A device (IDE, NIC, VMBus...) derives from it, declares its
// registers and BARs in the constructor, and overrides config_written()
// when a write must have an effect.
#pragma once

#include "mmu/bus/io_device.h"

#include <array>
#include <functional>
#include <optional>
#include <span>

class StateVisitor;

enum class PciBarKind : u8 { None, Io, Memory32, Memory64 };

struct PciBar {
    PciBarKind kind = PciBarKind::None;
    u64 size = 0; // a power of two
    bool prefetchable = false;
    // What answers accesses inside the BAR (offsets relative to its base);
    // the machine maps it when the BAR moves.
    IoDevice* handler = nullptr;
};

class PciDevice {
public:
    static constexpr unsigned CONFIG_SIZE = 4096; // ECAM; mechanism #1 sees 256
    static constexpr unsigned BAR_COUNT = 6;

    // Standard header offsets (type 0 header).
    static constexpr u16 VENDOR_ID = 0x00, DEVICE_ID = 0x02, COMMAND = 0x04, STATUS = 0x06,
                         REVISION = 0x08, CLASS_CODE = 0x09, CACHE_LINE = 0x0C,
                         LATENCY_TIMER = 0x0D, HEADER_TYPE = 0x0E, BAR0 = 0x10,
                         SUBSYSTEM_VENDOR = 0x2C, SUBSYSTEM_ID = 0x2E, CAPABILITIES = 0x34,
                         INTERRUPT_LINE = 0x3C, INTERRUPT_PIN = 0x3D;
    static constexpr u16 COMMAND_IO = 1u << 0, COMMAND_MEMORY = 1u << 1, COMMAND_MASTER = 1u << 2,
                         COMMAND_INTX_DISABLE = 1u << 10;
    static constexpr u16 STATUS_INTERRUPT = 1u << 3, STATUS_CAPABILITIES = 1u << 4;

    // class_code is the 24-bit base class / subclass / programming interface.
    PciDevice(u16 vendor, u16 device, u32 class_code, u8 revision, bool multifunction = false);
    virtual ~PciDevice() = default;
    PciDevice(const PciDevice&) = delete;
    PciDevice& operator=(const PciDevice&) = delete;

    // Guest accesses (1, 2 or 4 bytes, not crossing a dword), dispatched by
    // the host bridge. Reads past CONFIG_SIZE return all ones.
    virtual u32 config_read(u16 offset, unsigned size);
    virtual void config_write(u16 offset, unsigned size, u32 value);

    // Declares BAR `index` (a 64-bit BAR also takes index + 1). I/O BARs are
    // at least 4 bytes, memory BARs at least 16.
    void define_bar(unsigned index, PciBarKind kind, u64 size, IoDevice* handler,
                    bool prefetchable = false);
    const PciBar& bar(unsigned index) const { return m_bars[index]; }
    // The base the BAR decodes at, or nullopt while it is unassigned (zero or
    // out of range) or its decoder is off in COMMAND.
    std::optional<u64> bar_address(unsigned index) const;

    // INTx: pin 1 = INTA# ... 4 = INTD#, 0 = none. set_irq drives the pin
    // (level-triggered, shared); COMMAND.INTx-disable gates it.
    void set_interrupt_pin(u8 pin);
    u8 interrupt_pin() const { return m_config[INTERRUPT_PIN]; }
    void set_irq(bool level);
    bool irq_level() const { return m_irq_level; }
    bool intx_asserted() const { return m_irq_level && !(command() & COMMAND_INTX_DISABLE); }

    // Appends a capability (id, next pointer, then body) to the list in the
    // header; returns its offset. Bytes of it the guest may write are marked
    // with set_writable afterwards.
    u8 add_capability(u8 id, std::span<const u8> body);

    u16 command() const { return read_le(COMMAND, 2); }

    // Config space as saved: the bytes and the INTx level. A derived device
    // overrides, calls this first and then visits its own state.
    virtual void visit_state(StateVisitor& v);

    // Installed by the host bridge.
    using BarListener = std::function<void(PciDevice&, unsigned bar, std::optional<u64> old_base,
                                           std::optional<u64> new_base)>;
    void set_bar_listener(BarListener listener) { m_bar_listener = std::move(listener); }
    void set_intx_listener(std::function<void()> listener)
    {
        m_intx_listener = std::move(listener);
    }
    // Reports every BAR whose decoding changed since `before` (as returned by
    // bar_addresses()).
    std::array<std::optional<u64>, BAR_COUNT> bar_addresses() const;
    void notify_bar_changes(const std::array<std::optional<u64>, BAR_COUNT>& before);

protected:
    u32 read_le(u16 offset, unsigned size) const;
    void write_le(u16 offset, unsigned size, u32 value);
    // Marks bits guest writes may change (default: none), or clear by
    // writing 1.
    void set_writable(u16 offset, unsigned size, u32 mask);
    void set_write_one_to_clear(u16 offset, unsigned size, u32 mask);
    // Called after a guest write changed config bytes [offset, offset + size).
    virtual void config_written(u16 offset, unsigned size)
    {
        (void)offset;
        (void)size;
    }

private:
    std::array<u8, CONFIG_SIZE> m_config{};
    std::array<u8, CONFIG_SIZE> m_writable{};
    std::array<u8, CONFIG_SIZE> m_w1c{};
    std::array<PciBar, BAR_COUNT> m_bars{};
    bool m_irq_level = false;
    u8 m_next_capability = 0x40;
    BarListener m_bar_listener;
    std::function<void()> m_intx_listener;
};
