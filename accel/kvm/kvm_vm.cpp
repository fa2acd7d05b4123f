#include "accel/kvm/kvm_vm.h"

#include "accel/kvm/kvm_abi.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

std::string errno_text() { return std::strerror(errno); }

namespace {

// What KVM must offer for this backend (Documentation/virt/kvm/api.rst 8.x).
struct NeededCapability {
    int cap;
    const char* name;
};
constexpr NeededCapability NEEDED[] = {
    {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
    {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
    {KVM_CAP_X86_USER_SPACE_MSR, "KVM_CAP_X86_USER_SPACE_MSR"},
    {KVM_CAP_X86_MSR_FILTER, "KVM_CAP_X86_MSR_FILTER"},
    {KVM_CAP_XSAVE, "KVM_CAP_XSAVE"},
    {KVM_CAP_XCRS, "KVM_CAP_XCRS"},
    {KVM_CAP_VCPU_EVENTS, "KVM_CAP_VCPU_EVENTS"},
    {KVM_CAP_DEBUGREGS, "KVM_CAP_DEBUGREGS"},
    {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
};

// Where KVM puts the real-mode TSS and identity page table VT-x needs
// (below the system ROM, inside the PCI hole; the addresses QEMU uses).
constexpr u64 TSS_ADDRESS = 0xFEFFD000, IDENTITY_MAP_ADDRESS = 0xFEFFC000;

ErrorOr<std::vector<kvm_cpuid_entry2>> supported_cpuid(int kvm)
{
    for (u32 n = 64; n <= 1024; n *= 2) {
        std::vector<u8> buffer(kvm_abi::CPUID2_HEADER + n * sizeof(kvm_cpuid_entry2));
        std::memcpy(buffer.data(), &n, sizeof n);
        if (ioctl(kvm, kvm_abi::GET_SUPPORTED_CPUID, buffer.data()) == 0) {
            u32 count;
            std::memcpy(&count, buffer.data(), sizeof count);
            std::vector<kvm_cpuid_entry2> entries(std::min(count, n));
            std::memcpy(entries.data(), buffer.data() + kvm_abi::CPUID2_HEADER,
                        entries.size() * sizeof(kvm_cpuid_entry2));
            return entries;
        }
        if (errno != E2BIG)
            return make_error("--accel kvm: KVM_GET_SUPPORTED_CPUID: " + errno_text());
    }
    return make_error("--accel kvm: KVM_GET_SUPPORTED_CPUID: too many entries");
}

} // namespace

KvmKind kvm_kind(const std::string& sys_module)
{
    const auto loaded = [&sys_module](const char* module) {
        return ::access((sys_module + "/" + module).c_str(), F_OK) == 0;
    };
    if (loaded("kvm_intel") || loaded("kvm_amd"))
        return KvmKind::Hardware;
    return loaded("kvm_pvm") ? KvmKind::Pvm : KvmKind::Unknown;
}

ErrorOr<std::unique_ptr<KvmVm>> open_kvm_vm(const AcceleratorWiring& wiring)
{
    // PVM's /dev/kvm opens and passes every check below, then fails the
    // machine's first real-mode or firmware instruction in KVM's emulator
    // (a test ROM stops with an emulation error, Linux prints nothing).
    if (kvm_kind() == KvmKind::Pvm)
        return make_error("--accel kvm: this host's KVM is PVM (kvm_pvm), which runs only "
                          "PVM-enabled guest kernels, not a PC's firmware or real mode; use --accel interp");
    Fd kvm(::open("/dev/kvm", O_RDWR | O_CLOEXEC));
    if (kvm.get() < 0)
        return make_error("--accel kvm: cannot open /dev/kvm: " + errno_text() +
                          (errno == ENOENT ? " (no KVM on this host: load kvm_intel or kvm_amd, "
                                             "or use --accel interp)"
                                           : ""));
    if (ioctl(kvm.get(), KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
        return make_error("--accel kvm: /dev/kvm speaks another API version than 12");
    for (const NeededCapability& need : NEEDED)
        if (ioctl(kvm.get(), KVM_CHECK_EXTENSION, need.cap) <= 0)
            return make_error(std::string("--accel kvm: this host's KVM lacks ") + need.name);
    const int run_size = ioctl(kvm.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
    if (run_size <= 0)
        return make_error("--accel kvm: KVM_GET_VCPU_MMAP_SIZE: " + errno_text());
    std::vector<kvm_cpuid_entry2> cpuid = TRY(supported_cpuid(kvm.get()));
    Fd vm(ioctl(kvm.get(), KVM_CREATE_VM, 0));
    if (vm.get() < 0)
        return make_error("--accel kvm: KVM_CREATE_VM: " + errno_text());
    // VT-x needs both for real mode; SVM ignores them.
    if (ioctl(vm.get(), KVM_SET_TSS_ADDR, TSS_ADDRESS) < 0)
        return make_error("--accel kvm: KVM_SET_TSS_ADDR: " + errno_text());
    u64 identity_map = IDENTITY_MAP_ADDRESS;
    (void)ioctl(vm.get(), KVM_SET_IDENTITY_MAP_ADDR, &identity_map);
    return std::make_unique<KvmVm>(wiring, std::move(kvm), std::move(vm), static_cast<size_t>(run_size),
                                   std::move(cpuid));
}

bool KvmVm::register_slot(const RamSlot& slot)
{
    kvm_userspace_memory_region region{};
    region.slot = slot.slot;
    region.flags = m_log_dirty ? KVM_MEM_LOG_DIRTY_PAGES : 0;
    region.guest_phys_addr = slot.base;
    region.memory_size = slot.size;
    region.userspace_addr = reinterpret_cast<u64>(slot.host);
    if (ioctl(vm.get(), KVM_SET_USER_MEMORY_REGION, &region) < 0) {
        std::fprintf(stderr, "viridian: KVM_SET_USER_MEMORY_REGION: %s\n", errno_text().c_str());
        return false;
    }
    return true;
}

void KvmVm::set_dirty_logging(bool on)
{
    if (m_log_dirty == on)
        return;
    m_log_dirty = on;
    // Slots not made yet (no vCPU has run) take the flag when they are.
    for (const RamSlot& slot : m_ram_slots)
        (void)register_slot(slot);
}

void KvmVm::collect_dirty(PhysicalMemory::DirtyBitmap& bits)
{
    if (!m_log_dirty)
        return;
    for (const RamSlot& slot : m_ram_slots) {
        // One bit per page of the slot, in 64-bit words; KVM clears them
        // and write-protects the pages again as it hands them over.
        const u64 pages = slot.size >> 12;
        std::vector<u64> slot_bits((pages + 63) / 64, 0);
        kvm_dirty_log log{};
        log.slot = slot.slot;
        log.dirty_bitmap = slot_bits.data();
        if (ioctl(vm.get(), KVM_GET_DIRTY_LOG, &log) < 0) {
            // Pages not known to be clean are sent again rather than lost.
            std::fprintf(stderr, "viridian: KVM_GET_DIRTY_LOG: %s\n", errno_text().c_str());
            std::fill(slot_bits.begin(), slot_bits.end(), ~0ull);
        }
        for (u64 word = 0; word < slot_bits.size(); ++word)
            for (u64 w = slot_bits[word]; w; w &= w - 1) {
                const u64 page = word * 64 + static_cast<u64>(std::countr_zero(w));
                if (page >= pages)
                    break;
                const u64 index = wiring.memory.ram_page_index(slot.base + (page << 12));
                if (index / 64 < bits.size())
                    bits[index / 64] |= 1ull << (index % 64);
            }
    }
}
