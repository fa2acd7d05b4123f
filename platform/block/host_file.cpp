#include "platform/block/host_file.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace {

// The alignment O_DIRECT needs on every Linux file system we meet (4 KiB
// logical blocks at most); larger than the 512 bytes some need, which is
// harmless.
constexpr u64 DIRECT_ALIGN = 4096;

struct AlignedBuffer {
    explicit AlignedBuffer(size_t size)
        : data(static_cast<u8*>(std::aligned_alloc(DIRECT_ALIGN, size)))
    {
    }
    ~AlignedBuffer() { std::free(data); }
    AlignedBuffer(const AlignedBuffer&) = delete;
    AlignedBuffer& operator=(const AlignedBuffer&) = delete;
    u8* data;
};

// Reads until `size` bytes or the end of the file; returns the count, or -1.
ssize_t pread_full(int fd, u8* data, size_t size, u64 offset)
{
    size_t done = 0;
    while (done < size) {
        ssize_t n = ::pread(fd, data + done, size - done, static_cast<off_t>(offset + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        done += static_cast<size_t>(n);
    }
    return static_cast<ssize_t>(done);
}

// An open file description lock over the whole file (fcntl(2) "Open file
// description locks"): unlike flock() it conflicts with QEMU's byte-range
// locks on the same image, and unlike classic POSIX locks it is not dropped
// when some other descriptor of the file is closed.
bool lock_whole_file(int fd, bool exclusive)
{
    struct flock lock {};
    lock.l_type = exclusive ? F_WRLCK : F_RDLCK;
    lock.l_whence = SEEK_SET;
    lock.l_start = 0;
    lock.l_len = 0; // to the end, however large the file grows
    return fcntl(fd, F_OFD_SETLK, &lock) == 0;
}

} // namespace

HostFile::~HostFile()
{
    if (m_fd >= 0)
        ::close(m_fd);
}

HostFile::HostFile(HostFile&& other) noexcept
    : m_fd(std::exchange(other.m_fd, -1)), m_path(std::move(other.m_path)),
      m_access(other.m_access), m_cache(other.m_cache)
{
}

HostFile& HostFile::operator=(HostFile&& other) noexcept
{
    if (this != &other) {
        if (m_fd >= 0)
            ::close(m_fd);
        m_fd = std::exchange(other.m_fd, -1);
        m_path = std::move(other.m_path);
        m_access = other.m_access;
        m_cache = other.m_cache;
    }
    return *this;
}

BlockError HostFile::errno_error(const char* what) const
{
    int error = errno;
    BlockErrorKind kind = error == ENOSPC || error == EFBIG ? BlockErrorKind::NoSpace
                                                             : BlockErrorKind::Io;
    return file_error(kind, m_path, std::string(what) + ": " + std::strerror(error));
}

BlockResult<HostFile> HostFile::open(const std::string& path, FileAccess access, CacheMode cache)
{
    int flags = (access == FileAccess::ReadWrite ? O_RDWR : O_RDONLY) | O_CLOEXEC;
    if (cache == CacheMode::None)
        flags |= O_DIRECT;
    int fd = ::open(path.c_str(), flags);
    if (fd < 0) {
        int error = errno;
        if (error == EINVAL && cache == CacheMode::None)
            return file_error(BlockErrorKind::Unsupported, path,
                              "cache=none: the file system does not support O_DIRECT");
        BlockErrorKind kind = error == ENOENT ? BlockErrorKind::NotFound : BlockErrorKind::Io;
        return file_error(kind, path, std::string("cannot open: ") + std::strerror(error));
    }
    struct stat st {};
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        ::close(fd);
        return file_error(BlockErrorKind::InvalidArgument, path, "is a directory");
    }
    if (!lock_whole_file(fd, access == FileAccess::ReadWrite)) {
        ::close(fd);
        return file_error(BlockErrorKind::InUse, path,
                          access == FileAccess::ReadWrite
                              ? "in use by another process (cannot lock it for writing)"
                              : "being written by another process (cannot lock it for reading)");
    }
    HostFile file;
    file.m_fd = fd;
    file.m_path = path;
    file.m_access = access;
    file.m_cache = cache;
    return file;
}

BlockResult<HostFile> HostFile::create(const std::string& path)
{
    // Not O_TRUNC: an image another process has open must not be emptied
    // before the lock says it is ours.
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return file_error(BlockErrorKind::Io, path,
                          std::string("cannot create: ") + std::strerror(errno));
    if (!lock_whole_file(fd, true)) {
        ::close(fd);
        return file_error(BlockErrorKind::InUse, path, "in use by another process");
    }
    HostFile file;
    file.m_fd = fd;
    file.m_path = path;
    file.m_access = FileAccess::ReadWrite;
    if (ftruncate(fd, 0) != 0)
        return file.errno_error("cannot truncate");
    return file;
}

BlockStatus HostFile::read_at(u64 offset, std::span<u8> out) const
{
    return read_into(offset, out, false);
}

BlockStatus HostFile::read_at_or_zero(u64 offset, std::span<u8> out) const
{
    return read_into(offset, out, true);
}

BlockStatus HostFile::read_into(u64 offset, std::span<u8> out, bool zero_past_end) const
{
    if (m_cache == CacheMode::None)
        return direct_read(offset, out, zero_past_end);
    ssize_t got = pread_full(m_fd, out.data(), out.size(), offset);
    if (got < 0)
        return errno_error("read failed");
    if (static_cast<size_t>(got) < out.size() && !zero_past_end)
        return past_end_error(offset, out.size());
    std::fill(out.begin() + got, out.end(), u8{0});
    return {};
}

BlockError HostFile::past_end_error(u64 offset, u64 length) const
{
    return file_error(BlockErrorKind::Corrupt, m_path,
                      "read of " + std::to_string(length) + " bytes at offset " +
                          std::to_string(offset) + " runs past the end of the file");
}

BlockStatus HostFile::write_at(u64 offset, std::span<const u8> data)
{
    if (m_access != FileAccess::ReadWrite)
        return file_error(BlockErrorKind::ReadOnly, m_path, "opened read-only");
    if (m_cache == CacheMode::None)
        return direct_write(offset, data);
    size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::pwrite(m_fd, data.data() + done, data.size() - done,
                             static_cast<off_t>(offset + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno_error("write failed");
        done += static_cast<size_t>(n);
    }
    return {};
}

BlockStatus HostFile::flush()
{
    if (m_access != FileAccess::ReadWrite || m_cache == CacheMode::Unsafe)
        return {};
    if (::fdatasync(m_fd) != 0)
        return errno_error("flush failed");
    return {};
}

BlockResult<u64> HostFile::size() const
{
    struct stat st {};
    if (fstat(m_fd, &st) != 0)
        return errno_error("cannot stat");
    return static_cast<u64>(st.st_size);
}

BlockStatus HostFile::set_size(u64 size)
{
    if (m_access != FileAccess::ReadWrite)
        return file_error(BlockErrorKind::ReadOnly, m_path, "opened read-only");
    if (::ftruncate(m_fd, static_cast<off_t>(size)) != 0)
        return errno_error("cannot resize");
    return {};
}

BlockStatus HostFile::zero_range(u64 offset, u64 length)
{
    if (m_access != FileAccess::ReadWrite)
        return file_error(BlockErrorKind::ReadOnly, m_path, "opened read-only");
    if (length == 0)
        return {};
    if (::fallocate(m_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                    static_cast<off_t>(length)) == 0)
        return {};
    // Filesystems without hole punching (and ranges past the end): write zeros.
    static const std::vector<u8> zeros(1 << 20, 0);
    while (length > 0) {
        u64 chunk = std::min<u64>(length, zeros.size());
        TRY(write_at(offset, std::span(zeros.data(), chunk)));
        offset += chunk;
        length -= chunk;
    }
    return {};
}

BlockStatus HostFile::direct_read(u64 offset, std::span<u8> out, bool zero_past_end) const
{
    if (out.empty())
        return {};
    u64 start = offset / DIRECT_ALIGN * DIRECT_ALIGN;
    u64 end = (offset + out.size() + DIRECT_ALIGN - 1) / DIRECT_ALIGN * DIRECT_ALIGN;
    AlignedBuffer bounce(end - start);
    if (!bounce.data)
        return file_error(BlockErrorKind::Io, m_path, "out of memory for an O_DIRECT buffer");
    ssize_t got = pread_full(m_fd, bounce.data, end - start, start);
    if (got < 0)
        return errno_error("read failed");
    u64 available = static_cast<u64>(got) > offset - start ? static_cast<u64>(got) - (offset - start) : 0;
    if (available < out.size() && !zero_past_end)
        return past_end_error(offset, out.size());
    u64 copied = std::min<u64>(available, out.size());
    std::memcpy(out.data(), bounce.data + (offset - start), copied);
    std::fill(out.begin() + static_cast<std::ptrdiff_t>(copied), out.end(), u8{0});
    return {};
}

BlockStatus HostFile::direct_write(u64 offset, std::span<const u8> data)
{
    if (data.empty())
        return {};
    u64 start = offset / DIRECT_ALIGN * DIRECT_ALIGN;
    u64 end = (offset + data.size() + DIRECT_ALIGN - 1) / DIRECT_ALIGN * DIRECT_ALIGN;
    u64 old_size = TRY(size());
    AlignedBuffer bounce(end - start);
    if (!bounce.data)
        return file_error(BlockErrorKind::Io, m_path, "out of memory for an O_DIRECT buffer");
    // The partial blocks at either end keep the bytes around the write.
    if (start < offset || end > offset + data.size()) {
        ssize_t got = pread_full(m_fd, bounce.data, end - start, start);
        if (got < 0)
            return errno_error("read failed");
        std::memset(bounce.data + got, 0, end - start - static_cast<u64>(got));
    }
    std::memcpy(bounce.data + (offset - start), data.data(), data.size());
    size_t done = 0;
    while (done < end - start) {
        ssize_t n = ::pwrite(m_fd, bounce.data + done, end - start - done,
                             static_cast<off_t>(start + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno_error("write failed");
        done += static_cast<size_t>(n);
    }
    // Whole blocks may have carried the file past its end: cut it back to
    // where the write ended, as a buffered write would have left it.
    u64 new_size = std::max(old_size, offset + data.size());
    if (end > new_size && ::ftruncate(m_fd, static_cast<off_t>(new_size)) != 0)
        return errno_error("cannot resize");
    return {};
}
