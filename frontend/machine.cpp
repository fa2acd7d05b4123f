#include "frontend/machine.h"

#include "platform/linux_boot.h"
#include "platform/multiboot.h"

#include <cinttypes>
#include <ctime>
#include <new>
#include <unistd.h>

Machine::Machine(const MachineConfig& config)
    : m_config(config), m_memory(config.memory_bytes),
      m_clock(config.deterministic ? VirtualClock::Mode::Deterministic : VirtualClock::Mode::Host),
      m_cpuid(config.cpu_count, config.cpu_vendor), m_uart(m_clock, [this](u8 byte) { serial_output(byte); }),
      m_com2(m_clock, [this](u8 byte) { serial2_output(byte); }),
      m_debug_exit([this](u64 status) {
          m_exit_status = status;
          stop_running_vcpu();
      })
{
    m_ports.map(Uart16550::COM1_BASE, Uart16550::PORT_COUNT, &m_uart);
    m_ports.map(Uart16550::COM2_BASE, Uart16550::PORT_COUNT, &m_com2);
    m_ports.map(DebugExit::DEFAULT_BASE, DebugExit::DEFAULT_SIZE, &m_debug_exit);
    // Every vCPU decodes from the same memory: one block cache, told of
    // every write to a page it decoded from.
    BlockCache& blocks = m_blocks;
    m_memory.set_code_write_listener([&blocks](GuestPhys page) { blocks.invalidate_page(page); });
    create_vcpus();
    connect_board();
}

void Machine::create_vcpus()
{
    for (unsigned i = 0; i < m_config.cpu_count; ++i) {
        auto vcpu = std::make_unique<Vcpu>();
        // The APIC ID is the vCPU index, as the MADT and the LAPICs say.
        vcpu->backend = std::make_unique<InterpBackend>(vcpu->state, m_memory, m_ports, m_msrs,
                                                        m_cpuid, i, &m_blocks);
        vcpu->backend->cpu().set_pause_yields(m_config.cpu_count > 1);
        vcpu->backend->cpu().set_jit_enabled(m_config.jit);
        m_vcpus.push_back(std::move(vcpu));
    }
}

u64 Machine::retired() const
{
    u64 total = 0;
    for (const auto& vcpu : m_vcpus)
        total += vcpu->backend->retired();
    return total;
}

void Machine::connect_board()
{
    PcBoardConfig board;
    board.cpu_count = m_config.cpu_count;
    board.ram_bytes = m_config.memory_bytes;
    // Deterministic runs start the RTC at 2026-01-01 00:00:00 UTC.
    board.rtc_start_time = m_config.deterministic ? 1767225600 : static_cast<i64>(std::time(nullptr));
    m_board = std::make_unique<PcBoard>(board, m_memory, m_ports, m_msrs, m_clock);
    m_cpuid.set_local_apic(true);
    m_uart.set_irq_line(m_board->isa_irq_input(Uart16550::COM1_IRQ));
    m_com2.set_irq_line(m_board->isa_irq_input(Uart16550::COM2_IRQ));

    // Hyper-V enlightenments (docs/hyperv.md): one partition, each vCPU
    // attached with its VP index in connect_vcpu. With them on, every vCPU's
    // TSC is the partition TSC (the same 1 GHz of virtual time).
    HvConfig hv;
    hv.enabled = m_config.enlightenments;
    hv.vp_count = board.cpu_count;
    hv.apic_frequency_hz = LocalApic::TIMER_HZ;
    // The hypercall page holds the instruction of the vendor's hardware assist.
    hv.hypercall_instruction = m_config.cpu_vendor == CpuVendor::Amd
                                   ? HypercallInstruction::Vmmcall
                                   : HypercallInstruction::Vmcall;
    m_hyperv = std::make_unique<HypervGlue>(hv, m_memory, m_clock, m_cpuid,
                                            [this] { return m_board->current_vcpu(); });
    m_hyperv->set_crash_handler([this](const HvCrashReport&) {
        m_exit_status = exit_status::GUEST_CRASH;
        stop_running_vcpu();
    });
    // Deterministic time counts the instructions of all vCPUs together: it
    // only ever moves forward, whichever vCPU reads it, so the TSCs agree.
    m_clock.set_instruction_counter([this] { return retired(); });
    for (unsigned i = 0; i < m_vcpus.size(); ++i)
        connect_vcpu(i);
    // Behind an option, not always there: port 0x3000 lies where firmware
    // and Linux place PCI I/O BARs, and QEMU too only has it on request.
    if (m_config.hyperv_test_device && m_hyperv->enabled()) {
        m_hv_test_device = std::make_unique<HvTestDevice>(m_hyperv->hv());
        m_ports.map(HvTestDevice::PORT, HvTestDevice::PORT_COUNT, m_hv_test_device.get());
    }
    if (m_config.pc_testdev) {
        m_pc_testdev = std::make_unique<PcTestdev>([this](unsigned irq) { return m_board->isa_irq_input(irq); });
        m_pc_testdev->attach(m_ports, m_memory);
    }
    m_board->set_power_off_handler([this] {
        m_exit_status = exit_status::SUCCESS;
        stop_running_vcpu();
    });
    m_board->set_reset_handler([this] {
        m_reset_requested = true;
        stop_running_vcpu();
    });
    // S3: no vCPU runs while the board sleeps; its timers go on and one of
    // them (the RTC alarm) may wake it.
    m_board->set_suspend_handler([this] { stop_running_vcpu(); });
    m_board->set_wake_handler([this] { m_resume_pending = true; });
}

bool Machine::resume_from_suspend()
{
    m_resume_pending = false;
    // Waking from S3 the CPUs start at their reset vector (ACPI 6.4 16.3);
    // firmware sets up a little and, as SeaBIOS's s3_resume does, jumps to the FACS's Firmware
    // Waking Vector in real mode as CS:IP = (vector >> 4):(vector & 0xF).
    // The devices other than the 8259s and LAPICs keep their state (QEMU
    // resets them; the OS initialises them again after resume).
    const u32 vector = m_board->resume_as_firmware_does(m_memory);
    if (!vector)
        return false; // SeaBIOS reboots when no vector is set
    for (auto& vcpu : m_vcpus) {
        vcpu->backend->reset();
        vcpu->pending_init = false;
        vcpu->pending_sipi.reset();
    }
    CpuState& s = m_vcpus[0]->backend->state();
    s.seg[CS].selector = static_cast<u16>(vector >> 4);
    s.seg[CS].base = vector & ~0xFull;
    s.rip = vector & 0xF;
    return true;
}

void Machine::connect_vcpu(unsigned index)
{
    Vcpu& vcpu = *m_vcpus[index];
    Cpu& cpu = vcpu.backend->cpu();
    LocalApic& lapic = m_board->lapic(index);
    // The TSC runs at 1 GHz of virtual time on every vCPU; the LAPIC's
    // TSC-deadline timer must read exactly what RDTSC returns.
    cpu.set_tsc_source([this] { return m_clock.now_ns(); });
    cpu.set_interrupt_source(&lapic);
    if (index == 0) // FERR#/IGNNE# are wired to the boot processor only
        cpu.set_fpu_error_pins(&m_board->fpu_error_pins());
    lapic.set_tsc([&cpu] { return cpu.read_tsc(); }, 1'000'000'000);
    m_hyperv->attach_vcpu(index, cpu, lapic, m_msrs);
    // INIT and SIPI arrive while another vCPU (or this one) is inside an
    // instruction: remember them and apply them before this vCPU runs next.
    lapic.set_init_handler([this, &vcpu, index] {
        vcpu.pending_init = true;
        vcpu.pending_sipi.reset();
        if (index == m_running)
            vcpu.backend->request_stop();
    });
    lapic.set_sipi_handler([&vcpu](u8 vector) { vcpu.pending_sipi = vector; });
}

void Machine::apply_startup_requests(Vcpu& vcpu)
{
    if (vcpu.pending_init) {
        vcpu.pending_init = false;
        vcpu.backend->reset();
    }
    if (vcpu.pending_sipi) {
        // Start-up: real mode at vector:0000, i.e. physical vector << 12
        // (SDM Vol 3A 8.4.4.1).
        const u8 vector = *vcpu.pending_sipi;
        vcpu.pending_sipi.reset();
        CpuState& s = vcpu.backend->state();
        s.seg[CS].selector = static_cast<u16>(vector << 8);
        s.seg[CS].base = static_cast<u64>(vector) << 12;
        s.rip = 0;
        s.events.halted = false;
    }
}

ErrorOr<std::unique_ptr<Machine>> Machine::create(const MachineConfig& config)
{
    std::unique_ptr<Machine> machine;
    try {
        machine.reset(new Machine(config));
    } catch (const std::bad_alloc&) {
        // PhysicalMemory reserves the guest RAM up front.
        return make_error("cannot allocate " + std::to_string(config.memory_bytes >> 20) +
                          " MiB of guest memory");
    }
    if (config.trace) {
        ErrorOr<std::unique_ptr<Tracer>> tracer = Tracer::create(stderr);
        if (tracer.is_error())
            return tracer.error();
        machine->m_tracer = tracer.release_value();
        Tracer* t = machine->m_tracer.get();
        for (auto& vcpu : machine->m_vcpus)
            vcpu->backend->cpu().set_trace_hook(
                [t](const CpuState& s, const u8* bytes, unsigned length) {
                    t->trace(s, bytes, length);
                });
    }
    if (!config.cpu_features.empty()) {
        ErrorOr<void> narrowed = machine->m_cpuid.apply_feature_spec(config.cpu_features);
        if (narrowed.is_error())
            return make_error("--cpu-features: " + narrowed.error().message);
        // The LAPICs follow the narrowed model (`-x2apic`: EXTD reserved).
        for (unsigned i = 0; i < config.cpu_count; ++i)
            machine->m_board->lapic(i).set_x2apic_supported(machine->m_cpuid.has(cpufeat::X2APIC));
    }
    ErrorOr<void> booted = machine->boot();
    if (booted.is_error())
        return booted.error();
    return machine;
}

ErrorOr<void> Machine::boot()
{
    std::string name = m_config.kernel_name.empty() ? m_config.kernel_path : m_config.kernel_name;
    // The loader is chosen by the file's content: a multiboot header, else
    // a Linux boot header ("HdrS"), else neither.
    ErrorOr<std::vector<u8>> image = read_whole_file(m_config.kernel_path);
    if (image.is_error())
        return make_error("kernel: " + image.error().message);
    if (!is_multiboot_image(image.value())) {
        if (!is_linux_bzimage(image.value()))
            return make_error(name +
                              ": not a multiboot kernel or a Linux bzImage (no multiboot v1 "
                              "header in its first 8192 bytes, no \"HdrS\" header at 0x202)");
        return boot_linux(name);
    }
    MultibootParams params;
    params.kernel_name = name;
    params.append = m_config.append;
    params.module_spec = m_config.initrd;
    ErrorOr<MultibootBoot> boot = load_multiboot(m_memory, m_config.kernel_path, params);
    if (boot.is_error())
        return boot.error();
    m_vcpus[0]->backend->reset();
    // No firmware runs before a multiboot kernel here, but under QEMU SeaBIOS
    // did, and such kernels count on the PIC and PIT it leaves (kvm-unit-tests
    // realmode waits in HLT for IRQ 0).
    m_board->program_as_firmware_leaves_it(m_memory);
    enter_multiboot(m_vcpus[0]->state, boot.value());
    return {};
}

ErrorOr<void> Machine::boot_linux(const std::string& name)
{
    LinuxBootParams params;
    params.kernel_name = name;
    params.cmdline = m_config.append;
    params.acpi_rsdp_address = m_board->acpi().rsdp_address;
    params.acpi_reserved_top = m_board->acpi_reserved_bytes();
    ErrorOr<LinuxBootInfo> boot =
        load_linux(m_memory, m_config.kernel_path, m_config.initrd, std::move(params));
    if (boot.is_error())
        return boot.error();
    m_vcpus[0]->backend->reset();
    enter_linux64(m_vcpus[0]->state, boot.value());
    return {};
}

void Machine::serial2_output(u8 byte)
{
    if (!m_config.serial2_out)
        return;
    std::fputc(byte, m_config.serial2_out);
    if (byte == '\n')
        std::fflush(m_config.serial2_out);
}

void Machine::serial_output(u8 byte)
{
    std::fputc(byte, m_config.serial_out);
    if (byte == '\n')
        std::fflush(m_config.serial_out);
}

int Machine::run()
{
    for (;;) {
        if (m_resume_pending && !resume_from_suspend()) {
            m_reset_requested = true;
            return exit_status::SUCCESS;
        }
        u64 budget = QUANTUM;
        if (std::optional<int> limit = check_instruction_limit(budget))
            return *limit;
        if (std::optional<int> quit = poll_console())
            return *quit;
        bool progressed = false;
        if (std::optional<int> ended = run_round(budget, progressed))
            return *ended;
        if (!progressed && !wait_for_interrupt())
            return report_halt();
    }
}

std::optional<int> Machine::check_instruction_limit(u64& budget)
{
    if (!m_config.max_instructions)
        return std::nullopt;
    const u64 done = retired();
    if (done < *m_config.max_instructions) {
        budget = std::min(budget, *m_config.max_instructions - done);
        return std::nullopt;
    }
    std::fflush(m_config.serial_out);
    std::fprintf(stderr,
                 "viridian: stopped after the instruction limit (%" PRIu64
                 " instructions) at RIP=0x%" PRIx64 "\n",
                 done, m_vcpus[0]->state.rip);
    for (unsigned i = 0; i < m_vcpus.size(); ++i) {
        if (m_vcpus.size() > 1)
            std::fprintf(stderr, " vCPU %u:\n", i);
        dump_registers(stderr, m_vcpus[i]->backend->state());
    }
    return exit_status::INSTRUCTION_LIMIT;
}

std::optional<int> Machine::poll_console()
{
    // Polling is a system call: once per QUANTUM instructions is prompt
    // enough for typed input, and PAUSE-ended slices do not multiply it.
    const u64 now = retired();
    if (now < m_next_console_poll)
        return std::nullopt;
    m_next_console_poll = now + QUANTUM;
    m_console.poll([this](u8 byte) { m_uart.push_input(byte); });
    if (!m_console.quit_requested())
        return std::nullopt;
    std::fflush(m_config.serial_out);
    std::fprintf(stderr, "\nviridian: %s\n", m_console.quit_reason().c_str());
    return m_console.quit_reason().find("SIG") == std::string::npos ? exit_status::SUCCESS
                                                                     : exit_status::INTERRUPTED;
}

std::optional<int> Machine::run_round(u64 budget, bool& progressed)
{
    const u64 slice = m_vcpus.size() == 1 ? budget : std::min(budget, VCPU_SLICE);
    if (m_board->suspended()) {
        m_clock.run_due(); // a wake event sets m_resume_pending
        progressed = m_resume_pending;
        return std::nullopt;
    }
    for (unsigned i = 0; i < m_vcpus.size(); ++i) {
        if (m_board->suspended())
            break; // the vCPU before this one suspended the machine
        Vcpu& vcpu = *m_vcpus[i];
        apply_startup_requests(vcpu);
        if (m_board->lapic(i).wait_for_sipi())
            continue; // an AP before its start-up IPI, or after INIT
        m_clock.run_due();
        m_running = i;
        m_board->set_current_vcpu(i);
        const u64 before = vcpu.backend->retired();
        RunExit exit = vcpu.backend->run(slice_until_next_timer(slice));
        if (vcpu.backend->retired() != before)
            progressed = true;
        std::fflush(m_config.serial_out);
        if (m_exit_status)
            return static_cast<int>(*m_exit_status & 0xFF); // what exit() keeps, as in QEMU
        if (m_reset_requested)
            return exit_status::SUCCESS;
        if (exit == RunExit::TripleFault)
            return report_triple_fault(i);
        // Halted vCPUs are asked again next round: an interrupt wakes them.
    }
    return std::nullopt;
}

u64 Machine::slice_until_next_timer(u64 slice) const
{
    // Timers fire between slices, so a slice ends at the next deadline and
    // an interrupt reaches a busy vCPU on time, not up to a slice late. A
    // floor keeps a guest that programs a timer in the past or every few
    // nanoseconds from turning each instruction into a round of the loop.
    const u64 until = m_clock.instructions_until_next_deadline();
    return std::min(slice, std::max(until, MIN_TIMER_SLICE));
}

int Machine::report_triple_fault(unsigned index)
{
    InterpBackend& backend = *m_vcpus[index]->backend;
    const Fault& fault = backend.last_fault();
    const CpuState& state = backend.state();
    std::fprintf(stderr,
                 "viridian: triple fault: vector %u error 0x%x at RIP=0x%" PRIx64 " (vCPU %u)\n",
                 fault.vector, fault.error_code, state.rip, index);
    dump_registers(stderr, state);
    return exit_status::TRIPLE_FAULT;
}

bool Machine::wait_for_interrupt()
{
    bool can_wake = m_board->suspended(); // a timer may be a wake event
    for (unsigned i = 0; i < m_vcpus.size(); ++i) {
        const CpuState& state = m_vcpus[i]->backend->state();
        if (!m_board->lapic(i).wait_for_sipi() && ((state.rflags & rf::IF) || state.events.nmi))
            can_wake = true;
    }
    if (!can_wake)
        return false; // only NMI, INIT or SMI could wake them, and nothing sends them
    // A timer deadline or console input can raise an interrupt. Sleep in
    // small steps so typed input is seen promptly.
    const u64 deadline = m_clock.next_deadline();
    const u64 now = m_clock.now_ns();
    if (m_clock.mode() == VirtualClock::Mode::Deterministic) {
        // Nothing runs until the next timer: jump virtual time there.
        if (deadline == ~0ull)
            return false;
        m_clock.skip_to(deadline);
        return true; // run_round fires the timer before the next slice
    }
    if (deadline == ~0ull && !isatty(0))
        return false;
    if (deadline > now) {
        const u64 wait_ns = std::min<u64>(deadline - now, 10'000'000);
        timespec ts{static_cast<time_t>(wait_ns / 1'000'000'000),
                    static_cast<long>(wait_ns % 1'000'000'000)};
        nanosleep(&ts, nullptr);
    }
    m_clock.note_idle_wait();
    m_next_console_poll = 0; // look for typed input after every sleep
    return true;
}

int Machine::report_halt()
{
    const CpuState& state = m_vcpus[0]->backend->state();
    if (m_board->suspended())
        std::fprintf(stderr, "viridian: the guest suspended to RAM (ACPI S3) and no enabled wake "
                             "event can come; stopping\n");
    else if (state.rflags & rf::IF)
        std::fprintf(stderr,
                     "viridian: every vCPU halted at RIP=0x%" PRIx64
                     " (vCPU 0) and no timer or input can interrupt them; stopping\n",
                     state.rip);
    else
        std::fprintf(stderr,
                     "viridian: every vCPU halted with interrupts disabled (vCPU 0 at RIP=0x%" PRIx64
                     "); nothing can wake them\n",
                     state.rip);
    return exit_status::HALTED_FOREVER;
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
