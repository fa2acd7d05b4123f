// Fuzz target: the VMBus host's channel management (paravirt/vmbus/) as a
// hostile guest drives it, through the same doors a guest uses: messages
// posted to connections 1 and 4 (HvPostMessage, type 1), HvSignalEvent on
// channel connections, the SynIC MSRs and EOM of a 2-VP partition, and
// reading the SINT message slots. The host's side joins in: it signals
// channels, adds and removes channels at run time, resets, and saves the whole
// partition and server and loads them into a fresh one that carries on
// with the rest of the input. Three fake devices to start (the third
// refuses every open), up to six.
//
// The input is a program of records: an op byte, then its operands (see
// the switch below; vmbus_seed.py writes the seeds in corpus/vmbus). Past
// the end everything reads 0. Whatever it does, nothing may crash, assert
// or touch memory it should not (AddressSanitizer), and these must hold,
// else the target aborts:
// - every message the guest finds in a slot from the server is 8..240
//   bytes, of a host-to-guest type, of that type's size;
// - a device is open exactly while the server says its channel is, and is
//   opened, closed and signalled only in that order;
// - save, load into a fresh partition and server, save again: the same
//   bytes (the loader checks every queued message's size and the outbox's
//   length);
// - an open channel's ring GPADL exists, belongs to it and still lists the
//   pages the device was given: closing the channel and opening it again
//   with the same GPADL gives the device the same pages (checked on the
//   partition each save/load leaves behind, and at the end).
//
// Built two ways, like the others: with libFuzzer (scripts/fuzz.sh) and
// with the seeded driver fuzz_driver.cpp over the seeds in corpus/vmbus.
#include "mmu/physical_memory.h"
#include "paravirt/hyperv.h"
#include "paravirt/vmbus/vmbus_server.h"
#include "platform/clock/virtual_clock.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/null_apic.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

using namespace vmbus;

namespace {

[[noreturn]] void fail(const char* what, u32 detail = 0)
{
    std::fprintf(stderr, "vmbus_fuzz: %s (%#x)\n", what, detail);
    std::abort();
}

constexpr u64 RAM = 16ull << 20;
constexpr unsigned VPS = 2;
constexpr unsigned FIRST_CHANNELS = 3;
constexpr unsigned MAX_CHANNELS = 6;
constexpr size_t MAX_STEPS = 4096;
// Posts per input, bursts included: enough to overfill the server's outbox
// (256 messages) many times; posts and save/loads few enough to keep an
// input well under a second (the state grows with every GPADL body).
constexpr unsigned MAX_POSTS = 4096;
constexpr unsigned MAX_SAVE_LOADS = 8;
// Where the guest puts VP n's pages: SIMP at PAGES + n * 0x2000, SIEFP one
// page above (as vmbus_server_test.cpp does).
constexpr GuestPhys PAGES = 0x400000;

// What a device keeps of its open channel: its own state, carried across
// a save/load as a device saves its own.
struct DeviceState {
    bool open = false;
    bool accept = true;
    u32 ring_gpadl = 0; // from the OPEN_CHANNEL the device accepted
    VmbusServer::OpenRequest request;
};

struct FakeDevice final : VmbusServer::Device {
    DeviceState state;
    const std::vector<u8>* posting = nullptr; // the message being posted, if any
    // A primary serves two sub-channels, each its own FakeDevice.
    bool is_sub = false;
    std::array<std::unique_ptr<FakeDevice>, 2> subs;

    VmbusServer::Device* sub_channel(u16 index) override { return sub(index); }
    FakeDevice* sub(u16 index)
    {
        if (is_sub || index == 0 || index > subs.size())
            return nullptr;
        if (!subs[index - 1]) {
            subs[index - 1] = std::make_unique<FakeDevice>();
            subs[index - 1]->is_sub = true;
        }
        return subs[index - 1].get();
    }
    void set_posting(const std::vector<u8>* message)
    {
        posting = message;
        for (auto& s : subs)
            if (s)
                s->posting = message;
    }

    bool open(const VmbusServer::OpenRequest& r) override
    {
        if (state.open)
            fail("a channel opened twice", r.relid);
        if (r.ring_pfns.empty() || r.downstream_offset == 0 || r.downstream_offset >= r.ring_pfns.size() ||
            r.target_vp >= VPS)
            fail("an open request the server should have refused", r.relid);
        if (!state.accept)
            return false;
        if (!posting || posting->size() < open_channel::SIZE || load_le32(*posting, 0) != OPEN_CHANNEL)
            fail("a channel opened by something other than OPEN_CHANNEL", r.relid);
        state.open = true;
        state.ring_gpadl = load_le32(*posting, open_channel::RING_GPADL);
        state.request = r;
        return true;
    }
    void close() override
    {
        if (!state.open)
            fail("a channel closed that was not open");
        state.open = false;
    }
    void signaled() override
    {
        if (!state.open)
            fail("a channel signalled that is not open");
    }
};

// One partition with the VMBus host on it; the memory outlives it so a
// save/load can move on to a fresh one.
struct Rig {
    NullApic apic;
    VirtualClock clock{VirtualClock::Mode::Deterministic};
    HyperV hv;
    std::array<FakeDevice, MAX_CHANNELS> devices;
    unsigned channels = 0;
    // Once sub-channels took relids, channels added later would not get the
    // relids a fresh machine gives them (and its state would not load into
    // one): the host adds none then.
    bool sub_channels_offered = false;
    // Devices the host took away (remove_channel): none is added after, for
    // the same reason (a released relid is handed out again).
    std::array<bool, MAX_CHANNELS> removed{};
    VmbusServer server{hv};
    std::vector<u8> last_post;
    u32 last_connection = MESSAGE_CONNECTION_ID;
    unsigned last_vp = 0;
    u32 last_type = SYNIC_MESSAGE_TYPE;

    static HvConfig config()
    {
        HvConfig c;
        c.vp_count = VPS;
        return c;
    }

    Rig(PhysicalMemory& memory, unsigned channel_count)
        : hv(config(), memory, clock, apic), m_memory(memory)
    {
        clock.set_instruction_counter([] { return u64{0}; });
        hv.set_host_slot_listener([this](unsigned vp, unsigned sint) { server.slot_freed(vp, sint); });
        devices[2].state.accept = false;
        while (channels < channel_count)
            add_channel();
    }

    void add_channel()
    {
        if (channels == MAX_CHANNELS || sub_channels_offered ||
            std::find(removed.begin(), removed.end(), true) != removed.end())
            return;
        VmbusServer::Offer o;
        o.type = parse_guid("ba6163d9-04a1-4d29-b605-72e2ffb1dc7f");
        o.instance[0] = static_cast<u8>(channels + 1);
        if (server.add_channel(o, devices[channels]) != channels + 1)
            fail("relids are not handed out in order", channels);
        ++channels;
    }

    // The host takes device `index` away: refused only for one already
    // gone; afterwards neither it nor its sub-channels are open.
    void remove_channel(unsigned index)
    {
        const u32 relid = index + 1;
        if (server.remove_channel(relid) == removed[index])
            fail("remove_channel refused a device in use, or took one already gone", relid);
        removed[index] = true;
        if (devices[index].state.open || server.channel_open(relid) || !server.sub_channels(relid).empty())
            fail("a removed device's channel is still open", relid);
        for (const auto& sub : devices[index].subs)
            if (sub && sub->state.open)
                fail("a removed device's sub-channel is still open", relid);
    }

    void enable_synic()
    {
        for (unsigned vp = 0; vp < VPS; ++vp)
            if (!hv.write_msr(vp, HV_X64_MSR_SIMP, (PAGES + vp * 0x2000) | HV_PAGE_ENABLE) ||
                !hv.write_msr(vp, HV_X64_MSR_SIEFP, (PAGES + vp * 0x2000 + PAGE_SIZE) | HV_PAGE_ENABLE) ||
                !hv.write_msr(vp, HV_X64_MSR_SCONTROL, HV_SCONTROL_ENABLE) ||
                !hv.write_msr(vp, HV_X64_MSR_SINT0 + MESSAGE_SINT, 0xF3))
                fail("SynIC set-up refused", vp);
    }

    HvStatus post(unsigned vp, u32 connection, std::vector<u8> bytes, u32 type = SYNIC_MESSAGE_TYPE)
    {
        last_post = std::move(bytes);
        last_connection = connection;
        last_vp = vp;
        last_type = type;
        return repost();
    }
    HvStatus repost()
    {
        for (unsigned i = 0; i < channels; ++i)
            devices[i].set_posting(&last_post);
        const HvStatus status =
            hv.connections().post_message(last_vp, last_connection, last_type, last_post);
        for (unsigned i = 0; i < channels; ++i)
            devices[i].set_posting(nullptr);
        if (status != HvStatus::Success && status != HvStatus::InsufficientBuffers)
            fail("a post answered with a status the guest does not expect", static_cast<u32>(status));
        return status;
    }

    // The guest's message handler: reads the slot of `sint` on `vp`, clears
    // it and writes EOM (or only one of the two, as a confused guest might).
    void read_slot(unsigned vp, unsigned sint, u8 how)
    {
        // Only messages the SynIC delivered count: the guest may also write
        // type 1 into a slot itself.
        const u64 simp = hv.synic(vp).simp();
        if (hv.synic(vp).enabled() && (simp & HV_PAGE_ENABLE)) {
            GuestMemory guest(m_memory);
            const GuestPhys slot = (simp & HV_PAGE_GPA_MASK) + sint * HV_MESSAGE_SIZE;
            u32 type = 0;
            u8 size = 0;
            if (guest.read(slot + HV_MESSAGE_TYPE_OFFSET, &type, 4) &&
                guest.read(slot + HV_MESSAGE_PAYLOAD_SIZE_OFFSET, &size, 1) && type == SYNIC_MESSAGE_TYPE) {
                std::vector<u8> m(size);
                if (!guest.read(slot + HV_MESSAGE_HEADER_SIZE, m.data(), m.size()))
                    fail("the message slot is not readable");
                check_host_message(m);
            }
            if (!(how & 1)) {
                const u32 none = HV_MESSAGE_TYPE_NONE;
                (void)guest.write(slot + HV_MESSAGE_TYPE_OFFSET, &none, 4);
            }
        }
        if (!(how & 2) && !hv.write_msr(vp, HV_X64_MSR_EOM, 0))
            fail("EOM refused");
    }

    // What the guest reads must be a message the protocol defines.
    static void check_host_message(std::span<const u8> m)
    {
        if (m.size() < HEADER_SIZE || m.size() > HV_MESSAGE_MAX_PAYLOAD)
            fail("a message of an impossible size", static_cast<u32>(m.size()));
        const u32 type = load_le32(m, 0);
        unsigned size = 0;
        switch (type) {
        case OFFER_CHANNEL: size = offer::SIZE; break;
        case RESCIND_CHANNEL_OFFER: size = relid_message::SIZE; break;
        case ALL_OFFERS_DELIVERED:
        case UNLOAD_RESPONSE: size = HEADER_SIZE; break;
        case OPEN_CHANNEL_RESULT: size = open_result::SIZE; break;
        case GPADL_CREATED: size = gpadl_created::SIZE; break;
        case GPADL_TORNDOWN: size = gpadl_torndown::SIZE; break;
        case VERSION_RESPONSE: size = version_response::SIZE; break;
        case MODIFY_CHANNEL_RESPONSE: size = modify_channel::SIZE; break;
        default: fail("a message of a type the host never sends", type);
        }
        if (m.size() != size)
            fail("a message whose size is not its type's", type);
    }

    // Devices and server agree on which channels are open, sub-channels
    // too (offered as 1 .. n, so the server's list is by index); a
    // sub-channel is never open without its primary.
    void check_open_states() const
    {
        for (unsigned i = 0; i < channels; ++i) {
            if (devices[i].state.open != server.channel_open(i + 1))
                fail("the device and the server disagree on whether the channel is open", i + 1);
            const std::vector<u32> subs = server.sub_channels(i + 1);
            if (!subs.empty() && !devices[i].state.open)
                fail("sub-channels outlived their primary", i + 1);
            for (size_t j = 0; j < devices[i].subs.size(); ++j) {
                const FakeDevice* d = devices[i].subs[j].get();
                const bool open = j < subs.size() && server.channel_open(subs[j]);
                if (d ? d->state.open != open : open)
                    fail("a sub-channel's device and the server disagree on whether it is open", i + 1);
            }
        }
    }

    // Destructive: every open channel is closed and opened again with its
    // ring GPADL, which must still be there with the same pages.
    void check_rings()
    {
        for (unsigned i = 0; i < channels; ++i) {
            FakeDevice& d = devices[i];
            if (!d.state.open)
                continue;
            const u32 relid = i + 1;
            const DeviceState before = d.state;
            std::vector<u8> close(relid_message::SIZE);
            store_le32(close, 0, CLOSE_CHANNEL);
            store_le32(close, relid_message::CHILD_RELID, relid);
            if (post(0, MESSAGE_CONNECTION_ID, close) != HvStatus::Success)
                continue; // the outbox is full: the guest would try again later
            if (d.state.open || server.channel_open(relid))
                fail("CLOSE_CHANNEL left the channel open", relid);
            std::vector<u8> open(open_channel::SIZE);
            store_le32(open, 0, OPEN_CHANNEL);
            store_le32(open, open_channel::CHILD_RELID, relid);
            store_le32(open, open_channel::RING_GPADL, before.ring_gpadl);
            store_le32(open, open_channel::TARGET_VP, before.request.target_vp);
            store_le32(open, open_channel::DOWNSTREAM_OFFSET, before.request.downstream_offset);
            d.state.accept = true;
            if (post(0, MESSAGE_CONNECTION_ID, open) != HvStatus::Success)
                continue; // the outbox is full: the guest would try again later
            if (!d.state.open)
                fail("an open channel's ring GPADL is gone", relid);
            if (d.state.request.ring_pfns != before.request.ring_pfns)
                fail("an open channel's ring GPADL lists other pages", relid);
        }
    }

private:
    PhysicalMemory& m_memory;
};

void save_both(Rig& rig, StateVisitor& v)
{
    rig.hv.visit_state(v);
    rig.server.visit_state(v);
}

// Save, load into a fresh partition and server, save again; the fresh one
// carries on with the input and the old one is checked and dropped.
std::unique_ptr<Rig> save_load(std::unique_ptr<Rig> old, PhysicalMemory& memory)
{
    StateVisitor saver = StateVisitor::saver();
    save_both(*old, saver);
    auto fresh = std::make_unique<Rig>(memory, old->channels);
    fresh->sub_channels_offered = old->sub_channels_offered;
    // A machine that had them removed: their relids free (no guest has
    // asked the fresh server for offers), and the saved state says how the
    // guest left them.
    fresh->removed = old->removed;
    for (unsigned i = 0; i < old->channels; ++i)
        if (old->removed[i] && !fresh->server.remove_channel(i + 1))
            fail("a fresh server refused to remove a device", i + 1);
    for (unsigned i = 0; i < old->channels; ++i) {
        fresh->devices[i].state = old->devices[i].state;
        for (u16 index = 1; index <= old->devices[i].subs.size(); ++index)
            if (const FakeDevice* sub = old->devices[i].subs[index - 1].get())
                fresh->devices[i].sub(index)->state = sub->state;
    }
    StateVisitor loader = StateVisitor::loader(saver.bytes());
    save_both(*fresh, loader);
    if (!loader.ok()) {
        std::fprintf(stderr, "vmbus_fuzz: %s\n", loader.error().c_str());
        fail("the saved state does not load");
    }
    if (!loader.at_end())
        fail("the saved state has bytes the loader did not read");
    StateVisitor again = StateVisitor::saver();
    save_both(*fresh, again);
    if (again.bytes() != saver.bytes())
        fail("save, load, save gave different bytes");
    fresh->check_open_states();
    // The old partition's answers must not land in the RAM the fresh one
    // now owns: with its SynIC off they are dropped.
    for (unsigned vp = 0; vp < VPS; ++vp)
        (void)old->hv.write_msr(vp, HV_X64_MSR_SCONTROL, 0);
    old->check_rings();
    return fresh;
}

u64 msr_value(u32 index, unsigned vp, u8 b)
{
    switch (index) {
    case HV_X64_MSR_SIMP:
        return b & 0x80 ? 0 : (PAGES + vp * 0x2000 + (b & 0x40 ? 0x10000 : 0)) | (b & 1);
    case HV_X64_MSR_SIEFP:
        return b & 0x80 ? RAM - PAGE_SIZE : (PAGES + vp * 0x2000 + PAGE_SIZE) | (b & 1);
    case HV_X64_MSR_SCONTROL:
        return b & 1;
    default: // a SINT: vector 0xF3, masked, AutoEOI or polled as the bits say
        return 0xF3 | (b & 1 ? HV_SINT_MASKED : 0) | (b & 2 ? HV_SINT_AUTO_EOI : 0) |
               (b & 4 ? HV_SINT_POLLING : 0);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    // Fresh per input (RAM is mapped lazily, so this is cheap).
    PhysicalMemory memory(RAM);
    auto rig = std::make_unique<Rig>(memory, FIRST_CHANNELS);
    rig->enable_synic();
    FuzzInput in{data, size};
    unsigned posts = 0, save_loads = 0;
    for (size_t step = 0; step < MAX_STEPS && !in.done(); ++step) {
        const u8 op = in.byte();
        const unsigned vp = (op >> 4) & 1;
        switch (op & 0x0F) {
        case 0: // a message on connection 1, or 4 (of type 1, or 2 with op bit 5): length, then bytes
        case 1: {
            const u8 length = in.byte();
            std::vector<u8> m = in.bytes(length <= HV_MESSAGE_MAX_PAYLOAD ? length : HV_MESSAGE_MAX_PAYLOAD);
            if (posts++ < MAX_POSTS)
                rig->post(vp, op & 1 ? MESSAGE_CONNECTION_ID_WIN10_V5 : MESSAGE_CONNECTION_ID, std::move(m),
                          op & 0x20 ? 2 : SYNIC_MESSAGE_TYPE);
            break;
        }
        case 2: { // a burst: the last message again, 1..256 times
            const unsigned n = 1u + in.byte();
            for (unsigned i = 0; i < n && posts < MAX_POSTS; ++i, ++posts)
                rig->repost();
            break;
        }
        case 3: { // HvSignalEvent on a channel's connection (relid 0..7, flag 0..2)
            const u8 b = in.byte();
            const HvStatus s =
                rig->hv.connections().signal_event(vp, CHANNEL_CONNECTION_ID_BASE + (b & 7), (b >> 3) % 3);
            const bool open = rig->server.channel_open(b & 7);
            if ((s == HvStatus::Success) != (open && (b >> 3) % 3 == 0))
                fail("a signal accepted on a channel that is not open, or refused on one that is", b);
            break;
        }
        case 4: // the guest reads a slot (SINT 0..15)
            rig->read_slot(vp, in.byte() & 15, op >> 5);
            break;
        case 5: { // a SynIC MSR: SIMP, SIEFP, SCONTROL or a SINT
            const u8 which = in.byte();
            static constexpr u32 MSRS[] = {HV_X64_MSR_SIMP, HV_X64_MSR_SIEFP, HV_X64_MSR_SCONTROL,
                                           HV_X64_MSR_SINT0 + MESSAGE_SINT, HV_X64_MSR_SINT0};
            const u32 index = (which & 7) < 5 ? MSRS[which & 7] : HV_X64_MSR_SINT0 + (which >> 4);
            (void)rig->hv.write_msr(vp, index, msr_value(index, vp, in.byte()));
            break;
        }
        case 6:
            if (save_loads++ < MAX_SAVE_LOADS)
                rig = save_load(std::move(rig), memory);
            break;
        case 7: { // the host signals a channel
            const u8 b = in.byte();
            if (rig->server.signal_guest(b & 7) != rig->server.channel_open(b & 7))
                fail("signal_guest disagrees with channel_open", b);
            break;
        }
        case 8: // the host adds a channel (a device hot-plugged)
            rig->add_channel();
            break;
        case 9: // the guest's APIC EOIs the VMBus vector: queued messages move on
            rig->hv.apic_eoi(vp, 0xF3);
            break;
        case 10: { // a device starts or stops accepting opens
            const u8 b = in.byte();
            if ((b & 7) < rig->channels)
                rig->devices[b & 7].state.accept = b & 8;
            break;
        }
        case 11: // machine reset: partition and server, then the guest sets its SynIC up again
            rig->hv.reset();
            rig->server.reset();
            for (unsigned i = 0; i < rig->channels; ++i) {
                if (rig->devices[i].state.open)
                    fail("reset left a device open", i + 1);
                for (const auto& sub : rig->devices[i].subs)
                    if (sub && sub->state.open)
                        fail("reset left a sub-channel open", i + 1);
            }
            if (op & 0x20)
                rig->enable_synic();
            break;
        case 12: { // a device asks for sub-channels of its channel (relid 0..7, count 0..3)
            const u8 b = in.byte();
            const u32 primary = b & 7;
            const u16 count = (b >> 3) & 3;
            const bool can = primary >= 1 && primary <= rig->channels && rig->server.channel_open(primary) &&
                             count <= 2;
            const bool offered = rig->server.offer_sub_channels(primary, count);
            if (offered && !can)
                fail("sub-channels offered for a channel that cannot have them", b);
            rig->sub_channels_offered = rig->sub_channels_offered || offered;
            break;
        }
        case 13: { // the host removes a device (a hot-unplug; relid 1..channels)
            const u8 b = in.byte();
            rig->remove_channel(b % rig->channels);
            break;
        }
        default:
            break;
        }
        rig->check_open_states();
    }
    rig->check_rings();
    return 0;
}
