// Intel 8254 programmable interval timer at 0x40-0x43, and the PC's system
// control port B at 0x61 that gates counter 2 and reads its output back.
//
// Counter 0 drives IRQ 0, counter 1 is the (unconnected) DRAM refresh timer,
// counter 2 feeds the speaker through the port 0x61 gate. The counters are
// not ticked: each one records when it started counting and computes its
// count and OUT level from the VirtualClock (1.193182 MHz), so reading a
// counter is exact at any instant and an idle PIT costs nothing. IRQ 0's
// edges are ClockTimer events at the instants OUT changes.
//
// From the 8254 datasheet: all six modes (6 and 7 alias 2 and 3), binary and
// BCD counting, LSB / MSB / LSB-then-MSB access, the counter latch command,
// the read-back command with status (OUT, null count, mode bits), the gate
// rules of each mode (counter 2 only: counters 0 and 1 have their gate tied
// high), and a new count in modes 2 and 3 taking effect at the end of the
// current period or half-period. Not modelled: the one-clock delay between
// writing a count and the counter loading it; counts of 1 in modes 2 and 3
// (illegal per the datasheet) give a steady high OUT; the speaker makes no
// sound.
#pragma once

#include "mmu/bus/io_device.h"
#include "mmu/base/state_visitor.h"
#include "platform/interrupts/irq_router.h"
#include "platform/clock/virtual_clock.h"

#include <array>

class PortBus;

class I8254Pit {
public:
    static constexpr u64 FREQUENCY_HZ = 1193182;
    static constexpr u16 BASE = 0x40;
    static constexpr u32 PORT_COUNT = 4;
    static constexpr u16 PORT_B = 0x61;
    static constexpr unsigned IRQ = 0;

    // Power-on state is what a PC BIOS leaves: counter 0 in mode 3 with count
    // 65536 (18.2 Hz) running from virtual time 0, counter 1 in mode 2 with
    // count 18 (the 15 us refresh), counter 2 in mode 3 with its gate low.
    explicit I8254Pit(VirtualClock& clock);

    // Maps the counters at 0x40 and port B at 0x61.
    void attach(PortBus& bus);
    IoDevice& counter_ports() { return m_counter_ports; }
    IoDevice& port_b() { return m_port_b; }

    // Counter 0's OUT, which the machine routes to ISA IRQ 0.
    void set_irq_line(IrqLine line) { m_irq_line = std::move(line); }

    // OUT of a counter now.
    bool output(unsigned counter);
    // The gate input; only counter 2's is wired (to port 0x61 bit 0).
    void set_gate(unsigned counter, bool level);
    bool gate(unsigned counter) const { return m_counters[counter].gate; }
    // Port 0x61 bit 1: the speaker sounds while this and OUT 2 are high.
    bool speaker_data_enabled() const { return m_port_b_value & 0x02; }

    void visit_state(StateVisitor& v);

private:
    // How a counter's counting element stands.
    enum class Run : u8 {
        Idle,        // control word written, no count yet
        WaitTrigger, // modes 1, 5 (and 2, 3 given a count while the gate is low): waiting for a
                     // gate rising edge
        Counting,
        Paused, // gate low: modes 0, 4 hold the count; modes 2, 3 stop with OUT high until a rising
                // edge reloads
    };

    struct Counter {
        u8 mode = 0;         // 0-5 (6 and 7 fold onto 2 and 3)
        u8 control_mode = 0; // the mode bits as written, for the status byte
        u8 access = 3;       // 1 LSB, 2 MSB, 3 LSB then MSB
        bool bcd = false;
        bool gate = true;
        Run run = Run::Idle;
        u32 count_register = 0x10000; // last count written, decoded (1..0x10000)
        u32 initial = 0x10000;        // count the counting element works with
        bool null_count = true;       // count register not yet moved into the counting element
        u64 start_tick = 0;           // tick at which `elapsed` was `phase`
        u64 phase = 0;                // elapsed ticks at start_tick (a mode 3 reload mid-cycle)
        u64 paused_elapsed = 0;
        // Modes 2 and 3: a count written while counting waits for the reload.
        bool reload_pending = false;
        u64 reload_tick = 0;
        u64 reload_phase = 0;
        // Write and read byte sequencing for LSB-then-MSB access.
        u8 write_lsb = 0;
        bool write_msb_next = false;
        bool read_msb_next = false;
        // Latches (datasheet: counter latch and read-back commands).
        bool count_latched = false;
        bool latch_msb_next = false;
        u16 latched_count = 0;
        bool status_latched = false;
        u8 status = 0;

        void visit_state(StateVisitor& v);
        bool valid() const;
    };

    class CounterPorts final : public IoDevice {
    public:
        explicit CounterPorts(I8254Pit& pit) : m_pit(pit) {}
        u64 io_read(u64 offset, unsigned size) override;
        void io_write(u64 offset, unsigned size, u64 value) override;

    private:
        I8254Pit& m_pit;
    };
    class PortB final : public IoDevice {
    public:
        explicit PortB(I8254Pit& pit) : m_pit(pit) {}
        u64 io_read(u64 offset, unsigned size) override;
        void io_write(u64 offset, unsigned size, u64 value) override;

    private:
        I8254Pit& m_pit;
    };

    u64 now_tick() const;
    static u64 tick_to_ns(u64 tick);

    u8 read_counter(unsigned index);
    void write_counter(unsigned index, u8 value);
    void write_control(u8 value);
    void load_count(unsigned index, u32 raw);
    void latch_count(Counter& c, u64 tick);
    void latch_status(Counter& c, u64 tick);

    // Applies a pending mode 2/3 reload that is due by `tick`.
    static void settle(Counter& c, u64 tick);
    static u64 elapsed(const Counter& c, u64 tick);
    static bool out_at(const Counter& c, u64 tick);
    static u16 count_at(const Counter& c, u64 tick);
    // The first tick after `tick` at which OUT changes, or none.
    static bool next_edge(const Counter& c, u64 tick, u64& edge);
    // Whether OUT rose at some tick in (from, to].
    static bool rose_between(const Counter& c, u64 from, u64 to);
    // Moves the count register into the counting element and starts counting.
    static void trigger(Counter& c, u64 tick);

    // Brings IRQ 0 up to date with counter 0 and arms the timer for its next edge.
    void update_irq(u64 tick);
    void drive_irq(bool level);
    void on_timer();
    void arm_timer();

    VirtualClock& m_clock;
    ClockTimer m_timer;
    std::array<Counter, 3> m_counters;
    CounterPorts m_counter_ports{*this};
    PortB m_port_b{*this};
    IrqLine m_irq_line;
    // Counter 0 starts in the high half of its square wave; the line's first
    // change is then the falling edge, so booting makes no spurious request.
    bool m_irq_level = true;
    u64 m_irq_checked_tick = 0;
    u8 m_port_b_value = 0;
};
