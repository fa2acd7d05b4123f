// The chipset's FERR#/IRQ 13/IGNNE# logic and port 0xF0, alone and wired
// into the PC board (IRQ 13 reaches the slave 8259).
#include "platform/chipset/coprocessor_error.h"
#include "platform/board/pc_board.h"

#include <doctest/doctest.h>

#include <vector>

TEST_CASE("FERR# raises IRQ 13 until port 0xF0 is written, which asserts IGNNE#")
{
    CoprocessorError chip;
    std::vector<bool> irq;
    chip.set_irq_line([&](bool level) { irq.push_back(level); });
    CHECK_FALSE(chip.ignne());
    chip.set_ferr(true);
    CHECK(irq == std::vector<bool>{true});
    chip.set_ferr(true); // a level, not a pulse: no second edge
    CHECK(irq == std::vector<bool>{true});
    CHECK_FALSE(chip.ignne());
    chip.io_write(0, 1, 0);
    CHECK(irq == std::vector<bool>{true, false});
    CHECK(chip.ignne());
    chip.set_ferr(false); // the handler's FNCLEX: IGNNE# follows FERR#
    CHECK_FALSE(chip.ignne());
    CHECK(irq == std::vector<bool>{true, false});

    chip.set_ferr(true); // the next error raises IRQ 13 again
    CHECK(irq == std::vector<bool>{true, false, true});
    CHECK(chip.irq_raised());
}

TEST_CASE("Port 0xF0 asserts IGNNE# only while FERR# is asserted and reads as open bus")
{
    CoprocessorError chip;
    chip.io_write(0, 1, 0xFF);
    CHECK_FALSE(chip.ignne());
    chip.set_ferr(true);
    chip.set_ferr(false); // released before the write: IRQ 13 stays latched
    CHECK(chip.irq_raised());
    chip.io_write(0, 1, 0);
    CHECK_FALSE(chip.irq_raised());
    CHECK_FALSE(chip.ignne());
    CHECK(chip.io_read(0, 1) == 0xFF);
    CHECK(chip.io_read(0, 2) == 0xFFFF);
}

TEST_CASE("The board routes FERR# to IRQ 13 of the slave 8259 and clears it at port 0xF0")
{
    PhysicalMemory memory{16ull << 20};
    PortBus ports;
    MsrBus msrs;
    VirtualClock clock(VirtualClock::Mode::Deterministic);
    PcBoard board({1, 16ull << 20, 0}, memory, ports, msrs, clock);
    // Slave 8259: ICW1-ICW4 (vectors 0x70, cascade on IRQ 2, 8086 mode),
    // then OCW3 "read IRR".
    for (u8 v : {0x11, 0x70, 0x02, 0x01})
        ports.write(v == 0x11 ? 0xA0 : 0xA1, 1, v);
    ports.write(0xA0, 1, 0x0A);
    CHECK((ports.read(0xA0, 1) & 0x20) == 0);
    board.fpu_error_pins().set_ferr(true);
    CHECK((ports.read(0xA0, 1) & 0x20) == 0x20); // IRQ 13 = slave IR5
    CHECK_FALSE(board.fpu_error_pins().ignne());
    ports.write(CoprocessorError::PORT, 1, 0);
    CHECK(board.fpu_error_pins().ignne());
    board.fpu_error_pins().set_ferr(false);
    CHECK_FALSE(board.fpu_error_pins().ignne());
}
