// KVM ioctls whose argument ends in a flexible array, numbered as C numbers
// them. Linux 6.1's uapi headers declare those arrays with
// __DECLARE_FLEX_ARRAY, which in C++ puts an empty struct before the array:
// sizeof grows (kvm_cpuid2: 12 bytes, not 8), and with it the size that
// _IOWR encodes in the request number, so the kernel answers EINVAL to
// every one of them. The requests here carry the C sizes, and the buffers
// are laid out by hand: a fixed header, then the array.
#pragma once

#include "mmu/base/types.h"

#include <linux/kvm.h>

#include <cstddef>

namespace kvm_abi {

// The headers before the arrays: kvm_cpuid2 {nent, padding}, kvm_msrs
// {nmsrs, pad}, kvm_signal_mask {len}; kvm_xsave is 4 KiB of region.
constexpr size_t CPUID2_HEADER = 8, MSRS_HEADER = 8, SIGNAL_MASK_HEADER = 4, XSAVE_SIZE = 4096;

constexpr unsigned long GET_SUPPORTED_CPUID = _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x05, CPUID2_HEADER);
constexpr unsigned long SET_CPUID2 = _IOC(_IOC_WRITE, KVMIO, 0x90, CPUID2_HEADER);
constexpr unsigned long GET_MSRS = _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x88, MSRS_HEADER);
constexpr unsigned long SET_MSRS = _IOC(_IOC_WRITE, KVMIO, 0x89, MSRS_HEADER);
constexpr unsigned long SET_SIGNAL_MASK = _IOC(_IOC_WRITE, KVMIO, 0x8b, SIGNAL_MASK_HEADER);
constexpr unsigned long GET_XSAVE = _IOC(_IOC_READ, KVMIO, 0xa4, XSAVE_SIZE);
constexpr unsigned long SET_XSAVE = _IOC(_IOC_WRITE, KVMIO, 0xa5, XSAVE_SIZE);

} // namespace kvm_abi
