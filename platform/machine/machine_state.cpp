// Machine::visit_state: the order in which a machine's parts are saved and
// loaded. The vCPUs come before the clock because deterministic time is
// computed from their retired counts; devices come after the clock because
// their timers are absolute times on it.
#include "platform/machine/machine.h"

#include <cstdio>
#include <iterator>

void Machine::visit_state(StateVisitor& v)
{
    // The disks' requests complete first: what is in flight is not state
    // (docs/storage.md); the IDE registers are, with the board's devices.
    if (v.saving())
        drain_disks();
    v.section("machine", 2);
    if (m_hv_test_device || m_pc_testdev)
        return v.fail("the kvm-unit-tests test devices (--pc-testdev, --hyperv-test-device) "
                      "have no saved state");
    u32 vcpus = vcpu_count();
    v.field("vcpu_count", vcpus);
    if (v.loading() && vcpus != vcpu_count())
        return v.fail("the snapshot has " + std::to_string(vcpus) + " vCPUs, this machine " +
                      std::to_string(vcpu_count()));
    for (auto& vcpu : m_vcpus) {
        vcpu->backend->visit_state(v);
        v.field("pending_init", vcpu->pending_init);
        bool sipi = vcpu->pending_sipi.has_value();
        u8 vector = sipi ? *vcpu->pending_sipi : 0;
        v.field("pending_sipi", sipi);
        v.field("sipi_vector", vector);
        if (v.loading())
            vcpu->pending_sipi = sipi ? std::optional<u8>(vector) : std::nullopt;
    }
    v.field("resume_pending", m_resume_pending);
    // The guest calibrated its clocks against this TSC rate (the reference
    // TSC page, the TSC-deadline timer, its own measurement): a machine
    // whose TSC runs at another rate cannot take the state.
    u64 tsc_hz = m_tsc_hz;
    v.field("tsc_hz", tsc_hz);
    if (v.loading() && v.ok() && tsc_hz != m_tsc_hz)
        return v.fail("the snapshot's guest TSC runs at " + std::to_string(tsc_hz / 1000) + " kHz, this machine's at " +
                      std::to_string(m_tsc_hz / 1000) +
                      " kHz (a machine saved under --accel kvm restores under --accel kvm, on a host with the "
                      "same TSC rate; x-switch-accel then moves it to the interpreter)");
    // The CPU features the guest may have found and be using: a machine
    // without one of them would fault on its instructions (a KVM host
    // offering less, other --cpu-features).
    static constexpr const char* WORD_NAMES[] = {
        "CPUID.01H:ECX",      "CPUID.01H:EDX",      "CPUID.(07H,0):EBX",  "CPUID.(07H,0):ECX",
        "CPUID.(07H,0):EDX",  "CPUID.80000001H:ECX", "CPUID.80000001H:EDX", "CPUID.(0DH,1):EAX"};
    static_assert(std::size(WORD_NAMES) == static_cast<size_t>(FeatureWord::Count));
    for (size_t i = 0; i < std::size(WORD_NAMES); ++i) {
        const u32 ours = m_cpuid.features(static_cast<FeatureWord>(i));
        u32 saved = ours;
        v.field("cpu_features", saved);
        if (v.loading() && v.ok() && (saved & ~ours)) {
            char bits[16];
            std::snprintf(bits, sizeof bits, "0x%x", saved & ~ours);
            return v.fail(std::string("the snapshot's CPU offers features this machine's does not (") +
                          WORD_NAMES[i] + " bits " + bits +
                          "): restore it with the source's --cpu and --cpu-features, on a host that has them");
        }
    }
    m_clock.visit_state(v);
    m_board->visit_state(v);
    m_uart.visit_state(v);
    m_com2.visit_state(v);
    bool enlightened = m_hyperv->enabled();
    v.field("enlightenments", enlightened);
    if (v.loading() && enlightened != m_hyperv->enabled())
        return v.fail("the snapshot's Hyper-V enlightenments setting differs");
    if (enlightened) {
        m_hyperv->hv().visit_state(v);
        m_vmbus->visit_state(v);
        // The synthetic SCSI controller and its disks (drained above).
        u32 scsi_disks = static_cast<u32>(m_scsi_disks.size());
        v.field("scsi_disks", scsi_disks);
        if (v.loading() && scsi_disks != m_scsi_disks.size())
            return v.fail("the snapshot's machine has another number of if=scsi drives");
        m_shutdown_ic->visit_state(v);
        m_heartbeat_ic->visit_state(v);
        m_timesync_ic->visit_state(v);
        m_kvp_ic->visit_state(v);
        m_vss_ic->visit_state(v);
        m_fcopy_ic->visit_state(v);
        // The guest's clock stood still while the machine was saved; with
        // host time the world's went on (Hyper-V sends a SYNC after a
        // restore). A deterministic run must go on as if never saved.
        if (v.loading() && v.ok() && !m_config.deterministic)
            m_timesync_ic->sync_soon();
        if (m_storvsp)
            m_storvsp->visit_state(v);
        for (const auto& disk : m_scsi_disks)
            disk->visit_state(v);
    }
    // The network adapter, with the frames it holds (a machine without one
    // saves nothing here, as before adapters existed).
    if (m_nic)
        m_nic->visit_state(v);
    for (const auto& adapter : m_netvsc)
        adapter->device->visit_state(v);
}
