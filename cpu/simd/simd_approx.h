// The approximate reciprocal and reciprocal square root of RCPPS/RSQRTPS
// and their scalar and VEX forms, one binary32 element at a time, computed
// in software so that a guest's results do not depend on the host CPU.
#pragma once

#include "mmu/base/types.h"

namespace simd {

u32 approx_reciprocal(u32 x);
u32 approx_reciprocal_sqrt(u32 x);

} // namespace simd
