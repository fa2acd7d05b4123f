// The KVM requests whose structures end in a flexible array carry the C
// structure sizes (accel/kvm/kvm_abi.h). The expected numbers are what a C
// compiler makes of Linux 6.1's <linux/kvm.h>; the C++ ones from the same
// header differ and the kernel refuses them with EINVAL.
#include "accel/kvm/kvm_abi.h"

#include <doctest/doctest.h>

TEST_CASE("KVM requests with a flexible array are numbered with the C structure sizes")
{
    CHECK(kvm_abi::GET_SUPPORTED_CPUID == 0xC008AE05ul);
    CHECK(kvm_abi::SET_CPUID2 == 0x4008AE90ul);
    CHECK(kvm_abi::GET_MSRS == 0xC008AE88ul);
    CHECK(kvm_abi::SET_MSRS == 0x4008AE89ul);
    CHECK(kvm_abi::SET_SIGNAL_MASK == 0x4004AE8Bul);
    CHECK(kvm_abi::GET_XSAVE == 0x9000AEA4ul);
    CHECK(kvm_abi::SET_XSAVE == 0x5000AEA5ul);
}
