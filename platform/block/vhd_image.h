// VHD images, QEMU's "vpc" format (Microsoft Virtual Hard Disk Image Format
// Specification v1.0): fixed, dynamic and differencing disks. How they are
// read, written and kept consistent across a crash is in vhd_image.cpp and
// docs/storage.md "VHD".
#pragma once

#include "platform/block/image_format.h"

#include <functional>

extern const ImageFormat vpc_format;

// Called after each step of a write that changes the file's layout or its
// metadata (a block allocated, the data written, a flush's first sync, the
// metadata written), with the step's name. Tests copy the file at each step
// to check that every intermediate state opens with the flushed data intact.
using VhdStepObserver = std::function<void(const char* step)>;

// vpc_format.open with an observer of the write steps (tests only).
BlockResult<std::unique_ptr<BlockImage>> open_vhd_image(HostFile file, const OpenOptions& options,
                                                        VhdStepObserver observer);
