// The PC chipset's coprocessor error logic (PIIX3 "FERR#"/"IGNNE#" and the
// Coprocessor Error Register at port 0xF0; the IBM PC/AT routed the 287's
// ERROR# the same way): the x87 error reporting that MS-DOS compatibility
// mode (CR0.NE = 0) relies on (SDM Vol 1 8.7, Appendix D.2).
// - FERR# asserting (a vCPU signalling an unmasked x87 error) raises
//   IRQ 13, which stays up until port 0xF0 is written.
// - A write to port 0xF0 (any value) lowers IRQ 13 and, if FERR# is
//   asserted, asserts IGNNE#, so the error handler's own x87 instructions
//   run despite the pending error.
// - IGNNE# follows FERR#: it drops when FERR# is released (FNCLEX, FNINIT,
//   ...), and a write while FERR# is inactive does not assert it.
// Port 0xF0 reads as open bus (0xFF). The PIIX3's XBCS enable bit for this
// function is not modelled: the logic is always on, as on the PC/AT.
#pragma once

#include "mmu/bus/fpu_error_pins.h"
#include "mmu/bus/io_device.h"
#include "mmu/base/state_visitor.h"

#include <functional>

class PortBus;

class CoprocessorError final : public IoDevice, public FpuErrorPins {
public:
    static constexpr u16 PORT = 0xF0;
    static constexpr unsigned IRQ = 13;

    using IrqLine = std::function<void(bool level)>;

    void attach(PortBus& bus);
    void set_irq_line(IrqLine line) { m_irq_line = std::move(line); }

    // FpuErrorPins, driven by the vCPU.
    void set_ferr(bool asserted) override;
    bool ignne() const override { return m_ignne; }

    u64 io_read(u64 offset, unsigned size) override;
    void io_write(u64 offset, unsigned size, u64 value) override;

    bool irq_raised() const { return m_irq; }
    void visit_state(StateVisitor& v);

private:
    void set_irq(bool level);

    IrqLine m_irq_line;
    bool m_ferr = false;  // FERR# from the CPU
    bool m_irq = false;   // IRQ 13, latched on FERR# rising
    bool m_ignne = false; // IGNNE# to the CPU
};
