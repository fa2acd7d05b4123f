#include "platform/block/image_format.h"

#include "platform/block/raw_image.h"
#include "platform/block/vhd_image.h"
#include "platform/block/vhdx_image.h"

#include <algorithm>
#include <array>
#include <filesystem>
#include <vector>

namespace {

// Probed in this order; raw matches anything, so it is last.
const std::array<const ImageFormat*, 3> all_formats{&vhdx_format, &vpc_format, &raw_format};

} // namespace

std::span<const ImageFormat* const> image_formats()
{
    return all_formats;
}

const ImageFormat* find_image_format(std::string_view name)
{
    if (name == "vhd")
        name = "vpc";
    for (const ImageFormat* format : all_formats)
        if (name == format->name)
            return format;
    return nullptr;
}

BlockStatus check_request(const ImageInfo& info, u64 offset, u64 length)
{
    u64 sector = info.logical_sector_size;
    if (offset % sector != 0 || length % sector != 0)
        return block_error(BlockErrorKind::OutOfRange,
                           "request at " + std::to_string(offset) + " (" +
                               std::to_string(length) + " bytes) is not a whole number of " +
                               std::to_string(sector) + "-byte sectors");
    if (offset > info.virtual_size || length > info.virtual_size - offset)
        return block_error(BlockErrorKind::OutOfRange,
                           "request at " + std::to_string(offset) + " (" +
                               std::to_string(length) + " bytes) ends past the disk's " +
                               std::to_string(info.virtual_size) + " bytes");
    return {};
}

namespace {

BlockResult<const ImageFormat*> probe_format(const HostFile& file)
{
    u64 size = TRY(file.size());
    std::vector<u8> head(std::min<u64>(size, 64 * 1024));
    TRY(file.read_at(0, head));
    std::vector<u8> tail(std::min<u64>(size, 512));
    TRY(file.read_at(size - tail.size(), tail));
    for (const ImageFormat* format : all_formats)
        if (format->probe(head, tail, size))
            return format;
    return &raw_format;
}

// A raw image whose format was only guessed must not be turned into
// something that probes as another format on its next open (the guest
// writing a VHDX header into its first sectors, or a fixed VHD footer into
// its last, would make the host open the file as that format): such writes
// are refused, as QEMU refuses them at the start.
class ProbedRawImage final : public BlockImage {
public:
    explicit ProbedRawImage(std::unique_ptr<BlockImage> raw) : m_raw(std::move(raw)) {}
    const ImageInfo& info() const override { return m_raw->info(); }
    BlockStatus read(u64 offset, std::span<u8> out) override { return m_raw->read(offset, out); }
    BlockStatus write(u64 offset, std::span<const u8> data) override
    {
        if (offset == 0 && looks_like_another_format(data, {}))
            return refused("first");
        u64 size = info().virtual_size;
        if (data.size() >= 512 && offset + data.size() == size &&
            looks_like_another_format({}, data.last(512)))
            return refused("last");
        return m_raw->write(offset, data);
    }
    BlockStatus flush() override { return m_raw->flush(); }
    BlockStatus discard(u64 offset, u64 length) override { return m_raw->discard(offset, length); }
    BlockResult<Extent> map(u64 offset, u64 max_length) override
    {
        return m_raw->map(offset, max_length);
    }
    BlockResult<CheckReport> check(bool repair) override { return m_raw->check(repair); }

private:
    static bool looks_like_another_format(std::span<const u8> head, std::span<const u8> tail)
    {
        for (const ImageFormat* format : all_formats)
            if (format != &raw_format && format->probe(head, tail, 0))
                return true;
        return false;
    }
    static BlockError refused(const char* which)
    {
        return block_error(BlockErrorKind::ReadOnly,
                           std::string("write to the ") + which +
                               " sector of a probed raw image refused: it would make the image "
                               "look like another format (give format=raw)");
    }
    std::unique_ptr<BlockImage> m_raw;
};

} // namespace

BlockResult<OpenedImage> open_image(const std::string& path, const OpenOptions& options)
{
    const ImageFormat* format = nullptr;
    if (!options.format.empty()) {
        format = find_image_format(options.format);
        if (!format)
            return block_error(BlockErrorKind::InvalidArgument,
                               "unknown image format '" + options.format + "'");
    }
    FileAccess access = options.read_only ? FileAccess::ReadOnly : FileAccess::ReadWrite;
    HostFile file = TRY(HostFile::open(path, access, options.cache));
    OpenedImage opened;
    if (!format) {
        format = TRY(probe_format(file));
        opened.probed_raw = format == &raw_format;
    }
    opened.image = TRY(format->open(std::move(file), options));
    if (opened.probed_raw)
        opened.image = std::make_unique<ProbedRawImage>(std::move(opened.image));
    return opened;
}

BlockStatus create_image(const std::string& path, const CreateOptions& options)
{
    const ImageFormat* format = find_image_format(options.format);
    if (!format)
        return block_error(BlockErrorKind::InvalidArgument,
                           "unknown image format '" + options.format + "'");
    return format->create(path, options);
}

std::optional<std::string> first_regular_file(const std::vector<std::string>& paths)
{
    for (const std::string& path : paths) {
        std::error_code error;
        if (std::filesystem::is_regular_file(path, error))
            return path;
    }
    return std::nullopt;
}

std::string raw_probe_warning(const std::string& path)
{
    // QEMU's wording (block.c), so scripts that look for it find it.
    return "WARNING: Image format was not specified for '" + path +
           "' and probing guessed raw.\n"
           "         Automatically detecting the format is dangerous for raw images, write "
           "operations on block 0 will be restricted.\n"
           "         Specify the 'raw' format explicitly to remove the restrictions.";
}
