// Errors of the block layer (docs/storage.md). They are host and user errors
// in the sense of docs/coding-style.md (channel 3): an image that cannot be
// opened or a request the host file refuses. A disk model turns a failed
// request into its protocol's error status for the guest; the frontend and
// viridian-img print the message as one line.
#pragma once

#include "mmu/base/error_or.h"
#include "mmu/base/types.h"

#include <string>

enum class BlockErrorKind : u8 {
    NotFound,    // the file (or a differencing disk's parent) does not exist
    Io,          // the host refused a read, write or flush (errno in the message)
    Corrupt,     // a header, table or log fails its checks
    Unsupported, // a valid image using something this build does not implement
    InUse,       // another process holds the image open for writing
    ReadOnly,    // a write to an image opened read-only
    OutOfRange,  // a request outside the virtual disk or not sector-aligned
    NoSpace,     // the image cannot grow (format limit or host ENOSPC)
    InvalidArgument,
};

struct BlockError {
    BlockErrorKind kind = BlockErrorKind::Io;
    std::string message;
};

template <class T> using BlockResult = ErrorOr<T, BlockError>;
using BlockStatus = ErrorOr<void, BlockError>;

inline BlockError block_error(BlockErrorKind kind, std::string message)
{
    return BlockError{kind, std::move(message)};
}

// "PATH: MESSAGE" as every error about a file reads.
inline BlockError file_error(BlockErrorKind kind, const std::string& path, const std::string& what)
{
    return BlockError{kind, path + ": " + what};
}
