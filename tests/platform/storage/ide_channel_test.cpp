#include "tests/platform/storage/ide_test_rig.h"

using namespace ata;

TEST_CASE("Reading Status acknowledges the interrupt and reading Alternate Status does not")
{
    IdeRig rig;
    rig.command(AtaDisk::CHECK_POWER_MODE);
    CHECK(rig.irq);
    rig.alt_status();
    CHECK(rig.irq);
    rig.status();
    CHECK(!rig.irq);
}

TEST_CASE("nIEN keeps the interrupt line low and the pending interrupt shows when it is cleared")
{
    IdeRig rig;
    rig.ch().write_device_control(CONTROL_NIEN);
    rig.command(AtaDisk::CHECK_POWER_MODE);
    CHECK(!rig.irq);
    CHECK((!(rig.bmis() & BusMasterDma::BMIS_INTERRUPT)) != 0);
    rig.ch().write_device_control(0);
    CHECK(rig.irq);
}

TEST_CASE("An absent slave reads status 0 and ignores commands; the master's interrupt is not its")
{
    IdeRig rig;
    rig.command(AtaDisk::CHECK_POWER_MODE);
    CHECK(rig.irq);
    rig.reg(6, 0xB0); // the slave
    CHECK(!rig.irq);
    CHECK(rig.alt_status() == 0);
    rig.command(AtaDisk::IDENTIFY_DEVICE);
    CHECK(rig.alt_status() == 0);
    CHECK(rig.ch().read_command(6, 1) == 0xB0);
    rig.reg(6, 0xA0);
    CHECK(rig.irq); // still pending on the master
}

TEST_CASE("A channel with no drives reads 0 and its status never shows busy")
{
    IdeRig rig;
    IdeChannel& empty = rig.ide.channel(1);
    empty.write_command(2, 1, 0x55);
    CHECK(empty.read_command(2, 1) == 0);
    CHECK(empty.read_command(7, 1) == 0);
    empty.write_command(7, 1, AtaDisk::IDENTIFY_DEVICE);
    CHECK(empty.read_alt_status() == 0);
}

TEST_CASE("A command written while the device is busy is ignored")
{
    IdeRig rig;
    rig.lba28(0, 1);
    rig.command(AtaDisk::READ_SECTORS);
    rig.command(AtaDisk::CHECK_POWER_MODE);
    CHECK((rig.alt_status() & STATUS_BSY) != 0);
    rig.deliver();
    CHECK(rig.alt_status() == (STATUS_DRDY | STATUS_DSC | STATUS_DRQ));
}

TEST_CASE("SRST drops a request in flight: its late completion changes nothing")
{
    IdeRig rig;
    rig.lba28(0, 1);
    rig.command(AtaDisk::READ_SECTORS);
    rig.ch().write_device_control(CONTROL_SRST);
    rig.ch().write_device_control(0);
    CHECK(rig.deliver() == 1);
    CHECK(!rig.irq);
    CHECK(rig.alt_status() == (STATUS_DRDY | STATUS_DSC));
    CHECK(rig.ch().read_command(0, 2) == 0); // no data to read
}

TEST_CASE("Data port accesses without DRQ move nothing")
{
    IdeRig rig;
    rig.ch().write_command(0, 2, 0x1234);
    CHECK(rig.ch().read_command(0, 2) == 0);
    CHECK(rig.ch().read_command(0, 4) == 0);
    rig.command(AtaDisk::IDENTIFY_DEVICE);
    // 32-bit reads move four bytes at a time.
    for (int i = 0; i < 128; ++i)
        rig.ch().read_command(0, 4);
    CHECK(rig.alt_status() == (STATUS_DRDY | STATUS_DSC));
}

TEST_CASE("The IDE function identifies as a PIIX3 IDE controller in legacy mode with its BAR at BMIBA")
{
    IdeRig rig;
    CHECK(rig.ide.config_read(PciDevice::VENDOR_ID, 2) == PiixIde::VENDOR);
    CHECK(rig.ide.config_read(PciDevice::DEVICE_ID, 2) == PiixIde::DEVICE);
    CHECK(rig.ide.config_read(PciDevice::CLASS_CODE, 3) == 0x010180);
    CHECK(rig.ide.bar_address(PiixIde::BMIBA_BAR) == PiixIde::FIRMWARE_BMIBA);
    CHECK((rig.ide.config_read(PiixIde::IDETIM_PRIMARY, 2) & PiixIde::IDETIM_DECODE_ENABLE) != 0);
}

TEST_CASE("The legacy ports answer only while IDETIM decodes the channel and BARs do not claim taken ports")
{
    IdeRig rig;
    PortBus ports;
    rig.ide.attach_legacy_ports(ports);
    CHECK(ports.read(0x1F7, 1) == (STATUS_DRDY | STATUS_DSC));
    rig.ide.config_write(PiixIde::IDETIM_PRIMARY, 2, 0);
    CHECK(ports.read(0x1F7, 1) == 0xFF);
    // A BAR placed over taken ports does not decode; the owner keeps them.
    CHECK(!ports.try_map(0x1F0, 16, &rig.bm()));
    CHECK(ports.try_map(0xC000, 16, &rig.bm()));
    ports.unmap(0xC000, &rig.bm());
    CHECK(ports.try_map(0xC000, 16, &rig.bm()));
}

TEST_CASE("The IDE state saved, loaded into a fresh controller and saved again is the same")
{
    IdeRig rig;
    rig.reg(2, 4);
    rig.command(AtaDisk::SET_MULTIPLE_MODE);
    rig.lba28(3, 2);
    rig.command(AtaDisk::READ_SECTORS);
    rig.deliver(); // a PIO block waits for the host
    rig.read_pio(100);
    StateVisitor saver = StateVisitor::saver();
    rig.ide.visit_state(saver);

    IdeRig other;
    StateVisitor loader = StateVisitor::loader(saver.bytes());
    other.ide.visit_state(loader);
    REQUIRE(loader.ok());
    CHECK(loader.at_end());
    StateVisitor again = StateVisitor::saver();
    other.ide.visit_state(again);
    CHECK(again.bytes() == saver.bytes());
    // The loaded drive goes on where the saved one was.
    const std::vector<u8> rest = other.read_pio(412);
    CHECK(rest[0] == IdeRig::pattern(3, 100));
    CHECK((other.alt_status() & STATUS_BSY) != 0);
}

TEST_CASE("A damaged IDE state is refused instead of pointing the data port past the buffer")
{
    IdeRig rig;
    rig.command(AtaDisk::IDENTIFY_DEVICE);
    StateVisitor saver = StateVisitor::saver();
    rig.ide.visit_state(saver);
    std::vector<u8> bytes = saver.bytes();
    IdeRig other;
    // Every byte flipped in turn: a load either fails or leaves a usable device.
    for (size_t i = 0; i < bytes.size(); i += 7) {
        std::vector<u8> damaged = bytes;
        damaged[i] ^= 0xFF;
        StateVisitor loader = StateVisitor::loader(damaged);
        other.ide.visit_state(loader);
        for (int n = 0; n < 300; ++n)
            other.ch().read_command(0, 2);
    }
}
