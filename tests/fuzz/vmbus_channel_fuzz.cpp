// Fuzz target: the channel side of VMBus devices as a hostile guest drives
// it — the ring buffers in guest memory (vmbus_ring.h), storvsp's vstor
// packets and GPA-direct page lists (storvsp.h) and the integration
// services' IC messages (ic_service.h: shutdown, heartbeat, time sync, KVP, VSS, file copy),
// their timers run on a clock the input moves. The guest writes packets the way Linux does
// or pokes any bytes into the ring pages (indices, masks, descriptors),
// reads or ignores the host's packets, re-opens channels on page lists of
// its choice, and signals; the SCSI target under storvsp completes at once
// or later. After each save, a load into fresh devices and a second save
// must give the same bytes. Built with libFuzzer (scripts/fuzz.sh) and with
// the seeded driver fuzz_driver.cpp, like the others.
#include "paravirt/vmbus/fcopy_ic.h"
#include "paravirt/vmbus/heartbeat_ic.h"
#include "paravirt/vmbus/kvp_ic.h"
#include "paravirt/vmbus/vss_ic.h"
#include "paravirt/vmbus/shutdown_ic.h"
#include "paravirt/vmbus/storvsp.h"
#include "paravirt/vmbus/timesync_ic.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/vmbus_fuzz_guest.h"

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

namespace {

constexpr u64 RAM = 4ull << 20;
constexpr u64 RING_PFN = 0x100;    // storvsp's ring GPADL: 8 pages
constexpr u64 IC_RING_PFN = 0x110; // the integration services': 4 pages each
constexpr unsigned IC_COUNT = 6;
constexpr u64 DATA_PFN = 0x200;    // where SRB data pages point, mostly
constexpr size_t MAX_STEPS = 1024;
constexpr u32 KNOWN_OPERATIONS[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13};

// Completes SCSI commands at once or when released, filling reads.
struct Target : ScsiTarget {
    bool hold = false;
    std::vector<std::pair<Result, Done>> held;
    void execute(const Command& c, Done done) override
    {
        Result r;
        if (!c.cdb.empty() && (c.cdb[0] & 1)) {
            r.status = 2;
            r.sense.assign(18, 0x70);
        } else {
            r.transferred = static_cast<u32>(c.data.size());
            if (c.direction == Direction::FromDevice)
                for (u8& b : c.data)
                    b = 0xA5;
        }
        if (hold)
            held.emplace_back(r, std::move(done));
        else
            done(r);
    }
    void release()
    {
        auto batch = std::move(held);
        held.clear();
        for (auto& [r, done] : batch)
            done(r);
    }
};

// The guest's reader (hv_pkt_iter) on the second ring of the 4-page GPADL
// at `pfn` (header, one data page): the next packet's body, consumed.
std::optional<std::vector<u8>> guest_read(GuestMemory m, u64 pfn)
{
    const u64 header = (pfn + 2) * PAGE_SIZE, data = header + PAGE_SIZE;
    u32 w = 0, r = 0;
    if (!m.read(header, &w, 4) || !m.read(header + 4, &r, 4) || w >= PAGE_SIZE || r >= PAGE_SIZE || w == r ||
        (w | r) % 8)
        return std::nullopt;
    u8 d[16];
    for (u32 i = 0; i < 16; ++i)
        (void)m.read(data + (r + i) % PAGE_SIZE, &d[i], 1);
    const u32 offset = load_le16(d, 2) * 8u, length = load_le16(d, 4) * 8u;
    if (offset < 16 || length < offset || length + 8 > PAGE_SIZE)
        return std::nullopt;
    std::vector<u8> body(length - offset);
    for (u32 i = 0; i < body.size(); ++i)
        (void)m.read(data + (r + offset + i) % PAGE_SIZE, &body[i], 1);
    const u32 next = (r + length + 8) % PAGE_SIZE;
    (void)m.write(header + 4, &next, 4);
    return body;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    FuzzInput in{data, size};
    PhysicalMemory ram{RAM};
    GuestMemory memory{ram};
    Target target;
    Storvsp vsp(memory, target, {[](u32) {}, [](u32, u16) { return true; }}, 2);
    u64 ns = 0;
    VirtualClock clock(VirtualClock::Mode::Deterministic);
    clock.set_instruction_counter([&ns] { return ns; });
    auto utc = [&clock] { return clock.now_ns(); };
    auto reference = [&clock] { return clock.now_ns() / 100; };
    ShutdownIc shutdown(memory, [] {});
    HeartbeatIc heartbeat(memory, [] {}, clock);
    TimesyncIc timesync(memory, [] {}, clock, utc, reference);
    KvpIc kvp(memory, [] {});
    VssIc vss(memory, [] {});
    FcopyIc fcopy(memory, [] {});
    IcService* const ics[IC_COUNT] = {&shutdown, &heartbeat, &timesync, &kvp, &vss, &fcopy};
    if (!vsp.open(ring(RING_PFN, 8, 4)))
        fail("the first open failed");
    for (unsigned i = 0; i < IC_COUNT; ++i) {
        if (!ics[i]->open(ring(IC_RING_PFN + 4 * i, 4, 2)))
            fail("the first open failed");
        ics[i]->opened();
    }
    for (size_t step = 0; step < MAX_STEPS && !in.done(); ++step) {
        const u8 op = in.byte();
        switch (op % 10) {
        case 0:
        case 1: { // a vstor packet as Linux writes it, inband or GPA-direct
            std::vector<u8> body = in.bytes(in.byte() % 2 ? 64 : in.byte() % 80);
            if (body.size() >= 4 && (op & 0x10))
                store_le32(body, 0, KNOWN_OPERATIONS[body[0] % std::size(KNOWN_OPERATIONS)]);
            std::vector<u8> extra;
            if (op & 0x20) { // one range of up to 4 pages near the data pages
                const u32 pages = 1 + in.byte() % 4;
                extra.resize(16 + 8 * pages);
                store_le32(extra, 4, 1);
                store_le32(extra, 8, in.word() % (pages * PAGE_SIZE) + 1);
                store_le32(extra, 12, in.byte() % 2 ? 0 : in.word() % PAGE_SIZE);
                for (u32 i = 0; i < pages; ++i)
                    store_le64(extra, 16 + 8 * i, in.byte() % 8 ? DATA_PFN + in.byte() % 16 : in.dword());
                extra.resize(16 + 8 * pages - (in.byte() % 4 == 0 ? 8 : 0)); // sometimes one short
            }
            guest_write(memory, RING_PFN, 3, op & 0x20 ? vmbus::PACKET_DATA_USING_GPA_DIRECT : in.byte() % 12,
                        in.byte() & 1, extra, body);
            break;
        }
        case 2: { // any bytes anywhere in the ring GPADLs
            const u64 at = RING_PFN * PAGE_SIZE + in.word() % ((0x10 + 4 * IC_COUNT) * PAGE_SIZE);
            const std::vector<u8> bytes = in.bytes(in.byte() % 16);
            (void)memory.write(at, bytes.data(), bytes.size());
            break;
        }
        case 3:
            vsp.signaled();
            break;
        case 4: { // the guest consumes (or skips) what the host wrote
            const u64 pfn = op & 0x10 ? IC_RING_PFN + 4 * ((op >> 5) % IC_COUNT) + 2 : RING_PFN + 4;
            u32 w = 0;
            (void)memory.read(pfn * PAGE_SIZE, &w, 4);
            (void)memory.write(pfn * PAGE_SIZE + 4, &w, 4);
            break;
        }
        case 5:
            target.hold = op & 0x10;
            target.release();
            break;
        case 6: { // an integration service: a guest answer, a signal, time passing
            const unsigned which = (op >> 4) % IC_COUNT;
            std::vector<u8> answer;
            if (op & 0x40) {
                // hv_utils' answer to the host's next message: counts 1/1
                // (the host's first versions), the heartbeat's number plus
                // one, then maybe one byte changed.
                answer = guest_read(memory, IC_RING_PFN + 4 * which).value_or(std::vector<u8>{});
                if (answer.size() >= ic::NEGOTIATE_VERSIONS && load_le16(answer, ic::TYPE) == ic::TYPE_NEGOTIATE) {
                    store_le16(answer, ic::NEGOTIATE_FRAMEWORK_COUNT, 1);
                    store_le16(answer, ic::NEGOTIATE_MESSAGE_COUNT, 1);
                } else if (answer.size() >= ic::HEARTBEAT_SEQUENCE + 8 &&
                           load_le16(answer, ic::TYPE) == ic::TYPE_HEARTBEAT) {
                    store_le64(answer, ic::HEARTBEAT_SEQUENCE,
                                     load_le64(answer, ic::HEARTBEAT_SEQUENCE) + 1);
                }
                if (!answer.empty() && in.byte() % 4 == 0)
                    answer[in.word() % answer.size()] = in.byte();
            } else {
                answer = in.bytes(in.byte() % 64);
            }
            if (answer.size() > ic::FLAGS)
                answer[ic::FLAGS] |= ic::FLAG_RESPONSE;
            guest_write(memory, IC_RING_PFN + 4 * which, 1, vmbus::PACKET_DATA_INBAND, 0, {}, answer);
            ics[which]->signaled();
            (void)shutdown.request_shutdown();
            if (in.byte() % 2)
                timesync.sync_soon();
            // The host's own KVP and backup requests, now and then.
            if (const u8 b = in.byte(); b % 4 == 0) {
                (void)kvp.set("key" + std::to_string(b), "value");
                kvp.refresh();
            } else if (b % 4 == 1) {
                (void)(b & 0x10 ? vss.freeze() : vss.thaw());
            } else if (b % 8 == 2) {
                // A file copy of a few bytes (its writes do not fit this
                // ring's one data page: they fail the copy) or a cancel.
                FcopyIc::Copy copy;
                copy.destination = b & 0x10 ? "/tmp/f" : "relative";
                copy.size = b & 0x20 ? 0 : in.byte();
                copy.read = [](u64, std::span<u8> out) { return out.size() < 100; };
                (void)(b & 0x40 ? fcopy.cancel() : fcopy.start(std::move(copy)).empty());
            }
            ns += u64{in.word()} * 1'000'000;
            clock.run_due();
            break;
        }
        case 7: { // close and open again, on the usual pages or the guest's choice
            vsp.close();
            VmbusServer::OpenRequest r = ring(RING_PFN, 8, 4);
            if (op & 0x10)
                for (u64& pfn : r.ring_pfns)
                    pfn = in.byte() % 4 ? pfn : in.dword();
            r.downstream_offset = op & 0x20 ? in.byte() % 10 : 4;
            (void)vsp.open(r);
            break;
        }
        case 8:
            target.release();
            round_trip<Storvsp>(vsp, [&] { return std::make_unique<Storvsp>(memory, target, Storvsp::Links{[](u32) {}, [](u32, u16) { return true; }}, 2); });
            round_trip<ShutdownIc>(shutdown, [&] { return std::make_unique<ShutdownIc>(memory, [] {}); });
            round_trip<HeartbeatIc>(heartbeat, [&] { return std::make_unique<HeartbeatIc>(memory, [] {}, clock); });
            round_trip<TimesyncIc>(timesync,
                                   [&] { return std::make_unique<TimesyncIc>(memory, [] {}, clock, utc, reference); });
            round_trip<KvpIc>(kvp, [&] { return std::make_unique<KvpIc>(memory, [] {}); });
            round_trip<VssIc>(vss, [&] { return std::make_unique<VssIc>(memory, [] {}); });
            round_trip<FcopyIc>(fcopy, [&] { return std::make_unique<FcopyIc>(memory, [] {}); });
            break;
        case 9: {
            const unsigned which = (op >> 4) % IC_COUNT;
            ics[which]->close();
            (void)ics[which]->open(ring(IC_RING_PFN + 4 * which, 4, 2));
            ics[which]->opened();
            break;
        }
        }
    }
    target.hold = false;
    target.release();
    return 0;
}
