// The x87's external error pins, used in MS-DOS compatibility mode (CR0.NE
// = 0; SDM Vol 1 8.7 and Appendix D): the vCPU drives FERR# and samples
// IGNNE#. The platform implements them (on a PC the chipset turns FERR#
// into IRQ 13 and asserts IGNNE# after a write to port 0xF0); the CPU only
// calls in, as with InterruptSource.
#pragma once

class FpuErrorPins {
public:
    virtual ~FpuErrorPins() = default;
    // FERR#: asserted while an unmasked x87 exception the CPU has signalled
    // is pending, released when software clears it (FSW.ES goes to 0).
    virtual void set_ferr(bool asserted) = 0;
    // IGNNE#: while asserted, the CPU ignores pending x87 errors.
    virtual bool ignne() const = 0;
};
