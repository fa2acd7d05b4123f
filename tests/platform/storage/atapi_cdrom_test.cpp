#include "platform/storage/atapi_cdrom.h"

#include "tests/platform/storage/ide_test_rig.h"

#include <array>

namespace {

// The IDE rig with an ATAPI drive as primary slave: a 64-block disc whose
// byte i of block b is (b * 13 + i) & 0xFF.
struct CdRig : IdeRig {
    static constexpr u64 DISC_BLOCKS = 64;
    static constexpr u32 BLOCK = AtapiCdrom::BLOCK_SIZE;

    struct Result {
        u8 status = 0;
        u8 error = 0;
        u8 reason = 0;
        std::vector<u8> data;
        std::vector<u16> block_sizes; // the byte count of each DRQ block
        u8 key() const { return error >> 4; } // the sense key in the error register
    };

    explicit CdRig(bool with_disc = true)
    {
        ch().attach(1, std::make_unique<AtapiCdrom>(with_disc ? make_disc("disc.iso", DISC_BLOCKS)
                                                              : nullptr,
                                                    "CD0"));
        select();
    }

    std::unique_ptr<BlockDevice> make_disc(const std::string& name, u64 blocks)
    {
        REQUIRE(!create_image(dir.file(name), {"raw", blocks * BLOCK, {}, ""}).is_error());
        auto opened = open_image(dir.file(name), {"raw"});
        REQUIRE(!opened.is_error());
        std::vector<u8> block(BLOCK);
        for (u64 b = 0; b < std::min<u64>(blocks, DISC_BLOCKS); ++b) {
            for (unsigned i = 0; i < BLOCK; ++i)
                block[i] = pattern(b, i);
            REQUIRE(!opened.value().image->write(b * BLOCK, block).is_error());
        }
        return std::make_unique<BlockDevice>(std::move(opened.value().image),
                                             BlockDevice::Execution::Inline,
                                             [this](std::function<void()> deliver) {
                                                 std::lock_guard lock(mutex);
                                                 posted.push_back(std::move(deliver));
                                             });
    }
    static u8 pattern(u64 block, unsigned i) { return static_cast<u8>(block * 13 + i); }

    AtapiCdrom& cd() { return static_cast<AtapiCdrom&>(*ch().device(1)); }
    void select() { reg(6, 0xB0); }

    // Sends a PACKET command with `cdb` and runs it to the end: PIO blocks
    // are read as the byte count register announces them.
    Result packet(std::array<u8, 12> cdb, u16 byte_limit = 0xFFFE, bool dma = false)
    {
        reg(1, dma ? 1 : 0);
        reg(4, static_cast<u8>(byte_limit));
        reg(5, static_cast<u8>(byte_limit >> 8));
        command(AtapiCdrom::PACKET);
        // The CDB is asked for at once, without an interrupt (DRQ within 50 us).
        REQUIRE((alt_status() & ata::STATUS_DRQ) != 0);
        CHECK(reg_read(2) == AtapiCdrom::REASON_COD);
        for (unsigned i = 0; i < 12; i += 2)
            ch().write_command(0, 2, cdb[i] | cdb[i + 1] << 8);
        return finish();
    }
    Result finish()
    {
        Result r;
        for (unsigned round = 0; round < 10000; ++round) {
            deliver();
            if (alt_status() & ata::STATUS_BSY)
                continue;
            const u8 st = status(); // acknowledges the interrupt, as a host does

            if (!(st & ata::STATUS_DRQ))
                break;
            const bool dma_waiting = reg_read(2) != AtapiCdrom::REASON_IO;
            if (dma_waiting)
                break; // a DMA command waits for the engine
            const u16 bytes = static_cast<u16>(reg_read(4) | reg_read(5) << 8);
            r.block_sizes.push_back(bytes);
            std::vector<u8> block = read_pio(bytes);
            block.resize(bytes);
            r.data.insert(r.data.end(), block.begin(), block.end());
        }
        r.status = alt_status();
        r.error = error();
        r.reason = reg_read(2);
        return r;
    }
    u8 reg_read(unsigned offset) { return static_cast<u8>(ch().read_command(offset, 1)); }

    // REQUEST SENSE: (key, ASC, ASCQ).
    std::array<u8, 3> sense()
    {
        const Result r = packet({AtapiCdrom::REQUEST_SENSE, 0, 0, 0, 18});
        REQUIRE(r.data.size() == 18);
        return {static_cast<u8>(r.data[2] & 0x0F), r.data[12], r.data[13]};
    }
    static bool good(const Result& r)
    {
        return !(r.status & ata::STATUS_ERR) &&
               r.reason == (AtapiCdrom::REASON_IO | AtapiCdrom::REASON_COD);
    }
    static std::array<u8, 12> read10(u32 lba, u16 count)
    {
        return {AtapiCdrom::READ_10, 0, static_cast<u8>(lba >> 24), static_cast<u8>(lba >> 16),
                static_cast<u8>(lba >> 8), static_cast<u8>(lba), 0, static_cast<u8>(count >> 8),
                static_cast<u8>(count), 0, 0, 0};
    }
    bool matches_disc(const std::vector<u8>& data, u64 first_block)
    {
        for (size_t i = 0; i < data.size(); ++i)
            if (data[i] != pattern(first_block + i / BLOCK, static_cast<unsigned>(i % BLOCK)))
                return false;
        return true;
    }
};

using Sense = std::array<u8, 3>;

} // namespace

TEST_CASE("An ATAPI drive shows the packet signature EB14h and DRDY clear after reset")
{
    CdRig rig;
    rig.ch().reset();
    rig.select();
    CHECK(rig.reg_read(4) == 0x14);
    CHECK(rig.reg_read(5) == 0xEB);
    CHECK(rig.reg_read(2) == 1);
    CHECK(rig.reg_read(3) == 1);
    CHECK(rig.alt_status() == 0);
}

TEST_CASE("IDENTIFY DEVICE to an ATAPI drive aborts and leaves the signature")
{
    CdRig rig;
    rig.reg(4, 0);
    rig.reg(5, 0);
    rig.command(AtapiCdrom::IDENTIFY_DEVICE);
    CHECK((rig.status() & ata::STATUS_ERR) != 0);
    CHECK(rig.error() == ata::ERROR_ABRT);
    CHECK(rig.reg_read(4) == 0x14);
    CHECK(rig.reg_read(5) == 0xEB);
}

TEST_CASE("IDENTIFY PACKET DEVICE describes a removable CD-ROM drive with DMA")
{
    CdRig rig;
    rig.command(AtapiCdrom::IDENTIFY_PACKET_DEVICE);
    CHECK(rig.irq);
    REQUIRE((rig.status() & ata::STATUS_DRQ) != 0);
    const std::vector<u8> id = rig.read_pio(512);
    CHECK((id[0] | id[1] << 8) == 0x85C0);
    CHECK(std::string(id.begin() + 54, id.begin() + 70) == "IVIRIDNAD DVR-MO"); // byte-swapped words
    CHECK(((id[98] | id[99] << 8) & 0x0300) == 0x0300);
    u8 sum = 0;
    for (u8 b : id)
        sum = static_cast<u8>(sum + b);
    CHECK(sum == 0);
    CHECK((rig.alt_status() & ata::STATUS_DRQ) == 0);
}

TEST_CASE("TEST UNIT READY is good with a disc in the closed tray")
{
    CdRig rig;
    rig.irq_edges = 0;
    CHECK(CdRig::good(rig.packet({AtapiCdrom::TEST_UNIT_READY})));
    CHECK(rig.irq_edges == 1);
}

TEST_CASE("An empty drive answers NOT READY, MEDIUM NOT PRESENT and still answers INQUIRY")
{
    CdRig rig(false);
    const CdRig::Result r = rig.packet({AtapiCdrom::TEST_UNIT_READY});
    CHECK((r.status & ata::STATUS_ERR) != 0);
    CHECK(r.key() == AtapiCdrom::NOT_READY);
    CHECK(rig.sense() == Sense{AtapiCdrom::NOT_READY, 0x3A, 0x01});
    CHECK(rig.packet({AtapiCdrom::READ_CAPACITY}).key() == AtapiCdrom::NOT_READY);
    CHECK(rig.packet(CdRig::read10(0, 1)).key() == AtapiCdrom::NOT_READY);
    const CdRig::Result inquiry = rig.packet({AtapiCdrom::INQUIRY, 0, 0, 0, 36});
    CHECK(CdRig::good(inquiry));
    CHECK(inquiry.data.size() == 36);
}

TEST_CASE("INQUIRY reports a removable CD/DVD device and honours the allocation length")
{
    CdRig rig;
    const CdRig::Result full = rig.packet({AtapiCdrom::INQUIRY, 0, 0, 0, 96});
    REQUIRE(full.data.size() == 36);
    CHECK(full.data[0] == 0x05);
    CHECK(full.data[1] == 0x80);
    CHECK(std::string(full.data.begin() + 8, full.data.begin() + 16) == "VIRIDIAN");
    CHECK(rig.packet({AtapiCdrom::INQUIRY, 0, 0, 0, 5}).data.size() == 5);
    CHECK(CdRig::good(rig.packet({AtapiCdrom::INQUIRY, 0, 0, 0, 0})));
    // Vital product data pages are not there.
    CHECK(rig.packet({AtapiCdrom::INQUIRY, 1, 0x80, 0, 96}).key() == AtapiCdrom::ILLEGAL_REQUEST);
    CHECK(rig.sense() == Sense{AtapiCdrom::ILLEGAL_REQUEST, 0x24, 0});
}

TEST_CASE("READ CAPACITY gives the last block and 2048-byte blocks")
{
    CdRig rig;
    const CdRig::Result r = rig.packet({AtapiCdrom::READ_CAPACITY});
    REQUIRE(r.data.size() == 8);
    CHECK(r.data == std::vector<u8>{0, 0, 0, 63, 0, 0, 0x08, 0});
}

TEST_CASE("READ(10) by PIO moves DRQ blocks of the byte count limit, each with an interrupt")
{
    CdRig rig;
    rig.irq_edges = 0;
    const CdRig::Result r = rig.packet(CdRig::read10(5, 3), 2048);
    CHECK(CdRig::good(r));
    REQUIRE(r.data.size() == 3 * 2048);
    CHECK(rig.matches_disc(r.data, 5));
    CHECK(r.block_sizes == std::vector<u16>{2048, 2048, 2048});
    CHECK(rig.irq_edges == 4); // three blocks and the status
}

TEST_CASE("READ(12) by PIO with an odd byte count limit takes whole words, across buffer refills")
{
    CdRig rig;
    const CdRig::Result r = rig.packet({AtapiCdrom::READ_12, 0, 0, 0, 0, 2, 0, 0, 0, 40}, 0xFFFF);
    CHECK(CdRig::good(r));
    REQUIRE(r.data.size() == 40 * 2048);
    CHECK(rig.matches_disc(r.data, 2));
    for (u16 size : r.block_sizes)
        CHECK(size % 2 == 0);
    const CdRig::Result odd = rig.packet(CdRig::read10(0, 1), 1001);
    CHECK(CdRig::good(odd));
    CHECK(odd.block_sizes.front() == 1000);
    CHECK(rig.matches_disc(odd.data, 0));
}

TEST_CASE("READ(10) by bus-master DMA lands in guest memory and ends with the interrupt")
{
    CdRig rig;
    rig.prd_table(0x1000, {{0x10000, 4096, false}, {0x20000, 2048, true}});
    rig.start_dma(0x1000, true);
    const CdRig::Result r = rig.packet(CdRig::read10(10, 3), 0, true);
    CHECK(CdRig::good(r));
    CHECK(r.data.empty());
    std::vector<u8> got(6144);
    REQUIRE(GuestMemory(rig.memory).read(0x10000, got.data(), 4096));
    REQUIRE(GuestMemory(rig.memory).read(0x20000, got.data() + 4096, 2048));
    CHECK(rig.matches_disc(got, 10));
    CHECK((rig.bmis() & BusMasterDma::BMIS_INTERRUPT) != 0);
}

TEST_CASE("A DMA command waits with DRQ until the engine starts")
{
    CdRig rig;
    rig.prd_table(0x1000, {{0x10000, 36, true}});
    const CdRig::Result waiting = rig.packet({AtapiCdrom::INQUIRY, 0, 0, 0, 36}, 0, true);
    CHECK((waiting.status & ata::STATUS_DRQ) != 0);
    rig.start_dma(0x1000, true);
    CHECK(CdRig::good(rig.finish()));
    u8 type = 0;
    REQUIRE(GuestMemory(rig.memory).read(0x10000, &type, 1));
    CHECK(type == 0x05);
}

TEST_CASE("A DMA READ too large for one pass is refused as an invalid field")
{
    CdRig rig;
    rig.cd().insert_disc(rig.make_disc("big.iso", AtapiCdrom::MAX_DMA_BLOCKS + 8));
    (void)rig.packet({AtapiCdrom::TEST_UNIT_READY}); // the unit attention
    const CdRig::Result r = rig.packet(
        {AtapiCdrom::READ_12, 0, 0, 0, 0, 0, 0, 0, 0x40, 0x01}, 0, true); // 16385 blocks
    CHECK(r.key() == AtapiCdrom::ILLEGAL_REQUEST);
    CHECK(rig.sense() == Sense{AtapiCdrom::ILLEGAL_REQUEST, 0x24, 0});
}

TEST_CASE("READ past the last block is ILLEGAL REQUEST, LOGICAL BLOCK ADDRESS OUT OF RANGE")
{
    CdRig rig;
    CHECK(rig.packet(CdRig::read10(63, 2)).error == AtapiCdrom::ILLEGAL_REQUEST << 4);
    CHECK(rig.sense() == Sense{AtapiCdrom::ILLEGAL_REQUEST, 0x21, 0});
    CHECK(rig.packet({AtapiCdrom::READ_12, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF})
              .key() == AtapiCdrom::ILLEGAL_REQUEST);
    // A read of no blocks is good and moves nothing.
    const CdRig::Result none = rig.packet(CdRig::read10(0, 0));
    CHECK(CdRig::good(none));
    CHECK(none.data.empty());
}

TEST_CASE("READ TOC format 0 lists track 1 and the lead-out, in LBA or MSF")
{
    CdRig rig;
    const CdRig::Result lba = rig.packet({AtapiCdrom::READ_TOC, 0, 0, 0, 0, 0, 0, 0, 100});
    REQUIRE(lba.data.size() == 20);
    CHECK(lba.data[1] == 18);
    CHECK(lba.data[2] == 1);
    CHECK(lba.data[3] == 1);
    CHECK(lba.data[5] == 0x14);
    CHECK(lba.data[6] == 1);
    CHECK(lba.data[14] == 0xAA);
    CHECK(lba.data[19] == 64); // the lead-out starts after the last block
    const CdRig::Result msf = rig.packet({AtapiCdrom::READ_TOC, 2, 0, 0, 0, 0, 0, 0, 100});
    REQUIRE(msf.data.size() == 20);
    CHECK(std::vector<u8>(msf.data.begin() + 8, msf.data.begin() + 12) ==
          std::vector<u8>{0, 0, 2, 0}); // 00:02:00
    CHECK(std::vector<u8>(msf.data.begin() + 16, msf.data.end()) ==
          std::vector<u8>{0, 0, 2, 64});
    // Starting at the lead-out lists only it; a track past 1 is no track.
    CHECK(rig.packet({AtapiCdrom::READ_TOC, 0, 0, 0, 0, 0, 0xAA, 0, 100}).data.size() == 12);
    CHECK(rig.packet({AtapiCdrom::READ_TOC, 0, 0, 0, 0, 0, 2, 0, 100}).key() ==
          AtapiCdrom::ILLEGAL_REQUEST);
}

TEST_CASE("READ TOC format 1 gives one session, also asked for in byte 9 as Linux does")
{
    CdRig rig;
    for (auto cdb : {std::array<u8, 12>{AtapiCdrom::READ_TOC, 0, 1, 0, 0, 0, 0, 0, 12},
                     std::array<u8, 12>{AtapiCdrom::READ_TOC, 0, 0, 0, 0, 0, 0, 0, 12, 0x40}}) {
        const CdRig::Result r = rig.packet(cdb);
        REQUIRE(r.data.size() == 12);
        CHECK(r.data[1] == 10);
        CHECK(r.data[2] == 1);
        CHECK(r.data[3] == 1);
        CHECK(r.data[6] == 1);
    }
    CHECK(rig.packet({AtapiCdrom::READ_TOC, 0, 5, 0, 0, 0, 0, 0, 12}).key() ==
          AtapiCdrom::ILLEGAL_REQUEST);
}

TEST_CASE("GET CONFIGURATION reports the CD-ROM profile and the core, morphing and removable-medium features")
{
    CdRig rig;
    const CdRig::Result all = rig.packet({AtapiCdrom::GET_CONFIGURATION, 0, 0, 0, 0, 0, 0, 1, 0});
    REQUIRE(all.data.size() == 8 + 12 + 8 + 8 + 8);
    CHECK((all.data[6] << 8 | all.data[7]) == 0x0008);
    CHECK(all.data[3] == all.data.size() - 4);
    CHECK(all.data[9] == 0x00); // profile list first
    CHECK(all.data[13] == 0x10);
    CHECK(all.data[14] == 0);    // DVD-ROM not current
    CHECK(all.data[18] == 1);    // CD-ROM current
    CHECK(all.data[29] == 0x02); // morphing
    CHECK(all.data[32] == 0x02); // OCEvent
    // One feature (RT 2): removable medium, a tray that ejects and locks.
    const CdRig::Result one = rig.packet({AtapiCdrom::GET_CONFIGURATION, 2, 0, 3, 0, 0, 0, 0, 16});
    REQUIRE(one.data.size() == 16);
    CHECK(one.data[9] == 0x03);
    CHECK(one.data[12] == 0x29);
    CHECK(rig.packet({AtapiCdrom::GET_CONFIGURATION, 3}).key() == AtapiCdrom::ILLEGAL_REQUEST);
}

TEST_CASE("GET CONFIGURATION calls a disc larger than a CD a DVD and an empty drive profile-less")
{
    CdRig big;
    big.cd().insert_disc(big.make_disc("dvd.iso", AtapiCdrom::CD_MAX_BLOCKS + 1));
    const CdRig::Result dvd = big.packet({AtapiCdrom::GET_CONFIGURATION, 0, 0, 0, 0, 0, 0, 0, 8});
    CHECK((dvd.data[6] << 8 | dvd.data[7]) == 0x0010);
    CdRig empty(false);
    const CdRig::Result none = empty.packet({AtapiCdrom::GET_CONFIGURATION, 0, 0, 0, 0, 0, 0, 0, 8});
    CHECK((none.data[6] << 8 | none.data[7]) == 0);
}

TEST_CASE("MODE SENSE(10) returns the capabilities page and refuses saved values and unknown pages")
{
    CdRig rig;
    const CdRig::Result caps = rig.packet({AtapiCdrom::MODE_SENSE_10, 0, 0x2A, 0, 0, 0, 0, 0, 255});
    REQUIRE(caps.data.size() == 8 + 22);
    CHECK((caps.data[0] << 8 | caps.data[1]) == 28);
    CHECK(caps.data[8] == 0x2A);
    CHECK(caps.data[9] == 20);
    CHECK((caps.data[14] & 0x08) != 0); // eject
    const CdRig::Result all = rig.packet({AtapiCdrom::MODE_SENSE_10, 0, 0x3F, 0, 0, 0, 0, 0, 255});
    CHECK(all.data.size() == 8 + 12 + 8 + 22);
    const CdRig::Result changeable = rig.packet({AtapiCdrom::MODE_SENSE_10, 0, 0x6A, 0, 0, 0, 0, 0, 255});
    REQUIRE(changeable.data.size() == 30);
    CHECK(changeable.data[14] == 0);
    CHECK(rig.packet({AtapiCdrom::MODE_SENSE_10, 0, 0xEA, 0, 0, 0, 0, 0, 255}).key() ==
          AtapiCdrom::ILLEGAL_REQUEST);
    CHECK(rig.sense() == Sense{AtapiCdrom::ILLEGAL_REQUEST, 0x39, 0});
    CHECK(rig.packet({AtapiCdrom::MODE_SENSE_10, 0, 0x05, 0, 0, 0, 0, 0, 255}).key() ==
          AtapiCdrom::ILLEGAL_REQUEST);
    CHECK(rig.sense() == Sense{AtapiCdrom::ILLEGAL_REQUEST, 0x24, 0});
}

TEST_CASE("A new disc raises UNIT ATTENTION once and a media event once")
{
    CdRig rig;
    rig.cd().insert_disc(rig.make_disc("other.iso", 32));
    const std::array<u8, 12> events{AtapiCdrom::GET_EVENT_STATUS_NOTIFICATION, 1, 0, 0, 0x10, 0, 0, 0, 8};
    const CdRig::Result first = rig.packet(events); // allowed while the attention is pending
    REQUIRE(first.data.size() == 8);
    CHECK(first.data[2] == 4);
    CHECK(first.data[4] == 2);    // new media
    CHECK(first.data[5] == 0x02); // present, tray closed
    CHECK(rig.packet(events).data[4] == 0);
    const CdRig::Result tur = rig.packet({AtapiCdrom::TEST_UNIT_READY});
    CHECK(tur.key() == AtapiCdrom::UNIT_ATTENTION);
    CHECK(rig.sense() == Sense{AtapiCdrom::UNIT_ATTENTION, 0x28, 0});
    CHECK(CdRig::good(rig.packet({AtapiCdrom::TEST_UNIT_READY})));
    const CdRig::Result capacity = rig.packet({AtapiCdrom::READ_CAPACITY});
    CHECK(capacity.data[3] == 31);
}

TEST_CASE("REQUEST SENSE reports a pending UNIT ATTENTION and clears it")
{
    CdRig rig;
    rig.cd().insert_disc(rig.make_disc("other.iso", 32));
    CHECK(rig.sense() == Sense{AtapiCdrom::UNIT_ATTENTION, 0x28, 0});
    CHECK(CdRig::good(rig.packet({AtapiCdrom::TEST_UNIT_READY})));
    CHECK(rig.sense() == Sense{AtapiCdrom::NO_SENSE, 0, 0});
}

TEST_CASE("GET EVENT STATUS NOTIFICATION is polled only and says when no class it knows was asked")
{
    CdRig rig;
    CHECK(rig.packet({AtapiCdrom::GET_EVENT_STATUS_NOTIFICATION, 0, 0, 0, 0x10, 0, 0, 0, 8}).key() ==
          AtapiCdrom::ILLEGAL_REQUEST);
    const CdRig::Result r = rig.packet({AtapiCdrom::GET_EVENT_STATUS_NOTIFICATION, 1, 0, 0, 0x02, 0, 0, 0, 8});
    REQUIRE(r.data.size() == 4);
    CHECK(r.data[2] == 0x80); // no event available
    CHECK(r.data[3] == 0x10);
}

TEST_CASE("START STOP UNIT opens and closes the tray unless removal is prevented")
{
    CdRig rig;
    const std::array<u8, 12> eject{AtapiCdrom::START_STOP_UNIT, 0, 0, 0, 0x02};
    const std::array<u8, 12> load{AtapiCdrom::START_STOP_UNIT, 0, 0, 0, 0x03};
    CHECK(CdRig::good(rig.packet({AtapiCdrom::PREVENT_ALLOW_MEDIUM_REMOVAL, 0, 0, 0, 1})));
    CHECK(rig.cd().locked());
    CHECK(rig.packet(eject).key() == AtapiCdrom::ILLEGAL_REQUEST);
    CHECK(rig.sense() == Sense{AtapiCdrom::ILLEGAL_REQUEST, 0x53, 0x02});
    CHECK(CdRig::good(rig.packet({AtapiCdrom::PREVENT_ALLOW_MEDIUM_REMOVAL, 0, 0, 0, 0})));
    CHECK(CdRig::good(rig.packet(eject)));
    CHECK(rig.cd().tray_open());
    CHECK(rig.packet({AtapiCdrom::TEST_UNIT_READY}).key() == AtapiCdrom::NOT_READY);
    CHECK(rig.sense() == Sense{AtapiCdrom::NOT_READY, 0x3A, 0x02});
    const CdRig::Result mech = rig.packet({AtapiCdrom::MECHANISM_STATUS, 0, 0, 0, 0, 0, 0, 0, 0, 8});
    REQUIRE(mech.data.size() == 8);
    CHECK(mech.data[1] == 0x10); // door open
    CHECK(CdRig::good(rig.packet(load)));
    CHECK(CdRig::good(rig.packet({AtapiCdrom::TEST_UNIT_READY})));
}

TEST_CASE("READ DISC INFORMATION describes one complete session; SET CD SPEED is accepted")
{
    CdRig rig;
    const CdRig::Result r = rig.packet({AtapiCdrom::READ_DISC_INFORMATION, 0, 0, 0, 0, 0, 0, 0, 34});
    REQUIRE(r.data.size() == 34);
    CHECK(r.data[1] == 32);
    CHECK(r.data[2] == 0x0E);
    CHECK(r.data[4] == 1);
    CHECK(rig.packet({AtapiCdrom::READ_DISC_INFORMATION, 1, 0, 0, 0, 0, 0, 0, 34}).key() ==
          AtapiCdrom::ILLEGAL_REQUEST);
    CHECK(CdRig::good(rig.packet({AtapiCdrom::SET_CD_SPEED, 0, 0xFF, 0xFF, 0xFF, 0xFF})));
}

TEST_CASE("An unknown SCSI command is CHECK CONDITION, ILLEGAL REQUEST, INVALID COMMAND OPERATION CODE")
{
    CdRig rig;
    const CdRig::Result r = rig.packet({0x2A /* WRITE(10) */, 0, 0, 0, 0, 0, 0, 0, 1});
    CHECK((r.status & ata::STATUS_ERR) != 0);
    CHECK(r.error == 0x50);
    CHECK(r.reason == (AtapiCdrom::REASON_IO | AtapiCdrom::REASON_COD));
    CHECK(rig.sense() == Sense{AtapiCdrom::ILLEGAL_REQUEST, 0x20, 0});
}

TEST_CASE("A byte count limit of 0 for a PIO transfer ends the command with an error, not a hang")
{
    CdRig rig;
    const CdRig::Result r = rig.packet({AtapiCdrom::INQUIRY, 0, 0, 0, 36}, 0);
    CHECK((r.status & ata::STATUS_ERR) != 0);
    CHECK(r.key() == AtapiCdrom::ILLEGAL_REQUEST);
    const CdRig::Result read = rig.packet(CdRig::read10(0, 2), 1);
    CHECK((read.status & (ata::STATUS_ERR | ata::STATUS_BSY | ata::STATUS_DRQ)) == ata::STATUS_ERR);
}

TEST_CASE("A short CDB keeps DRQ until DEVICE RESET, which the drive takes while DRQ is set")
{
    CdRig rig;
    rig.command(AtapiCdrom::PACKET);
    rig.ch().write_command(0, 2, AtapiCdrom::INQUIRY);
    CHECK((rig.alt_status() & ata::STATUS_DRQ) != 0);
    rig.command(AtapiCdrom::IDENTIFY_PACKET_DEVICE); // refused: DRQ is set
    CHECK(rig.reg_read(2) == AtapiCdrom::REASON_COD);
    rig.command(AtapiCdrom::DEVICE_RESET);
    CHECK(rig.alt_status() == 0);
    CHECK(rig.reg_read(5) == 0xEB);
    CHECK(CdRig::good(rig.packet({AtapiCdrom::TEST_UNIT_READY})));
}

TEST_CASE("A disc taken out in the middle of a PIO read ends it NOT READY")
{
    CdRig rig;
    rig.reg(1, 0);
    rig.reg(4, 0x00);
    rig.reg(5, 0x80);
    rig.command(AtapiCdrom::PACKET);
    const std::array<u8, 12> cdb = CdRig::read10(0, 40);
    for (unsigned i = 0; i < 12; i += 2)
        rig.ch().write_command(0, 2, cdb[i] | cdb[i + 1] << 8);
    rig.deliver();
    REQUIRE((rig.alt_status() & ata::STATUS_DRQ) != 0);
    (void)rig.read_pio(0x8000); // the first buffer's worth
    rig.cd().remove_disc();
    const CdRig::Result rest = rig.finish();
    CHECK(rest.key() == AtapiCdrom::NOT_READY);
}

TEST_CASE("ATAPI drive state saves, loads into a fresh drive and saves the same bytes")
{
    CdRig rig;
    (void)rig.packet({AtapiCdrom::PREVENT_ALLOW_MEDIUM_REMOVAL, 0, 0, 0, 1});
    (void)rig.packet({0x2A});
    // Stop in the middle of a PIO read.
    rig.reg(4, 0x00);
    rig.reg(5, 0x08);
    rig.command(AtapiCdrom::PACKET);
    const std::array<u8, 12> cdb = CdRig::read10(3, 2);
    for (unsigned i = 0; i < 12; i += 2)
        rig.ch().write_command(0, 2, cdb[i] | cdb[i + 1] << 8);
    rig.deliver();
    StateVisitor saver = StateVisitor::saver();
    rig.ch().visit_state(saver);

    CdRig fresh;
    StateVisitor loader = StateVisitor::loader(saver.bytes());
    fresh.ch().visit_state(loader);
    REQUIRE(loader.ok());
    StateVisitor again = StateVisitor::saver();
    fresh.ch().visit_state(again);
    CHECK(again.bytes() == saver.bytes());
    CHECK(fresh.cd().locked());
    // The loaded drive carries on with the read.
    const CdRig::Result rest = fresh.finish();
    CHECK(CdRig::good(rest));
    CHECK(rest.data.size() == 2 * 2048);
    CHECK(fresh.matches_disc(rest.data, 3));
}

TEST_CASE("A snapshot with a disc does not load into an empty drive")
{
    CdRig rig;
    StateVisitor saver = StateVisitor::saver();
    rig.ch().visit_state(saver);
    CdRig empty(false);
    StateVisitor loader = StateVisitor::loader(saver.bytes());
    empty.ch().visit_state(loader);
    CHECK(!loader.ok());
}

TEST_CASE("A finished PIO transfer's positions do not stop a later state from loading")
{
    CdRig rig;
    CHECK(CdRig::good(rig.packet(CdRig::read10(0, 1), 2048)));
    // A DMA reply leaves the data port's old positions past the now smaller buffer.
    rig.prd_table(0x1000, {{0x10000, 8, true}});
    rig.start_dma(0x1000, true);
    CHECK(CdRig::good(rig.packet({AtapiCdrom::READ_CAPACITY}, 0, true)));
    StateVisitor saver = StateVisitor::saver();
    rig.ch().visit_state(saver);
    CdRig fresh;
    StateVisitor loader = StateVisitor::loader(saver.bytes());
    fresh.ch().visit_state(loader);
    CHECK(loader.ok());
}

TEST_CASE("The host opens an unlocked tray: the guest sees the medium removed and the tray open")
{
    CdRig rig;
    const std::array<u8, 12> events{
        AtapiCdrom::GET_EVENT_STATUS_NOTIFICATION, 1, 0, 0, 0x10, 0, 0, 0, 8};
    CHECK(rig.cd().host_open_tray(false));
    CHECK(rig.cd().tray_open());
    CHECK_FALSE(rig.cd().host_open_tray(false)); // already open
    const CdRig::Result event = rig.packet(events);
    CHECK(event.data[4] == 3);    // media removal
    CHECK(event.data[5] == 0x01); // tray open, no medium ready
    CHECK(rig.packet({AtapiCdrom::TEST_UNIT_READY}).key() == AtapiCdrom::NOT_READY);
    CHECK(rig.sense() == Sense{AtapiCdrom::NOT_READY, 0x3A, 0x02});
}

TEST_CASE("The host closes the tray on its disc and the guest sees UNIT ATTENTION and new media")
{
    CdRig rig;
    const std::array<u8, 12> events{
        AtapiCdrom::GET_EVENT_STATUS_NOTIFICATION, 1, 0, 0, 0x10, 0, 0, 0, 8};
    rig.cd().host_open_tray(false);
    (void)rig.packet(events);
    CHECK(rig.cd().host_close_tray());
    CHECK_FALSE(rig.cd().host_close_tray()); // already closed
    CHECK(rig.packet(events).data[4] == 2);
    CHECK(rig.packet({AtapiCdrom::TEST_UNIT_READY}).key() == AtapiCdrom::UNIT_ATTENTION);
    CHECK(CdRig::good(rig.packet({AtapiCdrom::TEST_UNIT_READY})));
}

TEST_CASE(
    "A locked tray stays shut for the host's eject button and the guest gets an eject request")
{
    CdRig rig;
    const std::array<u8, 12> events{
        AtapiCdrom::GET_EVENT_STATUS_NOTIFICATION, 1, 0, 0, 0x10, 0, 0, 0, 8};
    CHECK(CdRig::good(rig.packet({AtapiCdrom::PREVENT_ALLOW_MEDIUM_REMOVAL, 0, 0, 0, 1})));
    CHECK_FALSE(rig.cd().host_open_tray(false));
    CHECK_FALSE(rig.cd().tray_open());
    CHECK(rig.cd().locked());
    CHECK(rig.packet(events).data[4] == 1); // eject request
    CHECK(CdRig::good(rig.packet({AtapiCdrom::TEST_UNIT_READY})));
}

TEST_CASE("A forced eject unlocks and opens a locked tray")
{
    CdRig rig;
    CHECK(CdRig::good(rig.packet({AtapiCdrom::PREVENT_ALLOW_MEDIUM_REMOVAL, 0, 0, 0, 1})));
    CHECK(rig.cd().host_open_tray(true));
    CHECK(rig.cd().tray_open());
    CHECK_FALSE(rig.cd().locked());
}

TEST_CASE("The guest's own tray moves are told to the tray listener, the host's are not")
{
    CdRig rig;
    std::vector<bool> moves;
    rig.cd().set_tray_listener([&](bool open) { moves.push_back(open); });
    const std::array<u8, 12> eject{AtapiCdrom::START_STOP_UNIT, 0, 0, 0, 0x02};
    const std::array<u8, 12> load{AtapiCdrom::START_STOP_UNIT, 0, 0, 0, 0x03};
    CHECK(CdRig::good(rig.packet(eject)));
    CHECK(CdRig::good(rig.packet(eject))); // already open: no move
    CHECK(CdRig::good(rig.packet(load)));
    rig.cd().host_open_tray(false);
    rig.cd().host_close_tray();
    CHECK(moves == std::vector<bool>{true, false});
}
