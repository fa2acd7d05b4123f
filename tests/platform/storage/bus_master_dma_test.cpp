#include "tests/platform/storage/ide_test_rig.h"

using namespace ata;

namespace {
constexpr GuestPhys TABLE = 0x10000;
constexpr GuestPhys DATA = 0x200000;

std::vector<u8> ram(IdeRig& rig, GuestPhys at, size_t length)
{
    std::vector<u8> out(length);
    REQUIRE(GuestMemory(rig.memory).read(at, out));
    return out;
}
} // namespace

TEST_CASE("READ DMA scatters the sectors along the PRD table and ends with Interrupt set and Active clear")
{
    IdeRig rig;
    rig.prd_table(TABLE, {{DATA, 512, false}, {DATA + 0x3000, 1024, true}});
    rig.lba28(10, 3);
    rig.command(AtaDisk::READ_DMA);
    rig.start_dma(TABLE, true);
    CHECK((rig.bmis() & BusMasterDma::BMIS_ACTIVE) != 0);
    CHECK((rig.alt_status() & STATUS_BSY) != 0);
    rig.deliver();
    CHECK(rig.irq);
    CHECK(rig.bmis() == BusMasterDma::BMIS_INTERRUPT);
    CHECK(rig.status() == (STATUS_DRDY | STATUS_DSC));
    CHECK(ram(rig, DATA, 512)[1] == IdeRig::pattern(10, 1));
    CHECK(ram(rig, DATA + 0x3000, 1024)[0] == IdeRig::pattern(11, 0));
    CHECK(ram(rig, DATA + 0x3000, 1024)[1023] == IdeRig::pattern(12, 511));
}

TEST_CASE("A DMA command waits for the engine to start when the disk answers first")
{
    IdeRig rig;
    rig.prd_table(TABLE, {{DATA, 512, true}});
    rig.lba28(4, 1);
    rig.command(AtaDisk::READ_DMA);
    rig.deliver();
    CHECK(!rig.irq);
    CHECK(rig.alt_status() == (STATUS_DRDY | STATUS_DSC | STATUS_DRQ));
    rig.start_dma(TABLE, true);
    CHECK(rig.irq);
    CHECK(ram(rig, DATA, 512)[0] == IdeRig::pattern(4, 0));
}

TEST_CASE("WRITE DMA EXT gathers the data from the PRD regions and writes it to the disk")
{
    IdeRig rig;
    std::vector<u8> data(1024);
    for (size_t i = 0; i < data.size(); ++i)
        data[i] = static_cast<u8>(i * 3);
    REQUIRE(GuestMemory(rig.memory).write(DATA, std::span<const u8>(data).subspan(0, 600)));
    REQUIRE(GuestMemory(rig.memory).write(DATA + 0x8000, std::span<const u8>(data).subspan(600)));
    rig.prd_table(TABLE, {{DATA, 600, false}, {DATA + 0x8000, 424, true}});
    rig.lba48(20, 2);
    rig.command(AtaDisk::WRITE_DMA_EXT);
    rig.start_dma(TABLE, false);
    CHECK(!rig.irq); // the data is in; the disk has not written it yet
    CHECK((!(rig.bmis() & BusMasterDma::BMIS_ACTIVE)) != 0);
    rig.deliver();
    CHECK(rig.irq);
    CHECK(rig.status() == (STATUS_DRDY | STATUS_DSC));
    CHECK(rig.disk_bytes(20 * 512, 1024) == data);
}

TEST_CASE("A PRD table longer than the transfer leaves Active set with the interrupt")
{
    IdeRig rig;
    rig.prd_table(TABLE, {{DATA, 4096, true}});
    rig.lba28(0, 1);
    rig.command(AtaDisk::READ_DMA);
    rig.start_dma(TABLE, true);
    rig.deliver();
    CHECK(rig.bmis() == (BusMasterDma::BMIS_ACTIVE | BusMasterDma::BMIS_INTERRUPT));
    rig.bm().io_write(0, 1, 0); // the host stops the engine
    CHECK(rig.bmis() == BusMasterDma::BMIS_INTERRUPT);
}

TEST_CASE("A PRD table shorter than the transfer clears Active, raises no interrupt and leaves the device waiting until SRST")
{
    IdeRig rig;
    rig.prd_table(TABLE, {{DATA, 512, true}});
    rig.lba28(0, 2);
    rig.command(AtaDisk::READ_DMA);
    rig.start_dma(TABLE, true);
    rig.deliver();
    CHECK(!rig.irq);
    CHECK(rig.bmis() == 0);
    CHECK((rig.alt_status() & STATUS_DRQ) != 0);
    rig.command(AtaDisk::IDENTIFY_DEVICE); // refused while DRQ is set
    CHECK(!rig.irq);
    rig.ch().write_device_control(CONTROL_SRST);
    CHECK(rig.alt_status() == STATUS_BSY);
    rig.ch().write_device_control(0);
    CHECK(rig.alt_status() == (STATUS_DRDY | STATUS_DSC));
    CHECK(rig.ch().read_command(2, 1) == 1); // the ATA signature
    CHECK(rig.ch().read_command(3, 1) == 1);
}

TEST_CASE("A PRD region outside RAM sets the DMA error bit and aborts the command")
{
    IdeRig rig;
    rig.prd_table(TABLE, {{0xFEC00000, 512, true}}); // the I/O APIC, not RAM
    rig.lba28(0, 1);
    rig.command(AtaDisk::READ_DMA);
    rig.start_dma(TABLE, true);
    rig.deliver();
    CHECK(rig.irq);
    CHECK(rig.bmis() == (BusMasterDma::BMIS_ERROR | BusMasterDma::BMIS_INTERRUPT));
    CHECK((rig.status() & STATUS_ERR) != 0);
    CHECK(rig.error() == ERROR_ABRT);
}

TEST_CASE("A PRD table outside RAM sets the DMA error bit and a write DMA writes nothing")
{
    IdeRig rig;
    const std::vector<u8> before = rig.disk_bytes(0, 512);
    rig.lba28(0, 1);
    rig.command(AtaDisk::WRITE_DMA);
    rig.start_dma(0x7FFF0000, false); // past the end of RAM
    CHECK(rig.irq);
    CHECK((rig.bmis() & BusMasterDma::BMIS_ERROR) != 0);
    CHECK((rig.status() & STATUS_ERR) != 0);
    CHECK(rig.deliver() == 0);
    CHECK(rig.disk_bytes(0, 512) == before);
}

TEST_CASE("A PRD table with no end stops after one 64 KiB region of entries")
{
    IdeRig rig;
    // 8192 two-byte entries without EOT: 16 KiB, less than the transfer.
    std::vector<IdeRig::Prd> entries(BusMasterDma::MAX_PRD_ENTRIES, {DATA, 2, false});
    rig.prd_table(TABLE, entries);
    rig.lba28(0, 64);
    rig.command(AtaDisk::READ_DMA);
    rig.start_dma(TABLE, true);
    rig.deliver();
    CHECK((rig.bmis() & BusMasterDma::BMIS_ERROR) != 0);
    CHECK((rig.status() & STATUS_ERR) != 0);
}

TEST_CASE("BMIS error and interrupt bits clear when written with one and the drive bits keep what is written")
{
    PhysicalMemory memory(2 << 20);
    BusMasterDma bm{GuestMemory(memory)};
    bm.interrupt_raised();
    bm.write(2, 1, BusMasterDma::BMIS_DRIVE0_DMA | BusMasterDma::BMIS_ACTIVE);
    CHECK(bm.read(2, 1) == (BusMasterDma::BMIS_INTERRUPT | BusMasterDma::BMIS_DRIVE0_DMA));
    bm.write(2, 1, BusMasterDma::BMIS_INTERRUPT);
    CHECK(bm.read(2, 1) == 0);
    bm.write(4, 4, 0x12345677);
    CHECK(bm.read(4, 4) == 0x12345674);
    bm.write(0, 1, 0xFF);
    CHECK(bm.read(0, 1) == (BusMasterDma::BMIC_START | BusMasterDma::BMIC_WRITE_TO_MEMORY));
}
