// Intel 82371SB (PIIX3) PCI-to-ISA bridge, function 0 of slot 1, as far as
// an operating system sees it: its identity, the chipset registers with
// their reset values, the PIRQ route control registers PIRQRC[A:D]
// (config 0x60-0x63: bit 7 = routing disabled, bits 3:0 = ISA IRQ), and the
// reset control register at I/O port 0xCF9.
//
// PCI interrupts: the host bridge reports PIRQ levels to set_pirq(). In APIC
// mode the machine also wires PIRQA-D straight to I/O APIC inputs 16-19 (the
// DSDT's _PRT says so); the routing here serves PIC mode, where a routed
// PIRQ drives 8259 input IRQn through the isa_irq line. PCI interrupts are
// level-triggered and shared, so the ISA IRQs they use must be level in the
// 8259's ELCR (ports 0x4D0/0x4D1): firmware_routing() programs the routes a
// BIOS would (PIRQA/B -> IRQ10, PIRQC/D -> IRQ11, as SeaBIOS does) and
// returns the ELCR bits the machine sets to match.
//
// Reset control (0xCF9, PIIX3 datasheet 2.2.x "RC"): bit 1 SRST selects a
// hard (1) or soft (0) reset, bit 2 RCPU starts it. 0x06 (the FADT reset
// value) asks for a hard reset.
#pragma once

#include "mmu/bus/io_device.h"
#include "platform/chipset/pci_device.h"

#include <array>
#include <functional>
#include <optional>

class StateVisitor;

class PiixIsaBridge final : public PciDevice {
public:
    static constexpr u16 VENDOR = 0x8086, DEVICE = 0x7000;
    static constexpr u16 PIRQRC = 0x60; // PIRQRC[A] .. PIRQRC[D] at 0x60-0x63
    static constexpr u16 RESET_CONTROL_PORT = 0xCF9;
    static constexpr std::array<u8, 4> BIOS_PIRQ_IRQS = {10, 10, 11, 11};

    // An ISA IRQ input of the 8259 (0-15) driven by routed PIRQs.
    using IsaIrqLine = std::function<void(unsigned irq, bool level)>;
    // Reset requested through 0xCF9: hard = full system reset.
    using ResetHandler = std::function<void(bool hard)>;

    PiixIsaBridge();

    void reset();
    void set_isa_irq_line(IsaIrqLine line) { m_isa_irq = std::move(line); }
    void set_reset_handler(ResetHandler handler) { m_on_reset = std::move(handler); }

    // PIRQ inputs from the host bridge.
    void set_pirq(unsigned pirq, bool level);
    // ISA IRQ that PIRQ `pirq` is routed to now, if any.
    std::optional<u8> pirq_route(unsigned pirq) const;

    // Programs PIRQRC[A:D] as firmware would; returns the ELCR bit mask
    // (bit n = IRQ n level-triggered) those routes need.
    u16 firmware_routing(const std::array<u8, 4>& irqs = BIOS_PIRQ_IRQS);

    // The byte register at 0xCF9; PciHost::set_reset_control forwards to it.
    IoDevice& reset_control() { return m_reset_control; }

    void visit_state(StateVisitor& v) override;

protected:
    void config_written(u16 offset, unsigned size) override;

private:
    class ResetControl final : public IoDevice {
    public:
        explicit ResetControl(PiixIsaBridge& bridge) : m_bridge(bridge) {}
        u64 io_read(u64 offset, unsigned size) override;
        void io_write(u64 offset, unsigned size, u64 value) override;

    private:
        PiixIsaBridge& m_bridge;
    };

    void update_isa_irqs();

    ResetControl m_reset_control{*this};
    IsaIrqLine m_isa_irq;
    ResetHandler m_on_reset;
    std::array<bool, 4> m_pirq_levels{};
    u16 m_isa_levels = 0; // IRQ lines we drive high
    u8 m_rc = 0;          // reset control register
};
