#include "platform/storage/scsi_bus.h"

#include <doctest/doctest.h>

namespace {

struct RecordingDisk : ScsiTarget {
    std::vector<u8> luns_seen;
    void execute(const Command& c, Done done) override
    {
        luns_seen.push_back(c.lun);
        done(Result{});
    }
};

ScsiTarget::Result run(ScsiBus& bus, u8 lun, std::vector<u8> cdb, std::vector<u8>& data)
{
    ScsiTarget::Result out;
    bool called = false;
    ScsiTarget::Command c;
    c.lun = lun;
    c.cdb = cdb;
    c.direction = ScsiTarget::Direction::FromDevice;
    c.data = data;
    bus.execute(c, [&](const ScsiTarget::Result& r) {
        out = r;
        called = true;
    });
    CHECK(called);
    return out;
}

} // namespace

TEST_CASE("SCSI bus: commands reach the disk at their LUN, which sees itself as LUN 0")
{
    ScsiBus bus;
    RecordingDisk a, b;
    bus.attach(0, a);
    bus.attach(3, b);
    std::vector<u8> data(512);
    CHECK(run(bus, 3, {0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0}, data).status == 0);
    CHECK(b.luns_seen == std::vector<u8>{0});
    CHECK(a.luns_seen.empty());
}

TEST_CASE("SCSI bus: REPORT LUNS lists every LUN, cut to the allocation length")
{
    ScsiBus bus;
    RecordingDisk a, b;
    bus.attach(0, a);
    bus.attach(3, b);
    std::vector<u8> data(64, 0xEE);
    ScsiTarget::Result r = run(bus, 0, {0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0}, data);
    CHECK(r.status == 0);
    CHECK(r.transferred == 24);
    CHECK(data[3] == 16); // list length: two entries
    CHECK(data[8 + 1] == 0);
    CHECK(data[16 + 1] == 3);
    r = run(bus, 5, {0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0}, data);
    CHECK(r.transferred == 16);
    CHECK(run(bus, 0, {0xA0, 0, 0}, data).status == 2); // a CDB too short
}

TEST_CASE("SCSI bus: a LUN with no disk says so to INQUIRY and refuses the rest")
{
    ScsiBus bus;
    RecordingDisk a;
    bus.attach(0, a);
    std::vector<u8> data(96, 0xEE);
    ScsiTarget::Result r = run(bus, 1, {0x12, 0, 0, 0, 96, 0}, data);
    CHECK(r.status == 0);
    CHECK(r.transferred == 36);
    CHECK(data[0] == 0x7F);
    std::vector<u8> small(96, 0xEE);
    CHECK(run(bus, 1, {0x12, 0, 0, 0, 5, 0}, small).transferred == 5);
    r = run(bus, 1, {0x00, 0, 0, 0, 0, 0}, data);
    CHECK(r.status == 2);
    CHECK(r.sense[2] == 0x05);
    CHECK(r.sense[12] == 0x25);
    CHECK(run(bus, 0, {}, data).status == 2);
    CHECK(a.luns_seen.empty());
}

TEST_CASE("SCSI bus: a detached LUN answers as absent, saying so (no_such_lun), and leaves REPORT LUNS")
{
    ScsiBus bus;
    RecordingDisk a, b;
    bus.attach(0, a);
    bus.attach(2, b);
    CHECK(bus.unit(2) == &b);
    bus.detach(2);
    CHECK(bus.unit(2) == nullptr);
    std::vector<u8> data(64);
    const ScsiTarget::Result tur = run(bus, 2, {0x00, 0, 0, 0, 0, 0}, data);
    CHECK(tur.status == 2);
    CHECK(tur.no_such_lun);
    CHECK(b.luns_seen.empty());
    // INQUIRY still answers (the scan reads "no device here"), without the flag.
    const ScsiTarget::Result inquiry = run(bus, 2, {0x12, 0, 0, 0, 36, 0}, data);
    CHECK(inquiry.status == 0);
    CHECK_FALSE(inquiry.no_such_lun);
    CHECK(data[0] == 0x7F);
    const ScsiTarget::Result luns = run(bus, 0, {0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0}, data);
    CHECK(luns.transferred == 16); // LUN 0 alone
    CHECK_FALSE(run(bus, 0, {0x00, 0, 0, 0, 0, 0}, data).no_such_lun);
}
