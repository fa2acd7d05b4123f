// One open disk image in one format (raw, VHD, VHDX), seen as a linear
// array of sectors (docs/storage.md "The block layer"). Calls are
// synchronous and not thread-safe: a BlockDevice runs them one at a time on
// its worker thread, viridian-img calls them directly.
//
// Every request is checked by the caller against info() with
// check_request() before it reaches a format: offsets and lengths are
// multiples of the logical sector size and inside the virtual disk.
#pragma once

#include "platform/block/block_error.h"

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

struct ImageInfo {
    std::string format;    // "raw", "vpc", "vhdx" (QEMU's names)
    std::string subformat; // "fixed", "dynamic", "differencing" ("" for raw)
    u64 virtual_size = 0;  // bytes the guest sees
    u32 logical_sector_size = 512;
    u32 physical_sector_size = 512;
    u64 block_size = 0; // allocation unit of a sparse format, 0 for raw/fixed
    std::optional<std::string> parent; // a differencing disk's parent, as resolved
    bool read_only = false;
};

// What a range of the virtual disk is backed by (viridian-img map, convert).
enum class ExtentKind : u8 {
    Data,        // stored in this image
    Zero,        // reads as zeros without being stored
    Unallocated, // not in this image: reads from the parent, or zeros without one
};

struct Extent {
    u64 offset = 0; // virtual disk offset
    u64 length = 0;
    ExtentKind kind = ExtentKind::Data;
    std::optional<u64> host_offset; // where Data lies in the file, when contiguous there
};

// Result of a consistency check (viridian-img check).
struct CheckReport {
    std::vector<std::string> errors;   // inconsistencies that remain
    std::vector<std::string> repaired; // what check(repair = true) fixed
    u64 allocated_blocks = 0;
    u64 total_blocks = 0;
    bool ok() const { return errors.empty(); }
};

class BlockImage {
public:
    virtual ~BlockImage() = default;

    virtual const ImageInfo& info() const = 0;

    virtual BlockStatus read(u64 offset, std::span<u8> out) = 0;
    virtual BlockStatus write(u64 offset, std::span<const u8> data) = 0;
    // Everything completed before it is durable, metadata included: after a
    // host crash the image opens and holds every write acknowledged before
    // the flush (docs/storage.md "Crash safety").
    virtual BlockStatus flush() = 0;
    // The range's contents are no longer needed. Advisory: afterwards it reads
    // as zeros or as before, never as anything else.
    virtual BlockStatus discard(u64 offset, u64 length) = 0;
    // The extent that starts at `offset`, at most `max_length` long, all of one
    // kind.
    virtual BlockResult<Extent> map(u64 offset, u64 max_length) = 0;
    // Structural consistency; with `repair`, fixes what can be fixed
    // without losing data (for VHDX, replays the log).
    virtual BlockResult<CheckReport> check(bool repair) = 0;
};

// OutOfRange unless [offset, offset + length) is sector-aligned and inside the disk.
BlockStatus check_request(const ImageInfo& info, u64 offset, u64 length);
