// The 82540EM's registers, interrupts, EEPROM and PHY (e1000.h). The
// transmit ring is in e1000_tx.cpp, the receive ring in e1000_rx.cpp.
#include "platform/net/e1000.h"

#include "mmu/base/state_visitor.h"

using namespace e1000;

namespace {

constexpr u32 CLASS_ETHERNET = 0x020000;
constexpr u8 E1000_REVISION = 0x03; // not REVISION: PciDevice names its offset so
// Intel PRO/1000 MT Desktop Adapter, as the EEPROM of the 82540EM boards
// names it (and QEMU's model).
constexpr u16 PRO1000_MT_DESKTOP = 0x001E;
// Microwire READ: the start bit and opcode 10, then six address bits.
constexpr u32 EE_READ_OPCODE = 0b110, EE_COMMAND_BITS = 9, EE_ADDRESS_MASK = 0x3F;
constexpr u32 EECD_GUEST_BITS = EECD_SK | EECD_CS | EECD_DI | EECD_REQ | (3u << 4); // + FWE
// The registers that hold a queue pointer (16 bits) or a ring length
// (bits 19:7, a multiple of 128 bytes).
constexpr u32 POINTER_MASK = 0xFFFF, RING_LENGTH_MASK = 0xFFF80;

// A byte buffer as its length and then its bytes in one block; a length
// over `limit` fails the load before anything is allocated.
void visit_bytes(StateVisitor& v, std::vector<u8>& bytes, size_t limit)
{
    u64 length = bytes.size();
    v.field("length", length);
    if (v.loading()) {
        if (!v.ok() || length > limit)
            return v.fail("e1000: a saved buffer of " + std::to_string(length) + " bytes");
        bytes.resize(length);
    }
    v.bytes_field(bytes.data(), bytes.size());
}

} // namespace

E1000::E1000(GuestMemory memory, VirtualClock& clock, const MacAddress& mac)
    : PciDevice(VENDOR, DEVICE, CLASS_ETHERNET, E1000_REVISION), m_memory(memory), m_clock(clock),
      m_mac(mac), m_regs(MMIO_SIZE / 4), m_throttle(clock, [this] { update_interrupt(); })
{
    define_bar(MMIO_BAR, PciBarKind::Memory32, MMIO_SIZE, &m_mmio);
    define_bar(IO_BAR, PciBarKind::Io, IO_SIZE, &m_io);
    set_interrupt_pin(1);
    write_le(SUBSYSTEM_VENDOR, 2, VENDOR);
    write_le(SUBSYSTEM_ID, 2, PRO1000_MT_DESKTOP);
    build_eeprom();
    reset();
}

void E1000::build_eeprom()
{
    // SDM 5.6 table 5-2: the MAC address in words 0-2, the IDs in 0x0B-0x0E;
    // word 0x0F (Initialization Control 2) 0: no flow control. Word 0x3F
    // makes the sum 0xBABA, which the driver checks before anything else.
    m_eeprom.fill(0);
    for (unsigned i = 0; i < 3; ++i)
        m_eeprom[i] = static_cast<u16>(m_mac[2 * i] | (m_mac[2 * i + 1] << 8));
    m_eeprom[0x0B] = PRO1000_MT_DESKTOP;
    m_eeprom[0x0C] = VENDOR;
    m_eeprom[0x0D] = DEVICE;
    m_eeprom[0x0E] = VENDOR;
    u16 sum = 0;
    for (unsigned i = 0; i + 1 < EEPROM_WORDS; ++i)
        sum = static_cast<u16>(sum + m_eeprom[i]);
    m_eeprom[EEPROM_WORDS - 1] = static_cast<u16>(EEPROM_CHECKSUM - sum);
}

void E1000::reset()
{
    // The software reset (CTRL.RST) and power-on: every MAC register to its
    // default, the receive address 0 loaded from the EEPROM (SDM 13.4.1).
    std::fill(m_regs.begin(), m_regs.end(), 0);
    reg(CTRL) = CTRL_SLU | CTRL_FD | CTRL_SPD_1000;
    reg(EECD) = EECD_PRES;
    reg(MDIC) = MDIC_READY;
    reg(RAL0) = u32(m_mac[0]) | u32(m_mac[1]) << 8 | u32(m_mac[2]) << 16 | u32(m_mac[3]) << 24;
    reg(RAH0) = u32(m_mac[4]) | u32(m_mac[5]) << 8 | RAH_AV;
    m_ee_bits = m_ee_shift = m_ee_address = 0;
    m_ee_out = false;
    m_io_address = 0;
    m_next_interrupt_ns = 0;
    m_throttle.disarm();
    m_context = {};
    m_tx_packet.clear();
    m_tx_tse = m_tx_ip_checksum = m_tx_l4_checksum = m_tx_oversized = false;
    m_rx_backlog.clear();
    reset_phy();
    set_irq(false);
}

void E1000::reset_phy()
{
    // An 88E1011 after reset, autonegotiated to 1000 Mb/s full duplex with
    // a partner that offers the same (IEEE 802.3 22.2.4; SDM 13.5).
    m_phy.fill(0);
    m_phy[PHY_CTRL] = 0x1140; // autonegotiation on, full duplex, 1000 Mb/s
    m_phy[PHY_ID1] = 0x0141;  // Marvell OUI: the driver matches M88E1011_I_PHY_ID
    m_phy[PHY_ID2] = 0x0C20;
    m_phy[PHY_AUTONEG_ADV] = 0x0DE1;
    m_phy[PHY_LP_ABILITY] = 0x45E1;
    m_phy[PHY_AUTONEG_EXP] = 0x0001;
    m_phy[PHY_1000T_CTRL] = 0x0E00;
    m_phy[PHY_1000T_STATUS] = 0x3C00;
    m_phy[PHY_EXT_STATUS] = 0x3000;
    m_phy[PHY_SPEC_CTRL] = 0x0360;
    set_link_up(m_link_up);
    reg(ICR) &= ~ICR_LSC; // a reset is not a link change the guest must hear of
}

void E1000::set_link_up(bool up)
{
    const bool changed = up != m_link_up;
    m_link_up = up;
    constexpr u16 STATUS_UP = 0x796D; // plus link and autonegotiation complete
    m_phy[PHY_STATUS] = up ? STATUS_UP : STATUS_UP & ~(PHY_STATUS_LINK | PHY_STATUS_AUTONEG_DONE);
    m_phy[PHY_SPEC_STATUS] = up ? PHY_SPEC_STATUS_LINK_UP : PHY_SPEC_STATUS_LINK_UP & ~0x0C00;
    constexpr u32 UP = STATUS_FD | STATUS_LU | STATUS_SPEED_1000 | STATUS_ASDV_1000;
    reg(e1000::STATUS) = up ? UP : UP & ~STATUS_LU;
    if (changed)
        set_causes(ICR_LSC);
}

void E1000::program_as_firmware_does(u32 mmio_base, u16 io_base)
{
    const auto before = bar_addresses();
    write_le(BAR0 + 4 * MMIO_BAR, 4, mmio_base);
    write_le(BAR0 + 4 * IO_BAR, 4, io_base | 1u);
    write_le(COMMAND, 2, COMMAND_IO | COMMAND_MEMORY | COMMAND_MASTER);
    notify_bar_changes(before);
}

bool E1000::ring_valid(u64 base, u32 length, u32 head, u32 tail)
{
    const u32 count = length / DESCRIPTOR_SIZE;
    return count != 0 && head < count && tail < count && base <= ~0ull - length;
}

u32 E1000::read_register(u32 offset)
{
    offset &= ~3u;
    if (offset >= MMIO_SIZE)
        return 0;
    if (offset >= STATS_FIRST && offset < STATS_END)
        return read_statistic(offset);
    if (offset == ICR) {
        // Reading ICR clears every cause and drops the line (SDM 13.4.17).
        const u32 causes = reg(ICR);
        reg(ICR) = 0;
        update_interrupt();
        return causes;
    }
    if (offset == EECD)
        return (reg(EECD) & ~EECD_DO) | (m_ee_out ? EECD_DO : 0);
    return reg(offset);
}

u32 E1000::read_statistic(u32 offset)
{
    const u32 value = reg(offset);
    reg(offset) = 0;
    return value;
}

void E1000::write_register(u32 offset, u32 value)
{
    offset &= ~3u;
    if (offset >= MMIO_SIZE || (offset >= STATS_FIRST && offset < STATS_END))
        return; // statistics are read-only
    switch (offset) {
    case CTRL:
        return write_control(value);
    case e1000::STATUS:
        return;
    case EECD:
        return write_eecd(value);
    case EERD:
        return write_eerd(value);
    case MDIC:
        return write_mdic(value);
    case ICR:
        reg(ICR) &= ~value;
        return update_interrupt();
    case ICS:
        return set_causes(value);
    case IMS:
        reg(IMS) |= value & ICR_VALID;
        return update_interrupt();
    case IMC:
        reg(IMS) &= ~value;
        return update_interrupt();
    case ITR:
        reg(ITR) = value & 0xFFFF;
        return;
    case RCTL:
        reg(RCTL) = value;
        return drain_rx_backlog();
    case TCTL:
        reg(TCTL) = value;
        return process_tx_ring();
    case RDBAL:
    case TDBAL:
        reg(offset) = value & ~0xFu; // 16-byte aligned (SDM 13.4.24, 13.4.36)
        return;
    case RDLEN:
    case TDLEN:
        reg(offset) = value & RING_LENGTH_MASK;
        return;
    case RDH:
    case TDH:
        reg(offset) = value & POINTER_MASK;
        return;
    case RDT:
        reg(RDT) = value & POINTER_MASK;
        return drain_rx_backlog();
    case TDT:
        reg(TDT) = value & POINTER_MASK;
        return process_tx_ring();
    default:
        reg(offset) = value;
    }
}

void E1000::write_control(u32 value)
{
    if (value & CTRL_RST)
        return reset(); // self-clearing; the PCI side keeps its state
    if (value & CTRL_PHY_RST)
        reset_phy();
    reg(CTRL) = value & ~(CTRL_RST | CTRL_PHY_RST);
}

void E1000::write_eecd(u32 value)
{
    const u32 old = reg(EECD);
    if (!(value & EECD_CS)) {
        // Chip select low ends the command (SDM 5.6.1).
        m_ee_bits = m_ee_shift = 0;
        m_ee_out = false;
    } else if (!(old & EECD_SK) && (value & EECD_SK)) {
        m_ee_shift = m_ee_bits < EE_COMMAND_BITS ? (m_ee_shift << 1) | ((value & EECD_DI) ? 1 : 0)
                                                 : m_ee_shift;
        eeprom_clock_rising();
    }
    // Software owns the EEPROM as soon as it asks (nothing else reads it).
    const u32 grant = (value & EECD_REQ) ? EECD_GNT : 0;
    reg(EECD) = (value & EECD_GUEST_BITS) | EECD_PRES | grant;
}

void E1000::eeprom_clock_rising()
{
    // The 82540EM's 64-word Microwire part (EECD.SIZE clear): a READ is the
    // start bit, opcode 10 and six address bits, each sampled on a rising
    // SK; then DO shows the word's bits, most significant first, one per
    // rising edge, running on into the next words while CS stays high.
    // Writes and erases are not modelled: the EEPROM is read-only.
    ++m_ee_bits;
    if (m_ee_bits <= EE_COMMAND_BITS) {
        m_ee_out = false;
        if (m_ee_bits == EE_COMMAND_BITS)
            m_ee_address = m_ee_shift & EE_ADDRESS_MASK;
        return;
    }
    if ((m_ee_shift >> 6) != EE_READ_OPCODE) {
        m_ee_out = false;
        return;
    }
    const u32 bit = m_ee_bits - EE_COMMAND_BITS - 1;
    const u16 word = m_eeprom[(m_ee_address + bit / 16) % EEPROM_WORDS];
    m_ee_out = (word >> (15 - bit % 16)) & 1;
}

void E1000::write_eerd(u32 value)
{
    // EERD (SDM 13.4.4): a whole word read by the MAC, done at once.
    if (!(value & EERD_START))
        return;
    const u32 address = (value >> 8) & 0xFF;
    const u16 data = address < EEPROM_WORDS ? m_eeprom[address] : 0xFFFF;
    reg(EERD) = u32(data) << 16 | address << 8 | EERD_DONE;
}

void E1000::write_mdic(u32 value)
{
    // MDIC (SDM 13.4.7): one MDIO read or write, done at once. Only the
    // internal PHY answers; any other address or opcode is an error.
    const u32 phy = (value >> 21) & 31;
    const u8 index = static_cast<u8>((value >> 16) & 31);
    const u32 op = value & (3u << 26);
    u32 result = value & ~(MDIC_READY | MDIC_ERROR);
    if (phy != PHY_ADDRESS || (op != MDIC_OP_READ && op != MDIC_OP_WRITE)) {
        result |= MDIC_ERROR;
    } else if (op == MDIC_OP_READ) {
        result = (result & ~0xFFFFu) | m_phy[index];
    } else {
        write_phy(index, static_cast<u16>(value));
    }
    reg(MDIC) = result | MDIC_READY;
    if (value & MDIC_INT_EN)
        set_causes(ICR_MDAC);
}

void E1000::write_phy(u8 index, u16 value)
{
    switch (index) {
    case PHY_CTRL:
        if (value & PHY_CTRL_RESET) {
            reset_phy();
            return;
        }
        // Restarting autonegotiation completes at once: the partner is us.
        m_phy[PHY_CTRL] = value & ~(PHY_CTRL_RESET | PHY_CTRL_RESTART_AUTONEG);
        return;
    case PHY_STATUS:
    case PHY_ID1:
    case PHY_ID2:
    case PHY_LP_ABILITY:
    case PHY_AUTONEG_EXP:
    case PHY_1000T_STATUS:
    case PHY_EXT_STATUS:
    case PHY_SPEC_STATUS:
        return; // read-only
    default:
        m_phy[index & 31] = value;
    }
}

void E1000::set_causes(u32 causes)
{
    reg(ICR) |= causes & ICR_VALID;
    update_interrupt();
}

void E1000::update_interrupt()
{
    // INTA# is asserted while a cause is both set and enabled. ITR (SDM
    // 13.4.18) keeps at least ITR * 256 ns between two assertions: a cause
    // that comes sooner waits for the throttle timer.
    if (!(reg(ICR) & reg(IMS))) {
        m_throttle.disarm();
        set_irq(false);
        return;
    }
    if (irq_level())
        return;
    const u64 now = m_clock.now_ns();
    if (now < m_next_interrupt_ns) {
        m_throttle.arm(m_next_interrupt_ns);
        return;
    }
    m_next_interrupt_ns = now + u64(reg(ITR) & 0xFFFF) * 256;
    set_irq(true);
}

void E1000::count(u32 low, u64 amount)
{
    // The octet counters are 64-bit pairs (low, high); the rest 32 bits.
    // They stick at their maximum rather than wrap (SDM 13.7).
    const bool pair = low == GORCL || low == GOTCL || low == TORL || low == TOTL;
    if (!pair) {
        const u64 sum = u64(reg(low)) + amount;
        reg(low) = sum > 0xFFFFFFFFu ? 0xFFFFFFFFu : static_cast<u32>(sum);
        return;
    }
    u64 value = u64(reg(low + 4)) << 32 | reg(low);
    value = value + amount < value ? ~0ull : value + amount;
    reg(low) = static_cast<u32>(value);
    reg(low + 4) = static_cast<u32>(value >> 32);
}

u64 E1000::MmioWindow::io_read(u64 offset, unsigned size)
{
    // Registers are dwords; a narrower read sees its bytes of one.
    const u32 value = m_nic.read_register(static_cast<u32>(offset));
    const unsigned shift = 8 * (offset & 3);
    return size >= 4 ? value : (value >> shift) & ((1u << (8 * size)) - 1);
}

void E1000::MmioWindow::io_write(u64 offset, unsigned size, u64 value)
{
    if (size >= 4 && !(offset & 3))
        return m_nic.write_register(static_cast<u32>(offset), static_cast<u32>(value));
    // A narrower write merges into the register's stored value.
    const unsigned shift = 8 * (offset & 3);
    const u32 mask = size >= 4 ? ~0u : ((1u << (8 * size)) - 1) << shift;
    const u32 offset32 = static_cast<u32>(offset) & ~3u;
    if (offset32 >= MMIO_SIZE)
        return;
    const u32 merged = (m_nic.reg(offset32) & ~mask) | ((static_cast<u32>(value) << shift) & mask);
    m_nic.write_register(offset32, merged);
}

u64 E1000::IoWindow::io_read(u64 offset, unsigned size)
{
    // IOADDR at 0 selects a register, IODATA at 4 reaches it (SDM 13.2).
    (void)size;
    if (offset == 0)
        return m_nic.m_io_address;
    if (offset == 4)
        return m_nic.read_register(m_nic.m_io_address);
    return 0;
}

void E1000::IoWindow::io_write(u64 offset, unsigned size, u64 value)
{
    (void)size;
    if (offset == 0)
        m_nic.m_io_address = static_cast<u32>(value) & (MMIO_SIZE - 1);
    else if (offset == 4)
        m_nic.write_register(m_nic.m_io_address, static_cast<u32>(value));
}

void E1000::visit_state(StateVisitor& v)
{
    PciDevice::visit_state(v);
    v.section("e1000", 1);
    // The register file as one block (128 KiB, mostly zeros the snapshot's
    // zlib stream takes away).
    v.bytes_field(m_regs.data(), m_regs.size() * sizeof(u32));
    v.field("phy", m_phy);
    v.field("link_up", m_link_up);
    v.field("ee_bits", m_ee_bits);
    v.field("ee_shift", m_ee_shift);
    v.field("ee_address", m_ee_address);
    v.field("ee_out", m_ee_out);
    v.field("io_address", m_io_address);
    v.field("next_interrupt_ns", m_next_interrupt_ns);
    bool throttled = m_throttle.armed();
    v.field("throttled", throttled);
    v.field("context", m_context);
    visit_bytes(v, m_tx_packet, TX_MAX_PACKET);
    v.field("tx_tse", m_tx_tse);
    v.field("tx_ip_checksum", m_tx_ip_checksum);
    v.field("tx_l4_checksum", m_tx_l4_checksum);
    v.field("tx_oversized", m_tx_oversized);
    u64 backlog = m_rx_backlog.size();
    v.field("rx_backlog", backlog);
    if (v.loading()) {
        if (backlog > RX_BACKLOG)
            return v.fail("e1000: a saved backlog of " + std::to_string(backlog) + " frames");
        m_rx_backlog.assign(backlog, {});
    }
    for (auto& frame : m_rx_backlog) {
        visit_bytes(v, frame, MAX_FRAME);
        if (v.loading() && frame.size() < MIN_FRAME)
            return v.fail("e1000: a saved frame of " + std::to_string(frame.size()) + " bytes");
    }
    if (v.loading()) {
        m_throttle.disarm();
        if (throttled)
            m_throttle.arm(m_next_interrupt_ns);
    }
}
