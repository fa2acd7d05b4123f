// The PC's pair of Intel 8259A programmable interrupt controllers: the master
// at 0x20 takes IRQ 0-7 and the slave at 0xA0 takes IRQ 8-15 through the
// master's IR2, with the PIIX edge/level control registers (ELCR) at
// 0x4D0/0x4D1. The pair is the CPU's InterruptSource until an APIC takes
// over (then its INT output goes to LINT0 as ExtINT).
//
// Modelled from the 8259A datasheet: ICW1-ICW4, OCW1-OCW3, IRR/ISR/IMR
// read-back, fully nested priority with rotation (automatic and specific),
// specific and non-specific EOI, automatic EOI (with rotate), special mask
// mode, special fully nested mode, poll mode, and the spurious IR7 answer
// when a request goes away before the CPU acknowledges it.
//
// Edge-triggered inputs follow the datasheet's priority cell: a rising edge
// latches the request, and the input must stay high until the acknowledge;
// if it drops first the request is gone (and an acknowledge then gets the
// spurious IR7 vector). A sender that only pulses its line loses the request.
// Level-triggered inputs (ELCR bit set, or ICW1.LTIM) request for as long as
// they are high. The cascade is wired as on every PC: the slave's INT output
// drives master IR2, and ICW3's values are kept but do not rewire it.
//
// Spurious interrupts: the acknowledge is one call here, so a request that
// vanishes before it (between interrupt_pending() and acknowledge_interrupt(),
// or while a LAPIC or KVM holds an ExtINT) gives the master's IR7 vector, a
// slave request included, as on hardware when the line drops before INTA.
// Hardware's spurious IRQ 15 needs the slave request to vanish inside the
// INTA cycle, between the master's and the slave's resolution; the path is
// kept (slave vector base + 7, master IR2 left in service) but a single-step
// acknowledge cannot produce it.
#pragma once

#include "mmu/bus/interrupt_source.h"
#include "mmu/bus/io_device.h"
#include "mmu/base/state_visitor.h"
#include "platform/interrupts/irq_router.h"

class PortBus;

class I8259Pic final : public InterruptSource {
public:
    static constexpr u16 MASTER_BASE = 0x20;
    static constexpr u16 SLAVE_BASE = 0xA0;
    static constexpr u16 ELCR_BASE = 0x4D0; // PIIX ELCR1 (IRQ 0-7), ELCR2 (IRQ 8-15)
    static constexpr u32 PORT_COUNT = 2;
    static constexpr unsigned CASCADE_IRQ = 2;

    // Power-on state is the one a PC BIOS hands over: both chips initialised
    // (8086 mode, vectors 0x08 and 0x70, cascade on IR2), every input masked
    // except the cascade, since no BIOS interrupt handlers exist here.
    I8259Pic();

    // Maps the master, the slave and the ELCR at their PC ports.
    void attach(PortBus& bus);
    IoDevice& master_ports() { return m_master_ports; }
    IoDevice& slave_ports() { return m_slave_ports; }
    IoDevice& elcr_ports() { return m_elcr_ports; }

    // Drives ISA line `irq` (0-15); IRQ 2 is the cascade and is ignored.
    void set_irq(unsigned irq, bool level);

    // The master's INT pin, for an interrupt controller upstream (the LAPIC's
    // LINT0) or a backend that must open an interrupt window. Called on every
    // change.
    void set_output_line(IrqLine line) { m_output_line = std::move(line); }
    bool output() const { return m_output; }

    // InterruptSource: the master's INT pin, and the INTA cycle.
    bool interrupt_pending() override { return m_output; }
    u8 acknowledge_interrupt() override;

    // Registers as a guest would read them; chip 0 is the master.
    u8 irr(unsigned chip) const { return m_chips[chip].irr; }
    u8 isr(unsigned chip) const { return m_chips[chip].isr; }
    u8 imr(unsigned chip) const { return m_chips[chip].imr; }
    u8 elcr(unsigned chip) const { return m_chips[chip].elcr; }

    void visit_state(StateVisitor& v);

private:
    struct Chip {
        u8 irr = 0;   // interrupt request register
        u8 isr = 0;   // in-service register
        u8 imr = 0;   // interrupt mask register (OCW1)
        u8 lines = 0; // input levels as last driven
        u8 elcr = 0;  // per-input level triggering (PIIX ELCR)
        u8 elcr_mask = 0;
        u8 vector_base = 0; // ICW2 bits 7-3
        u8 icw3 = 0;
        u8 lowest_priority = 7; // rotation: the input with the lowest priority
        u8 init_step = 0;       // 0 = operating; 2, 3, 4 = next ICW expected
        bool ltim = false;      // ICW1: every input level-triggered
        bool single = false;    // ICW1.SNGL: no ICW3
        bool needs_icw4 = false;
        bool auto_eoi = false;
        bool rotate_on_auto_eoi = false;
        bool special_fully_nested = false;
        bool special_mask = false;
        bool read_isr = false; // OCW3: port 0 reads ISR instead of IRR
        bool poll = false;     // OCW3: next read is a poll word
        bool is_master = false;

        u8 level_mask() const { return ltim ? 0xFF : elcr; }
        // The input the chip would present to the CPU now, or -1.
        int pending_input() const;
        // The highest-priority set bit of `bits` in the current rotation, or -1.
        int highest(u8 bits) const;
        void set_input(unsigned input, bool level);
        // INTA (or a poll read) of `input`: ISR set, edge request consumed.
        void acknowledge(unsigned input);
        void write(unsigned port, u8 value);
        u8 read(unsigned port);
        void write_icw1(u8 value);
        void write_ocw2(u8 value);
        void visit_state(StateVisitor& v);
    };

    class ChipPorts final : public IoDevice {
    public:
        ChipPorts(I8259Pic& pic, unsigned chip) : m_pic(pic), m_chip(chip) {}
        u64 io_read(u64 offset, unsigned size) override;
        void io_write(u64 offset, unsigned size, u64 value) override;

    private:
        I8259Pic& m_pic;
        unsigned m_chip;
    };
    class ElcrPorts final : public IoDevice {
    public:
        explicit ElcrPorts(I8259Pic& pic) : m_pic(pic) {}
        u64 io_read(u64 offset, unsigned size) override;
        void io_write(u64 offset, unsigned size, u64 value) override;

    private:
        I8259Pic& m_pic;
    };

    u8 read_port(unsigned chip, unsigned port);
    void write_port(unsigned chip, unsigned port, u8 value);
    // Recomputes the slave's output into master IR2 and the master's INT pin.
    void update();

    Chip m_chips[2];
    ChipPorts m_master_ports{*this, 0};
    ChipPorts m_slave_ports{*this, 1};
    ElcrPorts m_elcr_ports{*this};
    IrqLine m_output_line;
    bool m_output = false;
};
