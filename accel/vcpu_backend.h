// The interface every backend that runs vCPUs implements (docs/architecture.md
// "Layers"): the interpreter and JIT now (accel/interp/), KVM next. The
// Machine drives vCPUs only through it, so the devices, the Hyper-V
// partition and the run loop never know which backend runs the guest.
//
// State moves in one backend-neutral schema, CpuState (cpu/state/), the same
// one snapshots, record/replay and the debugger use. Interrupts reach a vCPU
// through its InterruptSource (its local APIC), which the interpreter polls
// at instruction boundaries and a hardware backend asks when the guest opens
// an interrupt window; INIT and SIPI are reset() and set_state() by the
// machine between runs.
//
// A machine started on KVM can move its vCPUs to the interpreter and back
// while the guest runs (Machine::switch_accelerator, docs/kvm.md
// "Switching"): quiesce(), get_state(), then set_state() on the other.
//
// Threading (docs/architecture.md "Threads"): the interpreter's vCPUs take
// turns on the machine's thread; KVM's run at once, one host thread each.
// A backend that runs so takes AcceleratorWiring::device_lock around every
// device access and interrupt-controller query, and leaves it only while
// the guest runs. From another thread, with that lock held, only
// request_stop(), kick(), flush_tlb(), invalidate_page() and read_tsc() may
// be called; everything else only while the vCPU is not running.
#pragma once

#include "cpu/state/cpu_state.h"
#include "cpu/state/guest_debug.h"
#include "mmu/base/state_visitor.h"
#include "cpu/state/cpuid_model.h"
#include "mmu/bus/fpu_error_pins.h"
#include "mmu/bus/interrupt_source.h"
#include "mmu/bus/msr_bus.h"
#include "mmu/bus/port_bus.h"
#include "mmu/physical_memory.h"

#include <functional>
#include <memory>
#include <mutex>
#include <optional>

enum class VcpuExit : u8 {
    BudgetExhausted, // ran the requested number of instructions
    Halted,          // HLT (or a shutdown wait) with nothing to wake it yet
    TripleFault,     // a fault while delivering a double fault: the machine resets
    StopRequested,   // request_stop(): a device, a timer or the host asked
    DebugStop,       // the debugger's breakpoint, watchpoint or step: debug_event()
};

// What a hypercall handler tells the vCPU to do next (TLFS 3.7).
enum class HypercallOutcome : u8 {
    Completed,     // results are in the registers; go on after the instruction
    Repeat,        // a rep hypercall made progress: run the instruction again
    InvalidOpcode, // no hypercall interface for this caller: #UD
};

// Why a hardware-assisted vCPU came back to viridian (--stats, docs/kvm.md):
// the cost the interpreter does not have. All zero on the interpreter.
struct VcpuExitCounts {
    u64 io = 0, mmio = 0, msr = 0, halt = 0;
    u64 interrupt_window = 0; // the guest became able to take a pending interrupt
    u64 kick = 0;             // the slice's timer or a stop request ended KVM_RUN
    u64 other = 0;            // shutdown, entry failures, errors (a hypercall is an io exit: the gate port)
    u64 total() const { return io + mmio + msr + halt + interrupt_window + kick + other; }
    VcpuExitCounts& operator+=(const VcpuExitCounts& b)
    {
        io += b.io, mmio += b.mmio, msr += b.msr, halt += b.halt;
        interrupt_window += b.interrupt_window, kick += b.kick, other += b.other;
        return *this;
    }
};

class VcpuBackend {
public:
    // The guest's registers before each instruction (--trace).
    using TraceHook = std::function<void(const CpuState&, const u8* bytes, unsigned length)>;
    // VMCALL/VMMCALL from the hypercall page: the handler reads and writes
    // the registers as the hypercall ABI says.
    using HypercallHook = std::function<HypercallOutcome(CpuState&)>;

    virtual ~VcpuBackend() = default;

    // ---- Running ----
    virtual VcpuExit run(u64 budget) = 0;
    virtual void request_stop() = 0;
    // An interrupt or NMI arrived for this vCPU from another thread: a vCPU
    // inside the guest leaves it to look at its interrupt source, and goes
    // on running (run() does not return for it).
    virtual void kick() {}
    virtual u64 retired() const = 0;
    // What run()'s budget counts, since power-on: retired instructions plus
    // events delivered without one (interrupts, exceptions). A point of a
    // deterministic run is named by a vCPU's units (Machine::stop_at_position).
    virtual u64 units() const = 0;
    // External (controller) interrupts the vCPU has taken (--stats).
    virtual u64 external_interrupts() const = 0;
    virtual VcpuExitCounts exit_counts() const { return {}; }
    // The fault that caused the last TripleFault exit.
    virtual const Fault& last_fault() const = 0;

    // ---- State ----
    // Power-on or INIT state (SDM Vol 3A 9.1.1).
    virtual void reset() = 0;
    // Brings the vCPU to an instruction boundary with nothing half done,
    // before get_state() hands it to the other backend: an I/O exit
    // completed, an interrupt or exception the hardware was delivering when
    // the vCPU stopped delivered (CpuState has no field for one in flight).
    // The interpreter stops only between instructions: nothing to do.
    virtual void quiesce() {}
    virtual CpuState get_state() = 0;
    virtual void set_state(const CpuState& state) = 0;
    // The whole vCPU for a snapshot: the CpuState and whatever else the
    // backend keeps that the guest's future depends on (retired count).
    virtual void visit_state(StateVisitor& v) = 0;

    // ---- Wiring: what the vCPU asks of the machine ----
    virtual void set_interrupt_source(InterruptSource* source) = 0;
    // FERR#/IGNNE# (CR0.NE = 0 error reporting); only the boot vCPU has them.
    virtual void set_fpu_error_pins(FpuErrorPins* pins) = 0;
    // The time the TSC counts from (before the guest's TSC offset).
    virtual void set_tsc_source(std::function<u64()> source) = 0;
    // What RDTSC returns now (the LAPIC's TSC-deadline timer compares it).
    virtual u64 read_tsc() = 0;
    virtual void set_hypercall_hook(HypercallHook hook) = 0;
    virtual void set_trace_hook(TraceHook hook) = 0;

    // ---- A debugger (the gdb stub) ----
    // Its breakpoints, watchpoints and single-step, kept by the backend and
    // invisible to the guest (the interpreter checks them itself; a KVM
    // backend would hand them to KVM_SET_GUEST_DEBUG). run() returns
    // DebugStop when one stops the vCPU: a breakpoint before its
    // instruction, a watchpoint after the access, a step after one
    // instruction or one delivered event.
    virtual void set_guest_debug(const GuestDebugSet& set) = 0;
    virtual DebugEvent debug_event() const = 0;

    // ---- TLB (the Hyper-V flush hypercalls) ----
    virtual void flush_tlb(bool include_global) = 0;
    virtual void invalidate_page(u64 linear) = 0;
};

// What the backends of one machine share (the interpreter's block cache, the
// KVM VM file descriptor): it makes the machine's vCPUs. Made once per
// machine, after RAM and the buses.
class Accelerator {
public:
    virtual ~Accelerator() = default;
    virtual const char* name() const = 0;
    // vCPU `index` (also its initial APIC ID).
    virtual std::unique_ptr<VcpuBackend> create_vcpu(unsigned index) = 0;
    // The rate the guest's TSC counts at. The interpreter's counts virtual
    // nanoseconds (1 GHz); a hardware backend's runs at the host's rate
    // unless the hardware can scale it.
    virtual u64 tsc_hz() const { return 1'000'000'000; }
    // Where the machine's clock reads host time (nanoseconds) when it runs
    // in host time; empty for CLOCK_MONOTONIC. A hardware backend whose
    // guest TSC is the host's own counts time by that TSC, so the guest's
    // TSC, its reference TSC page and the partition's reference counter can
    // never drift apart.
    virtual std::function<u64()> host_time_ns() const { return {}; }
    // The run loop's round, and each vCPU's turn in a round when there
    // are several, in the units run() counts; empty for the machine's own
    // (Machine::QUANTUM, VCPU_SLICE: instructions). A hardware backend
    // counts nanoseconds, where those would end KVM_RUN with a kick every
    // 20-100 us.
    struct RunSlices {
        u64 round, vcpu_turn;
    };
    virtual std::optional<RunSlices> run_slices() const { return std::nullopt; }
    // Whether the vCPUs run at once, one host thread each, for the round's
    // time (a backend whose run() blocks while the guest runs: KVM), rather
    // than in turns on the machine's thread (the interpreter: one thread
    // keeps a deterministic run deterministic).
    virtual bool vcpus_on_threads() const { return false; }
    // The port of the hypercall gate, for a backend that cannot see
    // VMCALL/VMMCALL: the Hyper-V hypercall page then calls with OUT imm8,
    // AL to this port, which the backend turns into the hypercall hook.
    virtual std::optional<u8> hypercall_port() const { return std::nullopt; }
    // Takes out of the CPU model what this backend cannot run. A machine
    // whose vCPUs may move to the other backend (one started on KVM) has
    // its model narrowed so, and then both backends offer the same flags.
    virtual void narrow_cpuid(CpuidModel& model) const { (void)model; }
};

// Everything a backend needs from the machine to make vCPUs.
struct AcceleratorWiring {
    PhysicalMemory& memory;
    PortBus& ports;
    MsrBus& msrs;
    const CpuidModel& cpuid;
    unsigned vcpu_count = 1;
    // The machine's device lock (QEMU's big lock): held by a vCPU thread
    // around every exit to the devices. Null: the backend keeps its own.
    std::mutex* device_lock = nullptr;
};
