#include "cpu/state/cpu_vendor.h"

std::optional<CpuVendor> parse_cpu_vendor(std::string_view name)
{
    if (name == "intel")
        return CpuVendor::Intel;
    if (name == "amd")
        return CpuVendor::Amd;
    return std::nullopt;
}

std::string_view cpu_vendor_name(CpuVendor vendor)
{
    return vendor == CpuVendor::Amd ? "amd" : "intel";
}
