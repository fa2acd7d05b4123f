// A SCSI direct-access disk (SPC-3, SBC-3) on a BlockDevice, behind the
// ScsiTarget seam, so independent of the transport that carries its
// commands (storvsp over VMBus hands it each SRB's CDB, LUN and data
// buffer, directly or through a ScsiBus). It answers what Linux's sd sends:
// INQUIRY with the VPD pages 00h, 80h, 83h, B0h, B1h, B2h, REPORT LUNS,
// READ CAPACITY(10/16), MODE SENSE/SELECT(6/10) with the caching page,
// READ/WRITE(6/10/12/16), SYNCHRONIZE CACHE, UNMAP and WRITE SAME (as
// discards), VERIFY, START STOP UNIT, TEST UNIT READY and REQUEST SENSE.
//
// The disk is LUN 0 (a ScsiBus forwards its LUN as 0). Commands for another
// LUN are answered as SPC-3 has a target answer for a LUN it does not have
// (as ScsiBus does): INQUIRY
// with peripheral qualifier 3 (byte 0 = 7Fh), REPORT LUNS with the real
// inventory, anything else CHECK CONDITION, LOGICAL UNIT NOT SUPPORTED.
//
// Every CDB and parameter list comes from the guest and is checked; data
// moves only within the buffer the transport gave, whatever the CDB's
// lengths say. Errors are CHECK CONDITION with fixed-format sense data
// (autosense: the transport returns it with the status).
#pragma once

#include "platform/block/block_device.h"
#include "platform/storage/scsi_target.h"

#include <array>
#include <functional>
#include <memory>
#include <span>
#include <string>

class StateVisitor;

struct ScsiDiskIdentity {
    // Unit serial number (VPD 80h), printable ASCII; also in the T10 vendor
    // designator of VPD 83h.
    std::string serial;
    // The logical unit's NAA designator (VPD 83h), what Linux names
    // /dev/disk/by-id/wwn-* after. The top nibble is forced to 6 (NAA IEEE
    // Registered Extended, SPC-3 7.6.3.6.4) so it stays a valid NAA.
    std::array<u8, 16> naa{};
    // UNMAP and WRITE SAME's UNMAP bit pass discards to the image (thin
    // provisioning in READ CAPACITY(16) and VPD B2h); a read-only disk never does.
    bool discard = true;
    // MAXIMUM TRANSFER LENGTH (VPD B0h) in bytes, rounded down to the sector
    // size; a READ or WRITE asking for more is refused. The transport's own
    // limit (storvsp's QUERY_PROPERTIES maximum, 256 KiB) belongs here too.
    u32 max_transfer_bytes = 256 << 10;
};

class ScsiDisk final : public ScsiTarget {
public:
    // SCSI operation codes (SPC-3, SBC-3).
    enum Opcode : u8 {
        TEST_UNIT_READY = 0x00,
        REQUEST_SENSE = 0x03,
        READ_6 = 0x08,
        WRITE_6 = 0x0A,
        INQUIRY = 0x12,
        MODE_SELECT_6 = 0x15,
        MODE_SENSE_6 = 0x1A,
        START_STOP_UNIT = 0x1B,
        PREVENT_ALLOW_MEDIUM_REMOVAL = 0x1E,
        READ_CAPACITY_10 = 0x25,
        READ_10 = 0x28,
        WRITE_10 = 0x2A,
        VERIFY_10 = 0x2F,
        SYNCHRONIZE_CACHE_10 = 0x35,
        WRITE_SAME_10 = 0x41,
        UNMAP = 0x42,
        MODE_SELECT_10 = 0x55,
        MODE_SENSE_10 = 0x5A,
        READ_16 = 0x88,
        WRITE_16 = 0x8A,
        VERIFY_16 = 0x8F,
        SYNCHRONIZE_CACHE_16 = 0x91,
        WRITE_SAME_16 = 0x93,
        SERVICE_ACTION_IN_16 = 0x9E,
        REPORT_LUNS = 0xA0,
        READ_12 = 0xA8,
        WRITE_12 = 0xAA,
        VERIFY_12 = 0xAF,
    };
    // SERVICE ACTION IN(16)'s READ CAPACITY(16) (SBC-3 5.16).
    static constexpr u8 SA_READ_CAPACITY_16 = 0x10;
    // UNMAP limits (VPD B0h): descriptors per command and blocks per
    // command (and per WRITE SAME), 1 GiB whatever the sector size.
    static constexpr u32 MAX_UNMAP_DESCRIPTORS = 256;
    static constexpr u64 MAX_UNMAP_BYTES = u64(1) << 30;

    ScsiDisk(std::unique_ptr<BlockDevice> disk, ScsiDiskIdentity identity);
    ~ScsiDisk();
    ScsiDisk(const ScsiDisk&) = delete;
    ScsiDisk& operator=(const ScsiDisk&) = delete;

    // Machine thread. Runs one command; `done` is called once, on the machine
    // thread: before execute() returns for a command without disk I/O, from
    // a BlockDevice callback otherwise. Any number may be in flight; they
    // complete in any order. The command's CDB (6 to 16 bytes; more are
    // ignored, fewer than its group's length is INVALID FIELD IN CDB) is
    // copied; its data buffer must stay until `done`. A data-in command sees
    // the buffer only with direction FromDevice, a data-out command only
    // with ToDevice (otherwise as empty). GOOD comes with empty sense;
    // CHECK CONDITION with 18 bytes of fixed-format sense (autosense).
    // `transferred` counts the bytes moved from the buffer's start.
    void execute(const Command& command, Done done) override;

    // Commands whose `done` has not run yet.
    size_t in_flight() const { return m_in_flight; }
    // Completes every command in flight now (before a snapshot, a reset, a
    // hot unplug or destruction: commands still in flight then are dropped
    // without their callbacks).
    void drain();

    u64 blocks() const { return m_blocks; }
    u32 block_size() const { return m_block_size; }
    bool read_only() const { return m_disk->read_only(); }
    bool write_cache_enabled() const { return m_write_cache; }
    BlockDevice& block_device() { return *m_disk; }

    // The state a guest can change (the WCE bit). Only with nothing in flight.
    void visit_state(StateVisitor& v);

private:
    struct Request;
    using CommandPtr = std::shared_ptr<Request>;

    void run(const CommandPtr& c);
    void complete(const CommandPtr& c);
    void check_condition(const CommandPtr& c, u8 key, u8 asc, u8 ascq = 0);
    // Copies min(bytes, allocation, buffer) of c's reply to the buffer and completes.
    void reply(const CommandPtr& c, std::span<const u8> bytes, u32 allocation);

    void inquiry(const CommandPtr& c);
    void vpd_page(const CommandPtr& c, u8 page, u32 allocation);
    void report_luns(const CommandPtr& c);
    void read_capacity_16(const CommandPtr& c);
    void mode_sense(const CommandPtr& c, bool ten);
    void mode_select(const CommandPtr& c, bool ten);
    void read(const CommandPtr& c, u64 lba, u32 count);
    void write(const CommandPtr& c, u64 lba, u32 count, bool fua);
    void synchronize_cache(const CommandPtr& c, u64 lba, u32 count);
    void unmap(const CommandPtr& c);
    void write_same(const CommandPtr& c, u64 lba, u32 count);
    void verify(const CommandPtr& c, u64 lba, u32 count);
    void write_same_next(const CommandPtr& c);

    // False (and the command ended) unless [lba, lba + count) is on the disk.
    bool check_range(const CommandPtr& c, u64 lba, u64 count);
    bool check_writable(const CommandPtr& c);
    bool discard_enabled() const;
    bool discard_zeroes() const;
    // Submits a block request counted against c; the last one to finish
    // completes c (with the first error).
    void submit(const CommandPtr& c, BlockOp op, u64 offset, u64 length, u8* buffer);
    void block_done(const CommandPtr& c, BlockOp op, const BlockStatus& status);
    void flush_then_complete(const CommandPtr& c);

    std::unique_ptr<BlockDevice> m_disk;
    ScsiDiskIdentity m_identity;
    u64 m_blocks = 0;
    u32 m_block_size = 512;
    u32 m_max_transfer_blocks = 0;
    u32 m_max_unmap_blocks = 0;
    bool m_write_cache = true; // WCE in the caching mode page
    size_t m_in_flight = 0;
};
