// A disk whose writes stay in memory over an image opened read-only: QEMU's
// -drive snapshot=on (docs/storage.md). The guest reads what it wrote; the
// file never changes, so a run can be recorded and replayed from the same
// image (docs/replay.md), and a crash or a power-off loses the writes, on
// purpose.
#pragma once

#include "platform/block/block_image.h"

#include <memory>

std::unique_ptr<BlockImage> make_memory_overlay(std::unique_ptr<BlockImage> base);
