// The processor vendor a CPU model imitates. Intel and AMD processors differ
// in corners the manuals leave open or define differently (docs/testing.md,
// "Vendor differences"); the interpreter follows the model's vendor there,
// never the host's, so that a run behaves the same on any machine.
#pragma once

#include "mmu/base/types.h"

#include <optional>
#include <string_view>

enum class CpuVendor : u8 { Intel, Amd };

// "intel" or "amd", as `--cpu` spells them.
std::optional<CpuVendor> parse_cpu_vendor(std::string_view name);
std::string_view cpu_vendor_name(CpuVendor vendor);
