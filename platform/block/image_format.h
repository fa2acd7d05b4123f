// The image formats and how an image is found, opened and created
// (docs/storage.md "Formats"). Each format file defines one ImageFormat
// and lists it in image_format.cpp; nothing else names a format.
#pragma once

#include "platform/block/block_image.h"
#include "platform/block/host_file.h"

#include <map>
#include <string_view>

struct OpenOptions {
    std::string format; // "" = probe; otherwise "raw", "vpc" (or "vhd"), "vhdx"
    bool read_only = false;
    CacheMode cache = CacheMode::Writeback;
    // A differencing image alone, without its parent chain: ranges it does
    // not hold read as zeros and map() reports them Unallocated
    // (viridian-img commit and map of one layer). info().parent still names
    // the parent file that the locators lead to.
    bool without_parent = false;
};

struct CreateOptions {
    std::string format; // "raw", "vpc", "vhdx"
    u64 size = 0;       // virtual size in bytes (a differencing disk: 0 = the parent's)
    // Format options as qemu-img -o spells them: subformat=fixed|dynamic,
    // block_size=, log_size=, force_size=on, block_state_zero=off, ...
    std::map<std::string, std::string> options;
    std::string parent; // -b: a differencing disk of this image
};

struct ImageFormat {
    const char* name;
    // Is this file in this format? `head` holds the first bytes of the file
    // (up to 64 KiB, fewer if the file is smaller), `tail` its last 512
    // bytes. Also asked about data a guest writes to the first or the last
    // sector of a probed raw image, with the other span empty and
    // `file_size` 0.
    bool (*probe)(std::span<const u8> head, std::span<const u8> tail, u64 file_size);
    BlockResult<std::unique_ptr<BlockImage>> (*open)(HostFile file, const OpenOptions& options);
    BlockStatus (*create)(const std::string& path, const CreateOptions& options);
};

// Every format this build knows, raw last (it probes as anything).
std::span<const ImageFormat* const> image_formats();
// By QEMU's name ("vhd" is accepted for "vpc"); nullptr when unknown.
const ImageFormat* find_image_format(std::string_view name);

struct OpenedImage {
    std::unique_ptr<BlockImage> image;
    bool probed_raw = false; // no format given and nothing else matched
};

// Opens `path`, probing the format unless options.format names one. A
// differencing image opens its parent chain read-only.
BlockResult<OpenedImage> open_image(const std::string& path, const OpenOptions& options);
BlockStatus create_image(const std::string& path, const CreateOptions& options);

// The first of a differencing disk's candidate parent paths that is a
// regular file (what info().parent names when the parent is not opened).
std::optional<std::string> first_regular_file(const std::vector<std::string>& paths);

// QEMU's warning for a probed raw image, as the frontends print it.
std::string raw_probe_warning(const std::string& path);
