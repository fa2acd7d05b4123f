// The parent partition's end of VMBus (docs/vmbus.md): the channel-
// management protocol over SynIC messages, the guest's GPADLs, and the
// channels synthetic devices offer. The guest posts to connection 1 (and 4
// for INITIATE_CONTACT from version 5.0 on) with HvPostMessage; the server
// answers with messages in the SINT the guest named, on the VP it named,
// and signals a channel by its relid bit in that VP's event flags. A
// device (storvsp, netvsp, an integration service) sees only Device: its
// channel opened with a ring-buffer GPADL, closed, or signalled.
//
// Everything in a message is the guest's to choose. A message too short
// for its type, a relid or GPADL that does not exist, a page list that
// does not add up: the request is refused with the protocol's failure
// status where it has one and dropped where it has none, and counted.
#pragma once

#include "mmu/base/state_visitor.h"
#include "paravirt/tlfs.h"
#include "paravirt/vmbus/vmbus_protocol.h"

#include <deque>
#include <map>
#include <span>
#include <vector>

class HyperV;
struct HvMessage;

class VmbusServer {
public:
    // A channel as the guest opens it: the pages of its ring-buffer GPADL,
    // the first `downstream_offset` of them the guest-to-host ring and the
    // rest the host-to-guest ring.
    struct OpenRequest {
        u32 relid = 0;
        u16 sub_channel_index = 0; // 0: the primary channel
        u32 target_vp = 0;
        std::vector<u64> ring_pfns;
        u32 downstream_offset = 0;
        std::array<u8, 120> user_data{};
    };

    class Device {
    public:
        virtual ~Device() = default;
        // False refuses the open (the guest sees a failure status).
        virtual bool open(const OpenRequest& request) = 0;
        // After the guest has been told the channel is open: a device that
        // speaks first (an integration service) may send now.
        virtual void opened() {}
        virtual void close() = 0;
        // The guest signalled the channel (HvSignalEvent on its connection).
        virtual void signaled() = 0;
        // A multi-channel device (storvsp, netvsp's vRSS) serves each of its
        // sub-channels with another Device: the one for sub-channel `index`
        // (1, 2, ...), made on first request and kept as long as this one
        // lives, or null past the last the device can serve.
        virtual Device* sub_channel(u16 /*index*/) { return nullptr; }
    };

    struct Offer {
        vmbus::Guid type{};
        vmbus::Guid instance{}; // unique among primary channels
        u16 mmio_megabytes = 0;
        std::array<u8, 120> user_defined{};
        u16 sub_channel_index = 0; // non-zero: a sub-channel of the primary with the same GUIDs
    };

    struct Counters {
        u64 messages_in = 0;
        u64 messages_out = 0;
        u64 refused = 0; // malformed or impossible requests
        u64 signals_in = 0;
        u64 signals_out = 0;
    };

    // Registers the message connections with `hv` (which must be enabled).
    explicit VmbusServer(HyperV& hv);
    ~VmbusServer();
    VmbusServer(const VmbusServer&) = delete;
    VmbusServer& operator=(const VmbusServer&) = delete;

    // Offers a channel; returns its relid (the lowest free one: 1, 2, ...
    // in the order added), 0 when all 2047 are taken. Channels added after
    // the guest asked for offers are offered at once.
    u32 add_channel(const Offer& offer, Device& device);
    // Offers sub-channels 1 .. `count` of the open channel `primary` that
    // are not offered yet (same GUIDs, served by the primary device's
    // sub_channel(index)); what the guest asks its device for (storvsp's
    // CREATE_SUB_CHANNELS). They live while the primary is open: when the
    // guest closes it they are rescinded. False (and nothing offered) when
    // the primary is not open or its device cannot serve that many.
    bool offer_sub_channels(u32 primary, u16 count);
    // Takes a device away while the guest runs (a hot-removed adapter or
    // controller): its sub-channels and then the channel itself are closed
    // if open and rescinded. The device is not called again once this
    // returns; the relid stays taken until the guest releases it
    // (RELID_RELEASED), so a device added next cannot get a relid the guest
    // still uses. A guest that was never offered the channel forgets
    // nothing: the relid is free at once. False when `relid` is not a
    // primary channel in use.
    bool remove_channel(u32 relid);
    // The relids of `primary`'s sub-channels, by index (for tests and stats).
    std::vector<u32> sub_channels(u32 primary) const;
    // Host to guest: sets the channel's bit in its target VP's event flags
    // and interrupts when the bit was clear. False when the channel is not open.
    bool signal_guest(u32 relid);

    // The negotiated version; 0 before contact and after UNLOAD.
    u32 version() const { return m_version; }
    bool channel_open(u32 relid) const;
    // The pages of a complete GPADL the guest made for `relid`'s channel
    // (a device's own buffers beside its rings: netvsp's receive and send
    // buffers); null when there is none. Valid until the next message.
    const std::vector<u64>* gpadl_pages(u32 relid, u32 handle) const;
    const Counters& counters() const { return m_counters; }

    // Machine reset: every channel closed, GPADLs forgotten, no contact.
    void reset();
    // The protocol state (channels by relid; devices save their own).
    void visit_state(StateVisitor& v);

    // Where host messages wait while the guest's SINT queue is full; the
    // machine calls this when a slot of `vp`'s SINT may have emptied.
    void slot_freed(unsigned vp, unsigned sint);

private:
    // Free: no channel has the relid. Rescinded: the guest was told the
    // channel is gone and has not yet released its relid (RELID_RELEASED).
    enum class ChannelState : u8 { Offered, Open, Free, Rescinded };
    struct Channel {
        Offer offer;
        Device* device = nullptr;
        ChannelState state = ChannelState::Free;
        u32 target_vp = 0;
        u32 ring_gpadl = 0;
        u32 primary = 0; // a sub-channel's primary relid
    };
    struct Gpadl {
        u32 relid = 0;
        u16 range_buflen = 0;
        u16 range_count = 0;
        std::vector<u8> ranges; // the range buffer as received so far
        bool complete = false;
        std::vector<u64> pfns;  // when complete: every page of every range
    };

    HvStatus receive(unsigned vp, u32 connection_id, std::span<const u8> message);
    void initiate_contact(u32 connection_id, std::span<const u8> m);
    void request_offers();
    void gpadl_header(std::span<const u8> m);
    void gpadl_body(std::span<const u8> m);
    void gpadl_teardown(std::span<const u8> m);
    void open_channel(std::span<const u8> m);
    void close_channel(std::span<const u8> m);
    void modify_channel(std::span<const u8> m);
    void unload();

    bool finish_gpadl(Gpadl& gpadl) const;
    void gpadl_created(u32 relid, u32 handle, bool ok);
    void send_offer(u32 relid);
    void send(std::span<const u8> message);
    void flush_outbox();
    void close_all();
    u32 allocate(const Offer& offer, Device& device, u32 primary);
    void free_channel(u32 relid);
    void close_open_channel(Channel& ch);
    void end_sub_channels(u32 primary, bool tell_guest);
    void rescind(u32 relid);
    void relid_released(std::span<const u8> m);
    void add_event_port(u32 relid);
    bool load_channels(StateVisitor& v, std::vector<Channel> loaded);
    Channel* channel(u32 relid);
    void refuse() { ++m_counters.refused; }

    HyperV& m_hv;
    std::vector<Channel> m_channels; // relid = index + 1; Free slots are reused
    std::map<u32, Gpadl> m_gpadls;   // by the guest's handle
    u32 m_version = 0;
    u32 m_target_vp = 0;
    u32 m_sint = vmbus::MESSAGE_SINT;
    bool m_offers_requested = false;
    std::deque<std::vector<u8>> m_outbox; // not yet accepted by the SynIC
    Counters m_counters;
};
