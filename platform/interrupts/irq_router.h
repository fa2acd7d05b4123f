// Interrupt request lines between the PC's devices and its interrupt
// controllers. A device drives a line with an IrqLine; the IsaIrqRouter
// forms the wired OR of every input on one of the 16 ISA lines and tells the
// controllers (the 8259A pair now, the IOAPIC later) when a line's level
// changes, so a device never needs to know who listens.
#pragma once

#include "mmu/base/state_visitor.h"
#include "mmu/base/types.h"

#include <array>
#include <functional>
#include <vector>

// The output a device drives: true asserts the request. Devices call it only
// when the level changes, except that an edge-triggered sender may lower and
// raise it again to make a fresh edge.
using IrqLine = std::function<void(bool level)>;

class IsaIrqRouter {
public:
    static constexpr unsigned LINE_COUNT = 16;
    // Inputs per line; more than enough for the PCI INTx pins a PIIX routes.
    static constexpr unsigned MAX_INPUTS = 32;

    using Sink = std::function<void(unsigned irq, bool level)>;

    // Every sink hears every change of every line, in the order added.
    void add_sink(Sink sink) { m_sinks.push_back(std::move(sink)); }

    // A fresh input of line `irq`: the line is asserted while any of its
    // inputs is. Inputs are numbered in the order they are made, so a
    // machine built the same way saves and loads the same state. The router
    // must outlive the returned line.
    IrqLine input(unsigned irq);

    bool level(unsigned irq) const { return m_asserted[irq] != 0; }

    // Saves which inputs are asserted; loading does not call the sinks (the
    // controllers load their own view of the lines).
    void visit_state(StateVisitor& v);

private:
    void set(unsigned irq, unsigned input, bool level);

    std::array<u32, LINE_COUNT> m_asserted{};
    std::array<u8, LINE_COUNT> m_input_count{};
    std::vector<Sink> m_sinks;
};
