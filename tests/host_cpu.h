// The vendor of the CPU the tests run on. Tests that compare the interpreter
// with the host CPU run the model of the host's vendor, so that they are
// clean on Intel and AMD hosts alike; every other test names its model.
#pragma once

#include "cpu/state/cpu_vendor.h"

#include <cpuid.h>
#include <cstring>

inline CpuVendor host_cpu_vendor()
{
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    __get_cpuid(0, &eax, &ebx, &ecx, &edx);
    char name[12];
    std::memcpy(name, &ebx, 4);
    std::memcpy(name + 4, &edx, 4);
    std::memcpy(name + 8, &ecx, 4);
    return std::memcmp(name, "AuthenticAMD", 12) == 0 ? CpuVendor::Amd : CpuVendor::Intel;
}
