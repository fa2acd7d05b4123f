// Raw images: the file is the disk, byte for byte.
#pragma once

#include "platform/block/image_format.h"

extern const ImageFormat raw_format;
