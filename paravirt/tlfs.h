// Names and numbers of the Hyper-V partition interface, straight from the
// Hypervisor Top-Level Functional Specification (TLFS v6.0b; section numbers
// below refer to it). Only what paravirt/ implements or checks is listed.
#pragma once

#include "mmu/base/types.h"

// ---- CPUID leaves (TLFS 2.4) ----
constexpr u32 HV_CPUID_VENDOR_AND_MAX_FUNCTIONS = 0x40000000;
constexpr u32 HV_CPUID_INTERFACE = 0x40000001;
constexpr u32 HV_CPUID_VERSION = 0x40000002;
constexpr u32 HV_CPUID_FEATURES = 0x40000003;
constexpr u32 HV_CPUID_ENLIGHTENMENT_INFO = 0x40000004;
constexpr u32 HV_CPUID_IMPLEMENTATION_LIMITS = 0x40000005;
constexpr u32 HV_CPUID_HARDWARE_FEATURES = 0x40000006;
constexpr u32 HV_CPUID_INTERFACE_SIGNATURE = 0x31237648; // "Hv#1"

// HV_PARTITION_PRIVILEGE_MASK (TLFS 4.2.2): low half in 0x40000003.EAX.
namespace hv_privilege {
constexpr u64 ACCESS_VP_RUNTIME_REG = 1ull << 0;
constexpr u64 ACCESS_PARTITION_REFERENCE_COUNTER = 1ull << 1;
constexpr u64 ACCESS_SYNIC_REGS = 1ull << 2;
constexpr u64 ACCESS_SYNTHETIC_TIMER_REGS = 1ull << 3;
constexpr u64 ACCESS_INTR_CTRL_REGS = 1ull << 4;
constexpr u64 ACCESS_HYPERCALL_MSRS = 1ull << 5;
constexpr u64 ACCESS_VP_INDEX = 1ull << 6;
constexpr u64 ACCESS_RESET_REG = 1ull << 7;
constexpr u64 ACCESS_PARTITION_REFERENCE_TSC = 1ull << 9;
constexpr u64 ACCESS_GUEST_IDLE_REG = 1ull << 10;
constexpr u64 ACCESS_FREQUENCY_REGS = 1ull << 11;
// High half (0x40000003.EBX): hypercall privileges.
constexpr u64 POST_MESSAGES = 1ull << 36;
constexpr u64 SIGNAL_EVENTS = 1ull << 37;
} // namespace hv_privilege

// 0x40000003.EDX: miscellaneous features (TLFS 2.4.4).
namespace hv_feature_edx {
constexpr u32 XMM_HYPERCALL_INPUT = 1u << 4;
constexpr u32 GUEST_IDLE_STATE = 1u << 5;
constexpr u32 FREQUENCY_REGS = 1u << 8;
constexpr u32 GUEST_CRASH_MSRS = 1u << 10;
constexpr u32 SINT_POLLING_MODE = 1u << 17;
constexpr u32 HYPERCALL_MSR_LOCK = 1u << 18;
constexpr u32 DIRECT_SYNTHETIC_TIMERS = 1u << 19;
} // namespace hv_feature_edx

// 0x40000004.EAX: implementation recommendations (TLFS 2.4.5).
namespace hv_hint {
constexpr u32 REMOTE_TLB_FLUSH = 1u << 2;
constexpr u32 APIC_ACCESS_MSRS = 1u << 3;
constexpr u32 SYSTEM_RESET_MSR = 1u << 4;
constexpr u32 RELAXED_TIMING = 1u << 5;
constexpr u32 DEPRECATE_AUTO_EOI = 1u << 9;
constexpr u32 CLUSTER_IPI = 1u << 10;
constexpr u32 EX_PROCESSOR_MASKS = 1u << 11;
} // namespace hv_hint

// ---- Synthetic MSRs (TLFS appendix "Hypervisor Synthetic MSRs") ----
constexpr u32 HV_X64_MSR_GUEST_OS_ID = 0x40000000;    // 2.6
constexpr u32 HV_X64_MSR_HYPERCALL = 0x40000001;      // 3.13
constexpr u32 HV_X64_MSR_VP_INDEX = 0x40000002;       // 7.8.1
constexpr u32 HV_X64_MSR_RESET = 0x40000003;          // appendix
constexpr u32 HV_X64_MSR_VP_RUNTIME = 0x40000010;     // 7.9
constexpr u32 HV_X64_MSR_TIME_REF_COUNT = 0x40000020; // 12.4
constexpr u32 HV_X64_MSR_REFERENCE_TSC = 0x40000021;  // 12.7
constexpr u32 HV_X64_MSR_TSC_FREQUENCY = 0x40000022;  // appendix
constexpr u32 HV_X64_MSR_APIC_FREQUENCY = 0x40000023; // appendix
constexpr u32 HV_X64_MSR_EOI = 0x40000070;            // 10.2.3.1
constexpr u32 HV_X64_MSR_ICR = 0x40000071;            // 10.2.3.2
constexpr u32 HV_X64_MSR_TPR = 0x40000072;            // 10.2.3.3
constexpr u32 HV_X64_MSR_VP_ASSIST_PAGE = 0x40000073; // 7.8.7
constexpr u32 HV_X64_MSR_SCONTROL = 0x40000080;       // 11.8.1
constexpr u32 HV_X64_MSR_SVERSION = 0x40000081;       // 11.8.2
constexpr u32 HV_X64_MSR_SIEFP = 0x40000082;          // 11.8.3
constexpr u32 HV_X64_MSR_SIMP = 0x40000083;           // 11.8.4
constexpr u32 HV_X64_MSR_EOM = 0x40000084;            // 11.8.5
constexpr u32 HV_X64_MSR_SINT0 = 0x40000090;          // 11.8.6
constexpr u32 HV_X64_MSR_SINT15 = 0x4000009F;
constexpr u32 HV_X64_MSR_STIMER0_CONFIG = 0x400000B0; // 12.5.1
constexpr u32 HV_X64_MSR_STIMER0_COUNT = 0x400000B1;  // 12.5.2
constexpr u32 HV_X64_MSR_STIMER3_COUNT = 0x400000B7;
constexpr u32 HV_X64_MSR_GUEST_IDLE = 0x400000F0; // 7.5
constexpr u32 HV_X64_MSR_CRASH_P0 = 0x40000100;   // 4.3
constexpr u32 HV_X64_MSR_CRASH_P4 = 0x40000104;
constexpr u32 HV_X64_MSR_CRASH_CTL = 0x40000105;
// The block of MSR indices the enlightenments claim on the MSR bus; every
// index in it that is not implemented raises #GP, as on Hyper-V.
constexpr u32 HV_X64_MSR_FIRST = 0x40000000;
constexpr u32 HV_X64_MSR_COUNT = 0x200;

// HV_X64_MSR_HYPERCALL fields (TLFS 3.13).
constexpr u64 HV_HYPERCALL_ENABLE = 1ull << 0;
constexpr u64 HV_HYPERCALL_LOCKED = 1ull << 1;
// Page-address registers: GPA page number in 63:12, enable in bit 0.
constexpr u64 HV_PAGE_ENABLE = 1ull << 0;
constexpr u64 HV_PAGE_GPA_MASK = ~0xFFFull;

// HV_CRASH_CTL_REG_CONTENTS (TLFS 4.3.2).
constexpr u64 HV_CRASH_CTL_CRASH_MESSAGE = 1ull << 62;
constexpr u64 HV_CRASH_CTL_CRASH_NOTIFY = 1ull << 63;

// ---- SynIC (TLFS 11) ----
constexpr unsigned HV_SINT_COUNT = 16;
constexpr u64 HV_SYNIC_VERSION = 1;
constexpr u64 HV_SCONTROL_ENABLE = 1ull << 0;
constexpr u64 HV_SINT_VECTOR_MASK = 0xFF;
constexpr u64 HV_SINT_MASKED = 1ull << 16;
constexpr u64 HV_SINT_AUTO_EOI = 1ull << 17;
constexpr u64 HV_SINT_POLLING = 1ull << 18;
constexpr u8 HV_SINT_FIRST_VALID_VECTOR = 16;

// HV_MESSAGE (TLFS 11.10.x): 16 slots of 256 bytes make up the SIM page.
constexpr unsigned HV_MESSAGE_SIZE = 256;
constexpr unsigned HV_MESSAGE_HEADER_SIZE = 16;
constexpr unsigned HV_MESSAGE_MAX_PAYLOAD = 240;
constexpr u8 HV_MESSAGE_FLAG_PENDING = 1u << 0;
// Offsets inside one message slot.
constexpr unsigned HV_MESSAGE_TYPE_OFFSET = 0;
constexpr unsigned HV_MESSAGE_PAYLOAD_SIZE_OFFSET = 4;
constexpr unsigned HV_MESSAGE_FLAGS_OFFSET = 5;
constexpr unsigned HV_MESSAGE_ORIGIN_OFFSET = 8;
// HV_SYNIC_EVENT_FLAGS: 16 areas of 256 bytes (2048 flags) in the SIEF page.
constexpr unsigned HV_EVENT_FLAGS_BYTES = 256;
constexpr unsigned HV_EVENT_FLAGS_COUNT = HV_EVENT_FLAGS_BYTES * 8;

// HV_MESSAGE_TYPE values the hypervisor itself sends (TLFS 13.2).
constexpr u32 HV_MESSAGE_TYPE_NONE = 0;
constexpr u32 HV_MESSAGE_TYPE_TIMER_EXPIRED = 0x80000010;

// ---- Synthetic timers (TLFS 12.5) ----
constexpr unsigned HV_STIMER_COUNT = 4;
constexpr u64 HV_STIMER_ENABLE = 1ull << 0;
constexpr u64 HV_STIMER_PERIODIC = 1ull << 1;
constexpr u64 HV_STIMER_LAZY = 1ull << 2;
constexpr u64 HV_STIMER_AUTO_ENABLE = 1ull << 3;
constexpr unsigned HV_STIMER_VECTOR_SHIFT = 4; // 11:4 ApicVector
constexpr u64 HV_STIMER_DIRECT_MODE = 1ull << 12;
constexpr unsigned HV_STIMER_SINT_SHIFT = 16; // 19:16 SINTx
// Bits 63:20 and 15:13 are RsvdZ.
constexpr u64 HV_STIMER_RESERVED = ~0xFFFFFull | (7ull << 13);

// ---- Hypercalls (TLFS 3) ----
// Hypercall input value fields (TLFS 3.7).
constexpr u64 HV_HYPERCALL_CODE_MASK = 0xFFFF;
constexpr u64 HV_HYPERCALL_FAST = 1ull << 16;
constexpr unsigned HV_HYPERCALL_VARHEAD_SHIFT = 17; // 26:17, in QWORDs
constexpr u64 HV_HYPERCALL_VARHEAD_MASK = 0x3FFull << 17;
constexpr u64 HV_HYPERCALL_NESTED = 1ull << 31;
constexpr unsigned HV_HYPERCALL_REP_COUNT_SHIFT = 32; // 43:32
constexpr unsigned HV_HYPERCALL_REP_START_SHIFT = 48; // 59:48
constexpr u64 HV_HYPERCALL_REP_FIELD_MASK = 0xFFF;
constexpr u64 HV_HYPERCALL_RSVDZ = (0xFull << 27) | (0xFull << 44) | (0xFull << 60);
// Hypercall result value (TLFS 3.8): status in 15:0, reps completed in 43:32.
constexpr unsigned HV_HYPERCALL_REPS_COMPLETED_SHIFT = 32;

// Call codes (TLFS appendix "Hypercall Code Reference").
enum class HvCallCode : u16 {
    FlushVirtualAddressSpace = 0x0002,
    FlushVirtualAddressList = 0x0003,
    NotifyLongSpinWait = 0x0008,
    SendSyntheticClusterIpi = 0x000B,
    FlushVirtualAddressSpaceEx = 0x0013,
    FlushVirtualAddressListEx = 0x0014,
    SendSyntheticClusterIpiEx = 0x0015,
    PostMessage = 0x005C,
    SignalEvent = 0x005D,
};

// HV_STATUS (TLFS appendix "Hypercall Status Code Reference"). The table
// prints INSUFFICIENT_BUFFERS as 0x0033, a typo: it sits between 0x12 and
// 0x14, and Hyper-V and Linux use 0x13.
enum class HvStatus : u16 {
    Success = 0x0000,
    InvalidHypercallCode = 0x0002,
    InvalidHypercallInput = 0x0003,
    InvalidAlignment = 0x0004,
    InvalidParameter = 0x0005,
    AccessDenied = 0x0006,
    OperationDenied = 0x0008,
    InsufficientMemory = 0x000B,
    InvalidVpIndex = 0x000E,
    InvalidPortId = 0x0011,
    InvalidConnectionId = 0x0012,
    InsufficientBuffers = 0x0013,
    InvalidSynicState = 0x0018,
};

// HV_FLUSH_FLAGS (TLFS 9.3).
constexpr u64 HV_FLUSH_ALL_PROCESSORS = 1ull << 0;
constexpr u64 HV_FLUSH_ALL_VIRTUAL_ADDRESS_SPACES = 1ull << 1;
constexpr u64 HV_FLUSH_NON_GLOBAL_MAPPINGS_ONLY = 1ull << 2;

// HV_VP_SET formats (TLFS 7.8.x "HV_VP_SET").
constexpr u64 HV_GENERIC_SET_SPARSE_4K = 0;
constexpr u64 HV_GENERIC_SET_ALL = 1;
constexpr unsigned HV_MAX_SPARSE_BANKS = 64;

// Vectors a synthetic cluster IPI may carry (TLFS 10.5.x).
constexpr u32 HV_IPI_LOW_VECTOR = 0x10;
constexpr u32 HV_IPI_HIGH_VECTOR = 0xFF;
