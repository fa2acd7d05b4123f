// The logical units of one SCSI target: each command goes to the disk at
// its LUN (which sees itself as LUN 0); REPORT LUNS lists them all; a LUN
// with nothing attached answers as SPC-4 says a target answers for one it
// does not have (INQUIRY: peripheral qualifier 3, device type 0x1F, the
// byte 0x7F Linux's scan looks for; anything else CHECK CONDITION, ILLEGAL
// REQUEST, LOGICAL UNIT NOT SUPPORTED).
#pragma once

#include "platform/storage/scsi_target.h"

#include <map>

class ScsiBus final : public ScsiTarget {
public:
    static constexpr unsigned MAX_LUNS = 64;
    // `disk` answers LUN `lun` (below MAX_LUNS), addressed as LUN 0.
    void attach(u8 lun, ScsiTarget& disk) { m_luns[lun] = &disk; }
    // The LUN answers as absent from now on (a hot-removed disk).
    void detach(u8 lun) { m_luns.erase(lun); }
    // What answers `lun`; null when nothing does.
    ScsiTarget* unit(u8 lun) const
    {
        auto it = m_luns.find(lun);
        return it == m_luns.end() ? nullptr : it->second;
    }
    void execute(const Command& command, Done done) override;

private:
    Result report_luns(const Command& command) const;
    static Result absent(const Command& command);
    std::map<u8, ScsiTarget*> m_luns;
};
