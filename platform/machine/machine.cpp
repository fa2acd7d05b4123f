#include "platform/machine/machine.h"

#include "platform/boot/linux_boot.h"
#include "platform/boot/multiboot.h"
#include "accel/interp/interp_backend.h"
#include "accel/kvm/kvm_backend.h"
#include "platform/storage/ata_disk.h"
#include "platform/storage/atapi_cdrom.h"

#include <ctime>
#include <new>
#include <utility>

Machine::Machine(const MachineConfig& config)
    : m_config(config), m_memory(config.memory_bytes),
      m_clock(config.deterministic ? VirtualClock::Mode::Deterministic : VirtualClock::Mode::Host),
      m_cpuid(config.cpu_count, config.cpu_vendor),
      m_uart(m_clock, [this](u8 byte) { if (m_config.com1_output) m_config.com1_output(byte); }),
      m_com2(m_clock, [this](u8 byte) { if (m_config.com2_output) m_config.com2_output(byte); }),
      m_debug_exit([this](u64 status) {
          // What exit() keeps of the value, as with QEMU's isa-debug-exit.
          end_run(RunOutcome::of(RunOutcome::Kind::GuestExit, static_cast<int>(status & 0xFF)));
      })
{
    m_ports.map(Uart16550::COM1_BASE, Uart16550::PORT_COUNT, &m_uart);
    m_ports.map(Uart16550::COM2_BASE, Uart16550::PORT_COUNT, &m_com2);
    m_ports.map(DebugExit::DEFAULT_BASE, DebugExit::DEFAULT_SIZE, &m_debug_exit);
    if (config.debugcon_output) {
        m_debugcon = std::make_unique<DebugConsole>(config.debugcon_output);
        m_ports.map(DebugConsole::DEFAULT_BASE, DebugConsole::PORT_COUNT, m_debugcon.get());
    }
    m_accel = make_accelerator();
    m_running_accel = config.accel;
    m_tsc_hz = m_accel->tsc_hz();
    if (std::function<u64()> host_time = m_accel->host_time_ns();
        host_time && m_clock.mode() == VirtualClock::Mode::Host)
        m_clock.set_host_time_source(std::move(host_time));
    if (std::optional<Accelerator::RunSlices> slices = m_accel->run_slices())
        m_slices = *slices;
    m_commands = config.commands ? config.commands
                                 : (config.drives.empty() && !config.nic && config.added_nics.empty()
                                        ? nullptr
                                        : m_own_commands.get());
    create_vcpus();
    connect_board();
    attach_drives();
    for (const MachineDrive& drive : m_config.drives)
        m_discs.push_back({drive.image, {}});
    attach_nic();
}

Machine::~Machine()
{
    // No frame reaches this machine's adapters from now on.
    if (m_config.nic)
        m_config.nic->backend->set_receiver({});
    for (const MachineNic& added : m_config.added_nics)
        added.backend->set_receiver({});
    // Every write the guest saw completed reaches the image, and the image
    // is flushed: it outlives this machine (a reboot makes the next one).
    drain_disks();
    for (unsigned i = 0; i < 4; ++i)
        if (IdeDevice* device = m_board->ide().channel(i / 2).device(i % 2);
            device && !device->is_atapi())
            (void)device->disk().image().flush();
    for (const auto& disk : m_scsi_disks)
        (void)disk->block_device().image().flush();
}

namespace {

// A BlockDevice owns its image; the machine's drives share theirs with the
// frontend, which keeps them open across reboots.
class SharedImage final : public BlockImage {
public:
    explicit SharedImage(std::shared_ptr<BlockImage> image) : m_image(std::move(image)) {}
    const ImageInfo& info() const override { return m_image->info(); }
    BlockStatus read(u64 offset, std::span<u8> out) override { return m_image->read(offset, out); }
    BlockStatus write(u64 offset, std::span<const u8> data) override
    {
        return m_image->write(offset, data);
    }
    BlockStatus flush() override { return m_image->flush(); }
    BlockStatus discard(u64 offset, u64 length) override { return m_image->discard(offset, length); }
    BlockResult<Extent> map(u64 offset, u64 max_length) override
    {
        return m_image->map(offset, max_length);
    }
    BlockResult<CheckReport> check(bool repair) override { return m_image->check(repair); }

private:
    std::shared_ptr<BlockImage> m_image;
};

} // namespace

std::unique_ptr<BlockDevice> Machine::make_block_device(std::shared_ptr<BlockImage> image)
{
    // Host mode: the I/O runs on the disk's thread and the completion
    // waits for the next HostPoll point. Deterministic mode: the I/O is
    // done at once and the completion comes a fixed virtual time later.
    const bool deterministic = m_clock.mode() == VirtualClock::Mode::Deterministic;
    RunOnMachine run_on_machine;
    if (deterministic)
        run_on_machine = [this](std::function<void()> deliver) {
            deliver_at_disk_latency(std::move(deliver));
        };
    else
        run_on_machine = [queue = m_commands](std::function<void()> deliver) {
            queue->post_device_work(std::move(deliver));
        };
    return std::make_unique<BlockDevice>(std::make_unique<SharedImage>(std::move(image)),
                                         deterministic ? BlockDevice::Execution::Inline
                                                       : BlockDevice::Execution::WorkerThread,
                                         std::move(run_on_machine));
}

void Machine::attach_drives()
{
    if (m_clock.mode() == VirtualClock::Mode::Deterministic)
        m_disk_timer = std::make_unique<ClockTimer>(m_clock, [this] { run_due_disk_deliveries(); });
    if (m_vmbus) // Machine::create refused if=scsi without the enlightenments
        create_scsi_controller();
    for (const MachineDrive& drive : m_config.drives) {
        if (drive.scsi) {
            attach_scsi_disk(drive, make_block_device(drive.image));
            continue;
        }
        IdeChannel& channel = m_board->ide().channel(drive.index / 2);
        if (drive.cdrom) {
            const std::string serial = "VIRIDIAN-CD" + std::to_string(drive.index);
            auto disc = drive.image ? make_block_device(drive.image) : nullptr;
            channel.attach(drive.index % 2, std::make_unique<AtapiCdrom>(std::move(disc), serial));
            continue;
        }
        const std::string serial = "VIRIDIAN-HD" + std::to_string(drive.index);
        channel.attach(drive.index % 2,
                       std::make_unique<AtaDisk>(make_block_device(drive.image), serial));
    }
}

void Machine::create_scsi_controller()
{
    // One sub-channel per further vCPU, as Hyper-V offers them.
    Storvsp::Links links{[this](u32 relid) { m_vmbus->signal_guest(relid); },
                         [this](u32 primary, u16 count) { return m_vmbus->offer_sub_channels(primary, count); }};
    m_storvsp = std::make_unique<Storvsp>(m_memory, m_scsi_bus, std::move(links),
                                          static_cast<u16>(vcpu_count() - 1));
    VmbusServer::Offer offer;
    offer.type = vmbus::parse_guid(vstor::SCSI_CLASS_GUID);
    // Fixed, so that a guest sees the same controller on every boot.
    offer.instance = vmbus::parse_guid("f8b3781b-1e82-4818-a1c3-63d806ec15bb");
    m_storvsp_relid = m_vmbus->add_channel(offer, *m_storvsp);
}

void Machine::attach_scsi_disk(const MachineDrive& drive, std::unique_ptr<BlockDevice> disk)
{
    ScsiDiskIdentity identity;
    identity.serial = "VIRIDIAN-SCSI" + std::to_string(drive.index);
    identity.naa[15] = static_cast<u8>(drive.index); // unique per LUN (the top nibble is set to 6)
    identity.naa[14] = 0x5C;
    identity.max_transfer_bytes = Storvsp::MAX_TRANSFER;
    m_scsi_disks.push_back(std::make_unique<ScsiDisk>(std::move(disk), identity));
    m_scsi_bus.attach(static_cast<u8>(drive.index), *m_scsi_disks.back());
}

void Machine::host_input(HostInput input)
{
    if (m_input_log && !m_input_log->live_input(*this, input))
        return;
    apply_input(input);
}

void Machine::apply_input(const HostInput& input)
{
    switch (input.kind) {
    case HostInput::Kind::SerialByte:
        m_uart.push_input(static_cast<u8>(input.value));
        return;
    case HostInput::Kind::Powerdown:
        if (m_shutdown_ic && m_shutdown_ic->request_shutdown())
            return;
        m_board->press_power_button();
        return;
    case HostInput::Kind::PowerButton:
        m_board->press_power_button();
        return;
    case HostInput::Kind::Reset: {
        RunOutcome reset = RunOutcome::of(RunOutcome::Kind::Reset);
        reset.by_host = true;
        end_run(reset);
        return;
    }
    case HostInput::Kind::SetLink:
        // `value`: bit 0 up, the rest the adapter's tag (0: --nic's).
        if (m_nic && input.value >> 1 == 0)
            m_nic->set_link_up((input.value & 1) != 0);
        if (Netvsp* adapter = netvsc(input.value >> 1))
            adapter->set_link_up((input.value & 1) != 0);
        return;
    case HostInput::Kind::NetFrame:
        // `value`: the adapter's tag.
        if (m_nic && input.value == 0)
            m_nic->receive(input.bytes);
        if (Netvsp* adapter = netvsc(input.value))
            adapter->receive(input.bytes);
        return;
    case HostInput::Kind::Medium:
        // A recorded one (the live ones come through tray(), with their image).
        if (const std::optional<MediumChange> change = decode_medium(input.bytes))
            apply_medium(input.value, *change, nullptr);
        return;
    }
}

void Machine::deliver_at_disk_latency(std::function<void()> deliver)
{
    const u64 due = m_clock.now_ns() + DETERMINISTIC_DISK_LATENCY_NS;
    m_disk_deliveries.emplace_back(due, std::move(deliver));
    if (!m_disk_timer->armed())
        m_disk_timer->arm(due);
}

void Machine::run_due_disk_deliveries()
{
    const u64 now = m_clock.now_ns();
    // Due times only grow (the clock is monotonic, the latency fixed).
    while (!m_disk_deliveries.empty() && m_disk_deliveries.front().first <= now) {
        std::function<void()> deliver = std::move(m_disk_deliveries.front().second);
        m_disk_deliveries.pop_front();
        deliver();
    }
    if (!m_disk_deliveries.empty())
        m_disk_timer->arm(m_disk_deliveries.front().first);
}

void Machine::drain_disks()
{
    m_board->ide().drain();
    for (const auto& disk : m_scsi_disks)
        disk->drain();
    // What drain() ran early has nothing left to deliver.
    m_disk_deliveries.clear();
    if (m_disk_timer)
        m_disk_timer->disarm();
}

size_t Machine::disks_in_flight() const
{
    size_t n = m_board->ide().in_flight();
    for (const auto& disk : m_scsi_disks)
        n += disk->in_flight();
    return n;
}

void Machine::create_vcpus()
{
    // The APIC ID is the vCPU index, as the MADT and the LAPICs say.
    for (unsigned i = 0; i < m_config.cpu_count; ++i) {
        auto vcpu = std::make_unique<Vcpu>();
        vcpu->backend = m_accel->create_vcpu(i);
        if (m_config.trace)
            vcpu->backend->set_trace_hook(m_config.trace);
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

MachineStats Machine::stats() const
{
    MachineStats stats;
    stats.port_accesses = m_ports.accesses();
    stats.mmio_accesses = m_memory.mmio_accesses();
    stats.msr_accesses = m_msrs.accesses();
    stats.interrupts = m_dropped_interrupts;
    for (const auto& vcpu : m_vcpus)
        for (const VcpuBackend* backend : {vcpu->backend.get(), vcpu->parked.get()})
            if (backend) {
                stats.interrupts += backend->external_interrupts();
                stats.exits += backend->exit_counts();
            }
    if (m_vmbus) {
        const VmbusServer::Counters& c = m_vmbus->counters();
        stats.vmbus_messages = c.messages_in + c.messages_out;
        stats.vmbus_signals_in = c.signals_in;
        stats.vmbus_signals_out = c.signals_out;
        stats.vmbus_refused = c.refused;
        stats.heartbeat = HeartbeatIc::state_name(m_heartbeat_ic->state());
        stats.heartbeats_answered = m_heartbeat_ic->answered();
        stats.heartbeats_missed = m_heartbeat_ic->missed();
        stats.time_sync_messages = m_timesync_ic->syncs_sent() + m_timesync_ic->samples_sent();
    }
    if (const Netvsp* adapter = netvsc(0)) {
        for (u16 i = 0; i <= m_config.cpu_count - 1; ++i)
            if (i == 0 || adapter->requests_on(i) || adapter->frames_on(i))
                stats.netvsc_frames_by_channel.push_back(adapter->frames_on(i));
        stats.netvsc_rss = !adapter->rss_table().empty();
        stats.netvsc_large_sends = adapter->counters().large_sends;
    }
    return stats;
}

std::vector<IntegrationServiceState> Machine::integration_services() const
{
    const char* names[] = {"shutdown", "heartbeat", "time-sync", "kvp", "vss", "fcopy"};
    std::vector<IntegrationServiceState> out;
    if (!m_vmbus) {
        for (const char* name : names)
            out.push_back({name, "not offered", 0});
        return out;
    }
    const IcService* services[] = {m_shutdown_ic.get(), m_heartbeat_ic.get(), m_timesync_ic.get(),
                                   m_kvp_ic.get(), m_vss_ic.get(), m_fcopy_ic.get()};
    for (size_t i = 0; i < std::size(services); ++i) {
        const IcService& s = *services[i];
        std::string state = !s.is_open() ? "closed" : !s.negotiated() ? "negotiating" : "ready";
        if (s.negotiated() && &s == m_heartbeat_ic.get())
            state = HeartbeatIc::state_name(m_heartbeat_ic->state());
        if (s.negotiated() && &s == m_vss_ic.get())
            state = VssIc::state_name(m_vss_ic->state());
        if (s.negotiated() && &s == m_fcopy_ic.get() && m_fcopy_ic->state() != FcopyIc::State::Idle)
            state = FcopyIc::state_name(m_fcopy_ic->state());
        out.push_back({names[i], state, s.service_version()});
    }
    return out;
}

void Machine::end_run(RunOutcome outcome)
{
    if (!m_ending) // the first reason wins
        m_ending = std::move(outcome);
    stop_running_vcpu();
}

void Machine::connect_board()
{
    PcBoardConfig board;
    board.cpu_count = m_config.cpu_count;
    board.ram_bytes = m_config.memory_bytes;
    board.rtc_start_time =
        m_config.deterministic ? DETERMINISTIC_START : static_cast<i64>(std::time(nullptr));
    board.vmbus = m_config.enlightenments;
    m_board = std::make_unique<PcBoard>(board, m_memory, m_ports, m_msrs, m_clock, PcFirmware{m_config.bios});
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
    hv.tsc_frequency_hz = m_tsc_hz;
    // The hypercall page holds the instruction of the vendor's hardware
    // assist, or the port write of a backend that cannot see those (KVM).
    hv.hypercall_instruction = m_config.cpu_vendor == CpuVendor::Amd
                                   ? HypercallInstruction::Vmmcall
                                   : HypercallInstruction::Vmcall;
    if (const std::optional<u8> port = m_accel->hypercall_port()) {
        hv.hypercall_instruction = HypercallInstruction::PortOut;
        hv.hypercall_port = *port;
    }
    m_hyperv = std::make_unique<HypervGlue>(hv, m_memory, m_clock, m_cpuid);
    m_hyperv->set_crash_handler([this](const HvCrashReport& report) {
        RunOutcome crash = RunOutcome::of(RunOutcome::Kind::GuestCrash);
        crash.crash = report;
        end_run(crash);
    });
    // Deterministic time counts the instructions of all vCPUs together: it
    // only ever moves forward, whichever vCPU reads it, so the TSCs agree.
    // In host mode the count tells running from preempted time. A KVM vCPU
    // counts no instructions, and its time in exits to the devices is time
    // the guest sees pass (as on hardware): nothing is hidden for it.
    if (m_config.accel != MachineConfig::Accel::Kvm)
        m_clock.set_instruction_counter([this] { return retired(); });
    for (unsigned i = 0; i < m_vcpus.size(); ++i)
        connect_vcpu(i);
    // The VMBus host (docs/vmbus.md): the DSDT names its device whenever the
    // partition exists, and Linux's hv_vmbus binds to it.
    if (m_hyperv->enabled()) {
        m_vmbus = std::make_unique<VmbusServer>(m_hyperv->hv());
        m_hyperv->hv().set_host_slot_listener(
            [this](unsigned vp, unsigned sint) { m_vmbus->slot_freed(vp, sint); });
        offer_integration_services();
    }
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
    m_board->set_power_off_handler([this] { end_run(RunOutcome::of(RunOutcome::Kind::PowerOff)); });
    m_board->set_reset_handler([this] { end_run(RunOutcome::of(RunOutcome::Kind::Reset)); });
    // S3: no vCPU runs while the board sleeps; its timers go on and one of
    // them (the RTC alarm) may wake it.
    m_board->set_suspend_handler([this] { stop_running_vcpu(); });
    m_board->set_wake_handler([this] { m_resume_pending = true; });
}

void Machine::offer_integration_services()
{
    // Instance GUIDs fixed, so that the guest sees the same devices on every boot.
    auto offer = [this](const char* type, const char* instance, VmbusServer::Device& device) {
        VmbusServer::Offer o;
        o.type = vmbus::parse_guid(type);
        o.instance = vmbus::parse_guid(instance);
        return m_vmbus->add_channel(o, device);
    };
    m_shutdown_ic = std::make_unique<ShutdownIc>(
        m_memory, [this] { m_vmbus->signal_guest(m_shutdown_relid); });
    m_shutdown_relid =
        offer(ic::SHUTDOWN_CLASS_GUID, "b6650ff7-33bc-4840-8048-e0676786f393", *m_shutdown_ic);
    m_heartbeat_ic = std::make_unique<HeartbeatIc>(
        m_memory, [this] { m_vmbus->signal_guest(m_heartbeat_relid); }, m_clock);
    m_heartbeat_relid =
        offer(ic::HEARTBEAT_CLASS_GUID, "2b1a4b5e-6c38-4d0f-9a7e-01d6c2f3a901", *m_heartbeat_ic);
    m_timesync_ic = std::make_unique<TimesyncIc>(
        m_memory, [this] { m_vmbus->signal_guest(m_timesync_relid); }, m_clock,
        [this] { return utc_time_ns(); }, [this] { return m_hyperv->hv().reference_time(); });
    m_timesync_relid =
        offer(ic::TIMESYNC_CLASS_GUID, "7e5c2f14-93d1-4b8a-b06f-5a2e8c4d1b02", *m_timesync_ic);
    m_kvp_ic = std::make_unique<KvpIc>(m_memory, [this] { m_vmbus->signal_guest(m_kvp_relid); });
    for (const auto& [key, value] : m_config.kvp_host_items)
        m_kvp_ic->set(key, value); // sent once the guest's daemon has negotiated
    m_kvp_relid = offer(ic::KVP_CLASS_GUID, "c4d9e0a3-1f62-4e7b-8d35-9b0a6f2e7c03", *m_kvp_ic);
    m_vss_ic = std::make_unique<VssIc>(m_memory, [this] { m_vmbus->signal_guest(m_vss_relid); });
    m_vss_relid = offer(ic::VSS_CLASS_GUID, "8e3d5f27-4b1c-4a96-b0d2-6c7e9a1f3b05", *m_vss_ic);
    m_fcopy_ic = std::make_unique<FcopyIc>(m_memory, [this] { m_vmbus->signal_guest(m_fcopy_relid); });
    m_fcopy_relid = offer(ic::FCOPY_CLASS_GUID, "d2f7a9c1-5e83-4b06-9c4d-3a1b8e6f0d27", *m_fcopy_ic);
}

u64 Machine::utc_time_ns() const
{
    if (m_config.deterministic)
        return static_cast<u64>(DETERMINISTIC_START) * 1'000'000'000 + m_clock.now_ns();
    timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    return static_cast<u64>(now.tv_sec) * 1'000'000'000 + static_cast<u64>(now.tv_nsec);
}

bool Machine::resume_from_suspend()
{
    m_resume_pending = false;
    // Waking from S3 the CPUs start at their reset vector (ACPI 6.4 16.3);
    // firmware sets up a little and, as SeaBIOS's s3_resume does, jumps to
    // the FACS's Firmware Waking Vector in real mode as
    // CS:IP = (vector >> 4):(vector & 0xF). The devices other than the 8259s
    // and LAPICs keep their state (QEMU resets them; the OS initialises them
    // again after resume).
    const u32 vector = m_board->resume_as_firmware_does(m_memory);
    if (!vector)
        return false; // SeaBIOS reboots when no vector is set
    for (auto& vcpu : m_vcpus) {
        vcpu->backend->reset();
        vcpu->pending_init = false;
        vcpu->pending_sipi.reset();
    }
    VcpuBackend& boot_vcpu = *m_vcpus[0]->backend;
    CpuState s = boot_vcpu.get_state();
    s.seg[CS].selector = static_cast<u16>(vector >> 4);
    s.seg[CS].base = vector & ~0xFull;
    s.rip = vector & 0xF;
    boot_vcpu.set_state(s);
    return true;
}

void Machine::connect_vcpu(unsigned index)
{
    Vcpu& vcpu = *m_vcpus[index];
    VcpuBackend& backend = *vcpu.backend;
    LocalApic& lapic = m_board->lapic(index);
    // The TSC runs at the machine's rate: 1 GHz of virtual time for one
    // started on the interpreter, the host's for one started on KVM (on
    // either backend after a switch). The LAPIC's TSC-deadline timer must
    // read exactly what RDTSC returns.
    const u64 tsc_hz = m_tsc_hz;
    if (tsc_hz == 1'000'000'000)
        backend.set_tsc_source([this] { return m_clock.now_ns(); });
    else
        backend.set_tsc_source([this, tsc_hz] {
            return static_cast<u64>(static_cast<unsigned __int128>(m_clock.now_ns()) * tsc_hz / 1'000'000'000);
        });
    backend.set_interrupt_source(&lapic);
    if (index == 0) // FERR#/IGNNE# are wired to the boot processor only
        backend.set_fpu_error_pins(&m_board->fpu_error_pins());
    lapic.set_tsc([&backend] { return backend.read_tsc(); }, m_tsc_hz);
    m_hyperv->attach_vcpu(index, backend, lapic, m_msrs);
    // INIT and SIPI arrive while another vCPU (or this one) is inside an
    // instruction: remember them and apply them before this vCPU runs next.
    lapic.set_init_handler([this, &vcpu, index] {
        vcpu.pending_init = true;
        vcpu.pending_sipi.reset();
        if (m_parallel.active || index == m_running)
            vcpu.backend->request_stop();
    });
    lapic.set_sipi_handler([&vcpu](u8 vector) { vcpu.pending_sipi = vector; });
    lapic.set_wakeup_handler([this, index] { vcpu_woken(index); });
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
        CpuState s = vcpu.backend->get_state();
        s.seg[CS].selector = static_cast<u16>(vector << 8);
        s.seg[CS].base = static_cast<u64>(vector) << 12;
        s.rip = 0;
        s.events.halted = false;
        vcpu.backend->set_state(s);
    }
}

namespace {

// A backend the host cannot give (no /dev/kvm): Machine::create's error.
struct AcceleratorUnavailable {
    Error error;
};

} // namespace

AcceleratorWiring Machine::accelerator_wiring()
{
    return {m_memory, m_ports, m_msrs, m_cpuid, m_config.cpu_count, &m_device_lock};
}

std::unique_ptr<Accelerator> Machine::make_accelerator()
{
    const AcceleratorWiring wiring = accelerator_wiring();
    if (m_config.make_accelerator)
        return m_config.make_accelerator(wiring);
    if (m_config.accel == MachineConfig::Accel::Kvm) {
        ErrorOr<std::unique_ptr<Accelerator>> kvm = make_kvm_accelerator(wiring);
        if (kvm.is_error())
            throw AcceleratorUnavailable{kvm.release_error()};
        return kvm.release_value();
    }
    InterpOptions interp;
    interp.jit = m_config.jit;
    interp.perf_map = m_config.perf_map;
    ErrorOr<std::unique_ptr<Accelerator>> made = make_interp_accelerator(wiring, interp);
    if (made.is_error())
        throw AcceleratorUnavailable{made.release_error()};
    return made.release_value();
}

ErrorOr<std::unique_ptr<Machine>> Machine::create(const MachineConfig& config)
{
    if (config.accel == MachineConfig::Accel::Kvm && config.deterministic)
        return make_error("--accel kvm: a KVM vCPU cannot count instructions, so its runs are not "
                          "deterministic; drop --deterministic or use --accel interp");
    for (const MachineDrive& drive : config.drives)
        if (drive.scsi && !config.enlightenments)
            return make_error("--drive: if=scsi is the Hyper-V synthetic SCSI controller, on VMBus, "
                              "which --enlightenments off removes");
    if (config.nic && config.nic->model == MachineNic::Model::Netvsc && !config.enlightenments)
        return make_error("--nic: model=netvsc is the Hyper-V synthetic network adapter, on VMBus, "
                          "which --enlightenments off removes; use model=e1000");
    std::unique_ptr<Machine> machine;
    try {
        machine.reset(new Machine(config));
    } catch (const std::bad_alloc&) {
        // PhysicalMemory reserves the guest RAM up front.
        return make_error("cannot allocate " + std::to_string(config.memory_bytes >> 20) +
                          " MiB of guest memory");
    } catch (AcceleratorUnavailable& unavailable) {
        return std::move(unavailable.error);
    }
    if (!config.cpu_features.empty()) {
        ErrorOr<void> narrowed = machine->m_cpuid.apply_feature_spec(config.cpu_features);
        if (narrowed.is_error())
            return make_error("--cpu-features: " + narrowed.error().message);
    }
    // A machine started on KVM may move to the interpreter: both then offer
    // what KVM can run (KVM's vCPUs take their CPUID at their first run).
    machine->m_accel->narrow_cpuid(machine->m_cpuid);
    // The LAPICs follow the narrowed model (`-x2apic`: EXTD reserved).
    for (unsigned i = 0; i < config.cpu_count; ++i)
        machine->m_board->lapic(i).set_x2apic_supported(machine->m_cpuid.has(cpufeat::X2APIC));
    return machine;
}

ErrorOr<void> Machine::load_kernel(const KernelSpec& kernel)
{
    const std::string name = kernel.name.empty() ? kernel.path : kernel.name;
    // The loader is chosen by the file's content: a multiboot header, else
    // a Linux boot header ("HdrS"), else neither.
    ErrorOr<std::vector<u8>> image = read_whole_file(kernel.path);
    if (image.is_error())
        return make_error("kernel: " + image.error().message);
    if (!is_multiboot_image(image.value())) {
        if (!is_linux_bzimage(image.value()))
            return make_error(name +
                              ": not a multiboot kernel or a Linux bzImage (no multiboot v1 "
                              "header in its first 8192 bytes, no \"HdrS\" header at 0x202)");
        return boot_linux(kernel);
    }
    MultibootParams params;
    params.kernel_name = name;
    params.append = kernel.append;
    params.module_spec = kernel.initrd;
    const MultibootBoot boot = TRY(load_multiboot(m_memory, kernel.path, params));
    VcpuBackend& boot_vcpu = *m_vcpus[0]->backend;
    boot_vcpu.reset();
    // No firmware runs before a multiboot kernel here, but under QEMU SeaBIOS
    // did, and such kernels count on the PIC and PIT it leaves (kvm-unit-tests
    // realmode waits in HLT for IRQ 0).
    m_board->program_as_firmware_leaves_it(m_memory);
    CpuState state = boot_vcpu.get_state();
    enter_multiboot(state, boot);
    boot_vcpu.set_state(state);
    return {};
}

ErrorOr<void> Machine::boot_linux(const KernelSpec& kernel)
{
    LinuxBootParams params;
    params.kernel_name = kernel.name.empty() ? kernel.path : kernel.name;
    params.cmdline = kernel.append;
    params.acpi_rsdp_address = m_board->acpi().rsdp_address;
    params.acpi_reserved_top = m_board->acpi_reserved_bytes();
    const LinuxBootInfo boot = TRY(::load_linux(m_memory, kernel.path, kernel.initrd, std::move(params)));
    VcpuBackend& boot_vcpu = *m_vcpus[0]->backend;
    boot_vcpu.reset();
    CpuState state = boot_vcpu.get_state();
    enter_linux64(state, boot);
    boot_vcpu.set_state(state);
    return {};
}

RunOutcome Machine::run(const HostPoll& poll, std::optional<u64> max_instructions)
{
    m_ending.reset();
    const u64 start = retired();
    for (;;) {
        if (!m_round.active) {
            if (std::optional<RunOutcome> stop = begin_round(poll, max_instructions, start))
                return *stop;
            if (!m_round.active)
                continue; // paused
        } else if (m_paused) {
            // Stopped inside a round (a debugger's stop): the host is heard,
            // but the round's host poll was before it and is not repeated.
            wait_for_host();
            if (std::optional<RunOutcome> stop = run_host_commands(poll))
                return *stop;
            continue;
        }
        if (std::optional<RunOutcome> ended = run_round())
            return *ended;
        if (!m_round.progressed && !wait_for_interrupt()) {
            RunOutcome halted = RunOutcome::of(RunOutcome::Kind::HaltedForever);
            halted.suspended = m_board->suspended();
            return halted;
        }
    }
}

std::optional<RunOutcome> Machine::begin_round(const HostPoll& poll, std::optional<u64> max_instructions,
                                               u64 start)
{
    if (m_resume_pending && !resume_from_suspend())
        return RunOutcome::of(RunOutcome::Kind::Reset);
    u64 budget = m_slices.round;
    if (max_instructions) {
        const u64 done = retired() - start;
        if (done >= *max_instructions)
            return RunOutcome::of(RunOutcome::Kind::InstructionLimit);
        budget = std::min(budget, *max_instructions - done);
    }
    if (m_stop_at && retired() >= *m_stop_at)
        return RunOutcome::of(RunOutcome::Kind::Checkpoint);
    if (m_stop_units && units() >= *m_stop_units) [[unlikely]] {
        m_stop_units.reset();
        return RunOutcome::of(RunOutcome::Kind::Checkpoint);
    }
    if (std::optional<RunOutcome> stop = poll_host(poll))
        return stop;
    if (m_paused)
        return wait_while_paused(poll);
    m_round = Round{};
    m_round.active = true;
    m_round.slice = m_vcpus.size() == 1 ? budget : std::min(budget, m_slices.vcpu_turn);
    return std::nullopt;
}

std::optional<RunOutcome> Machine::poll_host(const HostPoll& poll)
{
    // Polling costs a system call: once a round (QUANTUM instructions) is
    // prompt enough for typed input, and PAUSE-ended slices do not
    // multiply it.
    const u64 now = retired();
    if ((!poll && !m_commands && !m_input_log) || now < m_next_host_poll)
        return std::nullopt;
    m_next_host_poll = now + m_slices.round;
    // Record or replay: this point's inputs come (replaying) before the
    // host's commands, which then bring none.
    if (m_input_log)
        if (std::optional<int> stop = m_input_log->at_poll(*this, std::exchange(m_poll_again, false)))
            return RunOutcome::of(RunOutcome::Kind::HostStop, *stop);
    return run_host_commands(poll);
}

std::optional<RunOutcome> Machine::run_host_commands(const HostPoll& poll)
{
    if (m_commands)
        m_commands->run_pending();
    // A command may have ended the run (a host reset).
    if (m_ending)
        return m_ending;
    if (!poll)
        return std::nullopt;
    if (std::optional<int> status = poll())
        return RunOutcome::of(RunOutcome::Kind::HostStop, *status);
    return m_ending; // the HostPoll may have asked for a reset too
}

void Machine::wait_for_host()
{
    // Only a host command resumes a paused machine; without a queue none
    // can come, but the HostPoll may still end the run.
    constexpr u64 PAUSED_POLL_NS = 100'000'000;
    if (m_commands) {
        m_commands->wait_for(PAUSED_POLL_NS);
    } else {
        timespec ts{0, static_cast<long>(PAUSED_POLL_NS)};
        nanosleep(&ts, nullptr);
    }
}

std::optional<RunOutcome> Machine::wait_while_paused(const HostPoll& poll)
{
    wait_for_host();
    m_next_host_poll = 0;
    m_poll_again = true; // nothing ran while paused
    return poll_host(poll);
}

std::optional<RunOutcome> Machine::run_round()
{
    if (m_board->suspended() && !m_round.in_slice) {
        m_clock.run_due(); // a wake event sets m_resume_pending
        m_round.progressed = m_resume_pending;
        m_round.active = false;
        return std::nullopt;
    }
    if (runs_in_parallel())
        return run_parallel_round();
    for (; m_round.next < m_vcpus.size(); ++m_round.next) {
        const unsigned i = m_round.next;
        // A round a debug stop left goes on inside the slice it stopped in.
        if (!std::exchange(m_round.in_slice, false)) {
            if (m_board->suspended())
                break; // the vCPU before this one suspended the machine
            Vcpu& vcpu = *m_vcpus[i];
            apply_startup_requests(vcpu);
            if (m_board->lapic(i).wait_for_sipi())
                continue; // an AP before its start-up IPI, or after INIT
            if (m_step_vcpu && skipped_for_step(i)) [[unlikely]]
                continue;
            m_clock.run_due();
            m_round.slice_end = vcpu.backend->units() + slice_until_next_timer(m_round.slice);
        }
        m_running = i;
        if (std::optional<RunOutcome> ended = run_slice(i))
            return ended;
        // Halted vCPUs are asked again next round: an interrupt wakes them.
    }
    m_round.active = false;
    return std::nullopt;
}

std::optional<RunOutcome> Machine::run_slice(unsigned i)
{
    VcpuBackend& backend = *m_vcpus[i]->backend;
    for (;;) {
        const u64 now = backend.units();
        if (now >= m_round.slice_end)
            return std::nullopt; // stopped at the very end of its slice
        const u64 end = std::min(m_round.slice_end, stop_cap(i, now));
        if (end == now)
            return position_stop(i);
        const u64 before = backend.retired();
        const VcpuExit exit = backend.run(end - now);
        if (backend.retired() != before)
            m_round.progressed = true;
        if (m_ending)
            return m_ending;
        if (exit == VcpuExit::DebugStop) [[unlikely]] {
            m_round.in_slice = true;
            return debug_stop(i);
        }
        if (exit == VcpuExit::TripleFault)
            return triple_fault(i);
        // Only a stop point makes the slice go on here (it stops there next
        // time round, or, for an instruction count, events used the units);
        // a slice that ends at one stops at this vCPU's next turn instead.
        if (exit != VcpuExit::BudgetExhausted || end == m_round.slice_end)
            return std::nullopt;
    }
}

RunOutcome Machine::triple_fault(unsigned i) const
{
    RunOutcome fault = RunOutcome::of(RunOutcome::Kind::TripleFault);
    fault.vcpu = i;
    fault.fault = m_vcpus[i]->backend->last_fault();
    return fault;
}

u64 Machine::stop_cap(unsigned i, u64 now) const
{
    u64 cap = ~0ull;
    if (m_stop_position && m_stop_position->vcpu == i && m_stop_position->units >= now) [[unlikely]]
        cap = m_stop_position->units;
    if (m_stop_retired) [[unlikely]] {
        // A unit retires one instruction at most: this many cannot pass it.
        const u64 total = retired();
        cap = std::min(cap, now + (*m_stop_retired > total ? *m_stop_retired - total : 0));
    }
    return cap;
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

bool Machine::wait_for_interrupt()
{
    bool can_wake = m_board->suspended(); // a timer may be a wake event
    for (unsigned i = 0; i < m_vcpus.size(); ++i) {
        const CpuState state = m_vcpus[i]->backend->get_state();
        if (!m_board->lapic(i).wait_for_sipi() && ((state.rflags & rf::IF) || state.events.nmi))
            can_wake = true;
    }
    if (!can_wake)
        return false; // only NMI, INIT or SMI could wake them, and nothing sends them
    // A timer deadline or host input can raise an interrupt. Sleep in
    // small steps, and wake at once when the host posts a command.
    const u64 deadline = m_clock.next_deadline();
    const u64 now = m_clock.now_ns();
    if (m_clock.mode() == VirtualClock::Mode::Deterministic) {
        // Nothing runs until the next timer: jump virtual time there.
        if (deadline == ~0ull) {
            if (!m_config.input_can_wake || !m_config.commands)
                return false;
            // Only host input can wake them: wait for it without moving
            // virtual time (the guest sees no time pass). A replay's input
            // is in its log: poll again at once.
            if (!m_input_log || !m_input_log->replaying())
                m_config.commands->wait_for(10'000'000);
            m_next_host_poll = 0;
            return true;
        }
        m_clock.skip_to(deadline);
        // The host is asked after every idle wait here too: timers whose
        // interrupts never reach a halted vCPU (masked at the PIC) would
        // otherwise skip virtual time on and on without retiring an
        // instruction, and nothing could stop the run.
        m_next_host_poll = 0;
        return true; // run_round fires the timer before the next slice
    }
    // A disk request in flight will raise its interrupt when it completes.
    if (deadline == ~0ull && !m_config.input_can_wake && disks_in_flight() == 0)
        return false;
    if (deadline > now) {
        const u64 wait_ns = std::min<u64>(deadline - now, 10'000'000);
        timespec ts{static_cast<time_t>(wait_ns / 1'000'000'000),
                    static_cast<long>(wait_ns % 1'000'000'000)};
        // An idle guest lends its wait to the host's work (a migration
        // otherwise gets only a slice per wake-up, and an idle guest wakes
        // seldom); the timer still fires about on time.
        const bool worked = m_idle_work && m_idle_work(wait_ns);
        if (!worked && m_commands)
            m_commands->wait_for(wait_ns);
        else if (!worked)
            nanosleep(&ts, nullptr);
    }
    // Work that paused the machine (a migration's end) leaves its time to
    // the pause, which virtual time does not count.
    if (!m_paused)
        m_clock.note_idle_wait();
    m_next_host_poll = 0; // look for typed input after every sleep
    return true;
}
