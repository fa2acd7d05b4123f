#include "frontend/run_report.h"

#include <cinttypes>

int report_outcome(std::FILE* out, const RunOutcome& outcome, const Machine& machine,
                   u64 total_retired)
{
    using Kind = RunOutcome::Kind;
    switch (outcome.kind) {
    case Kind::GuestExit:
    case Kind::HostStop:
        return outcome.status;
    case Kind::PowerOff:
    case Kind::Reset:
    case Kind::Checkpoint:
    case Kind::DebugStop: // the frontend pauses and runs on; it never ends a run
        return exit_status::SUCCESS;
    case Kind::TripleFault: {
        const CpuState state = machine.vcpu_state(outcome.vcpu);
        std::fprintf(out,
                     "viridian: triple fault: vector %u error 0x%x at RIP=0x%" PRIx64 " (vCPU %u)\n",
                     outcome.fault.vector, outcome.fault.error_code, state.rip, outcome.vcpu);
        dump_registers(out, state);
        return exit_status::TRIPLE_FAULT;
    }
    case Kind::InstructionLimit:
        std::fprintf(out,
                     "viridian: stopped after the instruction limit (%" PRIu64
                     " instructions) at RIP=0x%" PRIx64 "\n",
                     total_retired, machine.vcpu_state(0).rip);
        for (unsigned i = 0; i < machine.vcpu_count(); ++i) {
            if (machine.vcpu_count() > 1)
                std::fprintf(out, " vCPU %u:\n", i);
            dump_registers(out, machine.vcpu_state(i));
        }
        return exit_status::INSTRUCTION_LIMIT;
    case Kind::HaltedForever: {
        const CpuState state = machine.vcpu_state(0);
        if (outcome.suspended)
            std::fprintf(out, "viridian: the guest suspended to RAM (ACPI S3) and no enabled wake "
                              "event can come; stopping\n");
        else if (state.rflags & rf::IF)
            std::fprintf(out,
                         "viridian: every vCPU halted at RIP=0x%" PRIx64
                         " (vCPU 0) and no timer or input can interrupt them; stopping\n",
                         state.rip);
        else
            std::fprintf(out,
                         "viridian: every vCPU halted with interrupts disabled (vCPU 0 at RIP=0x%" PRIx64
                         "); nothing can wake them\n",
                         state.rip);
        return exit_status::HALTED_FOREVER;
    }
    case Kind::GuestCrash:
        if (outcome.crash)
            print_crash_report(out, *outcome.crash);
        return exit_status::GUEST_CRASH;
    }
    return exit_status::SUCCESS;
}

namespace {

const char* const SEG_NAMES[SEG_COUNT] = {"ES", "CS", "SS", "DS", "FS", "GS"};
const char* const GPR_NAMES[16] = {"RAX", "RCX", "RDX", "RBX", "RSP", "RBP", "RSI", "RDI",
                                   "R8",  "R9",  "R10", "R11", "R12", "R13", "R14", "R15"};

void dump_segment(std::FILE* out, const char* name, const Segment& seg)
{
    std::fprintf(out, "  %-4s=%04x base=%016" PRIx64 " limit=%08x attr=%05x\n", name, seg.selector,
                 seg.base, seg.limit, seg.attr);
}

} // namespace

void dump_registers(std::FILE* out, const CpuState& s)
{
    for (unsigned r = 0; r < 16; r += 4)
        std::fprintf(out,
                     "  %-3s=%016" PRIx64 " %-3s=%016" PRIx64 " %-3s=%016" PRIx64
                     " %-3s=%016" PRIx64 "\n",
                     GPR_NAMES[r], s.gpr[r], GPR_NAMES[r + 1], s.gpr[r + 1], GPR_NAMES[r + 2],
                     s.gpr[r + 2], GPR_NAMES[r + 3], s.gpr[r + 3]);
    std::fprintf(out, "  RIP=%016" PRIx64 " RFLAGS=%08" PRIx64 " CPL=%u\n", s.rip, s.rflags,
                 s.cpl());
    for (unsigned i = 0; i < SEG_COUNT; ++i)
        dump_segment(out, SEG_NAMES[i], s.seg[i]);
    dump_segment(out, "LDTR", s.ldtr);
    dump_segment(out, "TR", s.tr);
    std::fprintf(out, "  GDTR=%016" PRIx64 "/%04x IDTR=%016" PRIx64 "/%04x\n", s.gdtr.base,
                 s.gdtr.limit, s.idtr.base, s.idtr.limit);
    std::fprintf(out,
                 "  CR0=%08" PRIx64 " CR2=%016" PRIx64 " CR3=%016" PRIx64 " CR4=%08" PRIx64
                 " EFER=%04" PRIx64 "\n",
                 s.cr0, s.cr2, s.cr3, s.cr4, s.msr.efer);
}

void print_crash_report(std::FILE* out, const HvCrashReport& report)
{
    std::fprintf(out,
                 "viridian: the guest reported a crash (Hyper-V crash MSRs) on VP %u:\n"
                 "  P0=0x%016" PRIx64 " P1=0x%016" PRIx64 " P2=0x%016" PRIx64 "\n"
                 "  P3=0x%016" PRIx64 " P4=0x%016" PRIx64 "\n",
                 report.vp, report.params[0], report.params[1], report.params[2],
                 report.params[3], report.params[4]);
    if (!report.message)
        return;
    // The text is the guest's: control bytes other than newline and tab are
    // shown as '.', so it cannot drive the host terminal.
    std::fputs("  message:\n", out);
    for (char c : *report.message) {
        const auto byte = static_cast<unsigned char>(c);
        std::fputc(byte == '\n' || byte == '\t' || (byte >= 0x20 && byte < 0x7F) ? byte : '.', out);
    }
    if (report.message->empty() || report.message->back() != '\n')
        std::fputc('\n', out);
}

void print_stats(std::FILE* out, u64 retired, const MachineStats& stats)
{
    std::fprintf(out, "instructions: %llu\nport accesses: %llu\nmmio accesses: %llu\ninterrupts: %llu\n",
                 static_cast<unsigned long long>(retired), static_cast<unsigned long long>(stats.port_accesses),
                 static_cast<unsigned long long>(stats.mmio_accesses),
                 static_cast<unsigned long long>(stats.interrupts));
    std::fprintf(out,
                 "vmbus messages: %llu\nvmbus signals to host: %llu\nvmbus signals to guest: %llu\n"
                 "vmbus requests refused: %llu\n",
                 static_cast<unsigned long long>(stats.vmbus_messages),
                 static_cast<unsigned long long>(stats.vmbus_signals_in),
                 static_cast<unsigned long long>(stats.vmbus_signals_out),
                 static_cast<unsigned long long>(stats.vmbus_refused));
    std::fprintf(out,
                 "heartbeat: %s\nheartbeats answered: %llu\nheartbeats missed: %llu\n"
                 "time sync messages: %llu\n",
                 stats.heartbeat.c_str(), static_cast<unsigned long long>(stats.heartbeats_answered),
                 static_cast<unsigned long long>(stats.heartbeats_missed),
                 static_cast<unsigned long long>(stats.time_sync_messages));
    std::fprintf(out, "msr accesses: %llu\n", static_cast<unsigned long long>(stats.msr_accesses));
    if (!stats.netvsc_frames_by_channel.empty()) {
        std::fprintf(out, "netvsc rss: %s\nnetvsc frames by channel:", stats.netvsc_rss ? "on" : "off");
        for (u64 frames : stats.netvsc_frames_by_channel)
            std::fprintf(out, " %llu", static_cast<unsigned long long>(frames));
        std::fprintf(out, "\nnetvsc large sends: %llu\n", static_cast<unsigned long long>(stats.netvsc_large_sends));
    }
    const VcpuExitCounts& e = stats.exits;
    if (e.total() != 0)
        std::fprintf(out,
                     "exits: %llu (io %llu, mmio %llu, msr %llu, hlt %llu, interrupt window %llu, "
                     "kick %llu, other %llu)\n",
                     static_cast<unsigned long long>(e.total()), static_cast<unsigned long long>(e.io),
                     static_cast<unsigned long long>(e.mmio), static_cast<unsigned long long>(e.msr),
                     static_cast<unsigned long long>(e.halt), static_cast<unsigned long long>(e.interrupt_window),
                     static_cast<unsigned long long>(e.kick), static_cast<unsigned long long>(e.other));
    std::fflush(out);
}

MachineStats operator+(const MachineStats& a, const MachineStats& b)
{
    return {a.port_accesses + b.port_accesses, a.mmio_accesses + b.mmio_accesses, a.interrupts + b.interrupts,
            a.vmbus_messages + b.vmbus_messages, a.vmbus_signals_in + b.vmbus_signals_in,
            a.vmbus_signals_out + b.vmbus_signals_out, a.vmbus_refused + b.vmbus_refused,
            // The state is the later machine's (the one running after a reboot).
            b.heartbeat, a.heartbeats_answered + b.heartbeats_answered,
            a.heartbeats_missed + b.heartbeats_missed, a.time_sync_messages + b.time_sync_messages,
            a.msr_accesses + b.msr_accesses, VcpuExitCounts(a.exits) += b.exits,
            // The adapter's counts are the later machine's too.
            b.netvsc_frames_by_channel, b.netvsc_rss, b.netvsc_large_sends};
}
