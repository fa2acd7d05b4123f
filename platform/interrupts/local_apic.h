// The local APIC of one vCPU (SDM Vol 3A chapter 10): xAPIC registers in a
// 4 KiB MMIO page and the same registers as x2APIC MSRs 0x800-0x8FF, the
// IA32_APIC_BASE MSR with its mode rules, task and processor priority,
// IRR/ISR/TMR, the error status register, the ICR (fixed, lowest priority,
// NMI, INIT, INIT de-assert, start-up; physical, logical flat and cluster
// destinations and shorthands) sent over the ApicBus, six LVT entries and
// the timer (one-shot, periodic, TSC-deadline) on the VirtualClock.
//
// Timer clock: the APIC timer counts a 1 GHz bus clock divided by the divide
// configuration register, so a count of N at divide-by-1 lasts N ns of
// virtual time (the frequency KVM uses too). TIMER_HZ is what CPUID leaf 0x15
// or the Hyper-V APIC frequency MSR may report.
//
// What the machine wires:
// - MMIO: ApicBus::window(base) at IA32_APIC_BASE's address (0xFEE00000 after
//   reset); on_base_change tells when a guest moves it.
// - MSRs 0x1B (IA32_APIC_BASE), 0x6E0 (IA32_TSC_DEADLINE) and 0x800-0x8FF
//   through MsrBus to read_msr/write_msr (an empty optional / false is #GP).
// - CR8: a MOV to/from CR8 is TPR[7:4] (set_cr8 / cr8) while the APIC is enabled.
// - set_pic(): the 8259 pair behind the BSP's LINT0 (ExtINT); set_lint() for
//   the pins.
// - on_init / on_sipi: the vCPU's INIT reset and start-up.
// - on_wakeup: something arrived that ends HLT.
#pragma once

#include "mmu/bus/interrupt_source.h"
#include "mmu/bus/io_device.h"
#include "platform/interrupts/apic_bus.h"
#include "platform/clock/virtual_clock.h"

#include <array>
#include <functional>
#include <optional>

class StateVisitor;

class LocalApic final : public IoDevice, public InterruptSource {
public:
    static constexpr u64 DEFAULT_BASE = 0xFEE00000;
    static constexpr u64 MMIO_SIZE = 0x1000;
    static constexpr u64 TIMER_HZ = 1'000'000'000;

    // MSR numbers (SDM Vol 4, table 2-2).
    static constexpr u32 MSR_APIC_BASE = 0x1B;
    static constexpr u32 MSR_TSC_DEADLINE = 0x6E0;
    static constexpr u32 MSR_X2APIC_FIRST = 0x800;
    static constexpr u32 MSR_X2APIC_COUNT = 0x100;

    // IA32_APIC_BASE bits (SDM Vol 3A 10.4.4, 10.12.1).
    static constexpr u64 BASE_BSP = 1ull << 8;
    static constexpr u64 BASE_EXTD = 1ull << 10;
    static constexpr u64 BASE_ENABLE = 1ull << 11;

    // Version register: version 0x14 (integrated APIC), six LVT entries
    // (max LVT index 5: no CMCI), no EOI-broadcast suppression.
    static constexpr u32 VERSION = 0x00050014;

    enum class Lvt : u8 { Timer = 0, Thermal, Perf, Lint0, Lint1, Error, Count };

    struct Config {
        u32 apic_id = 0;
        bool bsp = true;
        unsigned phys_addr_bits = 46; // MAXPHYADDR: bounds IA32_APIC_BASE
    };

    LocalApic(ApicBus& bus, VirtualClock& clock, Config config);
    ~LocalApic() override;
    LocalApic(const LocalApic&) = delete;
    LocalApic& operator=(const LocalApic&) = delete;

    // Power-on state (SDM Vol 3A 10.4.7.1). An AP waits for a SIPI. Because
    // no firmware runs before the guest, the BSP's LINT0 starts in virtual
    // wire mode (ExtINT, unmasked) as a PC BIOS leaves it, so the 8259 reaches
    // the BSP (QEMU does the same).
    void reset();

    // --- Wiring ---
    void set_pic(InterruptSource* pic) { m_pic = pic; }
    using InitHandler = std::function<void()>;
    using SipiHandler = std::function<void(u8 vector)>;
    // INIT: the APIC has reset itself (keeping its ID and base); the machine
    // resets the vCPU and, for an AP, stops it until a SIPI (wait_for_sipi()).
    void set_init_handler(InitHandler handler) { m_on_init = std::move(handler); }
    // SIPI while waiting for one: start the vCPU at CS = vector << 8, IP = 0.
    void set_sipi_handler(SipiHandler handler) { m_on_sipi = std::move(handler); }
    void set_wakeup_handler(std::function<void()> handler) { m_on_wakeup = std::move(handler); }
    // The guest moved the APIC (new base address, or changed mode).
    void set_base_change_handler(std::function<void(u64 base)> handler)
    {
        m_on_base_change = std::move(handler);
    }
    // The vCPU's TSC (what RDTSC returns) and its rate, for TSC-deadline mode.
    // Default: the virtual clock's nanoseconds at 1 GHz.
    void set_tsc(std::function<u64()> read_tsc, u64 tsc_hz);

    // --- Identity and mode ---
    u32 apic_id() const { return m_id; }
    u32 initial_apic_id() const { return m_initial_id; }
    bool bsp() const { return m_apic_base & BASE_BSP; }
    u64 base_address() const;
    u64 apic_base_msr() const { return m_apic_base; }
    bool hardware_enabled() const { return m_apic_base & BASE_ENABLE; }
    // Whether the CPU model offers x2APIC (CPUID.01H:ECX[21]); without it
    // IA32_APIC_BASE.EXTD is a reserved bit (SDM Vol 3A 10.12.1).
    void set_x2apic_supported(bool supported) { m_x2apic_supported = supported; }
    bool x2apic_mode() const { return hardware_enabled() && (m_apic_base & BASE_EXTD); }
    bool xapic_mode() const { return hardware_enabled() && !(m_apic_base & BASE_EXTD); }
    bool software_enabled() const { return m_svr & SVR_ENABLE; }
    bool wait_for_sipi() const { return m_wait_for_sipi; }
    u32 logical_destination() const { return m_ldr; }
    u32 destination_format() const { return m_dfr; }
    // Arbitration priority (SDM Vol 3A 10.8.3.1), for lowest-priority delivery.
    u8 arbitration_priority() const;
    u8 processor_priority() const;
    u8 task_priority() const { return m_tpr; }

    // --- CR8 (SDM Vol 3A 10.8.6.1): CR8[3:0] = TPR[7:4] ---
    u64 cr8() const { return m_tpr >> 4; }
    void set_cr8(u64 value);

    // --- Register interfaces ---
    // xAPIC MMIO page; all ones / dropped when not in xAPIC mode.
    u64 io_read(u64 offset, unsigned size) override;
    void io_write(u64 offset, unsigned size, u64 value) override;
    // MSRs 0x1B, 0x6E0 and 0x800-0x8FF; nullopt / false mean #GP.
    std::optional<u64> read_msr(u32 index);
    bool write_msr(u32 index, u64 value);

    // --- Register shortcuts for the Hyper-V APIC access MSRs (TLFS 10.3) ---
    void end_of_interrupt() { eoi(); }
    // The 64-bit ICR: in xAPIC mode bits 63:32 are the ICR high register.
    u64 icr() const { return m_icr; }
    void write_icr(u64 value);
    void set_task_priority(u8 tpr);
    // Vectors the SynIC marks auto-EOI: acknowledging one does not leave it
    // in service (TLFS 11.8.2).
    void set_auto_eoi(u8 vector, bool enabled);
    // Called after every EOI with the vector it retired, explicit (register
    // or MSR write) or automatic (an auto-EOI vector acknowledged): the SynIC
    // redelivers a pending message then (TLFS 11.8.5).
    void set_eoi_handler(std::function<void(u8 vector)> handler) { m_on_eoi = std::move(handler); }

    // --- Interrupt inputs ---
    // A message the bus routed here (IPI, I/O APIC, MSI).
    void accept(const ApicMessage& message);
    // The LINT0/LINT1 pins (pin 0 or 1) as the board drives them.
    void set_lint(unsigned pin, bool level);

    // --- InterruptSource, polled by the vCPU ---
    bool interrupt_pending() override;
    u8 acknowledge_interrupt() override;
    bool take_nmi() override;
    bool apic_enabled() const override { return hardware_enabled(); }
    bool read_cr8(u64& value) override
    {
        value = cr8();
        return true;
    }
    bool write_cr8(u64 value) override
    {
        set_cr8(value);
        return true;
    }

    void visit_state(StateVisitor& v);

    // Introspection for tests and debuggers.
    bool irr_bit(u8 vector) const { return m_irr.test(vector); }
    bool isr_bit(u8 vector) const { return m_isr.test(vector); }
    bool tmr_bit(u8 vector) const { return m_tmr.test(vector); }
    u32 lvt(Lvt which) const { return m_lvt[static_cast<unsigned>(which)]; }
    u32 timer_current_count() const;
    bool timer_armed() const { return m_timer.armed(); }
    u64 timer_deadline() const { return m_timer.deadline(); }

private:
    static constexpr u32 SVR_ENABLE = 1u << 8;
    static constexpr u32 LVT_MASKED = 1u << 16;

    // 256 interrupt-request bits: IRR, ISR and TMR.
    struct VectorSet {
        std::array<u32, 8> words{};
        bool test(u8 v) const { return words[v >> 5] >> (v & 31) & 1; }
        void set(u8 v) { words[v >> 5] |= 1u << (v & 31); }
        void clear(u8 v) { words[v >> 5] &= ~(1u << (v & 31)); }
        int highest() const; // -1 when empty
    };

    enum class TimerMode : u8 { OneShot = 0, Periodic = 1, TscDeadline = 2 };

    enum class ResetKind : u8 { PowerOn, Init, HardwareDisable };
    void reset_registers(ResetKind kind);
    void do_init();
    // Register file shared by MMIO and MSR paths: offset is the xAPIC offset;
    // nullopt for an offset with no register in the current mode.
    std::optional<u32> read_register(u32 offset) const;
    // xAPIC semantics: read-only bits and registers are ignored.
    void write_register(u32 offset, u32 value);
    bool x2apic_write(u32 offset, u64 value);
    bool write_apic_base(u64 value);

    void set_irr(u8 vector, bool level_triggered);
    void raise_error(u32 bits);
    void deliver_lvt(Lvt which);
    void eoi();
    void send_ipi(u64 icr);
    void update_pending();
    void wake();

    TimerMode timer_mode() const;
    unsigned timer_shift() const;
    void write_lvt(Lvt which, u32 value);
    void start_timer(u32 initial);
    void stop_timer();
    void timer_fired();
    void arm_tsc_deadline();
    u64 read_tsc() const;

    ApicBus& m_bus;
    VirtualClock& m_clock;
    ClockTimer m_timer;
    InterruptSource* m_pic = nullptr;
    InitHandler m_on_init;
    SipiHandler m_on_sipi;
    std::function<void()> m_on_wakeup;
    std::function<void(u64)> m_on_base_change;
    std::function<void(u8)> m_on_eoi;
    std::function<u64()> m_read_tsc;
    u64 m_tsc_hz = 1'000'000'000;
    const u32 m_initial_id;
    const bool m_is_bsp;
    const unsigned m_phys_bits;

    // Architectural state (all of it visited).
    u64 m_apic_base = 0;
    u32 m_id = 0;
    u8 m_tpr = 0;
    u32 m_ldr = 0;
    u32 m_dfr = 0xFFFFFFFF;
    u32 m_svr = 0xFF;
    VectorSet m_irr, m_isr, m_tmr;
    VectorSet m_auto_eoi;  // configuration from the SynIC, not saved here
    u32 m_esr = 0;         // what ESR reads: errors latched at the last ESR write
    u32 m_esr_pending = 0; // errors since then
    u64 m_icr = 0;
    std::array<u32, static_cast<unsigned>(Lvt::Count)> m_lvt{};
    u32 m_timer_initial = 0;
    u32 m_timer_dcr = 0;
    u64 m_timer_start_ns = 0; // when the count was last (re)loaded
    bool m_timer_running = false;
    u64 m_tsc_deadline = 0;
    bool m_nmi_pending = false;
    bool m_extint_pending = false;
    bool m_wait_for_sipi = false;
    bool m_x2apic_supported = true;
    std::array<bool, 2> m_lint_level{};

    // Derived: some IRR bit may beat the PPR (recomputed by update_pending).
    bool m_fixed_pending = false;
};
