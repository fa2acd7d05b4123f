#include "accel/kvm/kvm_vcpu.h"

#include "accel/kvm/kvm_abi.h"
#include "accel/kvm/kvm_cpuid.h"
#include "accel/kvm/kvm_state.h"
#include "accel/vcpu_snapshot.h"
#include "mmu/base/host_time.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <mutex>
#include <pthread.h>
#include <sys/mman.h>
#include <utility>
#include <sys/syscall.h>
#include <x86intrin.h>

namespace {

constexpr u32 MSR_IA32_TSC = 0x10;
constexpr u64 CR4_PGE = 1u << 7;
// A rep hypercall that continues is called again here, up to this many
// times, rather than re-entering the guest (TLFS 3.9 lets either happen).
constexpr unsigned MAX_HYPERCALL_CONTINUATIONS = 1 << 16;

// The kick: a signal blocked on the vCPU's thread except inside KVM_RUN
// (KVM_SET_SIGNAL_MASK), so that one sent at any time ends the next or
// current KVM_RUN with EINTR and is never lost.
int kick_signal() { return SIGRTMIN + 2; }

void install_kick_handler()
{
    static std::once_flag once;
    std::call_once(once, [] {
        struct sigaction action {};
        action.sa_handler = [](int) {};
        sigemptyset(&action.sa_mask);
        ::sigaction(kick_signal(), &action, nullptr);
    });
}

pid_t current_tid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

class KvmVcpu final : public VcpuBackend {
public:
    KvmVcpu(KvmVm& vm, unsigned index, Fd fd, kvm_run* run)
        : m_vm(vm), m_index(index), m_fd(std::move(fd)), m_run(run)
    {
        set_state(power_on_state(index));
    }
    ~KvmVcpu() override
    {
        if (m_timer_tid)
            timer_delete(m_timer);
        munmap(m_run, m_vm.run_size);
    }

    VcpuExit run(u64 budget) override;
    void request_stop() override
    {
        m_stop.store(true);
        m_run->immediate_exit = 1;
        signal_thread();
    }
    void kick() override
    {
        // Called with the device lock held, so m_in_guest is exact: outside
        // the guest the vCPU's thread asks its interrupt source before it
        // enters again.
        if (m_in_guest)
            signal_thread();
    }
    u64 retired() const override { return m_units; }
    u64 units() const override { return m_units; }
    u64 external_interrupts() const override { return m_external_interrupts; }
    VcpuExitCounts exit_counts() const override { return m_exits; }
    const Fault& last_fault() const override { return m_fault; }

    void reset() override
    {
        // INIT leaves the TSC (SDM Vol 3A 9.1.1): KVM keeps counting it.
        CpuState s = power_on_state(m_index);
        s.msr.tsc_offset = get_state().msr.tsc_offset;
        set_state(s);
    }
    void quiesce() override;
    CpuState get_state() override
    {
        if (!m_cache_valid)
            pull_state();
        return m_cache;
    }
    void set_state(const CpuState& state) override
    {
        // A TSC other than the one KVM counts (a guest's write on the
        // interpreter before a switch back; a snapshot's) is given to KVM
        // at the next entry; the same one is left running, exact.
        if (state.msr.tsc_offset != m_cache.msr.tsc_offset)
            m_tsc_pending = true;
        m_cache = state;
        m_cache_valid = m_cache_dirty = true;
        m_halted = state.events.halted;
        m_cr8 = state.cr8;
        m_tsc_offset_seen.store(state.msr.tsc_offset);
    }
    void visit_state(StateVisitor& v) override;

    void set_interrupt_source(InterruptSource* source) override { m_source = source; }
    void set_fpu_error_pins(FpuErrorPins*) override {} // FERR# needs CR0.NE = 0 exits KVM does not give
    void set_tsc_source(std::function<u64()> source) override { m_tsc_source = std::move(source); }
    u64 read_tsc() override
    {
        // KVM's count cannot be read while the vCPU runs on its own thread
        // (a timer on the machine's thread asks): the offset last seen is
        // exact unless the guest has written its TSC since.
        if (m_cache_dirty || running_elsewhere())
            return tsc_now() + m_tsc_offset_seen.load();
        u64 tsc = 0;
        get_msrs(std::span<const u32>(&MSR_IA32_TSC, 1), std::span<u64>(&tsc, 1));
        return tsc;
    }
    void set_hypercall_hook(HypercallHook hook) override { m_hypercall = std::move(hook); }
    void set_trace_hook(TraceHook) override {} // no instruction trace under KVM (docs/kvm.md)
    void set_guest_debug(const GuestDebugSet&) override {}
    DebugEvent debug_event() const override { return {}; }

    // KVM flushes the guest TLB itself when the guest's CR3/INVLPG say so;
    // a flush on the guest's behalf (a Hyper-V flush hypercall) needs a
    // request KVM offers only to its own Hyper-V emulation: the flush is
    // done before the next entry (flush_guest_tlb).
    void flush_tlb(bool) override { request_flush(); }
    void invalidate_page(u64) override { request_flush(); }

private:
    bool vcpu_ioctl(unsigned long request, void* arg, const char* name)
    {
        if (ioctl(m_fd.get(), request, arg) >= 0)
            return true;
        std::fprintf(stderr, "viridian: vCPU %u: %s: %s\n", m_index, name, errno_text().c_str());
        return false;
    }
    u64 tsc_now() const { return m_tsc_source ? m_tsc_source() : 0; }
    bool running_elsewhere() const
    {
        const pid_t tid = m_running_tid.load();
        return tid && tid != current_tid();
    }
    // The kick signal to the thread running this vCPU, unless that is this one.
    void signal_thread()
    {
        if (const pid_t tid = m_running_tid.load(); tid && tid != current_tid())
            syscall(SYS_tgkill, getpid(), tid, kick_signal());
    }
    void request_flush();
    bool prepare_to_run();
    bool set_cpuid();
    void pull_state();
    bool push_state();
    bool get_msrs(std::span<const u32> indices, std::span<u64> values);
    bool set_msrs(std::span<const u32> indices, std::span<const u64> values);
    void set_guest_tsc(u64 offset_from_partition);
    bool flush_guest_tlb();
    bool arm_kick_timer(u64 ns);
    void drain_kicks();
    // A kick stays pending once KVM_RUN has returned for it (the signal is
    // blocked outside KVM_RUN) and would end every later KVM_RUN at once.
    void take_pending_kicks();
    bool guest_if() const;
    bool wake_from_halt();
    void inject_events();
    void handle_io();
    bool complete_pending_exit();
    bool event_in_flight();
    void handle_hypercall();
    void handle_mmio();
    void handle_msr(bool write);
    VcpuExit fail(const char* what);

    KvmVm& m_vm;
    unsigned m_index;
    Fd m_fd;
    kvm_run* m_run;
    InterruptSource* m_source = nullptr;
    HypercallHook m_hypercall;
    std::function<u64()> m_tsc_source;

    // The state as the machine last set or read it. Dirty: KVM has not
    // been given it yet (it is, before the next KVM_RUN). Valid: it is what
    // KVM holds (no KVM_RUN since it was read or set).
    CpuState m_cache;
    bool m_cache_valid = false, m_cache_dirty = false;
    bool m_cpuid_set = false;
    bool m_flush_pending = false;
    // The TSC is given to KVM at the first run (the partition's TSC, which
    // KVM's own count from vCPU creation lags) and after a restore (the
    // snapshot's); otherwise KVM keeps it: INIT and SIPI leave it.
    bool m_tsc_pending = true;
    bool m_halted = false; // HLT left to userspace: KVM has no halted state without its own LAPIC
    // Inside KVM_RUN (set and cleared under the device lock), and how many
    // times it has left it: what a TLB flush from another vCPU waits for.
    std::atomic<bool> m_in_guest{false};
    u64 m_guest_exits = 0;
    std::atomic<u64> m_tsc_offset_seen{0}; // CpuState's tsc_offset as last set or read
    u64 m_cr8 = 0;         // the TPR KVM gets and gives in kvm_run (no in-kernel LAPIC)

    u64 m_units = 0;
    u64 m_external_interrupts = 0;
    VcpuExitCounts m_exits;
    Fault m_fault;
    std::atomic<bool> m_stop{false};
    std::atomic<pid_t> m_running_tid{0};
    timer_t m_timer{};
    pid_t m_timer_tid = 0;
};

bool KvmVcpu::set_cpuid()
{
    const std::vector<kvm_cpuid_entry2> table =
        kvm_cpuid_table(m_vm.wiring.cpuid, m_index, m_vm.supported_cpuid);
    std::vector<u8> buffer(kvm_abi::CPUID2_HEADER + table.size() * sizeof(kvm_cpuid_entry2));
    const u32 count = static_cast<u32>(table.size());
    std::memcpy(buffer.data(), &count, sizeof count);
    std::memcpy(buffer.data() + kvm_abi::CPUID2_HEADER, table.data(), table.size() * sizeof(kvm_cpuid_entry2));
    return vcpu_ioctl(kvm_abi::SET_CPUID2, buffer.data(), "KVM_SET_CPUID2");
}

// A kvm_msrs buffer: the count, then one kvm_msr_entry per index.
std::vector<u8> msr_buffer(std::span<const u32> indices, std::span<const u64> values = {})
{
    std::vector<u8> buffer(kvm_abi::MSRS_HEADER + indices.size() * sizeof(kvm_msr_entry));
    const u32 count = static_cast<u32>(indices.size());
    std::memcpy(buffer.data(), &count, sizeof count);
    for (size_t i = 0; i < indices.size(); ++i) {
        kvm_msr_entry entry{};
        entry.index = indices[i];
        entry.data = i < values.size() ? values[i] : 0;
        std::memcpy(buffer.data() + kvm_abi::MSRS_HEADER + i * sizeof entry, &entry, sizeof entry);
    }
    return buffer;
}

bool KvmVcpu::get_msrs(std::span<const u32> indices, std::span<u64> values)
{
    std::vector<u8> buffer = msr_buffer(indices);
    const int done = ioctl(m_fd.get(), kvm_abi::GET_MSRS, buffer.data());
    for (size_t i = 0; i < indices.size(); ++i) {
        kvm_msr_entry entry{};
        std::memcpy(&entry, buffer.data() + kvm_abi::MSRS_HEADER + i * sizeof entry, sizeof entry);
        values[i] = static_cast<int>(i) < done ? entry.data : 0;
    }
    return done == static_cast<int>(indices.size());
}

bool KvmVcpu::set_msrs(std::span<const u32> indices, std::span<const u64> values)
{
    std::vector<u8> buffer = msr_buffer(indices, values);
    return ioctl(m_fd.get(), kvm_abi::SET_MSRS, buffer.data()) == static_cast<int>(indices.size());
}

void KvmVcpu::pull_state()
{
    CpuState s = m_cache;
    kvm_regs regs;
    kvm_sregs sregs;
    kvm_xcrs xcrs;
    kvm_debugregs debug;
    kvm_vcpu_events events;
    auto xsave = std::make_unique<kvm_xsave>();
    if (vcpu_ioctl(KVM_GET_REGS, &regs, "KVM_GET_REGS"))
        from_kvm_regs(regs, s);
    if (vcpu_ioctl(KVM_GET_SREGS, &sregs, "KVM_GET_SREGS"))
        from_kvm_sregs(sregs, s);
    if (vcpu_ioctl(KVM_GET_XCRS, &xcrs, "KVM_GET_XCRS"))
        for (u32 i = 0; i < xcrs.nr_xcrs; ++i)
            if (xcrs.xcrs[i].xcr == 0)
                s.xcr0 = xcrs.xcrs[i].value;
    if (vcpu_ioctl(kvm_abi::GET_XSAVE, xsave.get(), "KVM_GET_XSAVE"))
        from_kvm_xsave(*xsave, s);
    if (vcpu_ioctl(KVM_GET_DEBUGREGS, &debug, "KVM_GET_DEBUGREGS"))
        from_kvm_debugregs(debug, s);
    if (vcpu_ioctl(KVM_GET_VCPU_EVENTS, &events, "KVM_GET_VCPU_EVENTS"))
        from_kvm_events(events, s);
    const std::span<const u32> indices = kvm_state_msr_indices(m_vm.wiring.cpuid.vendor());
    std::vector<u64> values(indices.size());
    get_msrs(indices, values);
    from_kvm_msr_values(values, m_vm.wiring.cpuid.vendor(), s);
    u64 tsc = 0;
    if (get_msrs(std::span<const u32>(&MSR_IA32_TSC, 1), std::span<u64>(&tsc, 1)))
        s.msr.tsc_offset = tsc - tsc_now();
    m_tsc_offset_seen.store(s.msr.tsc_offset);
    s.cr8 = m_cr8;
    s.events.halted = m_halted;
    m_cache = s;
    m_cache_valid = true;
}

void KvmVcpu::set_guest_tsc(u64 offset_from_partition)
{
    // The guest's TSC is the partition's (tsc_now(), the machine's clock at
    // the TSC rate) plus this vCPU's offset. Where the clock counts host
    // TSC ticks (host_time_ns), KVM's offset from the host TSC is exact
    // with KVM_VCPU_TSC_OFFSET (Linux 5.16); KVM_SET_MSRS would land the
    // value a system call late, and the guest's reference TSC page would
    // then lag the reference counter and its timers fire early.
    const u64 target = tsc_now() + offset_from_partition;
    u64 host_offset = target - __rdtsc();
    kvm_device_attr attr{};
    attr.group = KVM_VCPU_TSC_CTRL;
    attr.attr = KVM_VCPU_TSC_OFFSET;
    attr.addr = reinterpret_cast<u64>(&host_offset);
    if (ioctl(m_fd.get(), KVM_SET_DEVICE_ATTR, &attr) == 0)
        return;
    (void)set_msrs(std::span<const u32>(&MSR_IA32_TSC, 1), std::span<const u64>(&target, 1));
}

bool KvmVcpu::push_state()
{
    // SREGS first: the mode (CR0, CR4, EFER) decides how KVM takes the
    // rest; XCR0 before the XSAVE area whose components it enables.
    const CpuState& s = m_cache;
    kvm_sregs sregs;
    to_kvm_sregs(s, sregs);
    kvm_regs regs;
    to_kvm_regs(s, regs);
    kvm_xcrs xcrs{};
    xcrs.nr_xcrs = 1;
    xcrs.xcrs[0].xcr = 0;
    xcrs.xcrs[0].value = s.xcr0;
    auto xsave = std::make_unique<kvm_xsave>();
    to_kvm_xsave(s, *xsave);
    kvm_debugregs debug;
    to_kvm_debugregs(s, debug);
    kvm_vcpu_events events;
    to_kvm_events(s, events);
    const std::vector<u64> values = to_kvm_msr_values(s, m_vm.wiring.cpuid.vendor());
    bool ok = vcpu_ioctl(KVM_SET_SREGS, &sregs, "KVM_SET_SREGS") &&
              vcpu_ioctl(KVM_SET_REGS, &regs, "KVM_SET_REGS") &&
              vcpu_ioctl(KVM_SET_XCRS, &xcrs, "KVM_SET_XCRS") &&
              vcpu_ioctl(kvm_abi::SET_XSAVE, xsave.get(), "KVM_SET_XSAVE") &&
              vcpu_ioctl(KVM_SET_DEBUGREGS, &debug, "KVM_SET_DEBUGREGS") &&
              vcpu_ioctl(KVM_SET_VCPU_EVENTS, &events, "KVM_SET_VCPU_EVENTS");
    if (ok && !set_msrs(kvm_state_msr_indices(m_vm.wiring.cpuid.vendor()), values)) {
        std::fprintf(stderr, "viridian: vCPU %u: KVM_SET_MSRS refused a value\n", m_index);
        ok = false;
    }
    if (ok && m_tsc_pending)
        set_guest_tsc(s.msr.tsc_offset);
    m_tsc_pending = false;
    m_cache_dirty = false;
    // What KVM said at the last exit no longer holds: whether an
    // interrupt may be injected is asked afresh (an interrupt window).
    m_run->ready_for_interrupt_injection = 0;
    m_run->if_flag = (s.rflags & rf::IF) ? 1 : 0;
    return ok;
}

bool KvmVcpu::prepare_to_run()
{
    if (!m_vm.prepare())
        return false;
    if (!m_cpuid_set) {
        // The CPU model is final by the first run (--cpu-features narrowed
        // it, the Hyper-V leaves are installed); KVM takes it once.
        if (!set_cpuid())
            return false;
        m_cpuid_set = true;
        m_cache_dirty = true; // XCR0 and the XSAVE area are checked against it
    }
    if (m_cache_dirty && !push_state())
        return false;
    return true;
}

void KvmVcpu::request_flush()
{
    // Done before the vCPU next enters the guest (run()).
    m_flush_pending = true;
    if (!m_in_guest || !running_elsewhere())
        return;
    // Another vCPU's flush hypercall while this one is inside the guest on
    // its own thread: the flush must be complete when that hypercall
    // returns (the TLFS's HvCallFlushVirtualAddressSpace), so this one is
    // taken out of the guest, and the caller waits (giving up the device
    // lock it holds) until it has left. It flushes before it enters again.
    const u64 exits = m_guest_exits;
    signal_thread();
    std::unique_lock devices(m_vm.device_lock(), std::adopt_lock);
    m_vm.left_guest.wait(devices, [&] { return !m_in_guest || m_guest_exits != exits; });
    devices.release();
}

bool KvmVcpu::flush_guest_tlb()
{
    // KVM resets this vCPU's MMU, and flushes its TLB at the next entry,
    // only when KVM_SET_SREGS changes CR0, CR3, CR4 or EFER: the same
    // values again change nothing. CR4.PGE is turned over and back, which
    // is also how software flushes global entries (SDM Vol 3A 4.10.4.1).
    // Only the special registers move: a round trip of the whole state
    // through CpuState would be slower, and lost AVX state once in the
    // nested guest, whose XCR0 KVM never saw.
    kvm_sregs sregs;
    if (!vcpu_ioctl(KVM_GET_SREGS, &sregs, "KVM_GET_SREGS"))
        return false;
    kvm_sregs turned = sregs;
    turned.cr4 ^= CR4_PGE;
    return vcpu_ioctl(KVM_SET_SREGS, &turned, "KVM_SET_SREGS") &&
           vcpu_ioctl(KVM_SET_SREGS, &sregs, "KVM_SET_SREGS");
}

bool KvmVcpu::arm_kick_timer(u64 ns)
{
    const pid_t tid = current_tid();
    if (m_timer_tid != tid) {
        if (m_timer_tid)
            timer_delete(m_timer);
        m_timer_tid = 0;
        sigevent event{};
        event.sigev_notify = SIGEV_THREAD_ID;
        event.sigev_signo = kick_signal();
        event._sigev_un._tid = tid; // sigev_notify_thread_id (glibc 2.36 does not name it)
        if (timer_create(CLOCK_MONOTONIC, &event, &m_timer) < 0)
            return false;
        m_timer_tid = tid;
        // Blocked on this thread except inside KVM_RUN.
        sigset_t kick;
        sigemptyset(&kick);
        sigaddset(&kick, kick_signal());
        pthread_sigmask(SIG_BLOCK, &kick, nullptr);
        sigset_t during_run;
        pthread_sigmask(SIG_BLOCK, nullptr, &during_run);
        sigdelset(&during_run, kick_signal());
        // The kernel's sigset is 8 bytes on x86-64.
        constexpr u32 KERNEL_SIGSET_BYTES = 8;
        std::vector<u8> buffer(kvm_abi::SIGNAL_MASK_HEADER + KERNEL_SIGSET_BYTES);
        std::memcpy(buffer.data(), &KERNEL_SIGSET_BYTES, sizeof KERNEL_SIGSET_BYTES);
        std::memcpy(buffer.data() + kvm_abi::SIGNAL_MASK_HEADER, &during_run, KERNEL_SIGSET_BYTES);
        if (!vcpu_ioctl(kvm_abi::SET_SIGNAL_MASK, buffer.data(), "KVM_SET_SIGNAL_MASK"))
            return false;
    }
    itimerspec when{};
    when.it_value.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
    when.it_value.tv_nsec = static_cast<long>(ns % 1'000'000'000);
    if (ns == 0)
        when.it_value.tv_nsec = 1;
    return timer_settime(m_timer, 0, &when, nullptr) == 0;
}

void KvmVcpu::drain_kicks()
{
    const itimerspec off{};
    timer_settime(m_timer, 0, &off, nullptr);
    take_pending_kicks();
}

void KvmVcpu::take_pending_kicks()
{
    sigset_t kick;
    sigemptyset(&kick);
    sigaddset(&kick, kick_signal());
    const timespec now{};
    while (sigtimedwait(&kick, nullptr, &now) > 0) {
    }
}

bool KvmVcpu::guest_if() const
{
    // RFLAGS.IF as KVM reported it at the last exit, or as the machine set it.
    return m_cache_valid ? (m_cache.rflags & rf::IF) != 0 : m_run->if_flag != 0;
}

bool KvmVcpu::wake_from_halt()
{
    // A halted vCPU wakes for an NMI, or for an interrupt it may take.
    if (!m_source)
        return false;
    if (m_source->take_nmi()) {
        if (vcpu_ioctl(KVM_NMI, nullptr, "KVM_NMI"))
            m_halted = false;
    } else if (guest_if() && m_source->interrupt_pending()) {
        m_halted = false;
    }
    return !m_halted;
}

void KvmVcpu::inject_events()
{
    if (!m_source)
        return;
    if (m_source->take_nmi())
        (void)vcpu_ioctl(KVM_NMI, nullptr, "KVM_NMI");
    u64 tpr = 0;
    if (m_source->read_cr8(tpr))
        m_cr8 = tpr;
    m_run->cr8 = m_cr8;
    if (!m_source->interrupt_pending()) {
        m_run->request_interrupt_window = 0;
        return;
    }
    if (m_run->ready_for_interrupt_injection && m_run->if_flag) {
        kvm_interrupt irq{};
        irq.irq = m_source->acknowledge_interrupt();
        if (vcpu_ioctl(KVM_INTERRUPT, &irq, "KVM_INTERRUPT"))
            ++m_external_interrupts;
        m_run->request_interrupt_window = 0;
    } else {
        // Not now (IF = 0, an interrupt shadow, an event being delivered):
        // KVM exits as soon as the guest can take one.
        m_run->request_interrupt_window = 1;
    }
}

bool KvmVcpu::complete_pending_exit()
{
    // KVM finishes an I/O exit (and steps past its instruction) at the
    // next KVM_RUN; with immediate_exit it does only that and returns
    // EINTR. Registers read before it would show the instruction undone.
    m_run->immediate_exit = 1;
    const int ret = ioctl(m_fd.get(), KVM_RUN, 0);
    m_run->immediate_exit = 0;
    m_cache_valid = false;
    return ret < 0 && errno == EINTR;
}

bool KvmVcpu::event_in_flight()
{
    kvm_vcpu_events events{};
    if (!vcpu_ioctl(KVM_GET_VCPU_EVENTS, &events, "KVM_GET_VCPU_EVENTS"))
        return false;
    return events.interrupt.injected || events.exception.injected || events.nmi.injected;
}

void KvmVcpu::quiesce()
{
    if (m_cache_dirty)
        return; // KVM has not run since the state was set: nothing is under way
    // An I/O or MMIO instruction is finished by the next KVM_RUN (an IN's
    // value reaches RAX then); without it the other backend would run the
    // instruction, and the device access, again.
    (void)complete_pending_exit();
    // An interrupt or exception KVM was delivering when the vCPU exited (a
    // nested page fault on the IDT or the stack, say) is delivered again at
    // the next entry, and CpuState has nowhere to keep it: the vCPU runs
    // until the hardware is done with it, a few microseconds at a time.
    constexpr unsigned MAX_RUNS = 100;
    constexpr u64 RUN_NS = 50'000;
    for (unsigned i = 0; i < MAX_RUNS && event_in_flight(); ++i)
        if (run(RUN_NS) == VcpuExit::TripleFault)
            break;
    m_cache_valid = false;
}

void KvmVcpu::handle_hypercall()
{
    if (!complete_pending_exit())
        return;
    CpuState s = get_state(); // RIP is past the OUT: where the call returns
    if (s.cpl() != 0)
        return; // an ordinary write to an unused port
    const CpuState before = s;
    HypercallOutcome outcome = m_hypercall(s);
    for (unsigned i = 0; outcome == HypercallOutcome::Repeat && i < MAX_HYPERCALL_CONTINUATIONS; ++i)
        outcome = m_hypercall(s);
    if (outcome == HypercallOutcome::InvalidOpcode) {
        // #UD at the gate instruction (OUT imm8 is two bytes).
        s = before;
        s.rip -= 2;
        kvm_vcpu_events events{};
        if (vcpu_ioctl(KVM_GET_VCPU_EVENTS, &events, "KVM_GET_VCPU_EVENTS")) {
            events.flags = 0; // only the exception is set
            events.exception.injected = 1;
            events.exception.nr = VEC_UD;
            events.exception.has_error_code = 0;
            (void)vcpu_ioctl(KVM_SET_VCPU_EVENTS, &events, "KVM_SET_VCPU_EVENTS");
        }
    }
    // Only what a hypercall writes goes back: the general registers and,
    // for an XMM fast hypercall's output, the XMM registers. The TSC and
    // the rest stay untouched.
    kvm_regs regs;
    to_kvm_regs(s, regs);
    (void)vcpu_ioctl(KVM_SET_REGS, &regs, "KVM_SET_REGS");
    if (std::memcmp(&s.fpu, &before.fpu, sizeof s.fpu) != 0) {
        auto xsave = std::make_unique<kvm_xsave>();
        to_kvm_xsave(s, *xsave);
        (void)vcpu_ioctl(kvm_abi::SET_XSAVE, xsave.get(), "KVM_SET_XSAVE");
    }
    m_cache = s;
}

void KvmVcpu::handle_io()
{
    auto& io = m_run->io;
    if (io.port == KVM_HYPERCALL_PORT && io.direction == KVM_EXIT_IO_OUT && io.size == 1 && io.count == 1 &&
        m_hypercall) {
        handle_hypercall();
        return;
    }
    u8* data = reinterpret_cast<u8*>(m_run) + io.data_offset;
    const unsigned size = io.size;
    // String I/O (INS/OUTS, REP included) comes as `count` elements.
    for (u32 i = 0; i < io.count; ++i, data += size) {
        if (io.direction == KVM_EXIT_IO_OUT) {
            u64 value = 0;
            std::memcpy(&value, data, size);
            m_vm.wiring.ports.write(io.port, size, value);
        } else {
            const u64 value = m_vm.wiring.ports.read(io.port, size);
            std::memcpy(data, &value, size);
        }
    }
}

void KvmVcpu::handle_mmio()
{
    auto& mmio = m_run->mmio;
    const unsigned len = std::min<unsigned>(mmio.len, 8);
    const bool whole = len == 1 || len == 2 || len == 4 || len == 8;
    // The device model takes 1, 2, 4 and 8 bytes; anything else goes byte by byte.
    if (mmio.is_write) {
        u64 value = 0;
        std::memcpy(&value, mmio.data, len);
        if (whole)
            m_vm.wiring.memory.write(mmio.phys_addr, len, value, m_index);
        else
            for (unsigned i = 0; i < len; ++i)
                m_vm.wiring.memory.write(mmio.phys_addr + i, 1, mmio.data[i], m_index);
        return;
    }
    if (whole) {
        const u64 value = m_vm.wiring.memory.read(mmio.phys_addr, len, m_index);
        std::memcpy(mmio.data, &value, len);
    } else {
        for (unsigned i = 0; i < len; ++i)
            mmio.data[i] = static_cast<u8>(m_vm.wiring.memory.read(mmio.phys_addr + i, 1, m_index));
    }
}

void KvmVcpu::handle_msr(bool write)
{
    auto& msr = m_run->msr;
    if (write) {
        msr.error = m_vm.wiring.msrs.write(m_index, msr.index, msr.data) ? 0 : 1;
        return;
    }
    const std::optional<u64> value = m_vm.wiring.msrs.read(m_index, msr.index);
    msr.data = value.value_or(0);
    msr.error = value ? 0 : 1; // #GP, as for an MSR nobody has
}

VcpuExit KvmVcpu::fail(const char* what)
{
    std::fprintf(stderr, "viridian: vCPU %u: KVM %s\n", m_index, what);
    m_fault = Fault{};
    m_fault.vector = VEC_DF;
    return VcpuExit::TripleFault;
}

VcpuExit KvmVcpu::run(u64 budget)
{
    // Everything but KVM_RUN itself runs under the device lock: the exits
    // reach devices other vCPUs' threads share, and interrupts are taken
    // from the interrupt controllers.
    std::unique_lock devices(m_vm.device_lock());
    if (!prepare_to_run())
        return fail("could not take the vCPU's state");
    install_kick_handler();
    // A slice ends at its budget (the next timer deadline), and at least
    // every 10 ms so that the machine hears the host.
    const u64 slice = std::min<u64>(budget, 10'000'000);
    if (!arm_kick_timer(slice))
        return fail("could not arm the vCPU's kick timer");
    const u64 start = host_monotonic_ns();
    m_running_tid.store(current_tid());
    VcpuExit result = VcpuExit::BudgetExhausted;
    for (;;) {
        if (m_stop.exchange(false)) {
            result = VcpuExit::StopRequested;
            break;
        }
        if (m_halted && !wake_from_halt()) {
            result = VcpuExit::Halted;
            break;
        }
        if (std::exchange(m_flush_pending, false) && !flush_guest_tlb()) {
            result = fail("could not flush the vCPU's TLB");
            break;
        }
        inject_events();
        m_run->immediate_exit = m_stop.load() ? 1 : 0;
        m_in_guest = true;
        devices.unlock();
        const u64 before = host_monotonic_ns();
        const int ret = ioctl(m_fd.get(), KVM_RUN, 0);
        const int run_errno = errno;
        u64 after = host_monotonic_ns();
        devices.lock();
        m_in_guest = false;
        ++m_guest_exits;
        m_vm.left_guest.notify_all();
        m_units += after - before;
        m_cache_valid = false;
        if (ret < 0 && run_errno != EINTR && run_errno != EAGAIN) {
            errno = run_errno;
            result = fail(("KVM_RUN failed: " + errno_text()).c_str());
            break;
        }
        if (ret < 0 && run_errno == EINTR) {
            ++m_exits.kick;
            // The slice's timer may be the signal taken: the time is read
            // after it, so that the slice still ends.
            take_pending_kicks();
            after = host_monotonic_ns();
        }
        if (ret == 0) {
            switch (m_run->exit_reason) {
            case KVM_EXIT_IO:
                ++m_exits.io;
                handle_io();
                break;
            case KVM_EXIT_MMIO:
                ++m_exits.mmio;
                handle_mmio();
                break;
            case KVM_EXIT_X86_RDMSR:
                ++m_exits.msr;
                handle_msr(false);
                break;
            case KVM_EXIT_X86_WRMSR:
                ++m_exits.msr;
                handle_msr(true);
                break;
            case KVM_EXIT_HLT:
                ++m_exits.halt;
                m_halted = true;
                break;
            case KVM_EXIT_IRQ_WINDOW_OPEN:
                ++m_exits.interrupt_window;
                break;
            case KVM_EXIT_INTR:
                ++m_exits.kick;
                break;
            case KVM_EXIT_SHUTDOWN:
                ++m_exits.other;
                // A triple fault: KVM does not say which fault it was.
                m_fault = Fault{};
                m_fault.vector = VEC_DF;
                result = VcpuExit::TripleFault;
                break;
            case KVM_EXIT_FAIL_ENTRY:
                result = fail(("refused to enter the guest, hardware reason " +
                               std::to_string(m_run->fail_entry.hardware_entry_failure_reason))
                                  .c_str());
                break;
            case KVM_EXIT_INTERNAL_ERROR:
                result = fail(("internal error, suberror " + std::to_string(m_run->internal.suberror) +
                               " (an instruction KVM cannot emulate, such as one fetched from MMIO)")
                                  .c_str());
                break;
            default:
                result = fail(("exit reason " + std::to_string(m_run->exit_reason) + " not handled").c_str());
                break;
            }
            if (result != VcpuExit::BudgetExhausted)
                break;
            // A device may have moved the TPR.
            if (m_source && m_run->cr8 != m_cr8) {
                m_cr8 = m_run->cr8;
                m_source->write_cr8(m_cr8);
            }
        }
        if (after - start >= slice) {
            result = VcpuExit::BudgetExhausted;
            break;
        }
    }
    m_running_tid.store(0);
    drain_kicks();
    m_run->immediate_exit = 0;
    return result;
}

void KvmVcpu::visit_state(StateVisitor& v)
{
    // KVM's own field: the nanoseconds run, in place of retired instructions.
    CpuState state = get_state();
    u64 units = m_units;
    const bool own = visit_vcpu_snapshot(v, "kvm", state, m_vm.wiring.cpuid,
                                         [&units](StateVisitor& fields) { fields.field("units", units); });
    if (!v.loading() || !v.ok())
        return;
    set_state(state);
    m_tsc_pending = true;
    if (own)
        m_units = units;
}

} // namespace

std::unique_ptr<VcpuBackend> make_kvm_vcpu(KvmVm& vm, unsigned index, Fd fd, kvm_run* run)
{
    return std::make_unique<KvmVcpu>(vm, index, std::move(fd), run);
}
