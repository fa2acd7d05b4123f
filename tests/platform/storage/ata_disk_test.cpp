#include "tests/platform/storage/ide_test_rig.h"

using namespace ata;

namespace {
u16 word(const std::vector<u8>& data, unsigned index)
{
    return static_cast<u16>(data[2 * index] | data[2 * index + 1] << 8);
}
} // namespace

TEST_CASE("IDENTIFY DEVICE reports the size for LBA28 and LBA48, DMA, the cache commands and a valid checksum")
{
    IdeRig rig;
    rig.reg(6, 0xA0);
    rig.command(AtaDisk::IDENTIFY_DEVICE);
    CHECK(rig.irq);
    CHECK(rig.alt_status() == (STATUS_DRDY | STATUS_DSC | STATUS_DRQ));
    rig.status(); // acknowledges
    CHECK(!rig.irq);
    const std::vector<u8> id = rig.read_pio(512);
    CHECK(rig.alt_status() == (STATUS_DRDY | STATUS_DSC));
    const u32 sectors = IdeRig::DISK_BYTES / 512;
    CHECK(word(id, 0) == 0x0040);
    CHECK((word(id, 60) | u32(word(id, 61)) << 16) == sectors);
    CHECK((word(id, 100) | u32(word(id, 101)) << 16) == sectors);
    CHECK((word(id, 49) & (1u << 9)) != 0); // LBA
    CHECK((word(id, 49) & (1u << 8)) != 0); // DMA
    CHECK((word(id, 83) & (1u << 10)) != 0); // 48-bit
    CHECK((word(id, 83) & (1u << 12)) != 0); // FLUSH CACHE
    CHECK((word(id, 83) & (1u << 13)) != 0); // FLUSH CACHE EXT
    CHECK((word(id, 85) & (1u << 5)) != 0);  // write cache on
    CHECK(word(id, 47) == (0x8000 | AtaDisk::MAX_MULTIPLE));
    CHECK((word(id, 63) & 0x7) == 0x7); // MWDMA 0-2
    // The model string, high byte first in each word.
    CHECK(id[54] == 'I');
    CHECK(id[55] == 'V');
    u8 sum = 0;
    for (u8 b : id)
        sum = static_cast<u8>(sum + b);
    CHECK((id[510]) == 0xA5);
    CHECK(sum == 0);
}

TEST_CASE("A PIO read is busy until the disk answers and interrupts once per DRQ block")
{
    IdeRig rig;
    rig.lba28(5, 2);
    rig.command(AtaDisk::READ_SECTORS);
    CHECK((rig.alt_status() & STATUS_BSY) != 0);
    CHECK(!rig.irq);
    CHECK(rig.deliver() == 1);
    CHECK(rig.irq);
    CHECK(rig.status() == (STATUS_DRDY | STATUS_DSC | STATUS_DRQ));
    std::vector<u8> first = rig.read_pio(512);
    CHECK(first[0] == IdeRig::pattern(5, 0));
    CHECK(first[511] == IdeRig::pattern(5, 511));
    CHECK((rig.alt_status() & STATUS_BSY) != 0); // fetching the second sector
    rig.deliver();
    CHECK(rig.irq_edges == 2);
    rig.status();
    std::vector<u8> second = rig.read_pio(512);
    CHECK(second[3] == IdeRig::pattern(6, 3));
    // After the last block: ready, and no interrupt.
    CHECK(rig.alt_status() == (STATUS_DRDY | STATUS_DSC));
    CHECK(!rig.irq);
}

TEST_CASE("A PIO write asks for the first block without an interrupt and completes with one")
{
    IdeRig rig;
    rig.lba28(9, 1);
    rig.command(AtaDisk::WRITE_SECTORS);
    CHECK(rig.alt_status() == (STATUS_DRDY | STATUS_DSC | STATUS_DRQ));
    CHECK(!rig.irq);
    std::vector<u8> data(512, 0x5A);
    rig.write_pio(data);
    CHECK((rig.alt_status() & STATUS_BSY) != 0);
    rig.deliver();
    CHECK(rig.irq);
    CHECK(rig.status() == (STATUS_DRDY | STATUS_DSC));
    CHECK(rig.disk_bytes(9 * 512, 512) == data);
}

TEST_CASE("READ MULTIPLE is refused until SET MULTIPLE MODE, then moves blocks of that many sectors")
{
    IdeRig rig;
    rig.lba28(0, 4);
    rig.command(AtaDisk::READ_MULTIPLE);
    CHECK((rig.status() & STATUS_ERR) != 0);
    CHECK(rig.error() == ERROR_ABRT);
    rig.reg(2, 3); // not a power of two
    rig.command(AtaDisk::SET_MULTIPLE_MODE);
    CHECK((rig.status() & STATUS_ERR) != 0);
    rig.reg(2, 4);
    rig.command(AtaDisk::SET_MULTIPLE_MODE);
    CHECK(rig.status() == (STATUS_DRDY | STATUS_DSC));
    rig.lba28(2, 4);
    rig.command(AtaDisk::READ_MULTIPLE);
    rig.deliver();
    rig.status();
    std::vector<u8> block = rig.read_pio(4 * 512);
    CHECK(block[3 * 512] == IdeRig::pattern(5, 0));
    CHECK(rig.alt_status() == (STATUS_DRDY | STATUS_DSC));
}

TEST_CASE("LBA48 commands take the high bytes from the registers' previous contents")
{
    IdeRig rig;
    rig.lba48(7, 1);
    rig.command(AtaDisk::READ_SECTORS_EXT);
    rig.deliver();
    rig.status();
    CHECK(rig.read_pio(512)[0] == IdeRig::pattern(7, 0));
    // The HOB bit reads back the previous values.
    rig.lba48(0x0102'0000'0003ull, 1);
    rig.ch().write_device_control(CONTROL_HOB);
    CHECK(rig.ch().read_command(5, 1) == 0x01);
    CHECK(rig.ch().read_command(4, 1) == 0x02);
    rig.ch().write_device_control(0);
    CHECK(rig.ch().read_command(3, 1) == 0x03);
    // ... and that sector lies far past the end of the disk.
    rig.command(AtaDisk::READ_SECTORS_EXT);
    CHECK(rig.status() == (STATUS_DRDY | STATUS_DSC | STATUS_ERR));
    CHECK(rig.error() == ERROR_IDNF);
}

TEST_CASE("Sectors past the end of the disk end the command with IDNF and nothing is read or written")
{
    IdeRig rig;
    const u32 sectors = IdeRig::DISK_BYTES / 512;
    rig.lba28(sectors - 1, 2);
    rig.command(AtaDisk::WRITE_DMA);
    CHECK(rig.irq);
    CHECK((rig.status() & STATUS_ERR) != 0);
    CHECK(rig.error() == ERROR_IDNF);
    CHECK(rig.deliver() == 0);
    rig.lba28(sectors - 1, 1);
    rig.command(AtaDisk::READ_VERIFY);
    CHECK(rig.status() == (STATUS_DRDY | STATUS_DSC));
}

TEST_CASE("FLUSH CACHE completes with an interrupt after the disk has flushed")
{
    IdeRig rig;
    rig.command(AtaDisk::FLUSH_CACHE_EXT);
    CHECK((rig.alt_status() & STATUS_BSY) != 0);
    CHECK(rig.deliver() == 1);
    CHECK(rig.irq);
    CHECK(rig.status() == (STATUS_DRDY | STATUS_DSC));
}

TEST_CASE("SET FEATURES switches the write cache and the DMA mode IDENTIFY reports")
{
    IdeRig rig;
    rig.reg(1, 0x82);
    rig.command(AtaDisk::SET_FEATURES);
    rig.deliver(); // the cache is flushed on the way off
    CHECK(rig.status() == (STATUS_DRDY | STATUS_DSC));
    CHECK(!rig.disk().write_cache_enabled());
    CHECK((!(rig.disk().identify()[85] & (1u << 5))) != 0);
    rig.reg(1, 0x03);
    rig.reg(2, 0x22); // MWDMA 2
    rig.command(AtaDisk::SET_FEATURES);
    CHECK(rig.status() == (STATUS_DRDY | STATUS_DSC));
    CHECK(rig.disk().identify()[63] == 0x0407);
    rig.reg(2, 0x77); // no such mode
    rig.command(AtaDisk::SET_FEATURES);
    CHECK((rig.status() & STATUS_ERR) != 0);
    rig.reg(1, 0x99); // no such feature
    rig.command(AtaDisk::SET_FEATURES);
    CHECK(rig.error() == ERROR_ABRT);
}

TEST_CASE("With the write cache off a write completes only after a flush")
{
    IdeRig rig;
    rig.reg(1, 0x82);
    rig.command(AtaDisk::SET_FEATURES);
    rig.deliver();
    rig.status();
    rig.lba28(1, 1);
    rig.command(AtaDisk::WRITE_SECTORS);
    rig.write_pio(std::vector<u8>(512, 1));
    CHECK(rig.deliver() == 1); // the write
    CHECK((rig.alt_status() & STATUS_BSY) != 0);
    CHECK(rig.deliver() == 1); // the flush
    CHECK(rig.status() == (STATUS_DRDY | STATUS_DSC));
}

TEST_CASE("Power management and reset-free commands complete, unknown ones and DEVICE RESET abort")
{
    IdeRig rig;
    rig.command(AtaDisk::CHECK_POWER_MODE);
    CHECK(rig.status() == (STATUS_DRDY | STATUS_DSC));
    CHECK(rig.ch().read_command(2, 1) == 0xFF);
    for (u8 c : {AtaDisk::IDLE_IMMEDIATE, AtaDisk::STANDBY_IMMEDIATE, AtaDisk::IDLE, AtaDisk::STANDBY}) {
        rig.command(c);
        CHECK(rig.status() == (STATUS_DRDY | STATUS_DSC));
    }
    for (u8 c : {u8(0x00), u8(0xA0), u8(0xA1), u8(AtaDisk::DEVICE_RESET), u8(0xF8)}) {
        rig.command(c);
        CHECK(rig.status() == (STATUS_DRDY | STATUS_DSC | STATUS_ERR));
        CHECK(rig.error() == ERROR_ABRT);
    }
}

TEST_CASE("INITIALIZE DEVICE PARAMETERS sets the CHS geometry reads are addressed by")
{
    IdeRig rig;
    rig.reg(2, 32); // sectors per track
    rig.reg(6, 0xA0 | 3); // 4 heads
    rig.command(AtaDisk::INITIALIZE_DEVICE_PARAMETERS);
    CHECK(rig.status() == (STATUS_DRDY | STATUS_DSC));
    // C/H/S 0/1/2 = LBA (0 * 4 + 1) * 32 + 1 = 33.
    rig.reg(2, 1);
    rig.reg(3, 2);
    rig.reg(4, 0);
    rig.reg(5, 0);
    rig.reg(6, 0xA0 | 1);
    rig.command(AtaDisk::READ_SECTORS);
    rig.deliver();
    rig.status();
    CHECK(rig.read_pio(512)[0] == IdeRig::pattern(33, 0));
    rig.reg(3, 0); // sector 0 does not exist
    rig.command(AtaDisk::READ_SECTORS);
    CHECK((rig.status() & STATUS_ERR) != 0);
    CHECK((rig.error() & ERROR_IDNF) != 0);
}

TEST_CASE("A read refused as past the end leaves a disk state that saves and loads")
{
    IdeRig rig;
    rig.lba28(IdeRig::DISK_BYTES / 512 - 1, 1);
    rig.command(AtaDisk::READ_VERIFY); // the last sector: fits
    rig.lba28(IdeRig::DISK_BYTES / 512 - 1, 8);
    rig.command(AtaDisk::READ_SECTORS);
    CHECK(rig.error() == ata::ERROR_IDNF);
    StateVisitor saver = StateVisitor::saver();
    rig.ch().visit_state(saver);
    IdeRig fresh;
    StateVisitor loader = StateVisitor::loader(saver.bytes());
    fresh.ch().visit_state(loader);
    CHECK(loader.ok());
}
