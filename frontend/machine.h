// The whole PC as one object (STYLE.md "No globals"): memory, buses, the
// devices, the vCPU backend; it boots a kernel and runs until something ends
// the run, and turns that into the process exit status.
#pragma once

#include "accel/interp_backend.h"
#include "frontend/console.h"
#include "frontend/hyperv_glue.h"
#include "paravirt/hv_test_device.h"
#include "platform/pc_testdev.h"
#include "frontend/tracer.h"
#include "mmu/msr_bus.h"
#include "mmu/physical_memory.h"
#include "mmu/port_bus.h"
#include "platform/debug_exit.h"
#include "platform/error_or.h"
#include "platform/pc_board.h"
#include "platform/virtual_clock.h"
#include "platform/uart16550.h"

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

// Process exit statuses besides the guest's own debug-exit statuses (odd
// numbers, (v << 1) | 1). Listed in README.md.
namespace exit_status {
constexpr int SUCCESS = 0;
constexpr int USAGE = 2; // bad option, missing or malformed kernel
constexpr int TRIPLE_FAULT = 4;
constexpr int INSTRUCTION_LIMIT = 5;
constexpr int HALTED_FOREVER = 6;
constexpr int GUEST_CRASH = 8; // reported through the Hyper-V crash MSRs
constexpr int INTERRUPTED = 130; // SIGINT/SIGTERM, as a shell reports 128 + SIGINT
} // namespace exit_status

struct MachineConfig {
    u64 memory_bytes = 512ull << 20;
    unsigned cpu_count = 1;
    CpuVendor cpu_vendor = CpuVendor::Intel;
    // CpuidModel::apply_feature_spec narrowing ("-avx2,-aes"); empty: none.
    std::string cpu_features;
    std::string kernel_path;
    // The name the guest sees first on its command line (QEMU shows the path
    // as given on its own command line).
    std::string kernel_name;
    std::string append;
    std::optional<std::string> initrd;
    bool trace = false;
    // Virtual time derives from retired instructions (and idle skips), the
    // RTC starts at a fixed date: the same inputs give the same run.
    bool deterministic = false;
    std::optional<u64> max_instructions;
    // The Hyper-V partition interface (--enlightenments on|off).
    bool enlightenments = true;
    bool jit = true; // block translation (cpu/jit/); off: interpreter only
    // kvm-unit-tests' Hyper-V test device at port 0x3000 (--hyperv-test-device).
    bool hyperv_test_device = false;
    bool pc_testdev = false;
    // Where COM1's output goes; flushed at the end of each quantum.
    std::FILE* serial_out = stdout;
    std::FILE* serial2_out = nullptr; // COM2; nullptr: discarded
};

class Machine {
public:
    // Instructions per round of the run loop. With one vCPU it runs them all
    // in one call; with several, each runs VCPU_SLICE instructions in turn
    // (round-robin on this thread, so a run is deterministic) and PAUSE ends a
    // slice early, so a vCPU spinning on a lock lets the holder run.
    static constexpr u64 QUANTUM = 100000;
    static constexpr u64 VCPU_SLICE = 20000;
    // The shortest slice when a timer deadline is near or past.
    static constexpr u64 MIN_TIMER_SLICE = 100;

    static ErrorOr<std::unique_ptr<Machine>> create(const MachineConfig& config);
    Machine(const Machine&) = delete;
    Machine& operator=(const Machine&) = delete;

    // Runs until the guest exits, resets, faults fatally, halts for good or
    // reaches the instruction limit; reports why on stderr and returns the
    // status. After a guest reset, reset_requested() is true (the caller
    // decides whether to boot a fresh machine).
    int run();
    bool reset_requested() const { return m_reset_requested; }

    // Instructions retired by all vCPUs together.
    u64 retired() const;
    unsigned vcpu_count() const { return static_cast<unsigned>(m_vcpus.size()); }
    CpuState& cpu_state(unsigned vcpu = 0) { return m_vcpus[vcpu]->state; }
    PhysicalMemory& memory() { return m_memory; }
    Uart16550& uart() { return m_uart; }

private:
    // One virtual processor: its architectural state, the backend that runs
    // it, and the start-up requests its local APIC has received since it
    // last ran (applied between slices, never inside another vCPU's
    // instruction).
    struct Vcpu {
        CpuState state;
        std::unique_ptr<InterpBackend> backend;
        bool pending_init = false;
        std::optional<u8> pending_sipi;
    };

    explicit Machine(const MachineConfig& config);
    ErrorOr<void> boot();
    ErrorOr<void> boot_linux(const std::string& name);
    void serial_output(u8 byte);
    void serial2_output(u8 byte);
    void create_vcpus();
    void connect_board();
    void connect_vcpu(unsigned index);
    void apply_startup_requests(Vcpu& vcpu);
    std::optional<int> check_instruction_limit(u64& budget);
    std::optional<int> poll_console();
    // Runs every vCPU that can run for one slice. Returns the status that
    // ends the run, if something ended it; sets `progressed` when any vCPU
    // retired an instruction.
    std::optional<int> run_round(u64 budget, bool& progressed);
    u64 slice_until_next_timer(u64 slice) const;
    int report_triple_fault(unsigned vcpu);
    int report_halt();
    // Every vCPU is halted: waits (in virtual time) for the next timer.
    // Returns false when nothing can ever wake any of them.
    bool wait_for_interrupt();
    // Back from ACPI S3: the vCPUs reset, the BSP in real mode at the OS's
    // waking vector; false when the OS set none (then the machine resets).
    bool resume_from_suspend();
    // Ends the slice of the vCPU that is running (a device asked to stop).
    void stop_running_vcpu() { m_vcpus[m_running]->backend->request_stop(); }

    MachineConfig m_config;
    PhysicalMemory m_memory;
    PortBus m_ports;
    MsrBus m_msrs;
    VirtualClock m_clock;
    CpuidModel m_cpuid;
    BlockCache m_blocks;
    std::vector<std::unique_ptr<Vcpu>> m_vcpus;
    Uart16550 m_uart;
    // COM2 at 0x2F8, IRQ 3 (declared in the DSDT); output to --serial2.
    Uart16550 m_com2;
    DebugExit m_debug_exit;
    std::unique_ptr<Tracer> m_tracer;
    std::unique_ptr<PcBoard> m_board;
    std::unique_ptr<HypervGlue> m_hyperv;
    std::unique_ptr<HvTestDevice> m_hv_test_device; // after m_hyperv: it uses the partition
    std::unique_ptr<PcTestdev> m_pc_testdev;
    Console m_console{true};
    std::optional<u64> m_exit_status;
    bool m_reset_requested = false;
    bool m_resume_pending = false; // a wake event ended S3; resume before the next round
    unsigned m_running = 0; // the vCPU whose slice is running
    u64 m_next_console_poll = 0;
};

// Writes the registers a crash report needs, one group per line.
void dump_registers(std::FILE* out, const CpuState& state);
