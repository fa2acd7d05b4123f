// Fuzz target: the e1000 (platform/net/) as a hostile guest and network
// drive it: 1 MiB of guest RAM, both rings set up as Linux's driver leaves
// them, then a program of steps: register writes and reads (mostly the ring,
// interrupt, EEPROM and PHY registers), the I/O window, bytes and whole
// descriptors written to guest RAM (legacy, context and data descriptors
// alike), frames arriving from the network, link changes, virtual time
// passing, and a save/load of the device. Nothing may crash, assert, hang
// or touch memory outside the RAM buffer (AddressSanitizer says); a
// save-load-save that does not give the same bytes aborts, and so does a
// transmitted frame larger than the device's packet limit.
#include "mmu/base/state_visitor.h"
#include "platform/net/e1000.h"
#include "tests/fuzz/fuzz_input.h"

#include <cstdio>
#include <cstdlib>

using namespace e1000;

namespace {

[[noreturn]] void fail(const char* what)
{
    std::fprintf(stderr, "e1000_fuzz: %s\n", what);
    std::abort();
}

constexpr u64 RAM_BYTES = 1 << 20;
constexpr GuestPhys TX_RING = 0x1000, RX_RING = 0x2000, BUFFERS = 0x10000;
constexpr u32 RING_ENTRIES = 16;
constexpr size_t MAX_STEPS = 2048;
constexpr MacAddress MAC = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
constexpr u32 REGISTERS[] = {CTRL,  EECD, EERD,  MDIC,  ICR,   ITR,  ICS,  IMS,   IMC,
                             RCTL,  TCTL, RDBAL, RDBAH, RDLEN, RDH,  RDT,  TDBAL, TDBAH,
                             TDLEN, TDH,  TDT,   MTA,   RAL0,  RAH0, GPRC, RXCSUM};
constexpr size_t REGISTER_COUNT = sizeof REGISTERS / sizeof REGISTERS[0];

struct Rig {
    u64 ns = 0;
    VirtualClock clock{VirtualClock::Mode::Deterministic};
    PhysicalMemory memory{RAM_BYTES};
    E1000 nic{GuestMemory(memory), clock, MAC};
    u64 frames_sent = 0;

    Rig()
    {
        clock.set_instruction_counter([this] { return ns; });
        nic.set_transmit([this](std::span<const u8> frame) {
            if (frame.size() > E1000::TX_MAX_PACKET)
                fail("a transmitted frame is larger than the packet limit");
            ++frames_sent;
        });
        // What e1000_configure_tx/rx leave, with buffers for every slot.
        for (u32 i = 0; i < RING_ENTRIES; ++i) {
            const u64 buffer = BUFFERS + i * 0x800;
            (void)GuestMemory(memory).write(RX_RING + i * 16, &buffer, 8);
        }
        nic.write_register(TDBAL, static_cast<u32>(TX_RING));
        nic.write_register(TDLEN, RING_ENTRIES * 16);
        nic.write_register(TCTL, TCTL_EN);
        nic.write_register(RDBAL, static_cast<u32>(RX_RING));
        nic.write_register(RDLEN, RING_ENTRIES * 16);
        nic.write_register(RCTL, RCTL_EN | RCTL_BAM);
        nic.write_register(RDT, RING_ENTRIES - 1);
        nic.write_register(IMS, ICR_VALID);
    }

    u32 pick_register(FuzzInput& in)
    {
        const u8 choice = in.byte();
        if (choice < REGISTER_COUNT * 8)
            return REGISTERS[choice % REGISTER_COUNT];
        return static_cast<u32>(in.word()) * 4 % E1000::MMIO_SIZE;
    }

    void save_load_save()
    {
        StateVisitor saver = StateVisitor::saver();
        nic.visit_state(saver);
        E1000 other{GuestMemory(memory), clock, MAC};
        StateVisitor loader = StateVisitor::loader(saver.bytes());
        other.visit_state(loader);
        if (!loader.ok() || !loader.at_end())
            fail("the e1000's own state does not load");
        StateVisitor again = StateVisitor::saver();
        other.visit_state(again);
        if (again.bytes() != saver.bytes())
            fail("save, load, save gives other bytes");
    }

    void step(FuzzInput& in)
    {
        switch (in.byte() % 10) {
        case 0:
        case 1: {
            const u32 offset = pick_register(in);
            nic.write_register(offset, in.dword());
            break;
        }
        case 2:
            (void)nic.read_register(pick_register(in));
            break;
        case 3: { // a descriptor in one of the rings
            const GuestPhys ring = in.byte() & 1 ? TX_RING : RX_RING;
            const GuestPhys at = ring + (in.byte() % RING_ENTRIES) * 16;
            const std::vector<u8> desc = in.bytes(16);
            (void)GuestMemory(memory).write(at, desc);
            break;
        }
        case 4: { // bytes anywhere in RAM
            const GuestPhys at = in.dword() % RAM_BYTES;
            const std::vector<u8> data = in.bytes(in.byte() % 64);
            (void)GuestMemory(memory).write(at, data);
            break;
        }
        case 5: { // a frame from the network, for us, broadcast or anything
            std::vector<u8> frame = in.bytes(in.word() % 1600);
            const u8 kind = in.byte() % 3;
            for (size_t i = 0; i < 6 && i < frame.size() && kind < 2; ++i)
                frame[i] = kind == 0 ? MAC[i] : 0xFF;
            nic.receive(frame);
            break;
        }
        case 6: {
            IoDevice* io = nic.bar(E1000::IO_BAR).handler;
            const u64 port = in.byte() % E1000::IO_SIZE;
            if (in.byte() & 1)
                io->io_write(port, 4, in.dword());
            else
                (void)io->io_read(port, 4);
            break;
        }
        case 7:
            ns += in.word() * 256ull;
            clock.run_due();
            break;
        case 8:
            nic.set_link_up(in.byte() & 1);
            break;
        case 9:
            save_load_save();
            break;
        }
    }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    Rig rig;
    FuzzInput in{data, size};
    for (size_t steps = 0; !in.done() && steps < MAX_STEPS; ++steps)
        rig.step(in);
    rig.save_load_save();
    return 0;
}
