// The VM half of the KVM backend (docs/kvm.md): the /dev/kvm and VM file
// descriptors, the memory slots on the machine's RAM and the MSR filter
// that every vCPU shares. kvm_vcpu.cpp runs the vCPUs, kvm_backend.cpp
// makes both behind the Accelerator interface.
#pragma once

#include "accel/kvm/kvm_rom_slots.h"
#include "accel/vcpu_backend.h"
#include "mmu/base/error_or.h"

#include <linux/kvm.h>

#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <sys/ioctl.h>
#include <unistd.h>

// A file descriptor that closes itself.
class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : m_fd(fd) {}
    Fd(Fd&& other) noexcept : m_fd(std::exchange(other.m_fd, -1)) {}
    Fd& operator=(Fd&& other) noexcept
    {
        std::swap(m_fd, other.m_fd);
        return *this;
    }
    ~Fd()
    {
        if (m_fd >= 0)
            ::close(m_fd);
    }
    int get() const { return m_fd; }

private:
    int m_fd = -1;
};

// strerror(errno), for the one-line messages.
std::string errno_text();

// The legacy VGA and ROM window: not RAM to the guest (PhysicalMemory).
constexpr u64 KVM_LEGACY_HOLE_START = 0xA0000, KVM_LEGACY_HOLE_END = 0x100000;

// The VM and what its vCPUs share.
class KvmVm {
public:
    KvmVm(const AcceleratorWiring& wiring, Fd kvm, Fd vm, size_t run_size,
          std::vector<kvm_cpuid_entry2> supported)
        : wiring(wiring), kvm(std::move(kvm)), vm(std::move(vm)), run_size(run_size),
          supported_cpuid(std::move(supported))
    {
        // The guest's stores under KVM never pass PhysicalMemory: KVM logs
        // them itself, for snapshots and live migration.
        this->wiring.memory.set_external_dirty_log(
            {[this](bool on) { set_dirty_logging(on); }, [this](PhysicalMemory::DirtyBitmap& bits) { collect_dirty(bits); }});
    }

    ~KvmVm()
    {
        wiring.memory.set_layout_listener({});
        wiring.memory.set_external_dirty_log({});
    }

    // Memory slots and the MSR filter, made when the first vCPU first runs:
    // by then the machine has claimed every MSR its devices serve and
    // mapped every ROM.
    bool prepare()
    {
        if (m_prepared)
            return true;
        m_prepared = true;
        if (!map_ram())
            return false;
        m_rom_slots = std::make_unique<KvmRomSlots>(vm.get(), wiring.memory, m_next_slot);
        if (!m_rom_slots->map())
            return false;
        wiring.memory.set_layout_listener([this] { (void)m_rom_slots->update(); });
        return filter_device_msrs();
    }

    // Held around every exit to the devices: the machine's (its vCPUs run on
    // threads of their own) or the VM's own.
    std::mutex& device_lock() { return wiring.device_lock ? *wiring.device_lock : m_own_device_lock; }

    AcceleratorWiring wiring;
    Fd kvm, vm;
    size_t run_size;
    std::vector<kvm_cpuid_entry2> supported_cpuid;
    // Notified, under the device lock, whenever a vCPU leaves the guest: a
    // TLB flush for a vCPU inside the guest waits for it.
    std::condition_variable left_guest;

private:
    // A slot on guest RAM, kept for the dirty log.
    struct RamSlot {
        u32 slot;
        u64 base, size;
        u8* host;
    };
    bool add_slot(u64 base, u64 size, u8* host)
    {
        if (size == 0)
            return true;
        const RamSlot slot{m_next_slot++, base, size, host};
        if (!register_slot(slot))
            return false;
        m_ram_slots.push_back(slot);
        return true;
    }
    // KVM_SET_USER_MEMORY_REGION for `slot`, logging its writes while the
    // machine's dirty log is on (KVM lets a slot's flags change in place).
    bool register_slot(const RamSlot& slot);
    void set_dirty_logging(bool on);
    void collect_dirty(PhysicalMemory::DirtyBitmap& bits);

    bool map_ram()
    {
        // Guest RAM is the machine's own host memory: devices and KVM see
        // the same bytes. The legacy hole stays out (it exits as MMIO to the
        // ROM and shadow-RAM model, like every other non-RAM address).
        for (const PhysicalMemory::RamRange& range : wiring.memory.ram_ranges()) {
            const u64 end = range.base + range.size;
            if (range.base < KVM_LEGACY_HOLE_START && end > KVM_LEGACY_HOLE_END) {
                if (!add_slot(range.base, KVM_LEGACY_HOLE_START - range.base, range.host) ||
                    !add_slot(KVM_LEGACY_HOLE_END, end - KVM_LEGACY_HOLE_END,
                              range.host + (KVM_LEGACY_HOLE_END - range.base)))
                    return false;
            } else if (!add_slot(range.base, range.size, range.host)) {
                return false;
            }
        }
        return true;
    }

    bool filter_device_msrs()
    {
        // Every MSR a device claims on the MSR bus (the LAPIC's APIC base
        // and TSC deadline, the Hyper-V synthetic MSRs) leaves KVM and
        // reaches that device; KVM keeps the architectural rest. The x2APIC
        // range cannot be filtered (KVM ignores it in a filter): without an
        // in-kernel LAPIC, KVM refuses those accesses, and a refused access
        // (INVAL) comes out too, as does one to an MSR KVM does not know.
        // Whatever no device claims then faults (#GP) here.
        kvm_enable_cap cap{};
        cap.cap = KVM_CAP_X86_USER_SPACE_MSR;
        cap.args[0] = KVM_MSR_EXIT_REASON_FILTER | KVM_MSR_EXIT_REASON_UNKNOWN | KVM_MSR_EXIT_REASON_INVAL;
        if (ioctl(vm.get(), KVM_ENABLE_CAP, &cap) < 0) {
            std::fprintf(stderr, "viridian: KVM_CAP_X86_USER_SPACE_MSR: %s\n", errno_text().c_str());
            return false;
        }
        const std::vector<MsrBus::Claim> claims = wiring.msrs.claims();
        if (claims.size() > KVM_MSR_FILTER_MAX_RANGES) {
            std::fprintf(stderr, "viridian: KVM takes %d MSR ranges, the devices claim %zu\n",
                         KVM_MSR_FILTER_MAX_RANGES, claims.size());
            return false;
        }
        kvm_msr_filter filter{};
        filter.flags = KVM_MSR_FILTER_DEFAULT_ALLOW;
        std::vector<std::vector<u8>> bitmaps; // all zero: every access denied to KVM
        for (size_t i = 0; i < claims.size(); ++i) {
            bitmaps.emplace_back((claims[i].count + 7) / 8, 0);
            filter.ranges[i].flags = KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE;
            filter.ranges[i].nmsrs = claims[i].count;
            filter.ranges[i].base = claims[i].first;
            filter.ranges[i].bitmap = bitmaps.back().data();
        }
        if (ioctl(vm.get(), KVM_X86_SET_MSR_FILTER, &filter) < 0) {
            std::fprintf(stderr, "viridian: KVM_X86_SET_MSR_FILTER: %s\n", errno_text().c_str());
            return false;
        }
        return true;
    }

    bool m_prepared = false;
    std::mutex m_own_device_lock;
    bool m_log_dirty = false;
    u32 m_next_slot = 0;
    std::vector<RamSlot> m_ram_slots;
    std::unique_ptr<KvmRomSlots> m_rom_slots;
};

// Opens /dev/kvm, checks that it offers what the backend needs, and makes
// the VM; an error is one line for the user (no /dev/kvm, no permission, a
// KVM without a needed capability).
ErrorOr<std::unique_ptr<KvmVm>> open_kvm_vm(const AcceleratorWiring& wiring);

// Whether this host's /dev/kvm is hardware virtualization (kvm_intel's VT-x
// or kvm_amd's SVM) or PVM (kvm_pvm: guests run in ring 3 under shadow page
// tables and KVM's emulator; it runs only PVM-enabled guest kernels, not
// real mode, firmware or the stock Debian kernel), read off the modules in
// `sys_module` (/sys/module; a built-in module with parameters is there too).
enum class KvmKind { Hardware, Pvm, Unknown };
KvmKind kvm_kind(const std::string& sys_module = "/sys/module");
