// What the SCSI targets (the ATAPI CD-ROM, the SCSI disk) share of the
// wire: big-endian CDB and parameter fields (mmu/base/byte_order.h), space-padded identification
// strings, sense keys and additional sense codes (SPC-3 4.5.6, annex D).
#pragma once

#include "mmu/base/byte_order.h"
#include "mmu/base/types.h"

#include <string_view>
#include <vector>

namespace scsi {

// Status codes (SAM-4 5.3.1).
constexpr u8 STATUS_GOOD = 0x00, STATUS_CHECK_CONDITION = 0x02;
// Fixed-format sense data is 18 bytes (SPC-3 4.5.3).
constexpr size_t FIXED_SENSE_SIZE = 18;

// Sense keys (SPC-3 4.5.6).
enum SenseKey : u8 {
    NO_SENSE = 0x0,
    NOT_READY = 0x2,
    MEDIUM_ERROR = 0x3,
    ILLEGAL_REQUEST = 0x5,
    UNIT_ATTENTION = 0x6,
    DATA_PROTECT = 0x7,
    ABORTED_COMMAND = 0xB,
};

// Additional sense codes (SPC-3 annex D); the qualifier is 0 unless named.
constexpr u8 ASC_WRITE_ERROR = 0x0C, ASC_UNRECOVERED_READ_ERROR = 0x11,
             ASC_PARAMETER_LIST_LENGTH_ERROR = 0x1A, ASC_INVALID_OPCODE = 0x20,
             ASC_LBA_OUT_OF_RANGE = 0x21, ASC_INVALID_FIELD_IN_CDB = 0x24,
             ASC_LOGICAL_UNIT_NOT_SUPPORTED = 0x25, ASC_INVALID_FIELD_IN_PARAMETER_LIST = 0x26,
             ASC_WRITE_PROTECTED = 0x27, ASC_MEDIUM_MAY_HAVE_CHANGED = 0x28,
             ASC_SAVING_PARAMETERS_NOT_SUPPORTED = 0x39, ASC_MEDIUM_NOT_PRESENT = 0x3A,
             ASC_DATA_PHASE_ERROR = 0x4B, ASC_MEDIUM_REMOVAL_PREVENTED = 0x53;
// WRITE PROTECTED's qualifier when a thin-provisioned disk ran out of space.
constexpr u8 ASCQ_SPACE_ALLOCATION_FAILED = 0x07;

// Fixed-format sense data of a current error without an information
// field (SPC-3 4.5.3).
inline std::vector<u8> fixed_sense(u8 key, u8 asc, u8 ascq = 0)
{
    std::vector<u8> sense(FIXED_SENSE_SIZE, 0);
    sense[0] = 0x70;
    sense[2] = key;
    sense[7] = FIXED_SENSE_SIZE - 8; // additional sense length
    sense[12] = asc;
    sense[13] = ascq;
    return sense;
}

// INQUIRY strings: ASCII, space padded (SPC-3 4.4.1).
inline void put_padded(u8* p, unsigned length, std::string_view text)
{
    for (unsigned i = 0; i < length; ++i)
        p[i] = i < text.size() ? static_cast<u8>(text[i]) : ' ';
}

} // namespace scsi
