#include "platform/storage/scsi_bus.h"

#include "platform/storage/scsi.h"

#include <algorithm>

using namespace scsi;

namespace {

constexpr u8 INQUIRY = 0x12;
constexpr u8 REPORT_LUNS = 0xA0;

ScsiTarget::Result check_condition(u8 asc)
{
    ScsiTarget::Result r;
    r.status = STATUS_CHECK_CONDITION;
    r.sense = fixed_sense(ILLEGAL_REQUEST, asc);
    return r;
}

// Copies what fits of `bytes` into the command's buffer, no more than the
// allocation length the CDB allows.
ScsiTarget::Result data_in(const ScsiTarget::Command& c, std::span<const u8> bytes, u32 allocation)
{
    ScsiTarget::Result r;
    if (c.direction != ScsiTarget::Direction::FromDevice)
        return r;
    r.transferred = static_cast<u32>(std::min<size_t>({bytes.size(), c.data.size(), allocation}));
    std::copy_n(bytes.begin(), r.transferred, c.data.begin());
    return r;
}

} // namespace

void ScsiBus::execute(const Command& command, Done done)
{
    if (command.cdb.empty()) {
        done(check_condition(ASC_INVALID_OPCODE));
        return;
    }
    if (command.cdb[0] == REPORT_LUNS) {
        done(report_luns(command));
        return;
    }
    auto it = m_luns.find(command.lun);
    if (it == m_luns.end()) {
        done(absent(command));
        return;
    }
    Command forwarded = command;
    forwarded.lun = 0;
    it->second->execute(forwarded, std::move(done));
}

ScsiTarget::Result ScsiBus::report_luns(const Command& c) const
{
    if (c.cdb.size() < 12)
        return check_condition(ASC_INVALID_FIELD_IN_CDB);
    // A header {list length, reserved} and one 8-byte entry per LUN, single
    // level peripheral addressing (SAM-5 4.7.7): the LUN in byte 1.
    std::vector<u8> list(8 + 8 * m_luns.size());
    store_be32(list, 0, static_cast<u32>(8 * m_luns.size()));
    size_t at = 8;
    for (const auto& [lun, disk] : m_luns) {
        list[at + 1] = lun;
        at += 8;
    }
    return data_in(c, list, load_be32(c.cdb, 6));
}

ScsiTarget::Result ScsiBus::absent(const Command& c)
{
    if (c.cdb[0] != INQUIRY || c.cdb.size() < 6) {
        Result r = check_condition(ASC_LOGICAL_UNIT_NOT_SUPPORTED);
        r.no_such_lun = true;
        return r;
    }
    // Standard INQUIRY data of no device: qualifier 3, type 0x1F; SPC-4 and
    // 31 additional bytes, so the header a scan reads is complete.
    std::vector<u8> inquiry(36, 0);
    inquiry[0] = 0x7F;
    inquiry[2] = 0x06;
    inquiry[3] = 0x02;
    inquiry[4] = 31;
    return data_in(c, inquiry, load_be16(c.cdb, 3));
}
