#include "platform/storage/scsi_disk.h"

#include "mmu/base/state_visitor.h"
#include "platform/block/image_format.h"
#include "platform/storage/scsi.h"
#include "platform/storage/scsi_bus.h"
#include "tests/platform/block/fake_machine.h"
#include "tests/platform/block/temp_dir.h"

#include <doctest/doctest.h>
#include <map>
#include <random>
#include <vector>

namespace {

using Cdb = std::vector<u8>;

// A disk in memory with any sector sizes and size (sectors stored only once
// written), that counts requests and fails them on demand.
class MemoryImage final : public BlockImage {
public:
    MemoryImage(u64 size, u32 logical, u32 physical, bool read_only)
    {
        m_info.format = "vhdx"; // a format whose discard keeps the data
        m_info.virtual_size = size;
        m_info.logical_sector_size = logical;
        m_info.physical_sector_size = physical;
        m_info.read_only = read_only;
    }
    const ImageInfo& info() const override { return m_info; }
    BlockStatus read(u64 offset, std::span<u8> out) override
    {
        ++reads;
        if (fail)
            return block_error(BlockErrorKind::Io, "injected");
        const u32 s = m_info.logical_sector_size;
        for (u64 at = 0; at < out.size(); at += s) {
            auto it = m_sectors.find((offset + at) / s);
            for (u32 i = 0; i < s; ++i)
                out[at + i] = it == m_sectors.end() ? 0 : it->second[i];
        }
        return {};
    }
    BlockStatus write(u64 offset, std::span<const u8> data) override
    {
        ++writes;
        if (fail)
            return block_error(fail_kind, "injected");
        const u32 s = m_info.logical_sector_size;
        for (u64 at = 0; at < data.size(); at += s)
            m_sectors[(offset + at) / s].assign(data.begin() + at, data.begin() + at + s);
        return {};
    }
    BlockStatus flush() override
    {
        ++flushes;
        return {};
    }
    BlockStatus discard(u64, u64) override
    {
        ++discards;
        return {};
    }
    BlockResult<Extent> map(u64 offset, u64 max_length) override
    {
        return Extent{offset, max_length, ExtentKind::Data, {}};
    }
    BlockResult<CheckReport> check(bool) override { return CheckReport{}; }

    unsigned reads = 0, writes = 0, flushes = 0, discards = 0;
    bool fail = false;
    BlockErrorKind fail_kind = BlockErrorKind::Io;

private:
    ImageInfo m_info;
    std::map<u64, std::vector<u8>> m_sectors;
};

struct ScsiRig {
    static constexpr u64 RAW_BYTES = 4 << 20; // 8192 sectors of 512
    static constexpr u64 RAW_BLOCKS = RAW_BYTES / 512;

    TempDir dir;
    FakeMachine machine;
    std::unique_ptr<ScsiDisk> disk;
    MemoryImage* memory = nullptr; // owned by the disk's BlockDevice

    static u8 pattern(u64 sector, unsigned i) { return static_cast<u8>(sector * 7 + i); }

    static ScsiDiskIdentity identity(bool discard = true)
    {
        ScsiDiskIdentity id;
        id.serial = "SN-0042";
        for (unsigned i = 0; i < 16; ++i)
            id.naa[i] = static_cast<u8>(0x10 + i);
        id.discard = discard;
        id.max_transfer_bytes = 1 << 20;
        return id;
    }

    // A raw image file of RAW_BYTES, its first 64 sectors patterned.
    explicit ScsiRig(bool read_only = false, bool discard = true)
    {
        const std::string path = dir.file("disk.img");
        REQUIRE(!create_image(path, {"raw", RAW_BYTES, {}, ""}).is_error());
        {
            auto opened = open_image(path, {"raw"});
            REQUIRE(!opened.is_error());
            std::vector<u8> sector(512);
            for (u64 s = 0; s < 64; ++s) {
                for (unsigned i = 0; i < 512; ++i)
                    sector[i] = pattern(s, i);
                REQUIRE(!opened.value().image->write(s * 512, sector).is_error());
            }
        }
        OpenOptions options{"raw"};
        options.read_only = read_only;
        auto opened = open_image(path, options);
        REQUIRE(!opened.is_error());
        disk = std::make_unique<ScsiDisk>(
            std::make_unique<BlockDevice>(std::move(opened.value().image),
                                          BlockDevice::Execution::Inline, machine.runner()),
            identity(discard));
    }
    // A disk in memory instead.
    ScsiRig(u64 bytes, u32 logical, u32 physical, bool read_only = false)
    {
        auto image = std::make_unique<MemoryImage>(bytes, logical, physical, read_only);
        memory = image.get();
        disk = std::make_unique<ScsiDisk>(
            std::make_unique<BlockDevice>(std::move(image), BlockDevice::Execution::Inline,
                                          machine.runner()),
            identity());
    }

    size_t deliver() { return machine.run_posted(); }

    // Runs one command to its end; its callback must come exactly once.
    ScsiTarget::Result run(const Cdb& cdb, ScsiTarget::Direction direction, std::span<u8> data,
                           u8 lun = 0)
    {
        unsigned calls = 0;
        ScsiTarget::Result result;
        disk->execute({lun, cdb, direction, data}, [&](const ScsiTarget::Result& r) {
            ++calls;
            result = r;
        });
        for (unsigned round = 0; round < 10000 && calls == 0; ++round)
            deliver();
        deliver();
        REQUIRE(calls == 1);
        CHECK(disk->in_flight() == 0);
        return result;
    }
    // A data-in command with a buffer of `size`; the bytes it returned.
    std::vector<u8> in(const Cdb& cdb, size_t size, ScsiTarget::Result* result = nullptr,
                       u8 lun = 0)
    {
        std::vector<u8> buffer(size, 0xEE);
        ScsiTarget::Result r = run(cdb, ScsiTarget::Direction::FromDevice, buffer, lun);
        REQUIRE(r.transferred <= size);
        buffer.resize(r.transferred);
        if (result)
            *result = r;
        else
            CHECK(r.status == scsi::STATUS_GOOD);
        return buffer;
    }
    ScsiTarget::Result out(const Cdb& cdb, std::vector<u8> data)
    {
        return run(cdb, ScsiTarget::Direction::ToDevice, data);
    }
    ScsiTarget::Result none(const Cdb& cdb, u8 lun = 0)
    {
        return run(cdb, ScsiTarget::Direction::None, {}, lun);
    }
};

void check_sense(const ScsiTarget::Result& r, u8 key, u8 asc, u8 ascq = 0)
{
    CHECK(r.status == scsi::STATUS_CHECK_CONDITION);
    REQUIRE(r.sense.size() == 18);
    CHECK(r.sense[0] == 0x70); // fixed format, current
    CHECK(r.sense[7] == 10);
    CHECK((r.sense[2] & 0x0F) == key);
    CHECK(r.sense[12] == asc);
    CHECK(r.sense[13] == ascq);
    CHECK(r.transferred == 0);
}

u32 be32_at(const std::vector<u8>& v, size_t at)
{
    return u32(v[at]) << 24 | u32(v[at + 1]) << 16 | u32(v[at + 2]) << 8 | v[at + 3];
}
u64 be64_at(const std::vector<u8>& v, size_t at)
{
    return u64(be32_at(v, at)) << 32 | be32_at(v, at + 4);
}

Cdb inquiry(u8 evpd, u8 page, u16 allocation = 255)
{
    return {ScsiDisk::INQUIRY,           evpd, page, static_cast<u8>(allocation >> 8),
            static_cast<u8>(allocation), 0};
}
Cdb rw10(u8 op, u32 lba, u16 count, u8 flags = 0)
{
    return {op,
            flags,
            static_cast<u8>(lba >> 24),
            static_cast<u8>(lba >> 16),
            static_cast<u8>(lba >> 8),
            static_cast<u8>(lba),
            0,
            static_cast<u8>(count >> 8),
            static_cast<u8>(count),
            0};
}
Cdb rw16(u8 op, u64 lba, u32 count, u8 flags = 0)
{
    Cdb c(16, 0);
    c[0] = op;
    c[1] = flags;
    for (unsigned i = 0; i < 8; ++i)
        c[2 + i] = static_cast<u8>(lba >> (56 - 8 * i));
    for (unsigned i = 0; i < 4; ++i)
        c[10 + i] = static_cast<u8>(count >> (24 - 8 * i));
    return c;
}
Cdb rw12(u8 op, u32 lba, u32 count)
{
    return {op,
            0,
            static_cast<u8>(lba >> 24),
            static_cast<u8>(lba >> 16),
            static_cast<u8>(lba >> 8),
            static_cast<u8>(lba),
            static_cast<u8>(count >> 24),
            static_cast<u8>(count >> 16),
            static_cast<u8>(count >> 8),
            static_cast<u8>(count),
            0,
            0};
}
Cdb read_capacity_16(u32 allocation = 32)
{
    Cdb c(16, 0);
    c[0] = ScsiDisk::SERVICE_ACTION_IN_16;
    c[1] = ScsiDisk::SA_READ_CAPACITY_16;
    c[13] = static_cast<u8>(allocation);
    c[12] = static_cast<u8>(allocation >> 8);
    return c;
}
Cdb unmap_cdb(u16 length)
{
    return {ScsiDisk::UNMAP,         0, 0, 0, 0, 0, 0, static_cast<u8>(length >> 8),
            static_cast<u8>(length), 0};
}
// An UNMAP parameter list of (lba, count) descriptors.
std::vector<u8> unmap_list(std::initializer_list<std::pair<u64, u32>> ranges)
{
    std::vector<u8> list(8, 0);
    for (auto [lba, count] : ranges) {
        const size_t at = list.size();
        list.resize(at + 16, 0);
        for (unsigned i = 0; i < 8; ++i)
            list[at + i] = static_cast<u8>(lba >> (56 - 8 * i));
        for (unsigned i = 0; i < 4; ++i)
            list[at + 8 + i] = static_cast<u8>(count >> (24 - 8 * i));
    }
    const size_t descriptors = list.size() - 8;
    list[0] = static_cast<u8>((list.size() - 2) >> 8);
    list[1] = static_cast<u8>(list.size() - 2);
    list[2] = static_cast<u8>(descriptors >> 8);
    list[3] = static_cast<u8>(descriptors);
    return list;
}

} // namespace

TEST_CASE("SCSI disk: standard INQUIRY data names an SPC-3 direct-access disk that queues commands")
{
    ScsiRig rig;
    auto d = rig.in(inquiry(0, 0), 96);
    REQUIRE(d.size() == 36);
    CHECK(d[0] == 0x00);       // qualifier 0, direct access
    CHECK(d[1] == 0x00);       // not removable
    CHECK(d[2] == 0x05);       // SPC-3
    CHECK(d[3] == 0x12);       // HISUP, response data format 2
    CHECK(d[4] == 31);         // additional length
    CHECK((d[7] & 0x02) != 0); // CMDQUE
    CHECK(std::string(d.begin() + 8, d.begin() + 16) == "VIRIDIAN");
    CHECK(std::string(d.begin() + 16, d.begin() + 32) == "VIRTUAL DISK    ");
    CHECK(std::string(d.begin() + 32, d.begin() + 36) == "0.1 ");
}

TEST_CASE("SCSI disk: INQUIRY stops at the allocation length and at the buffer")
{
    ScsiRig rig;
    CHECK(rig.in(inquiry(0, 0, 5), 96).size() == 5);
    std::vector<u8> buffer(40, 0xEE);
    ScsiTarget::Result r =
        rig.run(inquiry(0, 0, 255), ScsiTarget::Direction::FromDevice, std::span(buffer).first(8));
    CHECK(r.status == scsi::STATUS_GOOD);
    CHECK(r.transferred == 8);
    CHECK(buffer[8] == 0xEE); // nothing past the buffer the transport gave
    CHECK(rig.in(inquiry(0, 0, 0), 96).empty());
}

TEST_CASE("SCSI disk: VPD page 00h lists the supported pages in ascending order")
{
    ScsiRig rig;
    auto d = rig.in(inquiry(1, 0x00), 255);
    CHECK(d == std::vector<u8>{0x00, 0x00, 0x00, 6, 0x00, 0x80, 0x83, 0xB0, 0xB1, 0xB2});
}

TEST_CASE("SCSI disk: VPD page 80h holds the serial number")
{
    ScsiRig rig;
    auto d = rig.in(inquiry(1, 0x80), 255);
    REQUIRE(d.size() == 4 + 7);
    CHECK(d[1] == 0x80);
    CHECK(d[3] == 7);
    CHECK(std::string(d.begin() + 4, d.end()) == "SN-0042");
}

TEST_CASE("SCSI disk: VPD page 83h holds an NAA 6 designator and a T10 vendor designator")
{
    ScsiRig rig;
    auto d = rig.in(inquiry(1, 0x83), 255);
    REQUIRE(d.size() == 4 + 20 + 4 + 8 + 7);
    CHECK(d[1] == 0x83);
    CHECK(d[3] == d.size() - 4);
    // NAA: binary code set, LU association, type 3, 16 bytes, NAA 6 forced.
    CHECK(d[4] == 0x01);
    CHECK(d[5] == 0x03);
    CHECK(d[7] == 16);
    CHECK(d[8] == 0x60);
    CHECK(d[9] == 0x11);
    CHECK(d[23] == 0x1F);
    // T10 vendor ID: ASCII, type 1, vendor then serial.
    CHECK(d[24] == 0x02);
    CHECK(d[25] == 0x01);
    CHECK(d[27] == 15);
    CHECK(std::string(d.begin() + 28, d.end()) == "VIRIDIANSN-0042");
}

TEST_CASE("SCSI disk: VPD page B0h gives the transfer, UNMAP and WRITE SAME limits")
{
    ScsiRig rig;
    auto d = rig.in(inquiry(1, 0xB0), 255);
    REQUIRE(d.size() == 64);
    CHECK(d[1] == 0xB0);
    CHECK(d[3] == 0x3C);
    CHECK(d[4] == 0x01);                       // WSNZ
    CHECK(be32_at(d, 8) == (1u << 20) / 512);  // maximum transfer length
    CHECK(be32_at(d, 20) == (1u << 30) / 512); // maximum unmap LBA count
    CHECK(be32_at(d, 24) == ScsiDisk::MAX_UNMAP_DESCRIPTORS);
    CHECK(be32_at(d, 28) == 1);                // optimal unmap granularity
    CHECK(be64_at(d, 36) == (1u << 30) / 512); // maximum WRITE SAME length

    ScsiRig no_discard(false, false);
    d = no_discard.in(inquiry(1, 0xB0), 255);
    CHECK(be32_at(d, 20) == 0);
    CHECK(be32_at(d, 24) == 0);
}

TEST_CASE("SCSI disk: VPD page B1h reports a non-rotating medium")
{
    ScsiRig rig;
    auto d = rig.in(inquiry(1, 0xB1), 255);
    REQUIRE(d.size() == 64);
    CHECK(d[3] == 0x3C);
    CHECK(d[4] == 0x00);
    CHECK(d[5] == 0x01);
}

TEST_CASE("SCSI disk: VPD page B2h reports thin provisioning only when the disk discards")
{
    ScsiRig rig;
    auto d = rig.in(inquiry(1, 0xB2), 255);
    REQUIRE(d.size() == 8);
    CHECK(d[3] == 4);
    CHECK(d[5] == (0x80 | 0x40 | 0x20 | 0x04)); // LBPU, LBPWS, LBPWS10, LBPRZ (raw)
    CHECK(d[6] == 0x02);                        // thin provisioned

    ScsiRig sparse(1 << 20, 512, 4096);
    d = sparse.in(inquiry(1, 0xB2), 255);
    CHECK(d[5] == (0x80 | 0x40 | 0x20)); // discards keep the data: no LBPRZ

    ScsiRig no_discard(false, false);
    d = no_discard.in(inquiry(1, 0xB2), 255);
    CHECK(d[5] == 0);
    CHECK(d[6] == 0);
    ScsiRig read_only(true, true);
    d = read_only.in(inquiry(1, 0xB2), 255);
    CHECK(d[5] == 0);
}

TEST_CASE("SCSI disk: INQUIRY refuses an unknown VPD page, a page without EVPD and CMDDT")
{
    ScsiRig rig;
    ScsiTarget::Result r;
    rig.in(inquiry(1, 0x89), 255, &r);
    check_sense(r, scsi::ILLEGAL_REQUEST, scsi::ASC_INVALID_FIELD_IN_CDB);
    rig.in(inquiry(0, 0x80), 255, &r);
    check_sense(r, scsi::ILLEGAL_REQUEST, scsi::ASC_INVALID_FIELD_IN_CDB);
    rig.in(inquiry(2, 0), 255, &r);
    check_sense(r, scsi::ILLEGAL_REQUEST, scsi::ASC_INVALID_FIELD_IN_CDB);
}

TEST_CASE("SCSI disk: an absent LUN answers INQUIRY with qualifier 3 and refuses other commands")
{
    ScsiRig rig;
    ScsiTarget::Result r;
    auto d = rig.in(inquiry(0, 0), 96, &r, 1);
    CHECK(r.status == scsi::STATUS_GOOD);
    REQUIRE(d.size() == 36);
    CHECK(d[0] == 0x7F);
    rig.in(inquiry(1, 0x00), 96, &r, 3);
    check_sense(r, scsi::ILLEGAL_REQUEST, scsi::ASC_LOGICAL_UNIT_NOT_SUPPORTED);
    check_sense(rig.none({ScsiDisk::TEST_UNIT_READY, 0, 0, 0, 0, 0}, 1), scsi::ILLEGAL_REQUEST,
                scsi::ASC_LOGICAL_UNIT_NOT_SUPPORTED);
    rig.in(rw10(ScsiDisk::READ_10, 0, 1), 512, &r, 7);
    check_sense(r, scsi::ILLEGAL_REQUEST, scsi::ASC_LOGICAL_UNIT_NOT_SUPPORTED);
    // REQUEST SENSE returns the missing unit as data, with GOOD status.
    d = rig.in({ScsiDisk::REQUEST_SENSE, 0, 0, 0, 18, 0}, 18, &r, 1);
    CHECK(r.status == scsi::STATUS_GOOD);
    REQUIRE(d.size() == 18);
    CHECK(d[0] == 0x70);
    CHECK(d[2] == scsi::ILLEGAL_REQUEST);
    CHECK(d[12] == scsi::ASC_LOGICAL_UNIT_NOT_SUPPORTED);
    // REPORT LUNS gives the real inventory from any LUN.
    d = rig.in({ScsiDisk::REPORT_LUNS, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0}, 64, &r, 2);
    CHECK(r.status == scsi::STATUS_GOOD);
    CHECK(d.size() == 16);
}

TEST_CASE("SCSI disk: REPORT LUNS lists LUN 0 and refuses an allocation under 16")
{
    ScsiRig rig;
    auto d = rig.in({ScsiDisk::REPORT_LUNS, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0}, 256);
    CHECK(d == std::vector<u8>{0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
    d = rig.in({ScsiDisk::REPORT_LUNS, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0}, 256);
    CHECK(d == std::vector<u8>(8, 0)); // well-known units: none
    ScsiTarget::Result r;
    rig.in({ScsiDisk::REPORT_LUNS, 0, 0, 0, 0, 0, 0, 0, 0, 15, 0, 0}, 256, &r);
    check_sense(r, scsi::ILLEGAL_REQUEST, scsi::ASC_INVALID_FIELD_IN_CDB);
    rig.in({ScsiDisk::REPORT_LUNS, 0, 0x10, 0, 0, 0, 0, 0, 1, 0, 0, 0}, 256, &r);
    check_sense(r, scsi::ILLEGAL_REQUEST, scsi::ASC_INVALID_FIELD_IN_CDB);
}

TEST_CASE("SCSI disk: TEST UNIT READY, START STOP UNIT and REQUEST SENSE answer GOOD")
{
    ScsiRig rig;
    CHECK(rig.none({ScsiDisk::TEST_UNIT_READY, 0, 0, 0, 0, 0}).status == scsi::STATUS_GOOD);
    CHECK(rig.none({ScsiDisk::START_STOP_UNIT, 0, 0, 0, 1, 0}).status == scsi::STATUS_GOOD);
    auto d = rig.in({ScsiDisk::REQUEST_SENSE, 0, 0, 0, 252, 0}, 252);
    REQUIRE(d.size() == 18);
    CHECK(d[0] == 0x70);
    CHECK(d[2] == scsi::NO_SENSE);
    CHECK(d[7] == 10);
    CHECK(d[12] == 0);
}

TEST_CASE("SCSI disk: READ CAPACITY(10) and (16) give the last LBA and the block length")
{
    ScsiRig rig;
    auto d = rig.in({ScsiDisk::READ_CAPACITY_10, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 8);
    REQUIRE(d.size() == 8);
    CHECK(be32_at(d, 0) == ScsiRig::RAW_BLOCKS - 1);
    CHECK(be32_at(d, 4) == 512);
    d = rig.in(read_capacity_16(), 32);
    REQUIRE(d.size() == 32);
    CHECK(be64_at(d, 0) == ScsiRig::RAW_BLOCKS - 1);
    CHECK(be32_at(d, 8) == 512);
    CHECK(d[12] == 0);                                    // no protection
    CHECK(d[13] == 0);                                    // one logical block per physical block
    CHECK(d[14] == 0xC0);                                 // LBPME, LBPRZ
    CHECK(rig.in(read_capacity_16(12), 32).size() == 12); // allocation length
    ScsiTarget::Result r;
    rig.in({ScsiDisk::READ_CAPACITY_10, 0, 0, 0, 0, 1, 0, 0, 0, 0}, 8, &r); // LBA without PMI
    check_sense(r, scsi::ILLEGAL_REQUEST, scsi::ASC_INVALID_FIELD_IN_CDB);
}

TEST_CASE("SCSI disk: READ CAPACITY reports 4096-byte sectors and the physical exponent")
{
    ScsiRig rig(u64(1) << 24, 4096, 4096);
    CHECK(rig.disk->block_size() == 4096);
    auto d = rig.in(read_capacity_16(), 32);
    CHECK(be64_at(d, 0) == (u64(1) << 24) / 4096 - 1);
    CHECK(be32_at(d, 8) == 4096);
    CHECK(d[13] == 0);
    CHECK(d[14] == 0x80); // LBPME without LBPRZ
    ScsiRig emulated(u64(1) << 24, 512, 4096);
    d = emulated.in(read_capacity_16(), 32);
    CHECK(be32_at(d, 8) == 512);
    CHECK(d[13] == 3); // 8 logical blocks per physical block
}

TEST_CASE("SCSI disk: READ CAPACITY(10) saturates on a disk past 2 TiB")
{
    ScsiRig rig(u64(3) << 40, 512, 512);
    auto d = rig.in({ScsiDisk::READ_CAPACITY_10, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 8);
    CHECK(be32_at(d, 0) == 0xFFFFFFFF);
    d = rig.in(read_capacity_16(), 32);
    CHECK(be64_at(d, 0) == (u64(3) << 40) / 512 - 1);
}

TEST_CASE("SCSI disk: SERVICE ACTION IN with another action is an invalid field")
{
    ScsiRig rig;
    Cdb c = read_capacity_16();
    c[1] = 0x12; // GET LBA STATUS
    ScsiTarget::Result r;
    rig.in(c, 32, &r);
    check_sense(r, scsi::ILLEGAL_REQUEST, scsi::ASC_INVALID_FIELD_IN_CDB);
}

TEST_CASE("SCSI disk: MODE SENSE(6) gives a block descriptor and the caching page with WCE")
{
    ScsiRig rig;
    auto d = rig.in({ScsiDisk::MODE_SENSE_6, 0, 0x08, 0, 255, 0}, 255);
    REQUIRE(d.size() == 4 + 8 + 20);
    CHECK(d[0] == d.size() - 1); // mode data length
    CHECK(d[1] == 0);            // medium type
    CHECK(d[2] == 0x10);         // DPOFUA, not write protected
    CHECK(d[3] == 8);            // block descriptor length
    CHECK(be32_at(d, 4) == ScsiRig::RAW_BLOCKS);
    CHECK(be32_at(d, 8) == 512); // reserved byte, then the 24-bit block length
    CHECK(d[12] == 0x08);
    CHECK(d[13] == 0x12);
    CHECK(d[14] == 0x04); // WCE, RCD clear
    // DBD: no descriptor; page 3Fh: every page, which is the caching page.
    d = rig.in({ScsiDisk::MODE_SENSE_6, 0x08, 0x3F, 0, 255, 0}, 255);
    REQUIRE(d.size() == 4 + 20);
    CHECK(d[3] == 0);
    CHECK(d[4] == 0x08);
    // The allocation length cuts the reply, not the header's length.
    d = rig.in({ScsiDisk::MODE_SENSE_6, 0, 0x3F, 0, 4, 0}, 255);
    REQUIRE(d.size() == 4);
    CHECK(d[0] == 4 + 8 + 20 - 1);
}

TEST_CASE("SCSI disk: MODE SENSE(10) gives a long LBA descriptor when asked")
{
    ScsiRig rig;
    auto d = rig.in({ScsiDisk::MODE_SENSE_10, 0x10, 0x3F, 0, 0, 0, 0, 0x01, 0x00, 0}, 256);
    REQUIRE(d.size() == 8 + 16 + 20);
    CHECK((u32(d[0]) << 8 | d[1]) == d.size() - 2);
    CHECK(d[3] == 0x10); // DPOFUA
    CHECK(d[4] == 0x01); // LONGLBA
    CHECK(d[7] == 16);
    CHECK(be64_at(d, 8) == ScsiRig::RAW_BLOCKS);
    CHECK(be32_at(d, 20) == 512);
    CHECK(d[24] == 0x08);
    CHECK(d[26] == 0x04);
    d = rig.in({ScsiDisk::MODE_SENSE_10, 0, 0x08, 0, 0, 0, 0, 0x01, 0x00, 0}, 256);
    REQUIRE(d.size() == 8 + 8 + 20);
    CHECK(d[7] == 8);
}

TEST_CASE("SCSI disk: MODE SENSE reports which fields change, refuses saved values and other pages")
{
    ScsiRig rig;
    auto d = rig.in({ScsiDisk::MODE_SENSE_6, 0x08, 0x48, 0, 255, 0}, 255); // changeable
    REQUIRE(d.size() == 24);
    CHECK(d[6] == 0x04);
    CHECK(std::all_of(d.begin() + 7, d.end(), [](u8 b) { return b == 0; }));
    ScsiTarget::Result r;
    rig.in({ScsiDisk::MODE_SENSE_6, 0x08, 0xC8, 0, 255, 0}, 255, &r);
    check_sense(r, scsi::ILLEGAL_REQUEST, scsi::ASC_SAVING_PARAMETERS_NOT_SUPPORTED);
    rig.in({ScsiDisk::MODE_SENSE_6, 0x08, 0x0A, 0, 255, 0}, 255, &r);
    check_sense(r, scsi::ILLEGAL_REQUEST, scsi::ASC_INVALID_FIELD_IN_CDB);
    rig.in({ScsiDisk::MODE_SENSE_6, 0x08, 0x08, 0x01, 255, 0}, 255, &r); // a subpage
    check_sense(r, scsi::ILLEGAL_REQUEST, scsi::ASC_INVALID_FIELD_IN_CDB);
    CHECK(rig.in({ScsiDisk::MODE_SENSE_6, 0x08, 0x3F, 0xFF, 255, 0}, 255).size() == 24);
}

TEST_CASE("SCSI disk: a read-only disk sets WP and refuses writes with DATA PROTECT")
{
    ScsiRig rig(true);
    auto d = rig.in({ScsiDisk::MODE_SENSE_6, 0x08, 0x3F, 0, 255, 0}, 255);
    CHECK(d[2] == 0x90); // WP, DPOFUA
    check_sense(rig.out(rw10(ScsiDisk::WRITE_10, 0, 1), std::vector<u8>(512)), scsi::DATA_PROTECT,
                scsi::ASC_WRITE_PROTECTED);
    check_sense(rig.out({ScsiDisk::WRITE_6, 0, 0, 0, 1, 0}, std::vector<u8>(512)),
                scsi::DATA_PROTECT, scsi::ASC_WRITE_PROTECTED);
    check_sense(rig.out(unmap_cdb(24), unmap_list({{0, 8}})), scsi::DATA_PROTECT,
                scsi::ASC_WRITE_PROTECTED);
    check_sense(rig.out(rw16(ScsiDisk::WRITE_SAME_16, 0, 8, 0x08), std::vector<u8>(512)),
                scsi::DATA_PROTECT, scsi::ASC_WRITE_PROTECTED);
    // Reading and flushing still work.
    CHECK(rig.in(rw10(ScsiDisk::READ_10, 1, 1), 512)[0] == ScsiRig::pattern(1, 0));
    CHECK(rig.none(rw10(ScsiDisk::SYNCHRONIZE_CACHE_10, 0, 0)).status == scsi::STATUS_GOOD);
}

TEST_CASE("SCSI disk: MODE SELECT turns the write cache off and writes become durable one by one")
{
    ScsiRig rig(1 << 20, 512, 512);
    // As Linux's sd writes "write through": a header, no descriptors, the page.
    std::vector<u8> list(4 + 20, 0);
    list[4] = 0x08;
    list[5] = 0x12;
    CHECK(rig.out({ScsiDisk::MODE_SELECT_6, 0x10, 0, 0, 24, 0}, list).status == scsi::STATUS_GOOD);
    CHECK(!rig.disk->write_cache_enabled());
    auto d = rig.in({ScsiDisk::MODE_SENSE_6, 0x08, 0x08, 0, 255, 0}, 255);
    CHECK(d[6] == 0x00);
    CHECK(rig.out(rw10(ScsiDisk::WRITE_10, 0, 1), std::vector<u8>(512, 1)).status ==
          scsi::STATUS_GOOD);
    CHECK(rig.memory->flushes == 1);
    // And back on, through MODE SELECT(10) with a block descriptor.
    std::vector<u8> list10(8 + 8 + 20, 0);
    list10[7] = 8;
    list10[8 + 6] = 0x02; // block length 512
    list10[16] = 0x08;
    list10[17] = 0x12;
    list10[18] = 0x04;
    CHECK(rig.out({ScsiDisk::MODE_SELECT_10, 0x10, 0, 0, 0, 0, 0, 0, 36, 0}, list10).status ==
          scsi::STATUS_GOOD);
    CHECK(rig.disk->write_cache_enabled());
    CHECK(rig.out(rw10(ScsiDisk::WRITE_10, 0, 1), std::vector<u8>(512, 1)).status ==
          scsi::STATUS_GOOD);
    CHECK(rig.memory->flushes == 1);
}

TEST_CASE("SCSI disk: MODE SELECT refuses what cannot change and lists that do not add up")
{
    ScsiRig rig;
    std::vector<u8> list(4 + 20, 0);
    list[4] = 0x08;
    list[5] = 0x12;
    list[6] = 0x01; // RCD
    check_sense(rig.out({ScsiDisk::MODE_SELECT_6, 0x10, 0, 0, 24, 0}, list), scsi::ILLEGAL_REQUEST,
                scsi::ASC_INVALID_FIELD_IN_PARAMETER_LIST);
    list[6] = 0x00;
    list[4] = 0x0A; // a page the disk does not have
    check_sense(rig.out({ScsiDisk::MODE_SELECT_6, 0x10, 0, 0, 24, 0}, list), scsi::ILLEGAL_REQUEST,
                scsi::ASC_INVALID_FIELD_IN_PARAMETER_LIST);
    list[4] = 0x08;
    list[5] = 0x40; // a page longer than the list
    check_sense(rig.out({ScsiDisk::MODE_SELECT_6, 0x10, 0, 0, 24, 0}, list), scsi::ILLEGAL_REQUEST,
                scsi::ASC_PARAMETER_LIST_LENGTH_ERROR);
    list[5] = 0x12;
    list[3] = 200; // descriptors longer than the list
    check_sense(rig.out({ScsiDisk::MODE_SELECT_6, 0x10, 0, 0, 24, 0}, list), scsi::ILLEGAL_REQUEST,
                scsi::ASC_PARAMETER_LIST_LENGTH_ERROR);
    list[3] = 0;
    // A list longer than the buffer the transport gave.
    check_sense(rig.out({ScsiDisk::MODE_SELECT_6, 0x10, 0, 0, 100, 0}, list), scsi::ILLEGAL_REQUEST,
                scsi::ASC_PARAMETER_LIST_LENGTH_ERROR);
    check_sense(rig.out({ScsiDisk::MODE_SELECT_6, 0x11, 0, 0, 24, 0}, list), scsi::ILLEGAL_REQUEST,
                scsi::ASC_INVALID_FIELD_IN_CDB); // SP
    check_sense(rig.out({ScsiDisk::MODE_SELECT_6, 0x00, 0, 0, 24, 0}, list), scsi::ILLEGAL_REQUEST,
                scsi::ASC_INVALID_FIELD_IN_CDB); // no PF
    CHECK(rig.disk->write_cache_enabled());
}

TEST_CASE("SCSI disk: WRITE and READ of each size round-trip through a raw image")
{
    ScsiRig rig;
    std::vector<u8> data(4 * 512);
    for (size_t i = 0; i < data.size(); ++i)
        data[i] = static_cast<u8>(i * 3 + 1);
    ScsiTarget::Result r = rig.out(rw10(ScsiDisk::WRITE_10, 100, 4), data);
    CHECK(r.status == scsi::STATUS_GOOD);
    CHECK(r.transferred == 4 * 512);
    CHECK(rig.in(rw16(ScsiDisk::READ_16, 100, 4), 4 * 512) == data);
    CHECK(rig.in(rw12(ScsiDisk::READ_12, 101, 2), 2 * 512) ==
          std::vector<u8>(data.begin() + 512, data.begin() + 3 * 512));
    CHECK(rig.in({ScsiDisk::READ_6, 0, 0, 102, 1, 0}, 512) ==
          std::vector<u8>(data.begin() + 1024, data.begin() + 1536));

    std::vector<u8> other(512, 0x5A);
    CHECK(rig.out(rw16(ScsiDisk::WRITE_16, ScsiRig::RAW_BLOCKS - 1, 1), other).status ==
          scsi::STATUS_GOOD);
    CHECK(rig.out(rw12(ScsiDisk::WRITE_12, 200, 1), other).status == scsi::STATUS_GOOD);
    CHECK(rig.out({ScsiDisk::WRITE_6, 0x00, 0x01, 0x2C, 1, 0}, other).status == scsi::STATUS_GOOD);
    CHECK(rig.in(rw10(ScsiDisk::READ_10, ScsiRig::RAW_BLOCKS - 1, 1), 512) == other);
    CHECK(rig.in(rw10(ScsiDisk::READ_10, 200, 1), 512) == other);
    CHECK(rig.in(rw10(ScsiDisk::READ_10, 300, 1), 512) == other);

    // On the image itself, opened afresh.
    rig.disk.reset();
    auto opened = open_image(rig.dir.file("disk.img"), {"raw"});
    REQUIRE(!opened.is_error());
    std::vector<u8> back(4 * 512);
    REQUIRE(!opened.value().image->read(100 * 512, back).is_error());
    CHECK(back == data);
}

TEST_CASE("SCSI disk: READ(6) of 0 blocks reads 256, READ(10) of 0 blocks reads none")
{
    ScsiRig rig;
    auto d = rig.in({ScsiDisk::READ_6, 0, 0, 0, 0, 0}, 256 * 512);
    REQUIRE(d.size() == 256 * 512);
    CHECK(d[63 * 512 + 5] == ScsiRig::pattern(63, 5));
    CHECK(rig.in(rw10(ScsiDisk::READ_10, 5, 0), 512).empty());
}

TEST_CASE("SCSI disk: a read longer than the buffer fills the buffer and no further")
{
    ScsiRig rig;
    std::vector<u8> buffer(4096, 0xEE);
    const size_t given = 512 + 100; // one sector and part of the next
    ScsiTarget::Result r = rig.run(rw10(ScsiDisk::READ_10, 3, 4), ScsiTarget::Direction::FromDevice,
                                   std::span(buffer).first(given));
    CHECK(r.status == scsi::STATUS_GOOD);
    CHECK(r.transferred == given);
    CHECK(buffer[0] == ScsiRig::pattern(3, 0));
    CHECK(buffer[511] == ScsiRig::pattern(3, 511));
    CHECK(buffer[512] == ScsiRig::pattern(4, 0));
    CHECK(buffer[611] == ScsiRig::pattern(4, 99));
    CHECK(std::all_of(buffer.begin() + given, buffer.end(), [](u8 b) { return b == 0xEE; }));
    // A buffer the transport gave for the other direction is not written.
    std::fill(buffer.begin(), buffer.end(), 0xEE);
    r = rig.run(rw10(ScsiDisk::READ_10, 3, 1), ScsiTarget::Direction::ToDevice, buffer);
    CHECK(r.status == scsi::STATUS_GOOD);
    CHECK(r.transferred == 0);
    CHECK(std::all_of(buffer.begin(), buffer.end(), [](u8 b) { return b == 0xEE; }));
}

TEST_CASE("SCSI disk: a write with less data than it names writes nothing")
{
    ScsiRig rig;
    check_sense(rig.out(rw10(ScsiDisk::WRITE_10, 0, 2), std::vector<u8>(1000, 0x33)),
                scsi::ABORTED_COMMAND, scsi::ASC_DATA_PHASE_ERROR);
    check_sense(
        rig.run(rw10(ScsiDisk::WRITE_10, 0, 1), ScsiTarget::Direction::FromDevice, std::span<u8>()),
        scsi::ABORTED_COMMAND, scsi::ASC_DATA_PHASE_ERROR);
    CHECK(rig.in(rw10(ScsiDisk::READ_10, 0, 1), 512)[0] == ScsiRig::pattern(0, 0));
}

TEST_CASE("SCSI disk: transfers past the end of the disk are LBA OUT OF RANGE")
{
    ScsiRig rig;
    const u64 last = ScsiRig::RAW_BLOCKS - 1;
    ScsiTarget::Result r;
    rig.in(rw10(ScsiDisk::READ_10, static_cast<u32>(last), 2), 1024, &r);
    check_sense(r, scsi::ILLEGAL_REQUEST, scsi::ASC_LBA_OUT_OF_RANGE);
    rig.in(rw16(ScsiDisk::READ_16, ~u64(0), 1), 512, &r); // LBA + count wraps
    check_sense(r, scsi::ILLEGAL_REQUEST, scsi::ASC_LBA_OUT_OF_RANGE);
    check_sense(rig.out(rw16(ScsiDisk::WRITE_16, last + 1, 1), std::vector<u8>(512)),
                scsi::ILLEGAL_REQUEST, scsi::ASC_LBA_OUT_OF_RANGE);
    check_sense(rig.none(rw16(ScsiDisk::VERIFY_16, last, 2)), scsi::ILLEGAL_REQUEST,
                scsi::ASC_LBA_OUT_OF_RANGE);
    check_sense(rig.none(rw16(ScsiDisk::SYNCHRONIZE_CACHE_16, last + 2, 0)), scsi::ILLEGAL_REQUEST,
                scsi::ASC_LBA_OUT_OF_RANGE);
    check_sense(rig.out(rw16(ScsiDisk::WRITE_SAME_16, last, 2), std::vector<u8>(512)),
                scsi::ILLEGAL_REQUEST, scsi::ASC_LBA_OUT_OF_RANGE);
    CHECK(rig.none(rw16(ScsiDisk::VERIFY_16, last, 1)).status == scsi::STATUS_GOOD);
    CHECK(rig.none(rw10(ScsiDisk::VERIFY_10, 0, 10)).status == scsi::STATUS_GOOD);
    CHECK(rig.none(rw12(ScsiDisk::VERIFY_12, 0, 10)).status == scsi::STATUS_GOOD);
}

TEST_CASE("SCSI disk: a transfer above the maximum transfer length or with protection is refused")
{
    ScsiRig rig;
    ScsiTarget::Result r;
    rig.in(rw10(ScsiDisk::READ_10, 0, 2049), 2049 * 512, &r);
    check_sense(r, scsi::ILLEGAL_REQUEST, scsi::ASC_INVALID_FIELD_IN_CDB);
    rig.in(rw16(ScsiDisk::READ_16, 0, 0xFFFFFFFF), 512, &r);
    check_sense(r, scsi::ILLEGAL_REQUEST, scsi::ASC_INVALID_FIELD_IN_CDB);
    rig.in(rw10(ScsiDisk::READ_10, 0, 1, 0x20), 512, &r); // RDPROTECT 1
    check_sense(r, scsi::ILLEGAL_REQUEST, scsi::ASC_INVALID_FIELD_IN_CDB);
    check_sense(rig.out(rw10(ScsiDisk::WRITE_10, 0, 1, 0x40), std::vector<u8>(512)),
                scsi::ILLEGAL_REQUEST, scsi::ASC_INVALID_FIELD_IN_CDB);
    check_sense(rig.none(rw10(ScsiDisk::VERIFY_10, 0, 1, 0x02)), scsi::ILLEGAL_REQUEST,
                scsi::ASC_INVALID_FIELD_IN_CDB); // BYTCHK
    CHECK(rig.in(rw10(ScsiDisk::READ_10, 0, 2048), 2048 * 512).size() == 2048 * 512);
}

TEST_CASE("SCSI disk: unknown operation codes, short CDBs and NACA are refused")
{
    ScsiRig rig;
    check_sense(rig.none({0x04, 0, 0, 0, 0, 0}), scsi::ILLEGAL_REQUEST,
                scsi::ASC_INVALID_OPCODE); // FORMAT UNIT
    check_sense(rig.none({0xA3, 0x0C, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}), scsi::ILLEGAL_REQUEST,
                scsi::ASC_INVALID_OPCODE); // REPORT SUPPORTED OPERATION CODES
    check_sense(rig.none({0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}),
                scsi::ILLEGAL_REQUEST, scsi::ASC_INVALID_OPCODE);
    check_sense(rig.none({0x7F, 0}), scsi::ILLEGAL_REQUEST,
                scsi::ASC_INVALID_OPCODE); // a reserved group, whatever its length
    check_sense(rig.none({ScsiDisk::READ_10, 0, 0, 0}), scsi::ILLEGAL_REQUEST,
                scsi::ASC_INVALID_FIELD_IN_CDB);
    check_sense(rig.none({}), scsi::ILLEGAL_REQUEST, scsi::ASC_INVALID_FIELD_IN_CDB);
    check_sense(rig.none({ScsiDisk::TEST_UNIT_READY, 0, 0, 0, 0, 0x04}), scsi::ILLEGAL_REQUEST,
                scsi::ASC_INVALID_FIELD_IN_CDB);
}

TEST_CASE("SCSI disk: SYNCHRONIZE CACHE(10) and (16) flush the image, FUA writes too")
{
    ScsiRig rig(1 << 20, 512, 512);
    CHECK(rig.none(rw10(ScsiDisk::SYNCHRONIZE_CACHE_10, 0, 0)).status == scsi::STATUS_GOOD);
    CHECK(rig.memory->flushes == 1);
    CHECK(rig.none(rw16(ScsiDisk::SYNCHRONIZE_CACHE_16, 10, 5)).status == scsi::STATUS_GOOD);
    CHECK(rig.memory->flushes == 2);
    CHECK(rig.out(rw10(ScsiDisk::WRITE_10, 0, 1), std::vector<u8>(512)).status ==
          scsi::STATUS_GOOD);
    CHECK(rig.memory->flushes == 2);
    CHECK(rig.out(rw10(ScsiDisk::WRITE_10, 0, 1, 0x08), std::vector<u8>(512)).status ==
          scsi::STATUS_GOOD);
    CHECK(rig.memory->flushes == 3);
}

TEST_CASE("SCSI disk: UNMAP discards each described range of a raw image")
{
    ScsiRig rig;
    auto list = unmap_list({{2, 3}, {10, 0}, {20, 1}});
    ScsiTarget::Result r = rig.out(unmap_cdb(static_cast<u16>(list.size())), list);
    CHECK(r.status == scsi::STATUS_GOOD);
    CHECK(r.transferred == list.size());
    auto d = rig.in(rw10(ScsiDisk::READ_10, 1, 6), 6 * 512);
    CHECK(d[0] == ScsiRig::pattern(1, 0));
    CHECK(std::all_of(d.begin() + 512, d.begin() + 4 * 512, [](u8 b) { return b == 0; }));
    CHECK(d[4 * 512] == ScsiRig::pattern(5, 0));
    CHECK(rig.in(rw10(ScsiDisk::READ_10, 20, 1), 512) == std::vector<u8>(512, 0));
    CHECK(rig.in(rw10(ScsiDisk::READ_10, 21, 1), 512)[3] == ScsiRig::pattern(21, 3));
    // An empty list does nothing.
    CHECK(rig.out(unmap_cdb(0), {}).status == scsi::STATUS_GOOD);
}

TEST_CASE("SCSI disk: UNMAP checks every length of its parameter list before discarding")
{
    ScsiRig rig(1 << 20, 512, 512);
    const u64 blocks = rig.disk->blocks();
    auto list = unmap_list({{0, 8}});
    // Shorter than a header.
    check_sense(rig.out(unmap_cdb(6), std::vector<u8>(6)), scsi::ILLEGAL_REQUEST,
                scsi::ASC_PARAMETER_LIST_LENGTH_ERROR);
    // The CDB names more than the buffer holds.
    check_sense(rig.out(unmap_cdb(40), list), scsi::ILLEGAL_REQUEST,
                scsi::ASC_PARAMETER_LIST_LENGTH_ERROR);
    // The header's lengths exceed the list.
    auto bad = list;
    bad[3] = 32;
    check_sense(rig.out(unmap_cdb(24), bad), scsi::ILLEGAL_REQUEST,
                scsi::ASC_PARAMETER_LIST_LENGTH_ERROR);
    bad = list;
    bad[1] = 200;
    check_sense(rig.out(unmap_cdb(24), bad), scsi::ILLEGAL_REQUEST,
                scsi::ASC_PARAMETER_LIST_LENGTH_ERROR);
    bad = list;
    bad[3] = 15; // not whole descriptors
    check_sense(rig.out(unmap_cdb(24), bad), scsi::ILLEGAL_REQUEST,
                scsi::ASC_PARAMETER_LIST_LENGTH_ERROR);
    // One range out of the disk: nothing is discarded.
    auto out_of_range = unmap_list({{0, 8}, {blocks - 1, 2}});
    check_sense(rig.out(unmap_cdb(static_cast<u16>(out_of_range.size())), out_of_range),
                scsi::ILLEGAL_REQUEST, scsi::ASC_LBA_OUT_OF_RANGE);
    CHECK(rig.memory->discards == 0);
    // More blocks than the limit.
    auto too_many = unmap_list({{0, 1}});
    too_many.resize(8 + 16 * (ScsiDisk::MAX_UNMAP_DESCRIPTORS + 1), 0);
    const u16 descriptors = static_cast<u16>(too_many.size() - 8);
    too_many[0] = static_cast<u8>((too_many.size() - 2) >> 8);
    too_many[1] = static_cast<u8>(too_many.size() - 2);
    too_many[2] = static_cast<u8>(descriptors >> 8);
    too_many[3] = static_cast<u8>(descriptors);
    check_sense(rig.out(unmap_cdb(static_cast<u16>(too_many.size())), too_many),
                scsi::ILLEGAL_REQUEST, scsi::ASC_INVALID_FIELD_IN_PARAMETER_LIST);
    // ANCHOR is not supported.
    Cdb anchor = unmap_cdb(24);
    anchor[1] = 0x01;
    check_sense(rig.out(anchor, list), scsi::ILLEGAL_REQUEST, scsi::ASC_INVALID_FIELD_IN_CDB);
    CHECK(rig.memory->discards == 0);
    CHECK(rig.out(unmap_cdb(24), list).status == scsi::STATUS_GOOD);
    CHECK(rig.memory->discards == 1);
}

TEST_CASE("SCSI disk: UNMAP is an unknown command when discards are off")
{
    ScsiRig rig(false, false);
    check_sense(rig.out(unmap_cdb(24), unmap_list({{0, 8}})), scsi::ILLEGAL_REQUEST,
                scsi::ASC_INVALID_OPCODE);
}

TEST_CASE("SCSI disk: WRITE SAME with UNMAP and zeros discards on a raw image")
{
    ScsiRig rig;
    ScsiTarget::Result r =
        rig.out(rw16(ScsiDisk::WRITE_SAME_16, 4, 3, 0x08), std::vector<u8>(512, 0));
    CHECK(r.status == scsi::STATUS_GOOD);
    auto d = rig.in(rw10(ScsiDisk::READ_10, 3, 5), 5 * 512);
    CHECK(d[0] == ScsiRig::pattern(3, 0));
    CHECK(std::all_of(d.begin() + 512, d.begin() + 4 * 512, [](u8 b) { return b == 0; }));
    CHECK(d[4 * 512 + 1] == ScsiRig::pattern(7, 1));
}

TEST_CASE("SCSI disk: WRITE SAME writes its block where a discard would not read it back")
{
    ScsiRig rig(4 << 20, 512, 512);
    std::vector<u8> block(512);
    for (unsigned i = 0; i < 512; ++i)
        block[i] = static_cast<u8>(i ^ 0xA5);
    // 2100 blocks: more than one chunk of the pattern.
    CHECK(rig.out(rw10(ScsiDisk::WRITE_SAME_10, 10, 2100), block).status == scsi::STATUS_GOOD);
    CHECK(rig.memory->writes == 2);
    CHECK(rig.memory->discards == 0);
    CHECK(rig.in(rw10(ScsiDisk::READ_10, 10, 1), 512) == block);
    CHECK(rig.in(rw10(ScsiDisk::READ_10, 2109, 1), 512) == block);
    CHECK(rig.in(rw10(ScsiDisk::READ_10, 2110, 1), 512) == std::vector<u8>(512, 0));
    // With UNMAP, zeros still get written: this image's discard keeps data.
    CHECK(rig.out(rw16(ScsiDisk::WRITE_SAME_16, 10, 1, 0x08), std::vector<u8>(512, 0)).status ==
          scsi::STATUS_GOOD);
    CHECK(rig.in(rw10(ScsiDisk::READ_10, 10, 1), 512) == std::vector<u8>(512, 0));
    // 0 blocks (WSNZ), LBDATA, a missing block.
    check_sense(rig.out(rw10(ScsiDisk::WRITE_SAME_10, 10, 0), block), scsi::ILLEGAL_REQUEST,
                scsi::ASC_INVALID_FIELD_IN_CDB);
    check_sense(rig.out(rw10(ScsiDisk::WRITE_SAME_10, 10, 1, 0x02), block), scsi::ILLEGAL_REQUEST,
                scsi::ASC_INVALID_FIELD_IN_CDB);
    check_sense(rig.out(rw10(ScsiDisk::WRITE_SAME_10, 10, 1), std::vector<u8>(100)),
                scsi::ABORTED_COMMAND, scsi::ASC_DATA_PHASE_ERROR);
}

TEST_CASE("SCSI disk: several commands are in flight at once and each completes once")
{
    ScsiRig rig;
    std::vector<std::vector<u8>> buffers(4, std::vector<u8>(1024, 0));
    std::vector<u8> data(1024, 0x77);
    std::vector<unsigned> calls(5, 0);
    std::vector<ScsiTarget::Result> results(5);
    for (unsigned i = 0; i < 4; ++i)
        rig.disk->execute(
            {0, rw10(ScsiDisk::READ_10, i * 2, 2), ScsiTarget::Direction::FromDevice, buffers[i]},
            [&, i](const ScsiTarget::Result& r) {
                ++calls[i];
                results[i] = r;
            });
    rig.disk->execute({0, rw10(ScsiDisk::WRITE_10, 40, 2), ScsiTarget::Direction::ToDevice, data},
                      [&](const ScsiTarget::Result& r) {
                          ++calls[4];
                          results[4] = r;
                      });
    CHECK(rig.disk->in_flight() == 5);
    CHECK(std::all_of(calls.begin(), calls.end(), [](unsigned n) { return n == 0; }));
    rig.deliver();
    CHECK(rig.disk->in_flight() == 0);
    CHECK(calls == std::vector<unsigned>(5, 1));
    for (unsigned i = 0; i < 4; ++i) {
        CHECK(results[i].status == scsi::STATUS_GOOD);
        CHECK(buffers[i][0] == ScsiRig::pattern(i * 2, 0));
        CHECK(buffers[i][512] == ScsiRig::pattern(i * 2 + 1, 0));
    }
    CHECK(results[4].status == scsi::STATUS_GOOD);
    CHECK(rig.in(rw10(ScsiDisk::READ_10, 40, 2), 1024) == data);
}

TEST_CASE("SCSI disk: drain completes every command in flight")
{
    ScsiRig rig;
    std::vector<u8> buffer(512);
    unsigned calls = 0;
    rig.disk->execute({0, rw10(ScsiDisk::READ_10, 1, 1), ScsiTarget::Direction::FromDevice, buffer},
                      [&](const ScsiTarget::Result&) { ++calls; });
    CHECK(calls == 0);
    rig.disk->drain();
    CHECK(calls == 1);
    CHECK(rig.disk->in_flight() == 0);
}

TEST_CASE("SCSI disk: host I/O errors are medium errors, a full image is out of space")
{
    ScsiRig rig(1 << 20, 512, 512);
    rig.memory->fail = true;
    ScsiTarget::Result r;
    rig.in(rw10(ScsiDisk::READ_10, 0, 1), 512, &r);
    check_sense(r, scsi::MEDIUM_ERROR, scsi::ASC_UNRECOVERED_READ_ERROR);
    check_sense(rig.out(rw10(ScsiDisk::WRITE_10, 0, 1), std::vector<u8>(512)), scsi::MEDIUM_ERROR,
                scsi::ASC_WRITE_ERROR);
    rig.memory->fail_kind = BlockErrorKind::NoSpace;
    check_sense(rig.out(rw10(ScsiDisk::WRITE_10, 0, 1), std::vector<u8>(512)), scsi::DATA_PROTECT,
                scsi::ASC_WRITE_PROTECTED, scsi::ASCQ_SPACE_ALLOCATION_FAILED);
}

TEST_CASE("SCSI disk: the write cache setting survives save and load")
{
    ScsiRig rig(1 << 20, 512, 512);
    std::vector<u8> list(4 + 20, 0);
    list[4] = 0x08;
    list[5] = 0x12;
    REQUIRE(rig.out({ScsiDisk::MODE_SELECT_6, 0x10, 0, 0, 24, 0}, list).status ==
            scsi::STATUS_GOOD);
    StateVisitor saver = StateVisitor::saver();
    rig.disk->visit_state(saver);
    ScsiRig fresh(1 << 20, 512, 512);
    CHECK(fresh.disk->write_cache_enabled());
    StateVisitor loader = StateVisitor::loader(saver.bytes());
    fresh.disk->visit_state(loader);
    CHECK(loader.ok());
    CHECK(!fresh.disk->write_cache_enabled());
    StateVisitor again = StateVisitor::saver();
    fresh.disk->visit_state(again);
    CHECK(again.bytes() == saver.bytes());
}

TEST_CASE("SCSI disk: random CDBs and parameter lists complete once and stay in their buffer")
{
    ScsiRig rig(1 << 20, 512, 512);
    std::mt19937 rng(15);
    const std::vector<u8> opcodes = {0x00, 0x03, 0x08, 0x0A, 0x12, 0x15, 0x1A, 0x1B, 0x1E, 0x25,
                                     0x28, 0x2A, 0x2F, 0x35, 0x41, 0x42, 0x55, 0x5A, 0x88, 0x8A,
                                     0x8F, 0x91, 0x93, 0x9E, 0xA0, 0xA8, 0xAA, 0xAF};
    std::vector<u8> memory(8192);
    unsigned good = 0, moved = 0;
    for (unsigned round = 0; round < 20000; ++round) {
        Cdb cdb(rng() % 4 ? 16 : rng() % 17);
        for (u8& b : cdb)
            b = static_cast<u8>(rng());
        if (!cdb.empty())
            cdb[0] = opcodes[rng() % opcodes.size()];
        // Often plain flags, a small LBA and count and no control bits, so
        // that commands get past the first checks.
        if (cdb.size() == 16 && rng() % 4) {
            const size_t length = cdb[0] < 0x20 ? 6 : cdb[0] < 0x80 ? 10 : cdb[0] < 0xA0 ? 16 : 12;
            cdb[1] &= 0x18;
            std::fill(cdb.begin() + 2, cdb.begin() + static_cast<long>(length) - 3, 0);
            cdb[length - 1] = 0;
            cdb[length - 2] &= 0x07;
        }
        const size_t size = rng() % 4096;
        for (size_t i = 0; i < size; ++i)
            memory[i] = static_cast<u8>(rng() % 4 ? 0 : rng());
        std::fill(memory.begin() + static_cast<long>(size), memory.end(), 0xEE);
        const auto direction = static_cast<ScsiTarget::Direction>(rng() % 3);
        unsigned calls = 0;
        ScsiTarget::Result result;
        rig.disk->execute(
            {static_cast<u8>(rng() % 8 == 0), cdb, direction, std::span(memory).first(size)},
            [&](const ScsiTarget::Result& r) {
                ++calls;
                result = r;
            });
        rig.disk->drain();
        REQUIRE(calls == 1);
        CHECK(result.transferred <= size);
        good += result.status == scsi::STATUS_GOOD;
        moved += result.transferred > 0;
        rig.deliver();
        REQUIRE(std::all_of(memory.begin() + static_cast<long>(size), memory.end(),
                            [](u8 b) { return b == 0xEE; }));
    }
    CHECK(rig.disk->in_flight() == 0);
    // The mix reaches past the checks, not only into refusals.
    MESSAGE(good, " of 20000 GOOD, ", moved, " moved data");
    CHECK(good > 2000);
    CHECK(moved > 500);
}

TEST_CASE("SCSI disk: behind a ScsiBus it answers its LUN, and the bus the absent ones")
{
    ScsiRig rig;
    ScsiBus bus;
    bus.attach(2, *rig.disk);
    std::vector<u8> data(96, 0);
    ScsiTarget::Result result;
    unsigned calls = 0;
    const Cdb cdb = inquiry(0, 0, 96);
    bus.execute({2, cdb, ScsiTarget::Direction::FromDevice, data},
                [&](const ScsiTarget::Result& r) {
                    ++calls;
                    result = r;
                });
    REQUIRE(calls == 1);
    CHECK(result.status == scsi::STATUS_GOOD);
    CHECK(result.transferred == 36);
    CHECK(data[0] == 0x00);
    CHECK(std::string(data.begin() + 16, data.begin() + 28) == "VIRTUAL DISK");
    bus.execute({0, cdb, ScsiTarget::Direction::FromDevice, data},
                [&](const ScsiTarget::Result& r) {
                    ++calls;
                    result = r;
                });
    REQUIRE(calls == 2);
    CHECK(data[0] == 0x7F);
    // A read through the bus completes when the disk's I/O does.
    std::vector<u8> sector(512);
    const Cdb read = rw10(ScsiDisk::READ_10, 9, 1);
    bus.execute({2, read, ScsiTarget::Direction::FromDevice, sector},
                [&](const ScsiTarget::Result& r) {
                    ++calls;
                    result = r;
                });
    CHECK(calls == 2);
    rig.deliver();
    CHECK(calls == 3);
    CHECK(result.transferred == 512);
    CHECK(sector[0] == ScsiRig::pattern(9, 0));
}
