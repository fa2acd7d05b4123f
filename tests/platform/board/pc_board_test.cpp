// The PC board as a whole: state the board itself sets up, seen through the
// guest's ports.
#include "platform/board/pc_board.h"

#include <doctest/doctest.h>

namespace {

struct Board {
    u64 ns = 0; // deterministic virtual time is the instruction count
    PhysicalMemory memory{16ull << 20};
    PortBus ports;
    MsrBus msrs;
    VirtualClock clock{VirtualClock::Mode::Deterministic};
    PcBoard board{{1, 16ull << 20, 0}, memory, ports, msrs, clock};

    Board() { clock.set_instruction_counter([this] { return ns; }); }

    // PIT read-back command (8254 datasheet): the status byte of counter 0.
    u8 pit_counter0_status()
    {
        ports.write(0x43, 1, 0xE2);
        return static_cast<u8>(ports.read(0x40, 1));
    }
};

} // namespace

TEST_CASE("A board at power-on masks every 8259 input but the cascade")
{
    Board b;
    CHECK(b.ports.read(0x21, 1) == 0xFB);
    CHECK(b.ports.read(0xA1, 1) == 0xFF);
}

TEST_CASE("The firmware's hand-over opens IRQ 0, 1, 2, 6, 8, 12, 13, 14 as SeaBIOS does")
{
    Board b;
    b.board.program_as_firmware_leaves_it(b.memory);
    CHECK(b.ports.read(0x21, 1) == 0xB8);
    CHECK(b.ports.read(0xA1, 1) == 0x8E);
}

TEST_CASE("The firmware's hand-over leaves PIT counter 0 in mode 2 with count 65536")
{
    Board b;
    b.board.program_as_firmware_leaves_it(b.memory);
    // Status: LSB then MSB (bits 5-4 = 11), mode 2 (bits 3-1 = 010), binary.
    CHECK((b.pit_counter0_status() & 0x3F) == 0x34);
    // Counting down from 65536 (which reads as 0 until the first clock):
    // 10 us later it has counted about 12.
    b.ns += 10'000;
    b.ports.write(0x43, 1, 0x00); // latch counter 0
    const u32 count = static_cast<u32>(b.ports.read(0x40, 1)) |
                      static_cast<u32>(b.ports.read(0x40, 1)) << 8;
    CHECK(count > 0xFFE0);
    CHECK(count < 0xFFFF);
}

TEST_CASE("After the firmware's hand-over the timer's IRQ 0 reaches the CPU at vector 0x08")
{
    Board b;
    b.board.program_as_firmware_leaves_it(b.memory);
    LocalApic& bsp = b.board.lapic(0);
    // One period of 65536 PIT clocks is 54.9 ms of virtual time.
    for (int i = 0; i < 100 && !bsp.interrupt_pending(); ++i) {
        b.ns += 1'000'000;
        b.clock.run_due();
    }
    CHECK(b.ns > 50'000'000);
    REQUIRE(bsp.interrupt_pending());
    CHECK(bsp.acknowledge_interrupt() == 0x08);
}

TEST_CASE("The board suspends on SLP_TYP 1 and the RTC alarm wakes it when RTC_EN is set")
{
    Board b;
    unsigned suspends = 0, wakes = 0;
    b.board.set_suspend_handler([&] { ++suspends; });
    b.board.set_wake_handler([&] { ++wakes; });
    b.ports.write(0x602, 2, 0x0400);                  // PM1_EN: RTC_EN
    for (u8 reg : {0x01, 0x03, 0x05}) {               // alarm: every second
        b.ports.write(0x70, 1, reg);
        b.ports.write(0x71, 1, 0xC0);
    }
    b.ports.write(0x70, 1, 0x0B);
    b.ports.write(0x71, 1, 0x22);                     // 24-hour, AIE
    b.ports.write(0x604, 2, 0x2400);                  // PM1_CNT: SLP_TYP 1 | SLP_EN
    CHECK(suspends == 1);
    CHECK(b.board.suspended());
    for (int i = 0; i < 2000 && b.board.suspended(); ++i) {
        b.ns += 1'000'000;
        b.clock.run_due();
    }
    CHECK(wakes == 1);
    CHECK_FALSE(b.board.suspended());
    CHECK((b.ports.read(0x600, 2) & 0x8400) == 0x8400); // WAK_STS | RTC_STS
}

TEST_CASE("Resuming from S3 reads the FACS waking vector and sets the 8259s up as SeaBIOS does")
{
    Board b;
    b.board.program_as_firmware_leaves_it(b.memory);
    const auto facs = b.board.acpi().table("FACS");
    REQUIRE(facs.size() >= 32);
    GuestPhys facs_at = 0;
    for (const auto& [signature, offset] : b.board.acpi().index)
        if (signature == "FACS")
            facs_at = b.board.acpi().tables_address + offset;
    CHECK(b.board.resume_as_firmware_does(b.memory) == 0); // the OS set none
    b.memory.write(facs_at + 12, 4, 0x9A000);
    CHECK(b.board.resume_as_firmware_does(b.memory) == 0x9A000);
    CHECK(b.ports.read(0x21, 1) == 0xFB);
    CHECK(b.ports.read(0xA1, 1) == 0xFF);
}

TEST_CASE("The firmware's hand-over fills the real-mode IVT: 8259 vectors send an EOI, the rest IRET")
{
    Board b;
    b.board.program_as_firmware_leaves_it(b.memory);
    const auto handler = [&](u32 vector) {
        const u32 far = static_cast<u32>(b.memory.read(vector * 4, 4));
        return (static_cast<GuestPhys>(far >> 16) << 4) + (far & 0xFFFF);
    };
    const GuestPhys master = handler(0x08), slave = handler(0x70), other = handler(0x10);
    for (u32 v = 0x08; v <= 0x0F; ++v)
        CHECK(handler(v) == master);
    for (u32 v = 0x70; v <= 0x77; ++v)
        CHECK(handler(v) == slave);
    CHECK(handler(0x00) == other);
    CHECK(handler(0xFF) == other);
    // push ax; mov al, 0x20; out 0x20, al (master EOI) ...
    CHECK(b.memory.read(master, 4) == 0xE620B050);
    CHECK(b.memory.read(master + 4, 1) == 0x20);
    // push ax; mov al, 0x20; out 0xA0, al (slave EOI) ...
    CHECK(b.memory.read(slave, 4) == 0xE620B050);
    CHECK(b.memory.read(slave + 4, 1) == 0xA0);
    CHECK(b.memory.read(other, 1) == 0xCF); // iret
    // The handlers are ROM, as a BIOS's are.
    b.memory.write(master, 1, 0x90);
    CHECK(b.memory.read(master, 1) == 0x50);
}
