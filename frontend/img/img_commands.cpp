#include "frontend/img/img_commands.h"

#include "platform/block/image_format.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <sys/stat.h>
#include <vector>

namespace {

// Copies run in pieces of this size: large enough for sequential host I/O,
// small enough for steady progress output.
constexpr u64 COPY_CHUNK = 2 << 20;

int fail(const std::string& message)
{
    std::fprintf(stderr, "viridian-img: %s\n", message.c_str());
    return 1;
}

int fail(const BlockError& error)
{
    return fail(error.message);
}

// qemu-img's human sizes: three significant digits and a binary unit ("1 GiB", "1.5 MiB").
std::string human_size(u64 bytes)
{
    static const char* const units[] = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
    int exponent = 0;
    std::frexp(static_cast<double>(bytes) / (1000.0 / 1024.0), &exponent);
    int unit = std::clamp((exponent - 1) / 10, 0, 6);
    char text[32];
    std::snprintf(text, sizeof text, "%0.3g %sB",
                  static_cast<double>(bytes) / static_cast<double>(1ULL << (unit * 10)),
                  units[unit]);
    return text;
}

std::string json_string(const std::string& text)
{
    std::string out = "\"";
    for (char c : text) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char escaped[8];
            std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
            out += escaped;
        } else {
            out += c;
        }
    }
    return out + "\"";
}

u64 disk_usage(const std::string& path)
{
    struct stat st {};
    if (stat(path.c_str(), &st) != 0)
        return 0;
    return static_cast<u64>(st.st_blocks) * 512;
}

BlockResult<std::unique_ptr<BlockImage>> open_for(const std::string& path,
                                                  const std::string& format, bool read_only,
                                                  bool without_parent = false)
{
    OpenOptions options;
    options.format = format;
    options.read_only = read_only;
    options.without_parent = without_parent;
    OpenedImage opened = TRY(open_image(path, options));
    return std::move(opened.image);
}

class Progress {
public:
    Progress(bool enabled, u64 total) : m_enabled(enabled), m_total(std::max<u64>(total, 1)) {}
    void advance(u64 bytes)
    {
        m_done += bytes;
        show();
    }
    void finish()
    {
        if (!m_enabled)
            return;
        m_done = m_total;
        show();
        std::fputc('\n', stdout);
    }

private:
    void show()
    {
        if (!m_enabled)
            return;
        std::printf("    (%.2f/100%%)\r", 100.0 * static_cast<double>(m_done) /
                                            static_cast<double>(m_total));
        std::fflush(stdout);
    }
    bool m_enabled;
    u64 m_total;
    u64 m_done = 0;
};

bool all_zero(std::span<const u8> data)
{
    return std::all_of(data.begin(), data.end(), [](u8 b) { return b == 0; });
}

// Copies [offset, offset + length) of `from` into `to` in chunks, leaving
// out chunks that read as zeros when `skip_zeros` (a fresh destination
// already reads as zeros there).
BlockStatus copy_range(BlockImage& from, BlockImage& to, u64 offset, u64 length,
                       bool skip_zeros, Progress& progress)
{
    std::vector<u8> buffer(COPY_CHUNK);
    while (length > 0) {
        u64 chunk = std::min(length, COPY_CHUNK);
        std::span<u8> piece(buffer.data(), chunk);
        TRY(from.read(offset, piece));
        if (!skip_zeros || !all_zero(piece))
            TRY(to.write(offset, piece));
        offset += chunk;
        length -= chunk;
        progress.advance(chunk);
    }
    return {};
}

// Walks the whole virtual disk of `image` extent by extent, in order.
BlockStatus for_each_extent(BlockImage& image,
                            const std::function<BlockStatus(const Extent&)>& visit)
{
    u64 size = image.info().virtual_size;
    for (u64 offset = 0; offset < size;) {
        Extent extent = TRY(image.map(offset, size - offset));
        TRY(visit(extent));
        offset = extent.offset + extent.length;
    }
    return {};
}

} // namespace

bool parse_image_size(const std::string& text, u64& bytes)
{
    if (text.empty() || !(std::isdigit(static_cast<unsigned char>(text[0])) || text[0] == '.'))
        return false;
    size_t used = 0;
    double value;
    try {
        value = std::stod(text, &used);
    } catch (...) {
        return false;
    }
    std::string suffix = text.substr(used);
    int shift = 0;
    if (suffix.empty())
        shift = 0;
    else if (suffix.size() == 1) {
        const std::string units = "kMGTPE";
        char unit = suffix[0] == 'K' ? 'k' : suffix[0];
        size_t index = units.find(unit);
        if (index == std::string::npos)
            return false;
        shift = 10 * static_cast<int>(index + 1);
    } else {
        return false;
    }
    double result = std::ldexp(value, shift);
    if (!(result >= 0) || result >= 18446744073709551615.0 || result != std::floor(result))
        return false;
    bytes = static_cast<u64>(result);
    return true;
}

int img_create(const ImgArguments& args)
{
    CreateOptions create;
    create.format = args.format.empty() ? "raw" : args.format;
    create.options = args.options;
    create.parent = args.parent;
    std::string size_text = args.size;
    if (auto it = create.options.find("size"); it != create.options.end()) {
        size_text = it->second;
        create.options.erase(it);
    }
    create.options.erase("parent_format");
    if (!size_text.empty()) {
        if (!parse_image_size(size_text, create.size))
            return fail("invalid image size '" + size_text +
                        "': use a number of bytes with an optional k, M, G, T, P or E suffix");
    } else if (create.parent.empty()) {
        return fail("create needs a size (or -b PARENT for a differencing image)");
    }
    if (!find_image_format(create.format))
        return fail("unknown image format '" + create.format + "'");

    std::printf("Formatting '%s', fmt=%s size=%llu", args.files[0].c_str(), create.format.c_str(),
                static_cast<unsigned long long>(create.size));
    if (!create.parent.empty())
        std::printf(" backing_file=%s", create.parent.c_str());
    for (const auto& [name, value] : create.options)
        std::printf(" %s=%s", name.c_str(), value.c_str());
    std::printf("\n");
    std::fflush(stdout);
    if (auto status = create_image(args.files[0], create); status.is_error())
        return fail(status.error());
    return 0;
}

int img_info(const ImgArguments& args)
{
    const std::string& path = args.files[0];
    auto image = open_for(path, args.format, true);
    if (image.is_error())
        return fail(image.error());
    const ImageInfo& info = image.value()->info();
    u64 used = disk_usage(path);
    if (args.json) {
        std::printf("{\n    \"virtual-size\": %llu,\n    \"filename\": %s,\n",
                    static_cast<unsigned long long>(info.virtual_size), json_string(path).c_str());
        if (info.block_size)
            std::printf("    \"cluster-size\": %llu,\n",
                        static_cast<unsigned long long>(info.block_size));
        std::printf("    \"format\": %s,\n", json_string(info.format).c_str());
        if (info.parent)
            std::printf("    \"backing-filename\": %s,\n", json_string(*info.parent).c_str());
        std::printf("    \"actual-size\": %llu,\n    \"dirty-flag\": false\n}\n",
                    static_cast<unsigned long long>(used));
        return 0;
    }
    std::printf("image: %s\nfile format: %s\nvirtual size: %s (%llu bytes)\ndisk size: %s\n",
                path.c_str(), info.format.c_str(), human_size(info.virtual_size).c_str(),
                static_cast<unsigned long long>(info.virtual_size), human_size(used).c_str());
    if (info.block_size)
        std::printf("cluster_size: %llu\n", static_cast<unsigned long long>(info.block_size));
    if (info.parent)
        std::printf("backing file: %s\n", info.parent->c_str());
    if (!info.subformat.empty())
        std::printf("subformat: %s\n", info.subformat.c_str());
    if (info.logical_sector_size != 512 || info.physical_sector_size != 512)
        std::printf("sector sizes: %u logical, %u physical\n", info.logical_sector_size,
                    info.physical_sector_size);
    return 0;
}

int img_check(const ImgArguments& args)
{
    if (!args.repair.empty() && args.repair != "leaks" && args.repair != "all")
        return fail("-r takes leaks or all, not '" + args.repair + "'");
    bool repair = !args.repair.empty();
    const std::string& path = args.files[0];
    auto image = open_for(path, args.format, !repair);
    if (image.is_error())
        return fail(image.error());
    auto checked = image.value()->check(repair);
    if (checked.is_error())
        return fail(checked.error());
    const CheckReport& report = checked.value();
    if (repair)
        if (auto flushed = image.value()->flush(); flushed.is_error())
            return fail(flushed.error());
    if (args.json) {
        std::printf("{\n    \"filename\": %s,\n    \"format\": %s,\n    \"check-errors\": %zu,\n",
                    json_string(path).c_str(), json_string(image.value()->info().format).c_str(),
                    report.errors.size());
        std::printf("    \"allocated-clusters\": %llu,\n    \"total-clusters\": %llu\n}\n",
                    static_cast<unsigned long long>(report.allocated_blocks),
                    static_cast<unsigned long long>(report.total_blocks));
        return report.ok() ? 0 : 2;
    }
    if (!report.repaired.empty()) {
        std::printf("The following inconsistencies were found and repaired:\n\n");
        for (const std::string& line : report.repaired)
            std::printf("    %s\n", line.c_str());
        std::printf("\n");
    }
    for (const std::string& line : report.errors)
        std::fprintf(stderr, "ERROR %s\n", line.c_str());
    if (report.ok())
        std::printf("No errors were found on the image.\n");
    else
        std::printf("\n%zu errors were found on the image.\nData may be corrupted, or further "
                    "writes to the image may corrupt it.\n",
                    report.errors.size());
    if (report.total_blocks)
        std::printf("%llu/%llu = %.2f%% allocated, 0.00%% fragmented, 0.00%% compressed "
                    "clusters\n",
                    static_cast<unsigned long long>(report.allocated_blocks),
                    static_cast<unsigned long long>(report.total_blocks),
                    100.0 * static_cast<double>(report.allocated_blocks) /
                        static_cast<double>(report.total_blocks));
    return report.ok() ? 0 : 2;
}

int img_convert(const ImgArguments& args)
{
    const std::string& source_path = args.files[0];
    const std::string& destination_path = args.files[1];
    auto source = open_for(source_path, args.format, true);
    if (source.is_error())
        return fail(source.error());
    BlockImage& from = *source.value();
    CreateOptions create;
    create.format = args.output_format.empty() ? "raw" : args.output_format;
    create.size = from.info().virtual_size;
    create.options = args.options;
    create.parent = args.parent;
    if (auto created = create_image(destination_path, create); created.is_error())
        return fail(created.error());
    auto destination = open_for(destination_path, create.format, false);
    if (destination.is_error())
        return fail(destination.error());
    BlockImage& to = *destination.value();
    if (to.info().virtual_size < from.info().virtual_size)
        return fail("the " + create.format + " image holds " +
                    std::to_string(to.info().virtual_size) + " bytes, less than the source's " +
                    std::to_string(from.info().virtual_size) + " (try -o force_size=on)");

    // Zero and unallocated ranges are left out: the new image reads as zeros there.
    Progress progress(args.progress, from.info().virtual_size);
    bool has_parent = from.info().parent.has_value();
    auto copied = for_each_extent(from, [&](const Extent& e) -> BlockStatus {
        if (e.kind == ExtentKind::Data || (e.kind == ExtentKind::Unallocated && has_parent))
            return copy_range(from, to, e.offset, e.length, true, progress);
        progress.advance(e.length);
        return {};
    });
    if (copied.is_error())
        return fail(copied.error());
    if (auto flushed = to.flush(); flushed.is_error())
        return fail(flushed.error());
    progress.finish();
    return 0;
}

int img_commit(const ImgArguments& args)
{
    const std::string& path = args.files[0];
    auto child = open_for(path, args.format, true, true);
    if (child.is_error())
        return fail(child.error());
    BlockImage& from = *child.value();
    if (!from.info().parent)
        return fail(path + ": not a differencing image (it has no parent to commit into)");
    auto parent = open_for(*from.info().parent, "", false);
    if (parent.is_error())
        return fail(parent.error());
    BlockImage& to = *parent.value();

    // Only what the child holds itself: everything else the parent has already.
    Progress progress(args.progress, from.info().virtual_size);
    auto copied = for_each_extent(from, [&](const Extent& e) -> BlockStatus {
        if (e.kind != ExtentKind::Unallocated)
            return copy_range(from, to, e.offset, e.length, false, progress);
        progress.advance(e.length);
        return {};
    });
    if (copied.is_error())
        return fail(copied.error());
    if (auto flushed = to.flush(); flushed.is_error())
        return fail(flushed.error());
    progress.finish();
    std::printf("Image committed.\n");
    return 0;
}

namespace {

struct MapEntry {
    u64 start;
    u64 length;
    int depth;
    bool present;
    bool zero;
    bool data;
    std::optional<u64> offset;
    std::string file;
};

// One layer of a chain, opened alone, and the rest below it.
struct Layer {
    std::string path;
    std::unique_ptr<BlockImage> image;
};

BlockStatus map_layers(std::vector<Layer>& chain, size_t depth, u64 offset, u64 length,
                       std::vector<MapEntry>& out)
{
    BlockImage& image = *chain[depth].image;
    u64 end = offset + length;
    while (offset < end) {
        Extent e = TRY(image.map(offset, end - offset));
        if (e.kind == ExtentKind::Unallocated && depth + 1 < chain.size()) {
            TRY(map_layers(chain, depth + 1, e.offset, e.length, out));
        } else {
            MapEntry entry{e.offset,
                           e.length,
                           static_cast<int>(depth),
                           e.kind != ExtentKind::Unallocated,
                           e.kind != ExtentKind::Data,
                           e.kind == ExtentKind::Data,
                           e.host_offset,
                           chain[depth].path};
            if (!out.empty()) {
                MapEntry& last = out.back();
                bool joins = last.start + last.length == entry.start &&
                             last.depth == entry.depth && last.present == entry.present &&
                             last.zero == entry.zero && last.data == entry.data &&
                             last.offset.has_value() == entry.offset.has_value() &&
                             (!entry.offset || *last.offset + last.length == *entry.offset);
                if (joins) {
                    last.length += entry.length;
                    offset = e.offset + e.length;
                    continue;
                }
            }
            out.push_back(entry);
        }
        offset = e.offset + e.length;
    }
    return {};
}

} // namespace

int img_map(const ImgArguments& args)
{
    std::vector<Layer> chain;
    std::string path = args.files[0];
    std::string format = args.format;
    while (true) {
        auto image = open_for(path, format, true, true);
        if (image.is_error())
            return fail(image.error());
        std::optional<std::string> parent = image.value()->info().parent;
        chain.push_back({path, image.release_value()});
        if (!parent)
            break;
        if (chain.size() > 64)
            return fail(args.files[0] + ": differencing chain deeper than 64 images");
        path = *parent;
        format.clear();
    }
    std::vector<MapEntry> entries;
    if (auto mapped = map_layers(chain, 0, 0, chain[0].image->info().virtual_size, entries);
        mapped.is_error())
        return fail(mapped.error());

    if (args.json) {
        std::printf("[");
        for (size_t i = 0; i < entries.size(); ++i) {
            const MapEntry& e = entries[i];
            std::printf("%s{ \"start\": %llu, \"length\": %llu, \"depth\": %d, \"present\": %s, "
                        "\"zero\": %s, \"data\": %s",
                        i ? ",\n" : "", static_cast<unsigned long long>(e.start),
                        static_cast<unsigned long long>(e.length), e.depth,
                        e.present ? "true" : "false", e.zero ? "true" : "false",
                        e.data ? "true" : "false");
            if (e.offset)
                std::printf(", \"offset\": %llu", static_cast<unsigned long long>(*e.offset));
            std::printf("}");
        }
        std::printf("]\n");
        return 0;
    }
    std::printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to", "File");
    for (const MapEntry& e : entries)
        if (e.data && e.offset)
            std::printf("%#-16llx%#-16llx%#-16llx%s\n", static_cast<unsigned long long>(e.start),
                        static_cast<unsigned long long>(e.length),
                        static_cast<unsigned long long>(*e.offset), e.file.c_str());
    return 0;
}
