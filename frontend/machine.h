// The whole PC as one object (STYLE.md "No globals"): memory, buses, the
// devices, the vCPU backend; it boots a kernel and runs until something ends
// the run, and turns that into the process exit status.
#pragma once

#include "accel/interp_backend.h"
#include "frontend/console.h"
#include "frontend/hyperv_glue.h"
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
    // Where COM1's output goes; flushed at the end of each quantum.
    std::FILE* serial_out = stdout;
};

class Machine {
public:
    // Instructions per call into the backend: short enough that output is
    // flushed and limits are checked often, long enough to amortize the call.
    static constexpr u64 QUANTUM = 100000;

    static ErrorOr<std::unique_ptr<Machine>> create(const MachineConfig& config);
    Machine(const Machine&) = delete;
    Machine& operator=(const Machine&) = delete;

    // Runs until the guest exits, faults fatally, halts for good or reaches
    // the instruction limit; reports why on stderr and returns the status.
    int run();

    u64 retired() const { return m_backend.retired(); }
    CpuState& cpu_state() { return m_state; }
    PhysicalMemory& memory() { return m_memory; }
    Uart16550& uart() { return m_uart; }

private:
    explicit Machine(const MachineConfig& config);
    ErrorOr<void> boot();
    ErrorOr<void> boot_linux(const std::string& name);
    void serial_output(u8 byte);
    int report_triple_fault();
    int report_halt();
    void connect_board();
    // HLT with interrupts enabled: waits (in virtual time) for the next timer.
    // Returns false when nothing can ever wake the vCPU.
    bool wait_for_interrupt();

    MachineConfig m_config;
    PhysicalMemory m_memory;
    PortBus m_ports;
    MsrBus m_msrs;
    VirtualClock m_clock;
    CpuidModel m_cpuid;
    CpuState m_state;
    InterpBackend m_backend;
    Uart16550 m_uart;
    DebugExit m_debug_exit;
    std::unique_ptr<Tracer> m_tracer;
    std::unique_ptr<PcBoard> m_board;
    std::unique_ptr<HypervGlue> m_hyperv;
    Console m_console{true};
    std::optional<u64> m_exit_status;
    bool m_reset_requested = false;
};

// Writes the registers a crash report needs, one group per line.
void dump_registers(std::FILE* out, const CpuState& state);
