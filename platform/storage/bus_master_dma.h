// One channel's bus-master IDE registers (SFF-8038i "Programming Interface
// for Bus Master IDE Controller" rev 1.0, as the PIIX3 implements them,
// 82371SB datasheet 2.7): the command register BMIC (start, direction), the
// status register BMIS (active, error, interrupt, the drives' DMA-capable
// bits) and the PRD table pointer BMIDTP. A device moves a whole command's
// data in one transfer() once the engine is started; the PRD table and the
// regions it names are read and written through the checked DMA accessor,
// so a table pointing outside RAM sets the error bit, never touches the host.
#pragma once

#include "mmu/guest_memory.h"

#include <functional>
#include <span>

class StateVisitor;

class BusMasterDma {
public:
    static constexpr unsigned PORT_COUNT = 8; // BMIC, -, BMIS, -, BMIDTP (4 bytes)
    static constexpr u8 BMIC_START = 1u << 0;
    static constexpr u8 BMIC_WRITE_TO_MEMORY = 1u << 3; // "read" from the device
    static constexpr u8 BMIS_ACTIVE = 1u << 0, BMIS_ERROR = 1u << 1, BMIS_INTERRUPT = 1u << 2,
                        BMIS_DRIVE0_DMA = 1u << 5, BMIS_DRIVE1_DMA = 1u << 6;
    // A PRD table lies in one 64 KiB region (SFF-8038i 1.2): at most this
    // many entries before the walk would come back to the first.
    static constexpr unsigned MAX_PRD_ENTRIES = 65536 / 8;

    enum class Result : u8 {
        Done,       // every byte moved
        NotStarted, // the engine is stopped (or bus mastering is off): try again at start
        Short,      // the table ended first: the device keeps waiting (spec table 1)
        Error,      // a PRD entry or region outside RAM, or a table with no end
    };

    explicit BusMasterDma(GuestMemory memory) : m_memory(memory) {}

    u64 read(u64 offset, unsigned size) const;
    void write(u64 offset, unsigned size, u64 value);

    // Moves `buffer` to (to_memory) or from guest memory along the PRD table.
    Result transfer(std::span<u8> buffer, bool to_memory);
    // The channel's interrupt line rose: BMIS.Interrupt (SFF-8038i 1.3).
    void interrupt_raised() { m_status |= BMIS_INTERRUPT; }

    // Called when the guest sets BMIC.Start.
    void set_start_listener(std::function<void()> listener) { m_on_start = std::move(listener); }
    // Whether the PCI function may master the bus (COMMAND.BME).
    void set_master_enabled(std::function<bool()> enabled) { m_master_enabled = std::move(enabled); }

    bool started() const { return m_command & BMIC_START; }
    u8 status() const { return m_status; }
    void reset();
    void visit_state(StateVisitor& v);

private:
    GuestMemory m_memory;
    u8 m_command = 0;
    u8 m_status = 0;
    u32 m_prd_table = 0;
    std::function<void()> m_on_start;
    std::function<bool()> m_master_enabled;
};
