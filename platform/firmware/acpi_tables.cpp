#include "platform/firmware/acpi_tables.h"

#include "platform/firmware/aml_builder.h"

#include <cassert>
#include <cstdio>
#include <cstring>

namespace {

constexpr char OEM_ID[7] = "VIRIDN";
constexpr char OEM_TABLE_ID[9] = "VIRIDIAN";
constexpr char CREATOR_ID[5] = "VRDN";
constexpr u32 OEM_REVISION = 1, CREATOR_REVISION = 1;
constexpr size_t HEADER_SIZE = 36;

// Generic Address Structure address spaces and access sizes (ACPI 6.x 5.2.3.2).
constexpr u8 GAS_MEMORY = 0, GAS_IO = 1;
constexpr u8 ACCESS_BYTE = 1, ACCESS_WORD = 2, ACCESS_DWORD = 3;

class Writer {
public:
    std::vector<u8> bytes;

    size_t size() const { return bytes.size(); }
    void u8_(u64 v) { bytes.push_back(static_cast<u8>(v)); }
    void u16_(u64 v) { le(v, 2); }
    void u32_(u64 v) { le(v, 4); }
    void u64_(u64 v) { le(v, 8); }
    void text(const char* s, size_t n)
    {
        for (size_t i = 0; i < n; ++i)
            bytes.push_back(static_cast<u8>(s[i]));
    }
    void zeros(size_t n) { bytes.insert(bytes.end(), n, 0); }
    void gas(u8 space, u8 bit_width, u8 access, u64 address)
    {
        if (!address) {
            zeros(12);
            return;
        }
        u8_(space);
        u8_(bit_width);
        u8_(0); // bit offset
        u8_(access);
        u64_(address);
    }
    void append(std::span<const u8> more) { bytes.insert(bytes.end(), more.begin(), more.end()); }
    void patch32(size_t offset, u32 v)
    {
        for (unsigned i = 0; i < 4; ++i)
            bytes[offset + i] = static_cast<u8>(v >> (8 * i));
    }

private:
    void le(u64 v, unsigned n)
    {
        for (unsigned i = 0; i < n; ++i)
            bytes.push_back(static_cast<u8>(v >> (8 * i)));
    }
};

// The common System Description Table header (5.2.6); length and checksum
// are filled in by finish().
Writer header(const char* signature, u8 revision)
{
    Writer w;
    w.text(signature, 4);
    w.u32_(0); // length
    w.u8_(revision);
    w.u8_(0); // checksum
    w.text(OEM_ID, 6);
    w.text(OEM_TABLE_ID, 8);
    w.u32_(OEM_REVISION);
    w.text(CREATOR_ID, 4);
    w.u32_(CREATOR_REVISION);
    assert(w.size() == HEADER_SIZE);
    return w;
}

std::vector<u8> finish(Writer w)
{
    w.patch32(4, static_cast<u32>(w.size()));
    w.bytes[9] = static_cast<u8>(-acpi_checksum(w.bytes));
    return std::move(w.bytes);
}

std::vector<u8> build_facs()
{
    // 5.2.10: no checksum; 64 bytes, 64-byte aligned.
    Writer w;
    w.text("FACS", 4);
    w.u32_(64);
    w.u32_(0); // hardware signature
    w.u32_(0); // firmware waking vector
    w.u32_(0); // global lock
    w.u32_(0); // flags: no S4BIOS, no 64-bit wake
    w.u64_(0); // X firmware waking vector
    w.u8_(2);  // version
    w.zeros(3);
    w.u32_(0); // OSPM flags
    w.zeros(24);
    assert(w.size() == 64);
    return std::move(w.bytes);
}

std::vector<u8> build_fadt(const AcpiConfig& c, GuestPhys facs, GuestPhys dsdt)
{
    // 5.2.9, table 5-34 (revision 6: 276 bytes).
    Writer w = header("FACP", 6);
    w.u32_(facs); // FIRMWARE_CTRL
    w.u32_(dsdt); // DSDT
    w.u8_(0);     // reserved
    w.u8_(0);     // preferred PM profile: unspecified
    w.u16_(c.sci_irq);
    w.u32_(0); // SMI_CMD: none, the hardware is always in ACPI mode
    w.u8_(0);  // ACPI_ENABLE
    w.u8_(0);  // ACPI_DISABLE
    w.u8_(0);  // S4BIOS_REQ
    w.u8_(0);  // PSTATE_CNT
    const u32 pm1_evt = c.pm_base, pm1_cnt = c.pm_base + 4u, pm_tmr = c.pm_base + 8u;
    w.u32_(pm1_evt); // PM1a_EVT_BLK
    w.u32_(0);       // PM1b_EVT_BLK
    w.u32_(pm1_cnt); // PM1a_CNT_BLK
    w.u32_(0);       // PM1b_CNT_BLK
    w.u32_(0);       // PM2_CNT_BLK
    w.u32_(pm_tmr);  // PM_TMR_BLK
    w.u32_(0);       // GPE0_BLK
    w.u32_(0);       // GPE1_BLK
    w.u8_(4);        // PM1_EVT_LEN
    w.u8_(2);        // PM1_CNT_LEN
    w.u8_(0);        // PM2_CNT_LEN
    w.u8_(4);        // PM_TMR_LEN
    w.u8_(0);        // GPE0_BLK_LEN
    w.u8_(0);        // GPE1_BLK_LEN
    w.u8_(0);        // GPE1_BASE
    w.u8_(0);        // CST_CNT
    w.u16_(101);     // P_LVL2_LAT > 100: no C2
    w.u16_(1001);    // P_LVL3_LAT > 1000: no C3
    w.u16_(0);       // FLUSH_SIZE
    w.u16_(0);       // FLUSH_STRIDE
    w.u8_(0);        // DUTY_OFFSET
    w.u8_(0);        // DUTY_WIDTH
    w.u8_(0);        // DAY_ALRM
    w.u8_(0);        // MON_ALRM
    w.u8_(c.rtc_century);
    w.u16_((1u << 0) | (1u << 1)); // IAPC_BOOT_ARCH: legacy devices, 8042
    w.u8_(0);                      // reserved
    assert(w.size() == 112);
    const u32 flags = (1u << 0)     // WBINVD works
                      | (1u << 2)   // PROC_C1: HLT
                      | (1u << 5)   // SLP_BUTTON: no fixed sleep button
                      | (1u << 6)   // FIX_RTC: RTC wake status not in PM1
                      | (1u << 8)   // TMR_VAL_EXT: 32-bit PM timer
                      | (1u << 10); // RESET_REG_SUP
    w.u32_(flags); // PWR_BUTTON (bit 4) clear: fixed power button; HW_REDUCED (20) clear
    w.gas(GAS_IO, 8, ACCESS_BYTE, c.reset_port); // RESET_REG
    w.u8_(c.reset_value);
    w.u16_(0);    // ARM_BOOT_ARCH
    w.u8_(0);     // FADT minor version (ACPI 6.0)
    w.u64_(facs); // X_FIRMWARE_CTRL
    w.u64_(dsdt); // X_DSDT
    assert(w.size() == 148);
    w.gas(GAS_IO, 32, ACCESS_WORD, pm1_evt); // X_PM1a_EVT_BLK
    w.gas(GAS_IO, 0, 0, 0);                  // X_PM1b_EVT_BLK
    w.gas(GAS_IO, 16, ACCESS_WORD, pm1_cnt); // X_PM1a_CNT_BLK
    w.gas(GAS_IO, 0, 0, 0);                  // X_PM1b_CNT_BLK
    w.gas(GAS_IO, 0, 0, 0);                  // X_PM2_CNT_BLK
    w.gas(GAS_IO, 32, ACCESS_DWORD, pm_tmr); // X_PM_TMR_BLK
    w.gas(GAS_IO, 0, 0, 0);                  // X_GPE0_BLK
    w.gas(GAS_IO, 0, 0, 0);                  // X_GPE1_BLK
    w.gas(GAS_IO, 0, 0, 0);                  // SLEEP_CONTROL_REG (HW-reduced only)
    w.gas(GAS_IO, 0, 0, 0);                  // SLEEP_STATUS_REG
    w.zeros(8);                              // hypervisor vendor identity
    assert(w.size() == 276);
    return finish(std::move(w));
}

std::vector<u8> build_madt(const AcpiConfig& c)
{
    // 5.2.12 (revision 4).
    Writer w = header("APIC", 4);
    w.u32_(c.lapic_base);
    w.u32_(1); // PCAT_COMPAT: dual 8259s present
    for (unsigned cpu = 0; cpu < c.cpu_count; ++cpu) {
        if (cpu < 255) {
            w.u8_(0); // Processor Local APIC
            w.u8_(8);
            w.u8_(cpu); // ACPI processor UID
            w.u8_(cpu); // APIC ID
            w.u32_(1);  // enabled
        } else {
            w.u8_(9); // Processor Local x2APIC
            w.u8_(16);
            w.u16_(0);
            w.u32_(cpu); // x2APIC ID
            w.u32_(1);   // enabled
            w.u32_(cpu); // ACPI processor UID
        }
    }
    w.u8_(1); // I/O APIC
    w.u8_(12);
    w.u8_(c.ioapic_id);
    w.u8_(0);
    w.u32_(c.ioapic_base);
    w.u32_(0); // GSI base
    // Interrupt source overrides (5.2.12.5): flags polarity 1:0, trigger 3:2.
    const auto override_irq = [&](u8 irq, u32 gsi, u16 flags) {
        w.u8_(2);
        w.u8_(10);
        w.u8_(0); // ISA
        w.u8_(irq);
        w.u32_(gsi);
        w.u16_(flags);
    };
    override_irq(0, 2, 0);                                // PIT/HPET IRQ0 on pin 2, ISA defaults
    override_irq(c.sci_irq, c.sci_irq, 0x1 | (0x3 << 2)); // SCI: active high, level
    // Local APIC NMI (5.2.12.7): LINT1 of every processor.
    w.u8_(4);
    w.u8_(6);
    w.u8_(0xFF);
    w.u16_(0);
    w.u8_(1);
    return finish(std::move(w));
}

std::vector<u8> build_hpet(const AcpiConfig& c)
{
    // IA-PC HPET spec 1.0a, 3.2.4.
    Writer w = header("HPET", 1);
    w.u32_(c.hpet_block_id);
    w.gas(GAS_MEMORY, 64, 0, c.hpet_base);
    w.u8_(0);     // HPET number
    w.u16_(0x80); // minimum clock tick in periodic mode
    w.u8_(0);     // page protection: none
    assert(w.size() == 56);
    return finish(std::move(w));
}

std::vector<u8> build_mcfg(const AcpiConfig& c)
{
    // PCI Firmware Spec 3.0, 4.1.2.
    Writer w = header("MCFG", 1);
    w.zeros(8);
    w.u64_(c.ecam_base);
    w.u16_(0); // segment
    w.u8_(0);  // start bus
    w.u8_(c.ecam_buses - 1);
    w.u32_(0);
    return finish(std::move(w));
}

std::vector<u8> build_dsdt(const AcpiConfig& c)
{
    Writer w = header("DSDT", 2); // revision 2: 64-bit integers
    w.append(build_dsdt_aml(c));
    return finish(std::move(w));
}

void align(std::vector<u8>& blob, size_t alignment)
{
    blob.resize((blob.size() + alignment - 1) & ~(alignment - 1), 0);
}

} // namespace

u8 acpi_checksum(std::span<const u8> bytes)
{
    u8 sum = 0;
    for (u8 b : bytes)
        sum = static_cast<u8>(sum + b);
    return sum;
}

std::vector<u8> build_dsdt_aml(const AcpiConfig& c)
{
    using namespace aml;
    TermList root;

    // \_PIC(mode) records PIC (0) or APIC (1) mode for _PRT (5.8.1).
    root.push_back(name("PICF", integer(0)));
    root.push_back(method("_PIC", 1, false, {store(arg(0), ref("PICF"))}));
    // \_S5: SLP_TYP for PM1a and PM1b, then two reserved (7.4.2).
    root.push_back(name(
        "_S5", package({integer(c.s5_slp_typ), integer(c.s5_slp_typ), integer(0), integer(0)})));

    TermList sb;
    for (unsigned cpu = 0; cpu < c.cpu_count; ++cpu) {
        char n[5];
        std::snprintf(n, sizeof n, "C%03X", cpu & 0xFFF);
        sb.push_back(device(n, {name("_HID", string("ACPI0007")), name("_UID", integer(cpu))}));
    }

    // The PCI root bridge: what it decodes.
    ResourceTemplate pci_crs;
    pci_crs.word_bus_number(0, static_cast<u16>(c.ecam_buses - 1))
        .io(0x0CF8, 0x0CF8, 1, 8)
        .word_io(0x0000, 0x0CF7)
        .word_io(0x0D00, 0xFFFF)
        .dword_memory(0x000A0000, 0x000BFFFF, true, true);
    for (const AcpiConfig::Window32& window : c.pci_mmio32)
        pci_crs.dword_memory(window.base, window.limit, false, true);
    if (c.pci_mmio64_size)
        pci_crs.qword_memory(c.pci_mmio64_base, c.pci_mmio64_base + c.pci_mmio64_size - 1, false,
                             true);

    // Interrupt routing (6.2.13): every slot's INTA-D with the swizzle
    // PIRQ = (slot + pin) mod 4.
    static constexpr const char* LINKS[4] = {"LNKA", "LNKB", "LNKC", "LNKD"};
    TermList apic_routes, pic_routes;
    for (unsigned slot = 1; slot < 32; ++slot)
        for (unsigned pin = 0; pin < 4; ++pin) {
            const unsigned pirq = (slot + pin) & 3;
            const Bytes address = integer((u64(slot) << 16) | 0xFFFF);
            apic_routes.push_back(
                package({address, integer(pin), integer(0), integer(c.pirq_gsi_base + pirq)}));
            pic_routes.push_back(package({address, integer(pin), ref(LINKS[pirq]), integer(0)}));
        }

    const auto isa_device = [](std::string_view n, std::string_view hid, const TermList& extra,
                               const ResourceTemplate& crs) {
        TermList body{name("_HID", eisa_id(hid))};
        body.insert(body.end(), extra.begin(), extra.end());
        body.push_back(name("_CRS", crs.build()));
        return device(n, body);
    };
    TermList isa{name("_ADR", integer(0x00010000))};
    isa.push_back(isa_device(
        "KBD", "PNP0303", {},
        ResourceTemplate().io(0x60, 0x60, 1, 1).io(0x64, 0x64, 1, 1).irq_no_flags(1u << 1)));
    isa.push_back(isa_device("MOU", "PNP0F13", {}, ResourceTemplate().irq_no_flags(1u << 12)));
    isa.push_back(isa_device("RTC", "PNP0B00", {},
                             ResourceTemplate().io(0x70, 0x70, 1, 8).irq_no_flags(1u << 8)));
    isa.push_back(isa_device("COM1", "PNP0501", {name("_UID", integer(1))},
                             ResourceTemplate().io(0x3F8, 0x3F8, 1, 8).irq_no_flags(1u << 4)));
    isa.push_back(isa_device("COM2", "PNP0501", {name("_UID", integer(2))},
                             ResourceTemplate().io(0x2F8, 0x2F8, 1, 8).irq_no_flags(1u << 3)));

    sb.push_back(device("PCI0", {
                                    name("_HID", eisa_id("PNP0A03")),
                                    name("_UID", integer(0)),
                                    name("_CRS", pci_crs.build()),
                                    name("PRTA", package(apic_routes)),
                                    name("PRTP", package(pic_routes)),
                                    method("_PRT", 0, false,
                                           {if_then(ref("PICF"), {return_value(ref("PRTA"))}),
                                            return_value(ref("PRTP"))}),
                                    device("ISA", isa),
                                }));

    // PCI interrupt links for PIC mode (6.2.13): each fixed on the IRQ the
    // PIIX routing register holds; _SRS accepts only that.
    for (unsigned pirq = 0; pirq < 4; ++pirq) {
        const u16 mask = static_cast<u16>(1u << (c.pirq_irqs[pirq] & 0xF));
        const Bytes irq = ResourceTemplate().irq(mask, false, true, true).build();
        sb.push_back(device(LINKS[pirq], {
                                             name("_HID", eisa_id("PNP0C0F")),
                                             name("_UID", integer(pirq + 1)),
                                             name("_PRS", irq),
                                             name("_CRS", irq),
                                             method("_SRS", 1, false, {}),
                                         }));
    }

    if (c.hpet)
        sb.push_back(
            device("HPET",
                   {
                       name("_HID", eisa_id("PNP0103")),
                       name("_UID", integer(0)),
                       name("_CRS", ResourceTemplate()
                                        .memory32_fixed(static_cast<u32>(c.hpet_base), 0x400, false)
                                        .build()),
                   }));

    // Motherboard resources the OS must leave alone: the ECAM window (Linux
    // uses MCFG only when it is reserved here) and the fw_cfg ports.
    sb.push_back(device("MRES", {
                                    name("_HID", eisa_id("PNP0C02")),
                                    name("_UID", integer(1)),
                                    name("_CRS", ResourceTemplate()
                                                     .memory32_fixed(static_cast<u32>(c.ecam_base),
                                                                     c.ecam_buses << 20, false)
                                                     .io(c.fw_cfg_port, c.fw_cfg_port, 1, 2)
                                                     .build()),
                                }));

    // The VMBus of a Hyper-V partition. hv_vmbus matches the _HID and needs
    // a _CRS it can walk; on x86 it takes no resources from it (its
    // interrupt is the SynIC's, and no synthetic device here needs MMIO).
    if (c.vmbus)
        sb.push_back(device("VMBS", {
                                        name("_HID", string("VMBus")),
                                        name("_UID", integer(0)),
                                        name("_CRS", ResourceTemplate().build()),
                                    }));

    root.push_back(scope("\\_SB", sb));

    std::vector<u8> out;
    for (const Bytes& t : root)
        out.insert(out.end(), t.begin(), t.end());
    return out;
}

std::span<const u8> AcpiTables::table(std::string_view signature) const
{
    for (const auto& [sig, offset] : index) {
        if (sig != signature)
            continue;
        u32 length;
        std::memcpy(&length, tables.data() + offset + 4, 4);
        return std::span<const u8>(tables.data() + offset, length);
    }
    return {};
}

AcpiTables build_acpi_tables(const AcpiConfig& c, GuestPhys tables_address, GuestPhys rsdp_address)
{
    assert((tables_address & 63) == 0 && (rsdp_address & 15) == 0);
    AcpiTables out;
    out.tables_address = tables_address;
    out.rsdp_address = rsdp_address;
    std::vector<u8>& blob = out.tables;

    const auto place = [&](std::string_view sig, const std::vector<u8>& table, size_t alignment) {
        align(blob, alignment);
        const u32 offset = static_cast<u32>(blob.size());
        out.index.emplace_back(std::string(sig), offset);
        blob.insert(blob.end(), table.begin(), table.end());
        return tables_address + offset;
    };

    const GuestPhys facs = place("FACS", build_facs(), 64);
    const GuestPhys dsdt = place("DSDT", build_dsdt(c), 16);
    std::vector<GuestPhys> entries;
    entries.push_back(place("FACP", build_fadt(c, facs, dsdt), 16));
    entries.push_back(place("APIC", build_madt(c), 16));
    if (c.hpet)
        entries.push_back(place("HPET", build_hpet(c), 16));
    entries.push_back(place("MCFG", build_mcfg(c), 16));

    Writer xsdt = header("XSDT", 1);
    for (GuestPhys e : entries)
        xsdt.u64_(e);
    const GuestPhys xsdt_address = place("XSDT", finish(std::move(xsdt)), 16);
    Writer rsdt = header("RSDT", 1);
    for (GuestPhys e : entries)
        rsdt.u32_(e);
    const GuestPhys rsdt_address = place("RSDT", finish(std::move(rsdt)), 16);

    // RSDP (5.2.5.3): checksum over the first 20 bytes, extended over all 36.
    Writer r;
    r.text("RSD PTR ", 8);
    r.u8_(0); // checksum
    r.text(OEM_ID, 6);
    r.u8_(2); // revision: ACPI 2.0+
    r.u32_(rsdt_address);
    r.u32_(36);
    r.u64_(xsdt_address);
    r.u8_(0); // extended checksum
    r.zeros(3);
    r.bytes[8] = static_cast<u8>(-acpi_checksum(std::span<const u8>(r.bytes.data(), 20)));
    r.bytes[32] = static_cast<u8>(-acpi_checksum(r.bytes));
    out.rsdp = std::move(r.bytes);
    return out;
}
