// VHDX images ([MS-VHDX]): fixed, dynamic and differencing, with the log
// replayed on open and written for every metadata update (docs/storage.md
// "VHDX"). Options of create(), as qemu-img -o spells them:
//   subformat=dynamic|fixed, block_size=SIZE (0: by the disk's size, as
//   qemu-img), log_size=SIZE (1 MiB), block_state_zero=on|off,
//   logical_sector_size=512|4096, physical_sector_size=512|4096;
// CreateOptions::parent makes a differencing disk (qemu-img cannot).
#pragma once

#include "platform/block/image_format.h"

extern const ImageFormat vhdx_format;
