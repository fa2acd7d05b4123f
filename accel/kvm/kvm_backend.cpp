#include "accel/kvm/kvm_backend.h"

#include "accel/kvm/kvm_cpuid.h"
#include "accel/kvm/kvm_vcpu.h"

#include <span>
#include <x86intrin.h>
#include <sys/mman.h>

namespace {

// A vCPU KVM made, not yet handed to the machine.
struct MadeVcpu {
    Fd fd;
    kvm_run* run = nullptr;
};

ErrorOr<MadeVcpu> make_vcpu(const KvmVm& vm, unsigned index)
{
    MadeVcpu made{Fd(ioctl(vm.vm.get(), KVM_CREATE_VCPU, index)), nullptr};
    if (made.fd.get() < 0)
        return make_error("--accel kvm: KVM_CREATE_VCPU " + std::to_string(index) + ": " + errno_text());
    void* run = mmap(nullptr, vm.run_size, PROT_READ | PROT_WRITE, MAP_SHARED, made.fd.get(), 0);
    if (run == MAP_FAILED)
        return make_error("--accel kvm: mapping vCPU " + std::to_string(index) + "'s kvm_run: " + errno_text());
    made.run = static_cast<kvm_run*>(run);
    return made;
}

class KvmAccelerator final : public Accelerator {
public:
    KvmAccelerator(std::unique_ptr<KvmVm> vm, std::vector<MadeVcpu> vcpus, u64 tsc_hz)
        : m_vm(std::move(vm)), m_made(std::move(vcpus)), m_tsc_hz(tsc_hz)
    {
    }
    ~KvmAccelerator() override
    {
        for (MadeVcpu& made : m_made)
            if (made.run)
                munmap(made.run, m_vm->run_size);
    }
    const char* name() const override { return "kvm"; }
    u64 tsc_hz() const override { return m_tsc_hz; }
    std::function<u64()> host_time_ns() const override
    {
        // The host TSC in nanoseconds at the rate the guest is told.
        return [hz = m_tsc_hz] { return static_cast<u64>(static_cast<unsigned __int128>(__rdtsc()) * 1'000'000'000 / hz); };
    }
    std::optional<u8> hypercall_port() const override { return KVM_HYPERCALL_PORT; }
    void narrow_cpuid(CpuidModel& model) const override { narrow_to_kvm(model, m_vm->supported_cpuid); }
    // 2 ms rounds: host input is looked at promptly between them. 0.5 ms
    // turns: while the vCPUs take turns on one thread, an IPI to one waits
    // at most that long. With thread=multi they run at once instead, on
    // threads of their own (the turn is not used): the machine's thread
    // fires the timers meanwhile, and an interrupt for a vCPU inside the
    // guest kicks it out to take it.
    std::optional<RunSlices> run_slices() const override { return RunSlices{2'000'000, 500'000}; }
    bool vcpus_on_threads() const override { return true; }
    // The vCPUs were made with the VM (where a failure is an error the
    // user sees); each is handed out once.
    std::unique_ptr<VcpuBackend> create_vcpu(unsigned index) override
    {
        MadeVcpu& made = m_made.at(index); // the machine asks for each of vcpu_count once
        auto vcpu = make_kvm_vcpu(*m_vm, index, std::move(made.fd), made.run);
        made.run = nullptr;
        return vcpu;
    }

private:
    std::unique_ptr<KvmVm> m_vm;
    std::vector<MadeVcpu> m_made;
    u64 m_tsc_hz;
};

// The guest's TSC runs at the host's rate, as under QEMU without a
// tsc-frequency: KVM cannot be trusted to scale it (a nested SVM under QEMU
// TCG accepts KVM_SET_TSC_KHZ and ignores the ratio, and the guest's clock
// then ran twice as fast as the partition's timers). The rate is what the
// Hyper-V frequency MSR, the reference TSC page and the LAPIC's
// TSC-deadline timer are given.
ErrorOr<u64> host_tsc_hz(const MadeVcpu& vcpu)
{
    const int khz = ioctl(vcpu.fd.get(), KVM_GET_TSC_KHZ, 0);
    if (khz <= 0)
        return make_error("--accel kvm: KVM_GET_TSC_KHZ: the host's TSC rate is unknown");
    const u64 hz = static_cast<u64>(khz) * 1000;
    if (hz <= 10'000'000) // the reference TSC page's scale needs more than 10 MHz
        return make_error("--accel kvm: the host's TSC runs at " + std::to_string(khz) + " kHz, too slow for the reference TSC page");
    return hz;
}

} // namespace

ErrorOr<std::unique_ptr<Accelerator>> make_kvm_accelerator(const AcceleratorWiring& wiring)
{
    std::unique_ptr<KvmVm> shared = TRY(open_kvm_vm(wiring));
    std::vector<MadeVcpu> vcpus;
    for (unsigned i = 0; i < wiring.vcpu_count; ++i) {
        ErrorOr<MadeVcpu> made = make_vcpu(*shared, i);
        if (made.is_error()) {
            for (MadeVcpu& done : vcpus)
                munmap(done.run, shared->run_size);
            return made.error();
        }
        vcpus.push_back(std::move(made.value()));
    }
    ErrorOr<u64> tsc_hz = vcpus.empty() ? ErrorOr<u64>(make_error("--accel kvm: no vCPUs")) : host_tsc_hz(vcpus[0]);
    if (tsc_hz.is_error()) {
        for (MadeVcpu& done : vcpus)
            munmap(done.run, shared->run_size);
        return tsc_hz.error();
    }
    return std::unique_ptr<Accelerator>(
        std::make_unique<KvmAccelerator>(std::move(shared), std::move(vcpus), tsc_hz.value()));
}

