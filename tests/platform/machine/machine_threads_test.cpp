// vCPUs on host threads of their own (platform/machine/machine_threads.cpp),
// with a stand-in backend that runs as KVM's does: its run() blocks while
// "the guest runs", takes the device lock around what it asks of the
// devices, and takes interrupts from its local APIC. The guest is a script
// per vCPU. What is checked is the machine's side: which thread runs which
// vCPU, and that interrupts, INIT/SIPI and the end of a run reach a vCPU on
// its thread at once rather than at the end of the round (a minute here).
// (Checks on the vCPU threads are CHECKs: a REQUIRE there would throw on a
// thread that cannot catch it.)
#include "platform/machine/machine.h"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace {

constexpr u64 ROUND_NS = 60'000'000'000; // so that only a wake-up ends a wait early
constexpr u32 MSR_APIC_BASE = 0x1B, MSR_X2APIC_SVR = 0x80F, MSR_X2APIC_ICR = 0x830,
              MSR_X2APIC_LVT_TIMER = 0x832, MSR_X2APIC_TIMER_INITIAL = 0x838, MSR_X2APIC_TIMER_DIVIDE = 0x83E;

class ScriptedVcpu;
// One step of a vCPU's guest: called by run() with the device lock held.
using GuestStep = std::function<VcpuExit(ScriptedVcpu&, std::unique_lock<std::mutex>& devices)>;

class ScriptedVcpu final : public VcpuBackend {
public:
    ScriptedVcpu(const AcceleratorWiring& wiring, unsigned index, GuestStep step)
        : wiring(wiring), index(index), m_step(std::move(step)), m_state(power_on_state(index))
    {
    }

    VcpuExit run(u64) override
    {
        std::unique_lock devices(*wiring.device_lock);
        threads.push_back(std::this_thread::get_id());
        ++runs;
        if (m_stop.exchange(false))
            return VcpuExit::StopRequested;
        if (m_state.events.halted) {
            if (!(m_state.rflags & rf::IF) || !m_source->interrupt_pending())
                return VcpuExit::Halted;
            taken.push_back(m_source->acknowledge_interrupt());
            m_state.events.halted = false;
        }
        return m_step(*this, devices);
    }
    // The guest runs (outside the device lock) until stopped, at most `ns`.
    VcpuExit run_guest_for(std::unique_lock<std::mutex>& devices, std::chrono::nanoseconds ns)
    {
        devices.unlock();
        {
            std::unique_lock lock(m_mutex);
            m_stopped.wait_for(lock, ns, [this] { return m_stop.load(); });
        }
        devices.lock();
        m_units += static_cast<u64>(ns.count());
        return m_stop.exchange(false) ? VcpuExit::StopRequested : VcpuExit::BudgetExhausted;
    }
    void halt_with_interrupts_on()
    {
        m_state.rflags |= rf::IF;
        m_state.events.halted = true;
    }
    bool write_msr(u32 msr, u64 value) { return wiring.msrs.write(index, msr, value); }

    void request_stop() override
    {
        {
            std::lock_guard lock(m_mutex);
            m_stop = true;
        }
        m_stopped.notify_all();
    }
    void kick() override { ++kicks; }
    u64 retired() const override { return m_units; }
    u64 units() const override { return m_units; }
    u64 external_interrupts() const override { return taken.size(); }
    const Fault& last_fault() const override { return m_fault; }
    void reset() override { m_state = power_on_state(index); }
    CpuState get_state() override { return m_state; }
    void set_state(const CpuState& state) override { m_state = state; }
    void visit_state(StateVisitor&) override {}
    void set_interrupt_source(InterruptSource* source) override { m_source = source; }
    void set_fpu_error_pins(FpuErrorPins*) override {}
    void set_tsc_source(std::function<u64()> source) override { m_tsc = std::move(source); }
    u64 read_tsc() override { return m_tsc ? m_tsc() : 0; }
    void set_hypercall_hook(HypercallHook) override {}
    void set_trace_hook(TraceHook) override {}
    void set_guest_debug(const GuestDebugSet&) override {}
    DebugEvent debug_event() const override { return {}; }
    void flush_tlb(bool) override {}
    void invalidate_page(u64) override {}

    AcceleratorWiring wiring;
    const unsigned index;
    // Under the device lock.
    std::vector<std::thread::id> threads;
    std::vector<u8> taken; // interrupt vectors
    unsigned runs = 0;
    std::atomic<unsigned> kicks{0};

private:
    GuestStep m_step;
    CpuState m_state;
    InterruptSource* m_source = nullptr;
    std::function<u64()> m_tsc;
    Fault m_fault;
    u64 m_units = 0;
    std::mutex m_mutex;
    std::condition_variable m_stopped;
    std::atomic<bool> m_stop{false};
};

class ScriptedAccelerator final : public Accelerator {
public:
    ScriptedAccelerator(const AcceleratorWiring& wiring, std::vector<GuestStep> steps,
                        std::vector<ScriptedVcpu*>& made)
        : m_wiring(wiring), m_steps(std::move(steps)), m_made(made)
    {
    }
    const char* name() const override { return "scripted"; }
    std::unique_ptr<VcpuBackend> create_vcpu(unsigned index) override
    {
        auto vcpu = std::make_unique<ScriptedVcpu>(m_wiring, index, m_steps.at(index));
        m_made.push_back(vcpu.get());
        return vcpu;
    }
    std::optional<RunSlices> run_slices() const override { return RunSlices{ROUND_NS, ROUND_NS}; }
    bool vcpus_on_threads() const override { return true; }

private:
    AcceleratorWiring m_wiring;
    std::vector<GuestStep> m_steps;
    std::vector<ScriptedVcpu*>& m_made;
};

struct ThreadedMachine {
    std::vector<ScriptedVcpu*> vcpus;
    std::unique_ptr<Machine> machine;

    explicit ThreadedMachine(std::vector<GuestStep> steps, CommandQueue* commands = nullptr)
    {
        MachineConfig config;
        config.commands = commands;
        config.memory_bytes = 32ull << 20;
        config.cpu_count = static_cast<unsigned>(steps.size());
        config.accel = MachineConfig::Accel::Kvm; // host time, no instruction count, as under KVM
        config.vcpu_threads = true;
        config.make_accelerator = [this, steps](const AcceleratorWiring& wiring) {
            return std::make_unique<ScriptedAccelerator>(wiring, steps, vcpus);
        };
        ErrorOr<std::unique_ptr<Machine>> created = Machine::create(config);
        REQUIRE_FALSE(created.is_error());
        machine = created.release_value();
    }

    // The run's outcome, and how long it took.
    std::pair<RunOutcome, std::chrono::steady_clock::duration> run()
    {
        const auto start = std::chrono::steady_clock::now();
        RunOutcome outcome = machine->run();
        return {outcome, std::chrono::steady_clock::now() - start};
    }
};

// The guest's last act: the debug-exit port, as a test ROM ends (status 0x21).
VcpuExit exit_guest(ScriptedVcpu& vcpu)
{
    vcpu.wiring.ports.write(DebugExit::DEFAULT_BASE, 1, 0x10);
    return VcpuExit::BudgetExhausted;
}

void enable_x2apic(ScriptedVcpu& vcpu)
{
    const u64 bsp = vcpu.index == 0 ? 1u << 8 : 0;
    CHECK(vcpu.write_msr(MSR_APIC_BASE, 0xFEE00000 | 1u << 11 | 1u << 10 | bsp));
    CHECK(vcpu.write_msr(MSR_X2APIC_SVR, 0x1FF));
}

} // namespace

TEST_CASE("vCPUs on threads: each runs on its own thread; INIT and SIPI start an AP at once; a guest exit ends the round")
{
    std::atomic<bool> ap_ran{false};
    u64 ap_start = 0;
    ThreadedMachine t({
        [&](ScriptedVcpu& vcpu, std::unique_lock<std::mutex>& devices) {
            if (vcpu.runs == 1) {
                enable_x2apic(vcpu);
                // INIT, then SIPI with vector 0x12, to APIC ID 1.
                CHECK(vcpu.write_msr(MSR_X2APIC_ICR, 1ull << 32 | 0x4500));
                CHECK(vcpu.write_msr(MSR_X2APIC_ICR, 1ull << 32 | 0x4612));
            }
            if (ap_ran)
                return exit_guest(vcpu);
            return vcpu.run_guest_for(devices, std::chrono::milliseconds(1));
        },
        [&](ScriptedVcpu& vcpu, std::unique_lock<std::mutex>& devices) {
            ap_start = vcpu.get_state().seg[CS].base + vcpu.get_state().rip;
            ap_ran = true;
            // Busy until the end of the run stops it.
            return vcpu.run_guest_for(devices, std::chrono::nanoseconds(ROUND_NS));
        },
    });
    const auto [outcome, took] = t.run();
    CHECK(outcome.kind == RunOutcome::Kind::GuestExit);
    CHECK(outcome.status == 0x21);
    CHECK(ap_start == 0x12000);
    REQUIRE(t.vcpus.size() == 2);
    const std::thread::id bsp_thread = t.vcpus[0]->threads.at(0), ap_thread = t.vcpus[1]->threads.at(0);
    CHECK(bsp_thread != ap_thread);
    CHECK(bsp_thread != std::this_thread::get_id());
    CHECK(ap_thread != std::this_thread::get_id());
    for (const ScriptedVcpu* vcpu : t.vcpus)
        for (const std::thread::id id : vcpu->threads)
            CHECK(id == vcpu->threads.front());
    // Neither the SIPI nor the exit waited for the end of the round.
    CHECK(took < std::chrono::seconds(20));
}

TEST_CASE("vCPUs on threads: a halted vCPU takes its timer's interrupt as soon as the machine's thread fires it")
{
    constexpr u8 VECTOR = 0x40;
    ThreadedMachine t({
        [&](ScriptedVcpu& vcpu, std::unique_lock<std::mutex>&) {
            if (vcpu.runs > 1)
                return exit_guest(vcpu); // after the interrupt
            enable_x2apic(vcpu);
            // One-shot, divide by 1, 20 ms at the APIC's 1 GHz.
            CHECK(vcpu.write_msr(MSR_X2APIC_LVT_TIMER, VECTOR));
            CHECK(vcpu.write_msr(MSR_X2APIC_TIMER_DIVIDE, 0xB));
            CHECK(vcpu.write_msr(MSR_X2APIC_TIMER_INITIAL, 20'000'000));
            vcpu.halt_with_interrupts_on();
            return VcpuExit::Halted;
        },
    });
    const auto [outcome, took] = t.run();
    CHECK(outcome.kind == RunOutcome::Kind::GuestExit);
    REQUIRE(t.vcpus.size() == 1);
    CHECK(t.vcpus[0]->taken == std::vector<u8>{VECTOR});
    CHECK(t.vcpus[0]->runs == 2); // the halted vCPU's thread slept until the interrupt
    CHECK(took < std::chrono::seconds(20));
}

TEST_CASE("vCPUs on threads: a triple fault on one vCPU ends the run with its index while another runs")
{
    ThreadedMachine t({
        [&](ScriptedVcpu& vcpu, std::unique_lock<std::mutex>& devices) {
            if (vcpu.runs == 1) {
                enable_x2apic(vcpu);
                CHECK(vcpu.write_msr(MSR_X2APIC_ICR, 1ull << 32 | 0x4500));
                CHECK(vcpu.write_msr(MSR_X2APIC_ICR, 1ull << 32 | 0x4610));
            }
            return vcpu.run_guest_for(devices, std::chrono::nanoseconds(ROUND_NS));
        },
        [&](ScriptedVcpu&, std::unique_lock<std::mutex>&) { return VcpuExit::TripleFault; },
    });
    const auto [outcome, took] = t.run();
    CHECK(outcome.kind == RunOutcome::Kind::TripleFault);
    CHECK(outcome.vcpu == 1);
    CHECK(took < std::chrono::seconds(20));
}

TEST_CASE("vCPUs on threads: device work posted from another thread runs while the vCPUs run; other commands wait for the round's end")
{
    CommandQueue commands;
    std::atomic<bool> completed{false};
    std::atomic<bool> command_ran{false};
    ThreadedMachine t(
        {
            [&](ScriptedVcpu& vcpu, std::unique_lock<std::mutex>& devices) {
                if (vcpu.runs == 1) {
                    // A disk's completion, posted as the disk's thread does,
                    // and a host command (it must not run inside the round).
                    std::thread([&] {
                        commands.post([&] { command_ran = true; });
                        commands.post_device_work([&] { completed = true; });
                    }).join();
                }
                if (completed) {
                    CHECK_FALSE(command_ran);
                    return exit_guest(vcpu);
                }
                return vcpu.run_guest_for(devices, std::chrono::milliseconds(1));
            },
        },
        &commands);
    const auto [outcome, took] = t.run();
    CHECK(outcome.kind == RunOutcome::Kind::GuestExit);
    CHECK(completed);
    CHECK(took < std::chrono::seconds(20));
}
