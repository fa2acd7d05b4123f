// One virtual processor's synthetic interrupt controller (TLFS 11): the
// SynIC MSRs, the message page (SIM) with one 256-byte slot per SINT, the
// event flag page (SIEF), and the host-side message queues behind the
// slots. Interrupts go out through the ApicPort; the LAPIC tells the SynIC
// about EOIs (apic_eoi) so queued messages are redelivered as TLFS 11.2.1
// describes.
#pragma once

#include "mmu/guest_memory.h"
#include "mmu/base/state_visitor.h"
#include "paravirt/apic_port.h"
#include "paravirt/tlfs.h"

#include <array>
#include <bitset>
#include <deque>
#include <functional>
#include <optional>


// A message as the hypervisor queues it (HV_MESSAGE, TLFS 11.10).
struct HvMessage {
    u32 type = HV_MESSAGE_TYPE_NONE;
    u8 payload_size = 0;
    u64 origin = 0; // sender partition or port ID; 0 for timer messages
    std::array<u8, HV_MESSAGE_MAX_PAYLOAD> payload{};
};

class Synic {
public:
    // Host messages a SINT queue holds besides the one in its slot; a port
    // gets sixteen message buffers on Hyper-V (TLFS 11.3.1).
    static constexpr unsigned QUEUE_DEPTH = 16;

    Synic(unsigned vp, GuestMemory memory, ApicPort& apic);

    // HV_X64_MSR_SCONTROL .. HV_X64_MSR_SINT15. Empty / false means #GP.
    std::optional<u64> read_msr(u32 index) const;
    bool write_msr(u32 index, u64 value);

    bool enabled() const { return m_scontrol & HV_SCONTROL_ENABLE; }
    u64 sint(unsigned n) const { return m_sint[n]; }
    u64 simp() const { return m_simp; }
    u64 siefp() const { return m_siefp; }

    // Host side. Queues `message` for `sint` and delivers it when the slot
    // is free: Success, InsufficientBuffers (queue full), InvalidSynicState
    // (SynIC or SIM page disabled), InvalidParameter (bad payload size).
    HvStatus post_message(unsigned sint, const HvMessage& message);
    // Sets event flag `flag` of `sint` in the SIEF page and interrupts when
    // the flag was clear (TLFS 11.5.2).
    HvStatus signal_event(unsigned sint, unsigned flag);
    // Raises the interrupt of `sint` as an event would, without setting a
    // flag (a host-side SINT route, as the Hyper-V test device drives):
    // InvalidParameter for sint > 15, InvalidSynicState when the SynIC is
    // disabled or the SINT masked.
    HvStatus signal_sint(unsigned sint);

    // One attempt to place `message` in the slot of `sint`, for sources with
    // a dedicated buffer (synthetic timers). Busy marks the slot's
    // MessagePending flag so the guest will write EOM.
    enum class SlotResult : u8 { Delivered, Busy, Unavailable };
    SlotResult try_deliver(unsigned sint, const HvMessage& message);

    // The guest ended an interrupt at its APIC (EOI, or AutoEOI on delivery).
    void apic_eoi(u8 vector);
    // Called with a SINT whose slot may have been emptied (EOM, EOI, page
    // enabled), after this SynIC's own queue had its turn.
    void set_slot_listener(std::function<void(unsigned sint)> listener)
    {
        m_slot_listener = std::move(listener);
    }

    unsigned queued(unsigned sint) const { return static_cast<unsigned>(m_queue[sint].size()); }
    // Virtual processor reset (TLFS 11.8): registers to their defaults,
    // queues emptied.
    void reset();
    void visit_state(StateVisitor& v);

private:
    void update_auto_eoi(bool announce_all = false);
    void scan(unsigned sint);
    void slot_may_be_free(unsigned sint);
    void interrupt(unsigned sint);
    bool page_write_zeroes(u64 reg);

    unsigned m_vp;
    GuestMemory m_memory;
    ApicPort& m_apic;
    u64 m_scontrol = 0;
    u64 m_siefp = 0;
    u64 m_simp = 0;
    std::array<u64, HV_SINT_COUNT> m_sint{};
    std::array<std::deque<HvMessage>, HV_SINT_COUNT> m_queue;
    std::bitset<256> m_auto_eoi; // vectors announced to the APIC as AutoEOI
    std::function<void(unsigned)> m_slot_listener;
};

// Saves or loads one message field by field (no padding bytes in snapshots).
void visit_message(StateVisitor& v, HvMessage& m);
