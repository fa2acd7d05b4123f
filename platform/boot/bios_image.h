// The system ROM a machine boots through when no kernel is loaded directly:
// a SeaBIOS image (Debian's /usr/share/seabios/bios.bin, or --bios FILE).
// A PC maps it at the top of 4 GiB, where the reset vector is, and its last
// 128 KiB also at 0xE0000-0xFFFFF (PcBoard). A usable image is a whole
// number of 64 KiB blocks, 64 KiB to 16 MiB (the flash window below 4 GiB
// that QEMU also allows).
#pragma once

#include "mmu/base/error_or.h"
#include "mmu/base/types.h"

#include <string>
#include <vector>

constexpr const char* DEFAULT_BIOS_PATH = "/usr/share/seabios/bios.bin";
constexpr u64 BIOS_IMAGE_BLOCK = 64 * 1024;
constexpr u64 BIOS_IMAGE_MAX = 16ull << 20;

// The image's bytes, or one line saying why it is not a ROM image.
ErrorOr<std::vector<u8>> read_bios_image(const std::string& path);
