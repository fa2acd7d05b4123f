// The 82540EM driven as Linux's e1000 driver drives it: the EEPROM over
// Microwire, the PHY over MDIC, interrupts, both rings and their offloads,
// and the values a hostile guest could write.
#include "platform/net/e1000.h"

#include "mmu/base/state_visitor.h"
#include "platform/net/frame_bytes.h"

#include <doctest/doctest.h>

using namespace e1000;
using namespace net;

namespace {

constexpr MacAddress MAC = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
constexpr GuestPhys TX_RING = 0x10000, RX_RING = 0x20000, BUFFERS = 0x100000;
constexpr u32 RING_ENTRIES = 8;

struct Rig {
    u64 ns = 0;
    VirtualClock clock{VirtualClock::Mode::Deterministic};
    PhysicalMemory memory{16ull << 20};
    E1000 nic{GuestMemory(memory), clock, MAC};
    std::vector<std::vector<u8>> sent;

    Rig()
    {
        clock.set_instruction_counter([this] { return ns; });
        nic.set_transmit([this](std::span<const u8> f) { sent.emplace_back(f.begin(), f.end()); });
    }
    u32 rd(u32 r) { return nic.read_register(r); }
    void wr(u32 r, u32 v) { nic.write_register(r, v); }
    void advance(u64 delta)
    {
        ns += delta;
        clock.run_due();
    }
    void put(GuestPhys at, std::span<const u8> bytes)
    {
        REQUIRE(GuestMemory(memory).write(at, bytes));
    }
    std::vector<u8> get(GuestPhys at, size_t n)
    {
        std::vector<u8> out(n);
        REQUIRE(GuestMemory(memory).read(at, out));
        return out;
    }
    // e1000_configure_tx / e1000_configure_rx, in their order.
    void setup_tx()
    {
        wr(TDBAL, static_cast<u32>(TX_RING));
        wr(TDBAH, 0);
        wr(TDLEN, RING_ENTRIES * DESCRIPTOR_SIZE);
        wr(TDH, 0);
        wr(TDT, 0);
        wr(TCTL, TCTL_EN);
    }
    void setup_rx(u32 extra_rctl = 0)
    {
        wr(RDBAL, static_cast<u32>(RX_RING));
        wr(RDLEN, RING_ENTRIES * DESCRIPTOR_SIZE);
        wr(RDH, 0);
        wr(RDT, 0);
        for (u32 i = 0; i < RING_ENTRIES; ++i) {
            std::array<u8, 16> d{};
            store_le(d, 0, BUFFERS + i * 0x1000, 8);
            put(RX_RING + i * 16, d);
        }
        wr(RCTL, RCTL_EN | RCTL_BAM | RCTL_SECRC | extra_rctl);
        wr(RDT, RING_ENTRIES - 1);
    }
    // A legacy transmit descriptor at ring slot `slot`.
    void legacy_tx(u32 slot, GuestPhys buffer, u16 length, u8 command)
    {
        std::array<u8, 16> d{};
        store_le(d, 0, buffer, 8);
        store_le(d, 8, length, 2);
        d[11] = command;
        put(TX_RING + slot * 16, d);
    }
    void context_tx(u32 slot, u8 ipcss, u8 ipcso, u16 ipcse, u8 tucss, u8 tucso, u8 tucmd,
                    u32 paylen, u8 hdrlen, u16 mss)
    {
        std::array<u8, 16> d{};
        d[0] = ipcss;
        d[1] = ipcso;
        store_le(d, 2, ipcse, 2);
        d[4] = tucss;
        d[5] = tucso;
        store_le(d, 8, paylen, 3); // DTYP 0: context
        d[11] = static_cast<u8>(tucmd | TXD_DEXT);
        d[13] = hdrlen;
        store_le(d, 14, mss, 2);
        put(TX_RING + slot * 16, d);
    }
    void data_tx(u32 slot, GuestPhys buffer, u32 length, u8 command, u8 popts)
    {
        std::array<u8, 16> d{};
        store_le(d, 0, buffer, 8);
        store_le(d, 8, length | (u32(DTYP_DATA) << 20), 3);
        d[11] = static_cast<u8>(command | TXD_DEXT);
        d[13] = popts;
        put(TX_RING + slot * 16, d);
    }
};

// Linux's e1000_read_eeprom for a Microwire part: acquire, then per word
// the READ opcode and address out, 16 bits in, standby; release.
u16 microwire_read(Rig& rig, u16 address)
{
    u32 eecd = rig.rd(EECD) | EECD_REQ;
    rig.wr(EECD, eecd);
    REQUIRE((rig.rd(EECD) & EECD_GNT) != 0);
    eecd = (eecd & ~(EECD_DI | EECD_SK)) | EECD_CS;
    rig.wr(EECD, eecd);
    auto clock_out = [&](u32 value, unsigned bits) {
        for (unsigned i = bits; i-- > 0;) {
            eecd = (value >> i & 1) ? eecd | EECD_DI : eecd & ~EECD_DI;
            rig.wr(EECD, eecd);
            rig.wr(EECD, eecd | EECD_SK);
            rig.wr(EECD, eecd);
        }
    };
    clock_out(0b110, 3);
    clock_out(address, 6);
    eecd &= ~EECD_DI;
    u16 data = 0;
    for (unsigned i = 0; i < 16; ++i) {
        rig.wr(EECD, eecd | EECD_SK);
        data = static_cast<u16>(data << 1 | ((rig.rd(EECD) & EECD_DO) ? 1 : 0));
        rig.wr(EECD, eecd);
    }
    rig.wr(EECD, eecd & ~(EECD_CS | EECD_REQ));
    return data;
}

u32 mdic_read(Rig& rig, u32 phy, u32 reg)
{
    rig.wr(MDIC, reg << 16 | phy << 21 | MDIC_OP_READ);
    return rig.rd(MDIC);
}

std::vector<u8> ethernet(const MacAddress& dst, size_t length, u8 fill = 0xA5)
{
    std::vector<u8> f(length, fill);
    std::copy(dst.begin(), dst.end(), f.begin());
    f[12] = 0x08;
    f[13] = 0x00;
    return f;
}

// An Ethernet + IPv4 + TCP packet as Linux hands it for TSO: tot_len and
// the IP checksum zero, the TCP checksum the pseudo-header sum without the
// length.
std::vector<u8> tso_packet(size_t payload)
{
    std::vector<u8> p(14 + 20 + 20 + payload);
    std::copy(MAC.begin(), MAC.end(), p.begin());
    p[12] = 0x08;
    u8* ip = p.data() + 14;
    ip[0] = 0x45;
    ip[8] = 64;
    ip[9] = 6;
    store_be16(p, 14 + 4, 0x1000); // identification
    store_be32(p, 14 + 12, 0x0A00020F);
    store_be32(p, 14 + 16, 0x0A000202);
    store_be32(p, 34 + 4, 1000); // sequence
    p[34 + 12] = 5 << 4;
    p[34 + 13] = 0x19; // FIN PSH ACK
    u64 pseudo = checksum_add(std::span<const u8>(p).subspan(14 + 12, 8)) + 6;
    store_be16(p, 34 + 16, static_cast<u16>(~checksum_finish(pseudo)));
    for (size_t i = 0; i < payload; ++i)
        p[54 + i] = static_cast<u8>(i * 7);
    return p;
}

bool tcp_checksum_valid(std::span<const u8> f)
{
    const size_t tcp_length = f.size() - 34;
    u64 sum = checksum_add(f.subspan(14 + 12, 8)) + 6 + tcp_length;
    return checksum_finish(checksum_add(f.subspan(34), sum)) == 0;
}

bool ip_checksum_valid(std::span<const u8> f)
{
    return checksum_finish(checksum_add(f.subspan(14, 20))) == 0;
}

} // namespace

TEST_CASE("The e1000's Microwire EEPROM gives the MAC address and words that sum to 0xBABA")
{
    Rig rig;
    u16 sum = 0;
    std::array<u16, 64> words{};
    for (u16 i = 0; i < 64; ++i) {
        words[i] = microwire_read(rig, i);
        sum = static_cast<u16>(sum + words[i]);
    }
    CHECK(sum == E1000::EEPROM_CHECKSUM);
    CHECK(words[0] == 0x5452);
    CHECK(words[1] == 0x1200);
    CHECK(words[2] == 0x5634);
}

TEST_CASE("EERD reads an EEPROM word at once and reports done")
{
    Rig rig;
    rig.wr(EERD, 1u << 8 | EERD_START);
    CHECK(rig.rd(EERD) == (0x1200u << 16 | 1u << 8 | EERD_DONE));
}

TEST_CASE("MDIC reads the 88E1011's identifier at PHY address 1 and fails at any other")
{
    Rig rig;
    u32 id1 = mdic_read(rig, PHY_ADDRESS, PHY_ID1);
    u32 id2 = mdic_read(rig, PHY_ADDRESS, PHY_ID2);
    CHECK((id1 & MDIC_READY) != 0);
    CHECK((id1 & 0xFFFF) == 0x0141);
    CHECK((id2 & 0xFFF0) == 0x0C20);
    CHECK((mdic_read(rig, PHY_ADDRESS, PHY_STATUS) & PHY_STATUS_LINK) != 0);
    CHECK((mdic_read(rig, 2, PHY_ID1) & MDIC_ERROR) != 0);
}

TEST_CASE("A PHY reset and a restarted autonegotiation leave the link up")
{
    Rig rig;
    rig.wr(MDIC, PHY_ADDRESS << 21 | u32(PHY_CTRL) << 16 | MDIC_OP_WRITE | 0x8000);
    rig.wr(MDIC, PHY_ADDRESS << 21 | u32(PHY_CTRL) << 16 | MDIC_OP_WRITE | 0x1340);
    CHECK((mdic_read(rig, PHY_ADDRESS, PHY_CTRL) & (PHY_CTRL_RESET | PHY_CTRL_RESTART_AUTONEG)) ==
          0);
    CHECK((mdic_read(rig, PHY_ADDRESS, PHY_STATUS) & PHY_STATUS_AUTONEG_DONE) != 0);
    CHECK((rig.rd(STATUS) & STATUS_LU) != 0);
}

TEST_CASE("The e1000's line follows ICR and IMS, and reading ICR clears it")
{
    Rig rig;
    rig.wr(ICS, ICR_LSC);
    CHECK_FALSE(rig.nic.irq_level()); // masked
    rig.wr(IMS, ICR_LSC | ICR_RXT0);
    CHECK(rig.nic.irq_level());
    rig.wr(IMC, ICR_LSC);
    CHECK_FALSE(rig.nic.irq_level());
    rig.wr(IMS, ICR_LSC);
    CHECK(rig.nic.irq_level());
    CHECK(rig.rd(ICR) == ICR_LSC);
    CHECK_FALSE(rig.nic.irq_level());
    CHECK(rig.rd(ICR) == 0);
}

TEST_CASE("ITR keeps its interval in 256 ns units between two interrupts")
{
    Rig rig;
    rig.advance(1'000'000);
    rig.wr(ITR, 1000); // 256 us
    rig.wr(IMS, ICR_TXDW);
    rig.wr(ICS, ICR_TXDW);
    CHECK(rig.nic.irq_level());
    (void)rig.rd(ICR);
    rig.wr(ICS, ICR_TXDW);
    CHECK_FALSE(rig.nic.irq_level());
    rig.advance(255'000);
    CHECK_FALSE(rig.nic.irq_level());
    rig.advance(1'000);
    CHECK(rig.nic.irq_level());
}

TEST_CASE("Link down and up show in STATUS and the PHY and raise LSC")
{
    Rig rig;
    rig.wr(IMS, ICR_LSC);
    rig.nic.set_link_up(false);
    CHECK((rig.rd(STATUS) & STATUS_LU) == 0);
    CHECK((rig.nic.phy_register(PHY_STATUS) & PHY_STATUS_LINK) == 0);
    CHECK(rig.rd(ICR) == ICR_LSC);
    rig.nic.set_link_up(true);
    CHECK((rig.rd(STATUS) & STATUS_LU) != 0);
    CHECK(rig.rd(ICR) == ICR_LSC);
}

TEST_CASE("A legacy transmit descriptor sends its buffer and reports DD and TXDW")
{
    Rig rig;
    rig.setup_tx();
    const std::vector<u8> frame = ethernet({0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, 60);
    rig.put(BUFFERS, frame);
    rig.legacy_tx(0, BUFFERS, 60, TXD_EOP | TXD_IFCS | TXD_RS);
    rig.wr(IMS, ICR_TXDW);
    rig.wr(TDT, 1);
    REQUIRE(rig.sent.size() == 1);
    CHECK(rig.sent[0] == frame);
    CHECK(rig.rd(TDH) == 1);
    CHECK((rig.get(TX_RING + 12, 1)[0] & TXD_DD) != 0);
    CHECK(rig.nic.irq_level());
    CHECK((rig.rd(ICR) & ICR_TXDW) != 0);
    CHECK(rig.rd(GPTC) == 1);
    CHECK(rig.rd(BPTC) == 1);
    CHECK(rig.rd(GPTC) == 0); // cleared by the read
}

TEST_CASE("A packet gathered from several data descriptors gets its TCP checksum from the context")
{
    Rig rig;
    rig.setup_tx();
    std::vector<u8> p = tso_packet(100);
    store_be16(p, 14 + 2, static_cast<u16>(p.size() - 14));
    // As for checksum offload: the pseudo-header sum with the length.
    u64 pseudo = checksum_add(std::span<const u8>(p).subspan(26, 8)) + 6 + (p.size() - 34);
    store_be16(p, 50, static_cast<u16>(~checksum_finish(pseudo)));
    rig.put(BUFFERS, std::span<const u8>(p).first(40));
    rig.put(BUFFERS + 0x1000, std::span<const u8>(p).subspan(40));
    rig.context_tx(0, 0, 0, 0, 34, 50, TUCMD_TCP | TUCMD_IP, 0, 0, 0);
    rig.data_tx(1, BUFFERS, 40, TXD_IFCS, POPTS_TXSM);
    rig.data_tx(2, BUFFERS + 0x1000, static_cast<u32>(p.size() - 40), TXD_EOP | TXD_IFCS | TXD_RS,
                0);
    rig.wr(TDT, 3);
    REQUIRE(rig.sent.size() == 1);
    CHECK(rig.sent[0].size() == p.size());
    CHECK(tcp_checksum_valid(rig.sent[0]));
}

TEST_CASE("TCP segmentation cuts a packet into MSS-sized segments with their headers fixed up")
{
    Rig rig;
    rig.setup_tx();
    const std::vector<u8> p = tso_packet(3000);
    rig.put(BUFFERS, p);
    rig.context_tx(0, 14, 24, 33, 34, 50, TUCMD_TCP | TUCMD_IP | TUCMD_TSE, 3000, 54, 1448);
    rig.data_tx(1, BUFFERS, static_cast<u32>(p.size()), TXD_EOP | TXD_IFCS | TXD_RS | TXD_TSE,
                POPTS_IXSM | POPTS_TXSM);
    rig.wr(TDT, 2);
    REQUIRE(rig.sent.size() == 3);
    const size_t payloads[] = {1448, 1448, 104};
    u32 seq = 1000;
    for (size_t i = 0; i < 3; ++i) {
        const std::vector<u8>& s = rig.sent[i];
        CAPTURE(i);
        CHECK(s.size() == 54 + payloads[i]);
        CHECK(load_be16(s, 16) == s.size() - 14);
        CHECK(load_be16(s, 18) == 0x1000 + i);
        CHECK(load_be32(s, 38) == seq);
        CHECK(ip_checksum_valid(s));
        CHECK(tcp_checksum_valid(s));
        CHECK((s[47] & 0x09) == (i == 2 ? 0x09 : 0)); // FIN and PSH on the last only
        CHECK(s[54] == static_cast<u8>((seq - 1000) * 7));
        seq += static_cast<u32>(payloads[i]);
    }
}

TEST_CASE("A segmentation context with no room for its headers or a tiny MSS drops the packet")
{
    Rig rig;
    rig.setup_tx();
    const std::vector<u8> p = tso_packet(500);
    rig.put(BUFFERS, p);
    rig.context_tx(0, 14, 24, 33, 250, 251, TUCMD_TCP | TUCMD_IP | TUCMD_TSE, 500, 54, 1448);
    rig.data_tx(1, BUFFERS, static_cast<u32>(p.size()), TXD_EOP | TXD_TSE | TXD_RS, POPTS_TXSM);
    rig.context_tx(2, 14, 24, 33, 34, 50, TUCMD_TCP | TUCMD_IP | TUCMD_TSE, 500, 54, 1);
    rig.data_tx(3, BUFFERS, static_cast<u32>(p.size()), TXD_EOP | TXD_TSE | TXD_RS, POPTS_TXSM);
    rig.wr(TDT, 4);
    CHECK(rig.sent.empty());
    CHECK(rig.rd(TDH) == 4);
}

TEST_CASE(
    "A received frame for the station address lands in the ring with DD and EOP and raises RXT0")
{
    Rig rig;
    rig.setup_rx();
    rig.wr(IMS, ICR_RXT0);
    const std::vector<u8> frame = ethernet(MAC, 42);
    rig.nic.receive(frame);
    CHECK(rig.rd(RDH) == 1);
    const std::vector<u8> d = rig.get(RX_RING, 16);
    CHECK(load_le(d, 8, 2) == 60); // padded to the minimum, FCS stripped (SECRC)
    CHECK((d[12] & (RXD_DD | RXD_EOP)) == (RXD_DD | RXD_EOP));
    const std::vector<u8> data = rig.get(BUFFERS, 60);
    CHECK(std::equal(frame.begin(), frame.end(), data.begin()));
    CHECK(rig.nic.irq_level());
    CHECK((rig.rd(ICR) & ICR_RXT0) != 0);
    CHECK(rig.rd(GPRC) == 1);
}

TEST_CASE("Without RCTL.SECRC a received frame carries its 4-byte FCS, as Linux's e1000 expects")
{
    Rig rig;
    rig.setup_rx();
    rig.wr(RCTL, RCTL_EN | RCTL_BAM);
    rig.nic.receive(ethernet(MAC, 100));
    CHECK(load_le(rig.get(RX_RING, 16), 8, 2) == 104);
}

TEST_CASE("A frame larger than the receive buffer spans descriptors and only the last has EOP")
{
    Rig rig;
    rig.setup_rx(RCTL_LPE | (3u << RCTL_BSIZE_SHIFT)); // 256-byte buffers
    rig.nic.receive(ethernet(MAC, 600));
    CHECK(rig.rd(RDH) == 3);
    CHECK((rig.get(RX_RING + 12, 1)[0] & RXD_EOP) == 0);
    CHECK((rig.get(RX_RING + 2 * 16 + 12, 1)[0] & RXD_EOP) != 0);
    CHECK(load_le(rig.get(RX_RING + 2 * 16, 16), 8, 2) == 600 - 512);
}

TEST_CASE("The e1000 drops frames for other stations unless promiscuous, and filters multicast by "
          "the MTA")
{
    Rig rig;
    rig.setup_rx();
    rig.nic.receive(ethernet({0x52, 0x54, 0x00, 0, 0, 1}, 60));
    CHECK(rig.rd(RDH) == 0);
    const MacAddress group = {0x01, 0x00, 0x5E, 0x00, 0x00, 0xFB};
    rig.nic.receive(ethernet(group, 60));
    CHECK(rig.rd(RDH) == 0);
    // MO = 0: the hash is address bits 47:36.
    const u32 hash = (u32(group[4]) >> 4 | u32(group[5]) << 4) & 0xFFF;
    rig.wr(MTA + (hash >> 5) * 4, 1u << (hash & 31));
    rig.nic.receive(ethernet(group, 60));
    CHECK(rig.rd(RDH) == 1);
    rig.wr(RCTL, rig.rd(RCTL) | RCTL_UPE);
    rig.nic.receive(ethernet({0x52, 0x54, 0x00, 0, 0, 1}, 60));
    CHECK(rig.rd(RDH) == 2);
}

TEST_CASE("Frames wait for receive descriptors and arrive when the guest moves RDT")
{
    Rig rig;
    rig.setup_rx();
    for (int i = 0; i < 10; ++i)
        rig.nic.receive(ethernet(MAC, 60, static_cast<u8>(i)));
    CHECK(rig.rd(RDH) == 7); // one descriptor short of a full ring
    CHECK(rig.nic.rx_backlog() == 3);
    rig.wr(RDT, 2);
    CHECK(rig.nic.rx_backlog() == 0);
    CHECK(rig.rd(RDH) == 2);
    CHECK(rig.get(BUFFERS, 15)[14] == 8);
    CHECK(rig.get(BUFFERS + 0x1000, 15)[14] == 9);
}

TEST_CASE("Hostile ring registers never reach outside guest RAM or keep the host busy")
{
    Rig rig;
    rig.setup_tx();
    // A tail beyond the ring: nothing runs.
    rig.legacy_tx(0, BUFFERS, 60, TXD_EOP);
    rig.wr(TDT, 200);
    CHECK(rig.sent.empty());
    // A ring outside RAM: the ring stalls where it is.
    rig.wr(TDT, 0);
    rig.wr(TDBAL, 0xFFFFF000);
    rig.wr(TDBAH, 0xFFFFFFFF);
    rig.wr(TDT, 1);
    CHECK(rig.sent.empty());
    CHECK(rig.rd(TDH) == 0);
    // A buffer outside RAM or a length past the limit drops the packet.
    rig.wr(TDBAL, static_cast<u32>(TX_RING));
    rig.wr(TDBAH, 0);
    rig.legacy_tx(0, 0xFEC00000, 60, TXD_EOP | TXD_RS);
    rig.data_tx(1, BUFFERS, 0xFFFFF, TXD_EOP, 0);
    rig.wr(TDT, 2);
    CHECK(rig.sent.empty());
    CHECK(rig.rd(TDH) == 2);
    // A receive ring of length zero takes nothing; a backlog that overflows
    // counts missed packets.
    rig.wr(RCTL, RCTL_EN | RCTL_BAM);
    for (size_t i = 0; i < E1000::RX_BACKLOG + 5; ++i)
        rig.nic.receive(ethernet(MAC, 60));
    CHECK(rig.nic.rx_backlog() == E1000::RX_BACKLOG);
    CHECK(rig.rd(MPC) == 5);
    // A receive ring that would wrap past 2^64 takes nothing.
    rig.wr(RDBAL, 0xFFFFFF00);
    rig.wr(RDBAH, 0xFFFFFFFF);
    rig.wr(RDLEN, 0x80000);
    rig.wr(RDT, 0xFFFF);
    rig.wr(RDT, 100);
    CHECK(rig.rd(RDH) == 0);
    // Receive descriptors outside RAM: the frames are lost, the ring moves on.
    rig.wr(RDBAH, 0x10);
    rig.wr(RDT, 101);
    CHECK(rig.rd(RDH) == 101);
    CHECK(rig.get(0, 64) == std::vector<u8>(64, 0));
}

TEST_CASE("CTRL.RST puts the MAC registers back and reloads the station address")
{
    Rig rig;
    rig.setup_rx();
    rig.wr(RAL0, 0);
    rig.wr(IMS, ICR_RXT0);
    rig.wr(CTRL, rig.rd(CTRL) | CTRL_RST);
    CHECK(rig.rd(RCTL) == 0);
    CHECK(rig.rd(IMS) == 0);
    CHECK(rig.rd(RAL0) == 0x12005452);
    CHECK(rig.rd(RAH0) == (0x5634 | RAH_AV));
    CHECK((rig.rd(CTRL) & CTRL_RST) == 0);
}

TEST_CASE("The I/O BAR's IOADDR and IODATA reach the registers")
{
    Rig rig;
    IoDevice* io = rig.nic.bar(E1000::IO_BAR).handler;
    REQUIRE(io != nullptr);
    io->io_write(0, 4, IMS);
    io->io_write(4, 4, ICR_LSC);
    CHECK(rig.rd(IMS) == ICR_LSC);
    io->io_write(0, 4, STATUS);
    CHECK((io->io_read(4, 4) & STATUS_LU) != 0);
}

TEST_CASE("The e1000 saves and loads its rings, filters and frames in flight")
{
    Rig rig;
    rig.setup_tx();
    rig.setup_rx();
    for (int i = 0; i < 9; ++i)
        rig.nic.receive(ethernet(MAC, 60, static_cast<u8>(i)));
    StateVisitor saver = StateVisitor::saver();
    rig.nic.visit_state(saver);

    Rig other;
    StateVisitor loader = StateVisitor::loader(saver.bytes());
    other.nic.visit_state(loader);
    REQUIRE(loader.ok());
    CHECK(loader.at_end());
    CHECK(other.nic.rx_backlog() == 2);
    CHECK(other.rd(RDH) == 7);
    StateVisitor again = StateVisitor::saver();
    other.nic.visit_state(again);
    CHECK(again.bytes() == saver.bytes());
}

TEST_CASE("A saved e1000 whose backlog holds a frame shorter than an Ethernet header does not load")
{
    Rig rig;
    rig.wr(RCTL, RCTL_EN | RCTL_BAM); // no ring: the frame waits in the backlog
    rig.nic.receive(ethernet(MAC, 60));
    REQUIRE(rig.nic.rx_backlog() == 1);
    StateVisitor saver = StateVisitor::saver();
    rig.nic.visit_state(saver);
    // The state ends with the frame: its length (u64), then its 60 bytes.
    std::vector<u8> bytes = saver.bytes();
    bytes.resize(bytes.size() - 60);
    store_le(bytes, bytes.size() - 8, 0, 8);
    Rig other;
    StateVisitor loader = StateVisitor::loader(bytes);
    other.nic.visit_state(loader);
    CHECK_FALSE(loader.ok());
}

TEST_CASE("A transmit checksum that comes out zero is sent as 0xFFFF, as a UDP checksum must be")
{
    Rig rig;
    rig.setup_tx();
    // Ethernet, IPv4, UDP, two payload bytes chosen so the sum is all ones.
    std::vector<u8> p(14 + 20 + 8 + 2);
    p[12] = 0x08;
    p[14] = 0x45;
    p[14 + 9] = 17;
    store_be32(p, 26, 0x0A00020F);
    store_be32(p, 30, 0x0A000202);
    store_be16(p, 34 + 4, 10);
    const u64 pseudo = checksum_add(std::span<const u8>(p).subspan(26, 8)) + 17 + 10;
    store_be16(p, 34 + 6, static_cast<u16>(~checksum_finish(pseudo)));
    const u16 folded =
        static_cast<u16>(~checksum_finish(checksum_add(std::span<const u8>(p).subspan(34))));
    store_be16(p, 42, static_cast<u16>(0xFFFF - folded));
    rig.put(BUFFERS, p);
    rig.context_tx(0, 0, 0, 0, 34, 40, TUCMD_IP, 0, 0, 0);
    rig.data_tx(1, BUFFERS, static_cast<u32>(p.size()), TXD_EOP | TXD_RS, POPTS_TXSM);
    rig.wr(TDT, 2);
    REQUIRE(rig.sent.size() == 1);
    CHECK(load_be16(rig.sent[0], 40) == 0xFFFF);
}

TEST_CASE("The e1000's PCI header names the 82540EM: 8086:100E, revision 3, an Ethernet controller "
          "on INTA#")
{
    Rig rig;
    CHECK(rig.nic.config_read(PciDevice::VENDOR_ID, 4) == 0x100E8086);
    CHECK(rig.nic.config_read(PciDevice::REVISION, 4) == 0x02000003);
    CHECK(rig.nic.config_read(PciDevice::SUBSYSTEM_VENDOR, 4) == 0x001E8086);
    CHECK(rig.nic.interrupt_pin() == 1);
}

TEST_CASE("The e1000's receive filter reads back as Linux's driver programs it (QMP query-rx-filter)")
{
    Rig r;
    RxFilter f = r.nic.rx_filter();
    CHECK(f.main_mac == MAC);
    CHECK_FALSE(f.broadcast_allowed);
    CHECK(f.multicast == RxFilter::Mode::None);
    // e1000_set_rx_mode: broadcasts on, a second unicast address and a
    // multicast one in the receive addresses, one more multicast hashed.
    r.wr(RCTL, RCTL_EN | RCTL_BAM);
    r.wr(RAL0 + 8, 0x00005452);
    r.wr(RAH0 + 8, RAH_AV | 0x0201);
    r.wr(RAL0 + 16, 0x01005E01);
    r.wr(RAH0 + 16, RAH_AV | 0x0100);
    f = r.nic.rx_filter();
    CHECK(f.broadcast_allowed);
    CHECK(f.unicast == RxFilter::Mode::Normal);
    REQUIRE(f.unicast_table.size() == 1);
    CHECK(f.unicast_table[0] == RxFilter::Mac{0x52, 0x54, 0, 0, 0x01, 0x02});
    REQUIRE(f.multicast_table.size() == 1);
    CHECK(f.multicast_table[0] == RxFilter::Mac{0x01, 0x5E, 0x00, 0x01, 0x00, 0x01});
    CHECK(f.multicast == RxFilter::Mode::Normal);
    CHECK_FALSE(f.multicast_overflow);
    r.wr(MTA + 12, 0x10);
    CHECK(r.nic.rx_filter().multicast_overflow); // hashed: not listed
    r.wr(RCTL, RCTL_EN | RCTL_UPE | RCTL_MPE);
    f = r.nic.rx_filter();
    CHECK(f.promiscuous);
    CHECK(f.unicast == RxFilter::Mode::All);
    CHECK(f.multicast == RxFilter::Mode::All);
}
