#include "platform/interrupts/i8259_pic.h"
#include "tests/state_patch.h"

#include <doctest/doctest.h>

#include <vector>

namespace {

// The pair as Linux programs it: vectors 0x20 and 0x28, cascade on IR2,
// 8086 mode, nothing masked.
struct Pair {
    I8259Pic pic;
    std::vector<bool> output_changes;

    explicit Pair(u8 master_icw4 = 0x01, u8 slave_icw4 = 0x01)
    {
        pic.set_output_line([this](bool level) { output_changes.push_back(level); });
        master(0, 0x11);
        master(1, 0x20);
        master(1, 0x04);
        master(1, master_icw4);
        slave(0, 0x11);
        slave(1, 0x28);
        slave(1, 0x02);
        slave(1, slave_icw4);
        master(1, 0x00);
        slave(1, 0x00);
    }
    void master(unsigned port, u8 value) { pic.master_ports().io_write(port, 1, value); }
    void slave(unsigned port, u8 value) { pic.slave_ports().io_write(port, 1, value); }
    u8 read_master(unsigned port) { return static_cast<u8>(pic.master_ports().io_read(port, 1)); }
    u8 read_slave(unsigned port) { return static_cast<u8>(pic.slave_ports().io_read(port, 1)); }
    void edge(unsigned irq)
    {
        pic.set_irq(irq, false);
        pic.set_irq(irq, true);
    }
    void eoi_master() { master(0, 0x20); }
    void eoi_slave() { slave(0, 0x20); }
};

} // namespace

TEST_CASE("PIC power-on state masks every input but the cascade, as a BIOS leaves it")
{
    I8259Pic pic;
    CHECK(pic.imr(0) == 0xFB);
    CHECK(pic.imr(1) == 0xFF);
    pic.set_irq(0, true);
    CHECK_FALSE(pic.interrupt_pending());
    CHECK(pic.irr(0) == 0x01);
}

TEST_CASE("PIC initialisation sets the vector base, clears the mask and delivers base plus input")
{
    Pair p;
    CHECK(p.read_master(1) == 0x00);
    p.pic.set_irq(5, true);
    REQUIRE(p.pic.interrupt_pending());
    CHECK(p.pic.acknowledge_interrupt() == 0x25);
}

TEST_CASE("PIC edge-triggered input requests once per rising edge")
{
    Pair p;
    p.pic.set_irq(1, true);
    CHECK(p.pic.acknowledge_interrupt() == 0x21);
    p.eoi_master();
    CHECK_FALSE(p.pic.interrupt_pending()); // still high, no new edge
    p.pic.set_irq(1, false);
    p.pic.set_irq(1, true);
    CHECK(p.pic.interrupt_pending());
}

TEST_CASE("PIC delivers the highest-priority request first")
{
    Pair p;
    p.pic.set_irq(3, true);
    p.pic.set_irq(1, true);
    CHECK(p.pic.acknowledge_interrupt() == 0x21);
}

TEST_CASE("PIC holds off lower-priority requests while a higher one is in service")
{
    Pair p;
    p.pic.set_irq(1, true);
    CHECK(p.pic.acknowledge_interrupt() == 0x21);
    p.pic.set_irq(3, true);
    CHECK_FALSE(p.pic.interrupt_pending());
    p.pic.set_irq(0, true);
    CHECK(p.pic.interrupt_pending());
    CHECK(p.pic.acknowledge_interrupt() == 0x20);
}

TEST_CASE("PIC non-specific EOI clears the highest-priority in-service bit")
{
    Pair p;
    p.pic.set_irq(3, true);
    CHECK(p.pic.acknowledge_interrupt() == 0x23);
    p.pic.set_irq(1, true);
    CHECK(p.pic.acknowledge_interrupt() == 0x21);
    CHECK(p.pic.isr(0) == 0x0A);
    p.eoi_master();
    CHECK(p.pic.isr(0) == 0x08);
}

TEST_CASE("PIC specific EOI clears the named in-service bit")
{
    Pair p;
    p.pic.set_irq(3, true);
    p.pic.acknowledge_interrupt();
    p.pic.set_irq(1, true);
    p.pic.acknowledge_interrupt();
    p.master(0, 0x60 | 3);
    CHECK(p.pic.isr(0) == 0x02);
}

TEST_CASE("PIC port 0 reads IRR or ISR as OCW3 selects, port 1 reads IMR")
{
    Pair p;
    p.master(1, 0xF0);
    p.pic.set_irq(2 + 1, true); // IRQ 3
    p.pic.set_irq(4, true);     // masked, still in IRR
    CHECK(p.read_master(0) == 0x18);
    p.pic.acknowledge_interrupt();
    p.master(0, 0x0B); // read ISR
    CHECK(p.read_master(0) == 0x08);
    p.master(0, 0x0A); // read IRR
    CHECK(p.read_master(0) == 0x10);
    CHECK(p.read_master(1) == 0xF0);
}

TEST_CASE("PIC mask hides a request without losing it")
{
    Pair p;
    p.master(1, 0x10);
    p.pic.set_irq(4, true);
    CHECK_FALSE(p.pic.interrupt_pending());
    p.master(1, 0x00);
    CHECK(p.pic.acknowledge_interrupt() == 0x24);
}

TEST_CASE("PIC routes slave requests through master IR2 with the slave's vector")
{
    Pair p;
    p.pic.set_irq(12, true);
    REQUIRE(p.pic.interrupt_pending());
    CHECK(p.pic.acknowledge_interrupt() == 0x2C);
    CHECK(p.pic.isr(0) == 0x04);
    CHECK(p.pic.isr(1) == 0x10);
    p.eoi_slave();
    p.eoi_master();
    CHECK(p.pic.isr(0) == 0);
    CHECK(p.pic.isr(1) == 0);
}

TEST_CASE("PIC slave requests wait behind a higher master input in service")
{
    Pair p;
    p.pic.set_irq(1, true);
    p.pic.acknowledge_interrupt();
    p.pic.set_irq(8, true); // reaches the master on IR2, below IR1
    CHECK_FALSE(p.pic.interrupt_pending());
    p.eoi_master();
    CHECK(p.pic.acknowledge_interrupt() == 0x28);
}

TEST_CASE("PIC answers spurious IRQ 7 when an edge request drops before the acknowledge")
{
    Pair p;
    p.pic.set_irq(4, true);
    CHECK(p.pic.interrupt_pending());
    p.pic.set_irq(4, false);
    CHECK(p.pic.acknowledge_interrupt() == 0x27);
    CHECK(p.pic.isr(0) == 0); // a spurious IR7 sets no ISR bit
}

TEST_CASE(
    "PIC answers spurious IRQ 7 at the master when a slave request drops before the acknowledge")
{
    Pair p;
    p.pic.set_irq(9, true);
    CHECK(p.pic.interrupt_pending());
    p.pic.set_irq(9, false);
    CHECK(p.pic.acknowledge_interrupt() == 0x27);
    CHECK(p.pic.isr(0) == 0);
    CHECK(p.pic.isr(1) == 0);
}

TEST_CASE("PIC level-triggered input keeps requesting until its line drops")
{
    Pair p;
    p.pic.elcr_ports().io_write(1, 1, 0x04); // IRQ 10 level-triggered
    p.pic.set_irq(10, true);
    CHECK(p.pic.acknowledge_interrupt() == 0x2A);
    p.eoi_slave();
    p.eoi_master();
    CHECK(p.pic.interrupt_pending());
    CHECK(p.pic.acknowledge_interrupt() == 0x2A);
    p.eoi_slave();
    p.eoi_master();
    p.pic.set_irq(10, false);
    CHECK_FALSE(p.pic.interrupt_pending());
}

TEST_CASE("PIC ELCR keeps IRQ 0, 1, 2, 8 and 13 edge-triggered")
{
    I8259Pic pic;
    pic.elcr_ports().io_write(0, 1, 0xFF);
    pic.elcr_ports().io_write(1, 1, 0xFF);
    CHECK(pic.elcr_ports().io_read(0, 1) == 0xF8);
    CHECK(pic.elcr_ports().io_read(1, 1) == 0xDE);
    CHECK(pic.elcr_ports().io_read(0, 2) == 0xDEF8);
}

TEST_CASE("PIC ICW1 level-triggered mode makes every input level-sensitive")
{
    I8259Pic pic;
    auto w = [&](unsigned port, u8 v) { pic.master_ports().io_write(port, 1, v); };
    w(0, 0x19); // LTIM
    w(1, 0x20);
    w(1, 0x04);
    w(1, 0x01);
    w(1, 0x00);
    pic.set_irq(3, true);
    CHECK(pic.acknowledge_interrupt() == 0x23);
    w(0, 0x20);
    CHECK(pic.interrupt_pending());
}

TEST_CASE("PIC automatic EOI leaves no in-service bit")
{
    Pair p(0x03);
    p.pic.set_irq(1, true);
    CHECK(p.pic.acknowledge_interrupt() == 0x21);
    CHECK(p.pic.isr(0) == 0);
    p.pic.set_irq(3, true);
    CHECK(p.pic.interrupt_pending());
}

TEST_CASE("PIC rotate on automatic EOI makes the serviced input the lowest priority")
{
    Pair p(0x03);
    p.master(0, 0x80); // set rotate in automatic EOI mode
    p.pic.set_irq(0, true);
    CHECK(p.pic.acknowledge_interrupt() == 0x20);
    p.pic.set_irq(1, true);
    p.edge(0);
    CHECK(p.pic.acknowledge_interrupt() == 0x21);
}

TEST_CASE("PIC rotate on non-specific EOI makes the serviced input the lowest priority")
{
    Pair p;
    p.pic.set_irq(0, true);
    CHECK(p.pic.acknowledge_interrupt() == 0x20);
    p.master(0, 0xA0);
    p.pic.set_irq(1, true);
    p.edge(0);
    CHECK(p.pic.acknowledge_interrupt() == 0x21);
}

TEST_CASE("PIC rotate on specific EOI clears the bit and rotates around it")
{
    Pair p;
    p.pic.set_irq(2 + 2, true); // IRQ 4
    CHECK(p.pic.acknowledge_interrupt() == 0x24);
    p.master(0, 0xE0 | 4);
    CHECK(p.pic.isr(0) == 0);
    p.pic.set_irq(3, true);
    p.pic.set_irq(5, true);
    CHECK(p.pic.acknowledge_interrupt() == 0x25); // 5 now ranks highest
}

TEST_CASE("PIC set-priority command changes which input ranks highest")
{
    Pair p;
    p.master(0, 0xC0 | 3); // IR3 lowest, IR4 highest
    p.pic.set_irq(1, true);
    p.pic.set_irq(5, true);
    CHECK(p.pic.acknowledge_interrupt() == 0x25);
}

TEST_CASE("PIC special mask mode lets lower inputs interrupt a masked level in service")
{
    Pair p;
    p.pic.set_irq(1, true);
    CHECK(p.pic.acknowledge_interrupt() == 0x21);
    p.master(1, 0x02);
    p.pic.set_irq(3, true);
    CHECK_FALSE(p.pic.interrupt_pending());
    p.master(0, 0x68); // enter special mask mode
    CHECK(p.pic.interrupt_pending());
    CHECK(p.pic.acknowledge_interrupt() == 0x23);
    p.master(0, 0x48); // leave it
    p.master(0, 0x60 | 3);
    p.pic.set_irq(4, true);
    CHECK_FALSE(p.pic.interrupt_pending()); // IR1 in service holds IR4 off again
}

TEST_CASE("PIC special fully nested mode lets a higher slave request interrupt a slave in service")
{
    Pair p(0x11);
    p.pic.set_irq(12, true);
    CHECK(p.pic.acknowledge_interrupt() == 0x2C);
    p.pic.set_irq(9, true);
    CHECK(p.pic.interrupt_pending());
    CHECK(p.pic.acknowledge_interrupt() == 0x29);
}

TEST_CASE(
    "PIC without special fully nested mode holds a second slave request behind IR2 in service")
{
    Pair p;
    p.pic.set_irq(12, true);
    CHECK(p.pic.acknowledge_interrupt() == 0x2C);
    p.pic.set_irq(9, true);
    CHECK_FALSE(p.pic.interrupt_pending());
    p.eoi_master();
    CHECK(p.pic.acknowledge_interrupt() == 0x29);
}

TEST_CASE("PIC poll command returns the pending input and acknowledges it")
{
    Pair p;
    p.pic.set_irq(6, true);
    p.master(0, 0x0C);
    CHECK(p.read_master(0) == 0x86);
    CHECK(p.pic.isr(0) == 0x40);
    CHECK(p.read_master(1) == 0x00); // poll mode ended: IMR again
}

TEST_CASE("PIC poll with no request pending reads zero")
{
    Pair p;
    p.master(0, 0x0C);
    CHECK(p.read_master(1) == 0x00);
    CHECK(p.pic.isr(0) == 0);
}

TEST_CASE("PIC re-initialisation needs a fresh rising edge on an input that stayed high")
{
    Pair p;
    p.pic.set_irq(1, true);
    Pair& q = p;
    q.master(0, 0x11);
    q.master(1, 0x20);
    q.master(1, 0x04);
    q.master(1, 0x01);
    CHECK(q.pic.irr(0) == 0);
    CHECK_FALSE(q.pic.interrupt_pending());
    q.edge(1);
    CHECK(q.pic.interrupt_pending());
}

TEST_CASE("PIC single mode skips ICW3")
{
    I8259Pic pic;
    auto w = [&](unsigned port, u8 v) { pic.master_ports().io_write(port, 1, v); };
    w(0, 0x13); // SNGL, IC4
    w(1, 0x40);
    w(1, 0x01); // ICW4
    w(1, 0x7F); // OCW1
    CHECK(pic.imr(0) == 0x7F);
    pic.set_irq(7, true);
    CHECK(pic.acknowledge_interrupt() == 0x47);
}

TEST_CASE("PIC output line follows the master's INT pin")
{
    Pair p;
    p.output_changes.clear();
    p.pic.set_irq(3, true);
    p.pic.acknowledge_interrupt();
    p.eoi_master();
    CHECK(p.output_changes == std::vector<bool>{true, false});
}

TEST_CASE("PIC state saves, loads and saves again to the same bytes")
{
    Pair p(0x11);
    p.pic.elcr_ports().io_write(1, 1, 0x0C);
    p.pic.set_irq(12, true);
    p.pic.acknowledge_interrupt();
    p.pic.set_irq(3, true);
    p.pic.set_irq(11, true);
    p.master(1, 0x20);
    p.master(0, 0x0B);

    StateVisitor save = StateVisitor::saver();
    p.pic.visit_state(save);
    I8259Pic fresh;
    StateVisitor load = StateVisitor::loader(save.bytes());
    fresh.visit_state(load);
    REQUIRE(load.ok());
    StateVisitor again = StateVisitor::saver();
    fresh.visit_state(again);
    CHECK(again.bytes() == save.bytes());
    CHECK(fresh.interrupt_pending() == p.pic.interrupt_pending());
    CHECK(fresh.acknowledge_interrupt() == p.pic.acknowledge_interrupt());
}

TEST_CASE("PIC state with an initialization step, vector base or rotation out of range is refused")
{
    Pair p;
    StateVisitor save = StateVisitor::saver();
    p.pic.visit_state(save);
    // The master: irr, isr, imr, lines, elcr, vector_base, icw3, lowest_priority, init_step.
    const size_t master = section_bytes("i8259-pic-pair");
    Pair fresh;
    CHECK(loads(fresh.pic, save.bytes()));
    Pair step, base, rotation;
    CHECK_FALSE(loads(step.pic, patched<u8>(save.bytes(), master + 8, 1)));
    CHECK_FALSE(loads(base.pic, patched<u8>(save.bytes(), master + 5, 0x21)));
    CHECK_FALSE(loads(rotation.pic, patched<u8>(save.bytes(), master + 7, 8)));
}
