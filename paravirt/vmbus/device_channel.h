// One channel of a VMBus device that may have several, the primary or one
// of its sub-channels (storvsp's queues, netvsp's vRSS channels): the rings
// the guest gave it, its relid, and the completions waiting for room in its
// ring. A request is answered on the channel it came on (Linux finds its
// requests per channel). The device derives its channel class from this
// and says what a signal from the guest does.
#pragma once

#include "mmu/base/state_visitor.h"
#include "paravirt/vmbus/vmbus_ring.h"
#include "paravirt/vmbus/vmbus_server.h"

#include <functional>
#include <optional>
#include <vector>

class DeviceChannel : public VmbusServer::Device {
public:
    bool open(const VmbusServer::OpenRequest& request) override;
    void close() override;

    // Queues a completion and writes what fits; false (and nothing queued)
    // when the backlog is full: the guest asks and never reads its ring.
    bool complete(u64 transaction_id, std::vector<u8> body);
    // Writes the completions the ring has room for now.
    void flush_completions();
    // Interrupts the guest for this channel.
    void signal() { m_signal_guest(m_relid); }

    bool is_open() const { return m_rings.has_value(); }
    u32 relid() const { return m_relid; }
    std::optional<vmbus::RingPair>& rings() { return m_rings; }

protected:
    // `max_backlog` completions of at most `max_body` bytes wait at most.
    DeviceChannel(GuestMemory memory, std::function<void(u32 relid)> signal_guest, size_t max_backlog,
                  size_t max_body);

    // The relid, the rings (rebuilt from their saved pages) and the waiting
    // completions; `device` names the device in load errors.
    void visit_channel_state(StateVisitor& v, const char* device);

    GuestMemory m_memory;

private:
    std::function<void(u32 relid)> m_signal_guest;
    size_t m_max_backlog, m_max_body;
    u32 m_relid = 0;
    std::optional<vmbus::RingPair> m_rings;
    vmbus::CompletionBacklog m_backlog;
};
