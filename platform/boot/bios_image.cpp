#include "platform/boot/bios_image.h"

#include "platform/boot/multiboot.h" // read_whole_file

#include <sys/stat.h>

namespace {
ErrorOr<void> check_size(const std::string& path, u64 size)
{
    if (size == 0 || size % BIOS_IMAGE_BLOCK != 0 || size > BIOS_IMAGE_MAX)
        return make_error(path + ": not a BIOS ROM image (" + std::to_string(size) +
                          " bytes; expected a multiple of 64 KiB, at most 16 MiB)");
    return {};
}
} // namespace

ErrorOr<std::vector<u8>> read_bios_image(const std::string& path)
{
    // A huge file is refused before it is read.
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode))
        if (ErrorOr<void> sized = check_size(path, static_cast<u64>(st.st_size)); sized.is_error())
            return sized.error();
    ErrorOr<std::vector<u8>> image = read_whole_file(path);
    if (image.is_error())
        return image;
    if (ErrorOr<void> sized = check_size(path, image.value().size()); sized.is_error())
        return sized.error();
    return image;
}
