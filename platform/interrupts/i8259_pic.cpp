#include "platform/interrupts/i8259_pic.h"

#include "mmu/bus/port_bus.h"

namespace {

// Command words (8259A datasheet, "Programming the 8259A").
constexpr u8 ICW1_IC4 = 1 << 0;  // ICW4 follows
constexpr u8 ICW1_SNGL = 1 << 1; // single chip: no ICW3
constexpr u8 ICW1_LTIM = 1 << 3; // level-triggered inputs
constexpr u8 ICW1_INIT = 1 << 4; // port 0 with this bit set starts initialisation
constexpr u8 ICW4_AEOI = 1 << 1;
constexpr u8 ICW4_SFNM = 1 << 4;
constexpr u8 OCW3_SELECT = 1 << 3; // port 0, bit 4 clear: OCW3 if set, else OCW2
constexpr u8 OCW3_RIS = 1 << 0;
constexpr u8 OCW3_RR = 1 << 1;
constexpr u8 OCW3_POLL = 1 << 2;
constexpr u8 OCW3_SMM = 1 << 5;
constexpr u8 OCW3_ESMM = 1 << 6;
constexpr u8 POLL_INTERRUPT = 1 << 7;

// OCW2 bits 7-5: R, SL, EOI.
enum class Ocw2 : u8 {
    ClearRotateInAutoEoi = 0,
    NonSpecificEoi = 1,
    NoOperation = 2,
    SpecificEoi = 3,
    SetRotateInAutoEoi = 4,
    RotateOnNonSpecificEoi = 5,
    SetPriority = 6,
    RotateOnSpecificEoi = 7,
};

// Inputs that cannot be level-triggered (PIIX ELCR1 bits 0-2 and ELCR2 bits
// 0 and 5 are reserved: the timer, keyboard, cascade, RTC and FPU error).
constexpr u8 MASTER_ELCR_MASK = 0xF8;
constexpr u8 SLAVE_ELCR_MASK = 0xDE;

} // namespace

I8259Pic::I8259Pic()
{
    Chip& master = m_chips[0];
    master.is_master = true;
    master.elcr_mask = MASTER_ELCR_MASK;
    master.vector_base = 0x08;
    master.icw3 = 1 << CASCADE_IRQ;
    master.needs_icw4 = true;
    master.imr = static_cast<u8>(~(1 << CASCADE_IRQ));

    Chip& slave = m_chips[1];
    slave.elcr_mask = SLAVE_ELCR_MASK;
    slave.vector_base = 0x70;
    slave.icw3 = CASCADE_IRQ;
    slave.needs_icw4 = true;
    slave.imr = 0xFF;
}

void I8259Pic::attach(PortBus& bus)
{
    bus.map(MASTER_BASE, PORT_COUNT, &m_master_ports);
    bus.map(SLAVE_BASE, PORT_COUNT, &m_slave_ports);
    bus.map(ELCR_BASE, PORT_COUNT, &m_elcr_ports);
}

void I8259Pic::set_irq(unsigned irq, bool level)
{
    if (irq >= 16 || irq == CASCADE_IRQ)
        return;
    m_chips[irq / 8].set_input(irq % 8, level);
    update();
}

u8 I8259Pic::acknowledge_interrupt()
{
    Chip& master = m_chips[0];
    Chip& slave = m_chips[1];
    u8 vector;
    int input = master.pending_input();
    if (input < 0) {
        // The request went away between INT and INTA: the 8259A answers
        // with IR7's vector and sets no ISR bit.
        vector = master.vector_base | 7;
    } else if (input == static_cast<int>(CASCADE_IRQ) && !master.single) {
        master.acknowledge(CASCADE_IRQ);
        int slave_input = slave.pending_input();
        if (slave_input < 0) {
            // Spurious IRQ 15: the master's IR2 stays in service, as on
            // hardware, so the guest must still EOI the master.
            vector = slave.vector_base | 7;
        } else {
            slave.acknowledge(static_cast<unsigned>(slave_input));
            vector = static_cast<u8>(slave.vector_base | slave_input);
        }
    } else {
        master.acknowledge(static_cast<unsigned>(input));
        vector = static_cast<u8>(master.vector_base | input);
    }
    update();
    return vector;
}

void I8259Pic::update()
{
    Chip& master = m_chips[0];
    const u8 cascade = 1 << CASCADE_IRQ;
    // The slave's INT pin drives master IR2. The slave holds INT high while
    // it has a request to present, and drops it during the acknowledge
    // cycle, so IR2 behaves as a level here whatever ELCR says.
    const bool slave_out = m_chips[1].pending_input() >= 0;
    master.lines = static_cast<u8>((master.lines & ~cascade) | (slave_out ? cascade : 0));
    master.irr = static_cast<u8>((master.irr & ~cascade) | (slave_out ? cascade : 0));

    const bool out = master.pending_input() >= 0;
    if (out == m_output)
        return;
    m_output = out;
    if (m_output_line)
        m_output_line(out);
}

u8 I8259Pic::read_port(unsigned chip, unsigned port)
{
    u8 value = m_chips[chip].read(port);
    update(); // a poll read acknowledges
    return value;
}

void I8259Pic::write_port(unsigned chip, unsigned port, u8 value)
{
    m_chips[chip].write(port, value);
    update();
}

// --- one chip ---------------------------------------------------------------

int I8259Pic::Chip::highest(u8 bits) const
{
    for (unsigned i = 1; i <= 8; ++i) {
        unsigned input = (lowest_priority + i) & 7;
        if (bits & (1u << input))
            return static_cast<int>(input);
    }
    return -1;
}

int I8259Pic::Chip::pending_input() const
{
    const int candidate = highest(static_cast<u8>(irr & ~imr));
    if (candidate < 0)
        return -1;
    u8 in_service = isr;
    // Special mask mode: a masked level in service does not hold off others.
    if (special_mask)
        in_service &= static_cast<u8>(~imr);
    const int current = highest(in_service);
    if (current < 0)
        return candidate;
    // Rank 0 is the highest priority in the current rotation.
    auto rank = [this](int input) { return (input - lowest_priority - 1) & 7; };
    if (rank(candidate) < rank(current))
        return candidate;
    // Special fully nested mode: the master lets the slave interrupt again
    // while an earlier slave request is in service (datasheet, "Special
    // Fully Nested Mode").
    if (is_master && special_fully_nested && candidate == current &&
        candidate == static_cast<int>(CASCADE_IRQ))
        return candidate;
    return -1;
}

void I8259Pic::Chip::set_input(unsigned input, bool level)
{
    const u8 bit = static_cast<u8>(1u << input);
    const bool was = lines & bit;
    lines = static_cast<u8>(level ? (lines | bit) : (lines & ~bit));
    if (level_mask() & bit) {
        irr = static_cast<u8>(level ? (irr | bit) : (irr & ~bit));
        return;
    }
    if (level && !was)
        irr |= bit; // a rising edge latches the request
    else if (!level)
        irr &= static_cast<u8>(~bit); // withdrawn before INTA: no request
}

void I8259Pic::Chip::acknowledge(unsigned input)
{
    const u8 bit = static_cast<u8>(1u << input);
    // INTA consumes an edge-triggered request; a level request stays for as
    // long as its input is high.
    if (!(level_mask() & bit))
        irr &= static_cast<u8>(~bit);
    if (auto_eoi) {
        if (rotate_on_auto_eoi)
            lowest_priority = static_cast<u8>(input);
    } else {
        isr |= bit;
    }
}

void I8259Pic::Chip::write(unsigned port, u8 value)
{
    if (port == 0) {
        if (value & ICW1_INIT)
            write_icw1(value);
        else if (value & OCW3_SELECT) {
            if (value & OCW3_ESMM)
                special_mask = value & OCW3_SMM;
            if (value & OCW3_POLL)
                poll = true;
            if (value & OCW3_RR)
                read_isr = value & OCW3_RIS;
        } else {
            write_ocw2(value);
        }
        return;
    }
    switch (init_step) {
    case 0: // OCW1
        imr = value;
        return;
    case 2: // ICW2: the vector base (bits 2-0 are ignored in 8086 mode)
        vector_base = value & 0xF8;
        init_step = single ? (needs_icw4 ? 4 : 0) : 3;
        return;
    case 3: // ICW3: cascade wiring (fixed on a PC)
        icw3 = value;
        init_step = needs_icw4 ? 4 : 0;
        return;
    case 4: // ICW4
        auto_eoi = value & ICW4_AEOI;
        special_fully_nested = value & ICW4_SFNM;
        init_step = 0;
        return;
    }
}

void I8259Pic::Chip::write_icw1(u8 value)
{
    // Datasheet, "Initialization Command Words": the edge sense circuit is
    // reset (a high input needs a new rising edge), IMR is cleared, IR7
    // becomes the lowest priority, special mask mode is cleared and status
    // reads return IRR; without IC4 every ICW4 function is zero.
    ltim = value & ICW1_LTIM;
    single = value & ICW1_SNGL;
    needs_icw4 = value & ICW1_IC4;
    irr = static_cast<u8>(lines & level_mask());
    isr = 0;
    imr = 0;
    lowest_priority = 7;
    special_mask = false;
    read_isr = false;
    poll = false;
    rotate_on_auto_eoi = false;
    auto_eoi = false;
    special_fully_nested = false;
    init_step = 2;
}

void I8259Pic::Chip::write_ocw2(u8 value)
{
    const u8 level = value & 7;
    switch (static_cast<Ocw2>(value >> 5)) {
    case Ocw2::ClearRotateInAutoEoi:
        rotate_on_auto_eoi = false;
        return;
    case Ocw2::SetRotateInAutoEoi:
        rotate_on_auto_eoi = true;
        return;
    case Ocw2::NonSpecificEoi:
    case Ocw2::RotateOnNonSpecificEoi: {
        int input = highest(isr);
        if (input < 0)
            return;
        isr &= static_cast<u8>(~(1u << input));
        if (static_cast<Ocw2>(value >> 5) == Ocw2::RotateOnNonSpecificEoi)
            lowest_priority = static_cast<u8>(input);
        return;
    }
    case Ocw2::SpecificEoi:
        isr &= static_cast<u8>(~(1u << level));
        return;
    case Ocw2::RotateOnSpecificEoi:
        isr &= static_cast<u8>(~(1u << level));
        lowest_priority = level;
        return;
    case Ocw2::SetPriority:
        lowest_priority = level;
        return;
    case Ocw2::NoOperation:
        return;
    }
}

u8 I8259Pic::Chip::read(unsigned port)
{
    if (poll) {
        // Poll mode: the read is the acknowledge; bit 7 says whether there
        // was a request, bits 2-0 name it.
        poll = false;
        int input = pending_input();
        if (input < 0)
            return 0;
        acknowledge(static_cast<unsigned>(input));
        return static_cast<u8>(POLL_INTERRUPT | input);
    }
    if (port == 0)
        return read_isr ? isr : irr;
    return imr;
}

void I8259Pic::Chip::visit_state(StateVisitor& v)
{
    v.field("irr", irr);
    v.field("isr", isr);
    v.field("imr", imr);
    v.field("lines", lines);
    v.field("elcr", elcr);
    v.field("vector_base", vector_base);
    v.field("icw3", icw3);
    v.field("lowest_priority", lowest_priority);
    v.field("init_step", init_step);
    v.field("ltim", ltim);
    v.field("single", single);
    v.field("needs_icw4", needs_icw4);
    v.field("auto_eoi", auto_eoi);
    v.field("rotate_on_auto_eoi", rotate_on_auto_eoi);
    v.field("special_fully_nested", special_fully_nested);
    v.field("special_mask", special_mask);
    v.field("read_isr", read_isr);
    v.field("poll", poll);
}

void I8259Pic::visit_state(StateVisitor& v)
{
    v.section("i8259-pic-pair", 1);
    for (Chip& chip : m_chips) {
        chip.visit_state(v);
        // As the ICWs and OCWs can leave a chip (a snapshot is input): between
        // ICWs 2-4 or initialized, a vector base of ICW2 bits 7-3, a rotation
        // naming one of the eight inputs.
        const bool step_ok = chip.init_step == 0 || (chip.init_step >= 2 && chip.init_step <= 4);
        if (v.loading() && v.ok() && (!step_ok || (chip.vector_base & 7) || chip.lowest_priority > 7))
            return v.fail("an 8259A's initialization step, vector base or rotation is out of range");
    }
    v.field("output", m_output);
}

// --- port adapters ------------------------------------------------------------

u64 I8259Pic::ChipPorts::io_read(u64 offset, unsigned size)
{
    // Byte registers: a wider access reaches consecutive ports, as on ISA.
    u64 value = 0;
    for (unsigned i = 0; i < size; ++i) {
        u64 port = offset + i;
        u8 byte = port < PORT_COUNT ? m_pic.read_port(m_chip, static_cast<unsigned>(port)) : 0xFF;
        value |= u64(byte) << (8 * i);
    }
    return value;
}

void I8259Pic::ChipPorts::io_write(u64 offset, unsigned size, u64 value)
{
    for (unsigned i = 0; i < size; ++i) {
        u64 port = offset + i;
        if (port < PORT_COUNT)
            m_pic.write_port(m_chip, static_cast<unsigned>(port),
                             static_cast<u8>(value >> (8 * i)));
    }
}

u64 I8259Pic::ElcrPorts::io_read(u64 offset, unsigned size)
{
    u64 value = 0;
    for (unsigned i = 0; i < size; ++i) {
        u64 port = offset + i;
        u8 byte = port < PORT_COUNT ? m_pic.m_chips[port].elcr : 0xFF;
        value |= u64(byte) << (8 * i);
    }
    return value;
}

void I8259Pic::ElcrPorts::io_write(u64 offset, unsigned size, u64 value)
{
    for (unsigned i = 0; i < size; ++i) {
        u64 port = offset + i;
        if (port >= PORT_COUNT)
            continue;
        Chip& chip = m_pic.m_chips[port];
        chip.elcr = static_cast<u8>(value >> (8 * i)) & chip.elcr_mask;
        // An input that is level-triggered now requests exactly while high.
        const u8 level = chip.level_mask();
        chip.irr = static_cast<u8>((chip.irr & ~level) | (chip.lines & level));
    }
    m_pic.update();
}
