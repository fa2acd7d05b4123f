// One image file on the host: positioned reads and writes that either
// transfer everything or fail with the errno in the message, flushes that
// reach the disk, and the lock that keeps two processes from writing one
// image (docs/storage.md "Locking"). Every format reads and writes through
// it, so the cache modes and the locking are in one place.
#pragma once

#include "platform/block/block_error.h"

#include <span>
#include <string>

enum class CacheMode : u8 {
    Writeback, // the host page cache; flush() calls fdatasync
    Unsafe,    // flush() does nothing: fast, and a host crash may lose data
    None,      // O_DIRECT, past the host page cache; flush() calls fdatasync
};

enum class FileAccess : u8 { ReadOnly, ReadWrite };

class HostFile {
public:
    HostFile() = default;
    ~HostFile();
    HostFile(HostFile&& other) noexcept;
    HostFile& operator=(HostFile&& other) noexcept;
    HostFile(const HostFile&) = delete;
    HostFile& operator=(const HostFile&) = delete;

    // Opens an existing file and locks it: shared for ReadOnly, exclusive for
    // ReadWrite (open file description locks, so two opens in one process
    // conflict too). A held lock gives InUse.
    static BlockResult<HostFile> open(const std::string& path, FileAccess access,
                                      CacheMode cache = CacheMode::Writeback);
    // Creates (or truncates) a file for writing and locks it exclusively.
    static BlockResult<HostFile> create(const std::string& path);

    bool is_open() const { return m_fd >= 0; }
    const std::string& path() const { return m_path; }
    bool writable() const { return m_access == FileAccess::ReadWrite; }

    // Reads exactly out.size() bytes at `offset`; reading past the end of the
    // file is an error (Corrupt: a table points beyond the file).
    BlockStatus read_at(u64 offset, std::span<u8> out) const;
    // Reads what is there and fills the rest past the end of file with zeros.
    BlockStatus read_at_or_zero(u64 offset, std::span<u8> out) const;
    BlockStatus write_at(u64 offset, std::span<const u8> data);
    // Everything written so far (data and the file's size) is on the disk.
    BlockStatus flush();
    BlockResult<u64> size() const;
    BlockStatus set_size(u64 size);
    // Deallocates [offset, offset + length) so it reads as zeros, where the
    // host filesystem can; otherwise writes zeros.
    BlockStatus zero_range(u64 offset, u64 length);

    int fd() const { return m_fd; }

private:
    BlockError errno_error(const char* what) const;
    BlockError past_end_error(u64 offset, u64 length) const;
    BlockStatus read_into(u64 offset, std::span<u8> out, bool zero_past_end) const;
    // O_DIRECT needs buffer, offset and length aligned to the file system's
    // block; these go through an aligned bounce buffer (a partial block is
    // read, patched and written back: the formats call one at a time).
    BlockStatus direct_read(u64 offset, std::span<u8> out, bool zero_past_end) const;
    BlockStatus direct_write(u64 offset, std::span<const u8> data);

    int m_fd = -1;
    std::string m_path;
    FileAccess m_access = FileAccess::ReadOnly;
    CacheMode m_cache = CacheMode::Writeback;
};
