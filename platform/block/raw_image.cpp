#include "platform/block/raw_image.h"

#include <cerrno>
#include <unistd.h>

namespace {

class RawImage final : public BlockImage {
public:
    RawImage(HostFile file, ImageInfo info) : m_file(std::move(file)), m_info(std::move(info)) {}

    const ImageInfo& info() const override { return m_info; }

    BlockStatus read(u64 offset, std::span<u8> out) override
    {
        TRY(check_request(m_info, offset, out.size()));
        // A file whose size is not a whole number of sectors reads its last
        // sector padded with zeros.
        return m_file.read_at_or_zero(offset, out);
    }

    BlockStatus write(u64 offset, std::span<const u8> data) override
    {
        TRY(check_request(m_info, offset, data.size()));
        return m_file.write_at(offset, data);
    }

    BlockStatus flush() override { return m_file.flush(); }

    BlockStatus discard(u64 offset, u64 length) override
    {
        TRY(check_request(m_info, offset, length));
        return m_file.zero_range(offset, length);
    }

    BlockResult<Extent> map(u64 offset, u64 max_length) override
    {
        TRY(check_request(m_info, offset, 0));
        u64 end = std::min(m_info.virtual_size, offset + max_length);
        Extent extent{offset, end - offset, ExtentKind::Data, offset};
        // Holes in a sparse file read as zeros (lseek(2) SEEK_DATA/SEEK_HOLE).
        off_t data = ::lseek(m_file.fd(), static_cast<off_t>(offset), SEEK_DATA);
        if (data < 0 && errno == ENXIO) {
            extent.kind = ExtentKind::Zero;
            extent.host_offset.reset();
            return extent;
        }
        if (data < 0)
            return extent; // no hole information: all data
        if (static_cast<u64>(data) > offset) {
            extent.kind = ExtentKind::Zero;
            extent.host_offset.reset();
            extent.length = std::min<u64>(static_cast<u64>(data), end) - offset;
            return extent;
        }
        off_t hole = ::lseek(m_file.fd(), static_cast<off_t>(offset), SEEK_HOLE);
        if (hole > 0)
            extent.length = std::min<u64>(static_cast<u64>(hole), end) - offset;
        return extent;
    }

    BlockResult<CheckReport> check(bool) override { return CheckReport{}; }

private:
    HostFile m_file;
    ImageInfo m_info;
};

bool probe_raw(std::span<const u8>, std::span<const u8>, u64) { return true; }

BlockResult<std::unique_ptr<BlockImage>> open_raw(HostFile file, const OpenOptions& options)
{
    u64 size = TRY(file.size());
    ImageInfo info;
    info.format = "raw";
    info.virtual_size = (size + 511) / 512 * 512;
    info.read_only = options.read_only;
    return std::unique_ptr<BlockImage>(new RawImage(std::move(file), std::move(info)));
}

BlockStatus create_raw(const std::string& path, const CreateOptions& options)
{
    if (!options.parent.empty())
        return block_error(BlockErrorKind::Unsupported, "raw images have no parent (-b)");
    for (const auto& [name, value] : options.options)
        return block_error(BlockErrorKind::InvalidArgument,
                           "raw images take no option '" + name + "'");
    HostFile file = TRY(HostFile::create(path));
    TRY(file.set_size(options.size));
    return file.flush();
}

} // namespace

const ImageFormat raw_format{"raw", probe_raw, open_raw, create_raw};
