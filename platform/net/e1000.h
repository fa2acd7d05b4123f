// The Intel 82540EM Gigabit Ethernet controller (PCI 8086:100E; 8254x
// Software Developer's Manual 317453), as Linux's e1000 driver and QEMU's
// "e1000" model know it: the registers in a 128 KiB memory BAR (BAR 0) and
// again through the IOADDR/IODATA window of a 64-byte I/O BAR (BAR 1), the
// Microwire EEPROM behind EECD (and the EERD shortcut) with the MAC address
// and the 0xBABA checksum, the PHY behind MDIC, legacy receive descriptors,
// legacy and extended (context + data) transmit descriptors with checksum
// offload and TCP segmentation, interrupt causes with ITR throttling, the
// unicast and multicast filters and the statistics Linux reads.
//
// The guest is untrusted: ring bases, lengths, heads and tails and every
// descriptor field are checked; descriptors and packets move only through
// GuestMemory, and a bad value drops a packet or stops a ring, never more.
//
// Not modelled (docs/network.md): the receive/transmit interrupt delay
// timers (RDTR, RADV, TIDV, TADV: interrupts come at once, ITR still
// spaces them), VLAN insertion and stripping, flow control, wake-on-LAN.
#pragma once

#include "mmu/guest_memory.h"
#include "platform/chipset/pci_device.h"
#include "platform/clock/virtual_clock.h"
#include "platform/net/e1000_registers.h"
#include "platform/net/rx_filter.h"

#include <array>
#include <deque>
#include <functional>
#include <span>
#include <vector>

using MacAddress = std::array<u8, 6>;

class E1000 final : public PciDevice {
public:
    static constexpr u16 VENDOR = 0x8086, DEVICE = 0x100E;
    static constexpr unsigned MMIO_BAR = 0, IO_BAR = 1;
    static constexpr u64 MMIO_SIZE = 0x20000, IO_SIZE = 0x40;
    static constexpr unsigned EEPROM_WORDS = 64;
    static constexpr u16 EEPROM_CHECKSUM = 0xBABA; // words 0-63 sum to it (SDM 5.6.19)
    // Frames waiting for receive descriptors (the controller's packet buffer,
    // counted in frames); more are dropped and counted in MPC.
    static constexpr size_t RX_BACKLOG = 256;
    // The frames receive() takes: an Ethernet header at least, a jumbo
    // frame at most (RCTL.LPE).
    static constexpr size_t MIN_FRAME = 14, MAX_FRAME = 16384;
    // The largest packet a transmit may gather (a TCP segmentation offload
    // of 64 KiB and its headers) and the smallest segment size it accepts.
    static constexpr size_t TX_MAX_PACKET = 0x10000 + 256;
    static constexpr u32 TSO_MIN_MSS = 32;

    using Transmit = std::function<void(std::span<const u8> frame)>;

    E1000(GuestMemory memory, VirtualClock& clock, const MacAddress& mac);

    // Where transmitted frames go (without the FCS).
    void set_transmit(Transmit transmit) { m_transmit = std::move(transmit); }
    // A frame from the network (without the FCS): filtered, then written to
    // the receive ring or held until the guest gives descriptors.
    void receive(std::span<const u8> frame);
    // The cable: the PHY and STATUS follow, and the guest gets LSC.
    void set_link_up(bool up);
    bool link_up() const { return m_link_up; }
    const MacAddress& mac() const { return m_mac; }
    size_t rx_backlog() const { return m_rx_backlog.size(); }
    // The receive filter as RCTL, the receive addresses and the multicast
    // table have it (QMP query-rx-filter).
    RxFilter rx_filter() const;

    // Register access as the guest makes it (dword offsets into BAR 0).
    u32 read_register(u32 offset);
    void write_register(u32 offset, u32 value);
    u16 phy_register(u8 index) const { return m_phy[index & 31]; }

    // What SeaBIOS leaves: the BARs assigned, memory and I/O decoding and
    // bus mastering on.
    void program_as_firmware_does(u32 mmio_base, u16 io_base);

    void visit_state(StateVisitor& v) override;

private:
    class MmioWindow final : public IoDevice {
    public:
        explicit MmioWindow(E1000& nic) : m_nic(nic) {}
        u64 io_read(u64 offset, unsigned size) override;
        void io_write(u64 offset, unsigned size, u64 value) override;

    private:
        E1000& m_nic;
    };
    class IoWindow final : public IoDevice {
    public:
        explicit IoWindow(E1000& nic) : m_nic(nic) {}
        u64 io_read(u64 offset, unsigned size) override;
        void io_write(u64 offset, unsigned size, u64 value) override;

    private:
        E1000& m_nic;
    };
    // The last context descriptor (8254x SDM 3.3.6): where the checksums go
    // and how TCP segmentation cuts.
    struct TxContext {
        u8 ipcss = 0, ipcso = 0;
        u16 ipcse = 0;
        u8 tucss = 0, tucso = 0;
        u16 tucse = 0;
        u8 tucmd = 0;
        u8 hdrlen = 0;
        u16 mss = 0;
    };

    // A ring whose head and tail lie inside it and whose descriptors'
    // addresses do not wrap past 2^64 (e1000.cpp).
    static bool ring_valid(u64 base, u32 length, u32 head, u32 tail);

    u32& reg(u32 offset) { return m_regs[offset / 4]; }
    u32 reg(u32 offset) const { return m_regs[offset / 4]; }
    void reset();
    void build_eeprom();

    // e1000.cpp: registers, interrupts, EEPROM, PHY.
    u32 read_statistic(u32 offset);
    void write_control(u32 value);
    void write_eecd(u32 value);
    void eeprom_clock_rising();
    void write_eerd(u32 value);
    void write_mdic(u32 value);
    void write_phy(u8 index, u16 value);
    void reset_phy();
    void set_causes(u32 causes);
    void update_interrupt();
    void throttle_expired();
    void count(u32 low, u64 amount);

    // e1000_tx.cpp: the transmit ring and its offloads.
    void process_tx_ring();
    bool process_tx_descriptor(u64 address);
    void take_context(const std::array<u8, 16>& desc);
    void take_data(const std::array<u8, 16>& desc, bool extended);
    void finish_tx_packet();
    void send_segmented();
    void send_frame(std::span<u8> frame, bool last_segment, u32 segment, u32 payload_offset);
    void count_tx(std::span<const u8> frame);

    // e1000_rx.cpp: filtering and the receive ring.
    bool accepts(std::span<const u8> frame) const;
    bool deliver(std::span<const u8> frame);
    void drain_rx_backlog();
    u32 rx_buffer_size() const;
    u32 rx_free_descriptors() const;
    void count_rx(std::span<const u8> frame);

    GuestMemory m_memory;
    VirtualClock& m_clock;
    MacAddress m_mac;
    MmioWindow m_mmio{*this};
    IoWindow m_io{*this};
    Transmit m_transmit;
    std::vector<u32> m_regs;
    std::array<u16, EEPROM_WORDS> m_eeprom{};
    std::array<u16, 32> m_phy{};
    bool m_link_up = true;
    // Microwire EEPROM (SDM 5.6): bits shifted in since CS went high, and
    // the word address once the READ opcode and address are in.
    u32 m_ee_bits = 0, m_ee_shift = 0, m_ee_address = 0;
    bool m_ee_out = false; // DO
    u32 m_io_address = 0;  // IOADDR
    // ITR: no interrupt is asserted before this virtual time.
    u64 m_next_interrupt_ns = 0;
    ClockTimer m_throttle;
    // The packet being gathered from transmit descriptors, and its options.
    TxContext m_context;
    std::vector<u8> m_tx_packet;
    bool m_tx_tse = false, m_tx_ip_checksum = false, m_tx_l4_checksum = false;
    bool m_tx_oversized = false;
    std::deque<std::vector<u8>> m_rx_backlog;
};
