// The ACPI fixed-hardware power management block (ACPI 6.x, 4.8): PM1a event
// (PM1_STS/PM1_EN), PM1a control (SCI_EN, SLP_TYP/SLP_EN) and the PM timer,
// in one I/O range at `base` laid out as on the PIIX4:
//   base+0  PM1_STS  (16, write 1 to clear)   base+2  PM1_EN (16)
//   base+4  PM1_CNT  (16)                     base+8  PM_TMR (32, read-only)
// The PM timer is 32 bits wide (FADT TMR_VAL_EXT) at 3.579545 MHz, derived
// from the VirtualClock; TMR_STS is set whenever its bit 31 changes.
//
// There is no SMI command port (FADT SMI_CMD = 0), so the hardware is always
// in ACPI mode: SCI_EN is set from reset. The SCI is a level output
// (status AND enable, while SCI_EN) that the machine wires to ISA IRQ 9:
// 8259 IRQ9 and I/O APIC pin 9, level / active high as the MADT says.
// Writing SLP_EN hands SLP_TYP to the sleep handler; SLP_TYP_S5 (the value
// the DSDT's \_S5 package gives) means power off, SLP_TYP_S3 suspend to RAM.
// While asleep in S3 the block keeps watching its wake events (ACPI 6.x
// 4.8.3.1.1 and 16.1.2): the RTC's interrupt (IRQ 8 asserted, which sets
// RTC_STS as on the PIIX4) with RTC_EN set, or the power button, end the
// sleep: WAK_STS is set and the wake handler runs.
#pragma once

#include "mmu/bus/io_device.h"
#include "platform/clock/virtual_clock.h"

#include <functional>

class StateVisitor;

class AcpiPm final : public IoDevice {
public:
    static constexpr u16 DEFAULT_BASE = 0x600;
    static constexpr u32 PORT_COUNT = 12;
    static constexpr u16 PM1_EVT_OFFSET = 0, PM1_CNT_OFFSET = 4, PM_TMR_OFFSET = 8;
    static constexpr u8 PM1_EVT_LEN = 4, PM1_CNT_LEN = 2, PM_TMR_LEN = 4;
    static constexpr u64 TIMER_HZ = 3'579'545;
    // SLP_TYP encodings of this chipset (as the PIIX4's: 0 = soft off).
    static constexpr u8 SLP_TYP_S5 = 0;
    // S3, as QEMU's PIIX4 PM and DSDT \_S3 have it (kvm-unit-tests' s3
    // writes it directly).
    static constexpr u8 SLP_TYP_S3 = 1;

    // PM1 status / enable bits (ACPI 6.x tables 4-16, 4-17).
    static constexpr u16 TMR_STS = 1u << 0, BM_STS = 1u << 4, GBL_STS = 1u << 5,
                         PWRBTN_STS = 1u << 8, SLPBTN_STS = 1u << 9, RTC_STS = 1u << 10,
                         PCIEXP_WAKE_STS = 1u << 14, WAK_STS = 1u << 15;
    static constexpr u16 TMR_EN = 1u << 0, GBL_EN = 1u << 5, PWRBTN_EN = 1u << 8,
                         SLPBTN_EN = 1u << 9, RTC_EN = 1u << 10, PCIEXP_WAKE_DIS = 1u << 14;
    // PM1 control bits (table 4-18).
    static constexpr u16 SCI_EN = 1u << 0, BM_RLD = 1u << 1, GBL_RLS = 1u << 2,
                         SLP_TYP_MASK = 7u << 10, SLP_EN = 1u << 13;

    using SciLine = std::function<void(bool level)>;
    using SleepHandler = std::function<void(u8 slp_typ)>;
    using WakeHandler = std::function<void()>;

    explicit AcpiPm(VirtualClock& clock);

    void set_sci_line(SciLine line) { m_sci = std::move(line); }
    void set_sleep_handler(SleepHandler handler) { m_on_sleep = std::move(handler); }
    // Called when an enabled wake event ends an S3 sleep.
    void set_wake_handler(WakeHandler handler) { m_on_wake = std::move(handler); }

    void reset();
    // Fixed-feature power button pressed (sets PWRBTN_STS).
    void press_power_button();
    // Back from a sleep state: WAK_STS, as the OS expects after resume.
    void wake();
    // The RTC's IRQ 8 output: its rising edge sets RTC_STS (PIIX4: "set
    // when the RTC generates an alarm"), and wakes an S3 sleep if RTC_EN.
    void set_rtc_irq(bool level);
    // In S3: SLP_EN was written with SLP_TYP_S3 and no wake event came yet.
    bool sleeping() const { return m_sleeping; }

    u32 timer_value() const;
    u16 status() const;
    u16 enable() const { return m_enable; }
    u16 control() const { return m_control; }
    bool sci_level() const { return m_sci_level; }

    u64 io_read(u64 offset, unsigned size) override;
    void io_write(u64 offset, unsigned size, u64 value) override;

    void visit_state(StateVisitor& v);

private:
    u64 ticks() const;
    u64 timer_period_index() const { return ticks() >> 31; }
    u8 read_byte(unsigned offset) const;
    void write_byte(unsigned offset, u8 value);
    void update_sci();
    void arm_timer();
    void timer_fired();
    void wake_from_sleep();

    VirtualClock& m_clock;
    ClockTimer m_timer;
    SciLine m_sci;
    SleepHandler m_on_sleep;
    WakeHandler m_on_wake;
    u16 m_status = 0;
    u16 m_enable = 0;
    u16 m_control = SCI_EN;
    u64 m_tmr_epoch = 0; // PM timer bit-31 period when TMR_STS was last cleared
    bool m_sci_level = false;
    bool m_rtc_irq = false;
    bool m_sleeping = false;
};
