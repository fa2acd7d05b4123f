#include "accel/interp/interp_backend.h"

#include "accel/vcpu_snapshot.h"
#include "cpu/core/block_cache.h"
#include "cpu/core/cpu.h"
#include "cpu/jit/perf_map.h"

#include <optional>
#include <string>

namespace {

class InterpBackend final : public VcpuBackend {
public:
    InterpBackend(const AcceleratorWiring& wiring, unsigned index, BlockCache& blocks)
        : m_cpu(m_state, wiring.memory, wiring.ports, wiring.msrs, wiring.cpuid, index, &blocks)
    {
    }

    VcpuExit run(u64 budget) override
    {
        switch (m_cpu.run(budget)) {
        case RunExit::BudgetExhausted:
            return VcpuExit::BudgetExhausted;
        case RunExit::Halted:
            return VcpuExit::Halted;
        case RunExit::TripleFault:
            return VcpuExit::TripleFault;
        case RunExit::StopRequested:
            return VcpuExit::StopRequested;
        case RunExit::DebugStop:
            return VcpuExit::DebugStop;
        }
        return VcpuExit::StopRequested;
    }
    void request_stop() override { m_cpu.request_stop(); }
    u64 retired() const override { return m_cpu.retired(); }
    u64 units() const override { return m_cpu.units(); }
    u64 external_interrupts() const override { return m_cpu.external_interrupts(); }
    const Fault& last_fault() const override { return m_cpu.last_fault(); }

    void reset() override { m_cpu.reset(); }
    CpuState get_state() override
    {
        // With the lazy arithmetic flags folded into RFLAGS.
        m_cpu.materialize_flags();
        return m_state;
    }
    void set_state(const CpuState& state) override { m_cpu.load_state(state); }
    void visit_state(StateVisitor& v) override
    {
        CpuState state = get_state();
        Cpu::InternalState internal = v.loading() ? Cpu::InternalState{} : m_cpu.internal_state();
        const bool own = visit_vcpu_snapshot(v, "interp", state, m_cpu.cpuid, [&internal](StateVisitor& fields) {
            fields.field("retired", internal.retired);
            fields.field("random_state", internal.random_state);
            fields.field("x87_frozen", internal.x87_frozen);
            fields.field("events", internal.events);
        });
        if (!v.loading() || !v.ok())
            return;
        m_cpu.load_state(state);
        if (own)
            m_cpu.set_internal_state(internal);
    }

    void set_interrupt_source(InterruptSource* source) override { m_cpu.set_interrupt_source(source); }
    void set_fpu_error_pins(FpuErrorPins* pins) override { m_cpu.set_fpu_error_pins(pins); }
    void set_tsc_source(std::function<u64()> source) override { m_cpu.set_tsc_source(std::move(source)); }
    u64 read_tsc() override { return m_cpu.read_tsc(); }
    void set_hypercall_hook(HypercallHook hook) override
    {
        if (!hook) {
            m_cpu.set_hypercall_handler({});
            return;
        }
        m_cpu.set_hypercall_handler([hook = std::move(hook)](Cpu& cpu) {
            switch (hook(cpu.s)) {
            case HypercallOutcome::Completed:
                return true;
            case HypercallOutcome::Repeat:
                cpu.next_rip = cpu.s.rip; // again, from the rep start index it wrote
                return true;
            case HypercallOutcome::InvalidOpcode:
                return cpu.raise_ud();
            }
            return true;
        });
    }
    void set_trace_hook(TraceHook hook) override { m_cpu.set_trace_hook(std::move(hook)); }
    void set_guest_debug(const GuestDebugSet& set) override { m_cpu.set_guest_debug(set); }
    DebugEvent debug_event() const override { return m_cpu.debug_event(); }

    void flush_tlb(bool include_global) override { m_cpu.flush_tlb(include_global); }
    void invalidate_page(u64 linear) override { m_cpu.invalidate_page(linear); }

    Cpu& cpu() { return m_cpu; }

private:
    CpuState m_state;
    Cpu m_cpu;
};

class InterpAccelerator final : public Accelerator {
public:
    InterpAccelerator(const AcceleratorWiring& wiring, const InterpOptions& options)
        : m_wiring(wiring), m_options(options)
    {
        // Every vCPU decodes from the same memory: one block cache, told of
        // every write to a page it decoded from.
        BlockCache& blocks = m_blocks;
        wiring.memory.set_code_write_listener([&blocks](GuestPhys page) { blocks.invalidate_page(page); });
    }
    ~InterpAccelerator() override { m_wiring.memory.set_code_write_listener({}); }
    void set_perf_map(PerfMap* map) { m_blocks.set_perf_map(map); }

    const char* name() const override { return "interp"; }
    std::unique_ptr<VcpuBackend> create_vcpu(unsigned index) override
    {
        auto vcpu = std::make_unique<InterpBackend>(m_wiring, index, m_blocks);
        // With other vCPUs taking turns on this thread, PAUSE (a spin-wait
        // hint) ends the turn so the vCPU being waited for gets to run.
        vcpu->cpu().set_pause_yields(m_wiring.vcpu_count > 1);
        vcpu->cpu().set_jit_enabled(m_options.jit);
        vcpu->cpu().set_hypercall_gate(m_options.hypercall_gate);
        return vcpu;
    }

private:
    AcceleratorWiring m_wiring;
    InterpOptions m_options;
    BlockCache m_blocks;
};

} // namespace

ErrorOr<std::unique_ptr<Accelerator>> make_interp_accelerator(const AcceleratorWiring& wiring,
                                                              const InterpOptions& options)
{
    PerfMap* perf_map = nullptr;
    if (options.perf_map) {
        // One map per process, as perf expects: the machines of later
        // reboots add to the first one's file rather than truncating it.
        static PerfMap process_map(PerfMap::default_path());
        if (!process_map.usable())
            return make_error("--perfmap: cannot write " + PerfMap::default_path());
        perf_map = &process_map;
    }
    auto accel = std::make_unique<InterpAccelerator>(wiring, options);
    accel->set_perf_map(perf_map);
    return std::unique_ptr<Accelerator>(std::move(accel));
}
