// A raw image made and opened for a test (the QMP block commands' and the
// machine's CD-ROM tests).
#pragma once

#include "platform/block/image_format.h"

#include <doctest/doctest.h>

#include <memory>
#include <string>

inline std::shared_ptr<BlockImage> open_raw_image(const std::string& path, bool read_only)
{
    OpenOptions open;
    open.format = "raw";
    open.read_only = read_only;
    BlockResult<OpenedImage> opened = open_image(path, open);
    REQUIRE_FALSE(opened.is_error());
    return std::shared_ptr<BlockImage>(std::move(opened.value().image));
}

inline std::shared_ptr<BlockImage> make_raw_image(const std::string& path, u64 size, bool read_only)
{
    REQUIRE_FALSE(create_image(path, CreateOptions{"raw", size, {}, {}}).is_error());
    return open_raw_image(path, read_only);
}
