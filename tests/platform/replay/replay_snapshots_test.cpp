// In-memory snapshots along a replay (platform/replay/replay_snapshots.h): a
// machine put back to a snapshot runs on exactly as it did (registers, RAM,
// serial output), with the JIT on and off, from an older snapshot after
// later ones were taken, and after the store thinned out; a snapshot is
// refused while a disk request is pending; the dirty log is clean after a
// restore; the store stays under its limit and keeps its first snapshot.
#include "platform/replay/replay_log.h"
#include "platform/replay/replay_snapshots.h"

#include "mmu/page_walker.h"
#include "tests/platform/block/temp_dir.h"
#include "tests/platform/block/test_image.h"

#include <doctest/doctest.h>

#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>

using namespace replay;

namespace {

// Two vCPUs. The BSP, in flat 32-bit protected mode at 0x10000, enables its
// local APIC with a periodic timer (vector 0x40, a handler that counts),
// starts the AP, and loops: a linear congruential generator scatters its
// values over 4 MiB at 0x400000; every 1024 rounds it calls two functions
// (mov eax, imm32; ret, one on each of the next two pages) and adds what
// they return at 0x3000, then patches the immediate of one of them, in
// turn: decoded code a restore must drop (the other one is cached and
// differs from the snapshot's bytes). Then it writes a letter to COM1, and
// every 8192 rounds waits in HLT for the timer and writes a newline. The
// AP, in real mode at 0x8000, scatters a counter over 64 KiB at 0x20000 and
// counts its rounds at 0x3008. (nasm source in the commit that added this.)
const std::vector<u8> BSP = {
    0xC7, 0x05, 0xF0, 0x00, 0xE0, 0xFE, 0xFF, 0x01, 0x00, 0x00, 0xC7, 0x05, 0xE0, 0x03, 0xE0, 0xFE,
    0x0B, 0x00, 0x00, 0x00, 0xC7, 0x05, 0x20, 0x03, 0xE0, 0xFE, 0x40, 0x00, 0x02, 0x00, 0xC7, 0x05,
    0x80, 0x03, 0xE0, 0xFE, 0x30, 0x75, 0x00, 0x00, 0xC7, 0x05, 0x10, 0x03, 0xE0, 0xFE, 0x00, 0x00,
    0x00, 0x01, 0xC7, 0x05, 0x00, 0x03, 0xE0, 0xFE, 0x00, 0x45, 0x00, 0x00, 0xC7, 0x05, 0x00, 0x03,
    0xE0, 0xFE, 0x08, 0x46, 0x00, 0x00, 0xFB, 0xBE, 0x39, 0x30, 0x00, 0x00, 0x31, 0xFF, 0x69, 0xF6,
    0x6D, 0x4E, 0xC6, 0x41, 0x81, 0xC6, 0x39, 0x30, 0x00, 0x00, 0x89, 0xF0, 0xC1, 0xE8, 0x08, 0x25,
    0xFC, 0xFF, 0x3F, 0x00, 0x89, 0xB0, 0x00, 0x00, 0x40, 0x00, 0x47, 0xF7, 0xC7, 0xFF, 0x03, 0x00,
    0x00, 0x75, 0xDB, 0xE8, 0x88, 0x0F, 0x00, 0x00, 0x01, 0x05, 0x00, 0x30, 0x00, 0x00, 0xE8, 0x7D,
    0x1F, 0x00, 0x00, 0x01, 0x05, 0x00, 0x30, 0x00, 0x00, 0xF7, 0xC7, 0x00, 0x04, 0x00, 0x00, 0x74,
    0x08, 0x89, 0x3D, 0x01, 0x10, 0x01, 0x00, 0xEB, 0x06, 0x89, 0x3D, 0x01, 0x20, 0x01, 0x00, 0x89,
    0xF8, 0xC1, 0xE8, 0x0A, 0x83, 0xE0, 0x0F, 0x04, 0x61, 0x66, 0xBA, 0xF8, 0x03, 0xEE, 0xF7, 0xC7,
    0xFF, 0x1F, 0x00, 0x00, 0x75, 0x98, 0xF4, 0xB0, 0x0A, 0xEE, 0xEB, 0x92, 0xFF, 0x05, 0x04, 0x30,
    0x00, 0x00, 0xC7, 0x05, 0xB0, 0x00, 0xE0, 0xFE, 0x00, 0x00, 0x00, 0x00, 0xCF};
constexpr GuestPhys BSP_CODE = 0x10000, TIMER_HANDLER = 0x100BC;
const std::vector<u8> PATCHED_FUNCTION = {0xB8, 0x00, 0x00, 0x00, 0x00, 0xC3}; // mov eax, imm32; ret
constexpr GuestPhys PATCHED_FUNCTIONS[2] = {0x11000, 0x12000};
const std::vector<u8> AP = {0x31, 0xC0, 0x8E, 0xD8, 0xB8, 0x00, 0x20, 0x8E, 0xC0, 0x31, 0xC9, 0x81,
                            0xC1, 0x35, 0x12, 0x89, 0xCB, 0x83, 0xE3, 0xFE, 0x26, 0x89, 0x0F, 0x83,
                            0x06, 0x08, 0x30, 0x01, 0x83, 0x16, 0x0A, 0x30, 0x00, 0xEB, 0xE8};
constexpr GuestPhys GDT = 0x1000, IDT = 0x2000;

struct Guest {
    std::string com1;
    std::unique_ptr<Machine> machine;

    // With `memory_bytes` other than 32 MiB: an empty machine (a kernel is
    // loaded into it).
    explicit Guest(bool jit, u64 memory_bytes = 32ull << 20)
    {
        MachineConfig config;
        config.memory_bytes = memory_bytes;
        config.cpu_count = 2;
        config.deterministic = true;
        config.jit = jit;
        config.com1_output = [this](u8 byte) { com1.push_back(static_cast<char>(byte)); };
        ErrorOr<std::unique_ptr<Machine>> created = Machine::create(config);
        REQUIRE_FALSE(created.is_error());
        machine = created.release_value();
        if (memory_bytes != 32ull << 20)
            return;
        PhysicalMemory& memory = machine->memory();
        REQUIRE(memory.write_bytes(BSP_CODE, BSP.data(), BSP.size()));
        for (GuestPhys function : PATCHED_FUNCTIONS)
            REQUIRE(memory.write_bytes(function, PATCHED_FUNCTION.data(), PATCHED_FUNCTION.size()));
        REQUIRE(memory.write_bytes(0x8000, AP.data(), AP.size()));
        // Null, flat code (0x08), flat data (0x10); the timer's interrupt gate.
        const u64 gdt[3] = {0, 0x00CF9A000000FFFFull, 0x00CF92000000FFFFull};
        REQUIRE(memory.write_bytes(GDT, gdt, sizeof gdt));
        const u64 gate = (TIMER_HANDLER & 0xFFFF) | (u64{0x08} << 16) | (u64{0x8E00} << 32) |
                         (u64{TIMER_HANDLER >> 16} << 48);
        REQUIRE(memory.write_bytes(IDT + 0x40 * 8, &gate, sizeof gate));
        CpuState state = machine->vcpu_state(0);
        state.cr0 |= cr::CR0_PE;
        for (unsigned s = 0; s < SEG_COUNT; ++s) {
            state.seg[s].selector = s == CS ? 0x08 : 0x10;
            state.seg[s].base = 0;
            state.seg[s].limit = 0xFFFFFFFF;
            state.seg[s].attr = Segment::P | Segment::S | Segment::DB | Segment::G | (s == CS ? 0xB : 0x3);
        }
        state.gdtr = {GDT, 3 * 8 - 1};
        state.idtr = {IDT, 0x41 * 8 - 1};
        state.rip = BSP_CODE;
        state.gpr[RSP] = 0x7000;
        machine->set_vcpu_state(0, state);
        machine->memory().start_dirty_log();
    }
};

// This thread's CPU time in milliseconds: the benchmark's clock, which other
// work on a shared host does not inflate as it does wall time.
double cpu_ms()
{
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

u64 ram_hash(Machine& machine)
{
    PhysicalMemory& memory = machine.memory();
    u64 h = 0;
    for (u64 page = 0; page < memory.ram_page_count(); ++page)
        h = content_hash({memory.ram_page_by_index(page), 4096}, h ^ page);
    return h;
}

// Every vCPU's registers and retired count, and RAM.
struct Point {
    std::vector<u64> vcpus;
    u64 ram = 0;
    bool operator==(const Point&) const = default;
};

Point point(Machine& machine)
{
    Point p;
    for (unsigned i = 0; i < machine.vcpu_count(); ++i) {
        p.vcpus.push_back(hash_cpu_state(machine.vcpu_state(i)));
        p.vcpus.push_back(machine.vcpu_retired(i));
    }
    p.ram = ram_hash(machine);
    return p;
}

std::vector<u8> saved_state(Machine& machine)
{
    StateVisitor saver = StateVisitor::saver();
    machine.visit_state(saver);
    REQUIRE(saver.ok());
    return saver.bytes();
}

// Runs the machine as a replay does: at every host poll the dirty log is
// collected and handed to the store (a sync record), then `at_poll` sees the
// retired count; the run ends at the first poll at or after `until`.
void run_until(Machine& machine, ReplaySnapshots& store, u64 until,
               const std::function<void(u64 retired)>& at_poll = {})
{
    PhysicalMemory::DirtyBitmap written;
    const RunOutcome outcome = machine.run([&]() -> std::optional<int> {
        machine.memory().collect_dirty(written);
        store.note_written(written);
        const u64 retired = machine.retired();
        if (at_poll)
            at_poll(retired);
        if (retired >= until)
            return 0;
        return std::nullopt;
    });
    INFO("vCPU ", outcome.vcpu, " fault ", unsigned{outcome.fault.vector}, " at ",
         machine.vcpu_state(outcome.vcpu).rip, " after ", machine.retired());
    REQUIRE(outcome.kind == RunOutcome::Kind::HostStop);
}

std::vector<u8> extra_of(u64 key)
{
    return {static_cast<u8>(key), static_cast<u8>(key >> 8), static_cast<u8>(key >> 16), 0x5A};
}

// Snapshots taken at the first poll after each of `at`: the point, the
// state and the serial output's length there.
struct Taken {
    u64 key = 0;
    Point at;
    std::vector<u8> state;
    size_t com1 = 0;
};

std::vector<Taken> run_taking(Guest& g, ReplaySnapshots& store, u64 until, std::vector<u64> at)
{
    std::vector<Taken> taken;
    run_until(*g.machine, store, until, [&](u64 retired) {
        if (taken.size() == at.size() || retired < at[taken.size()])
            return;
        Taken t{retired, point(*g.machine), saved_state(*g.machine), g.com1.size()};
        REQUIRE(store.take(*g.machine, retired, extra_of(retired)));
        taken.push_back(std::move(t));
    });
    REQUIRE(taken.size() == at.size());
    return taken;
}

// Where a run ended, and all it printed.
struct Reference {
    Point end;
    std::string com1;
};

Reference reference(Guest& g) { return {point(*g.machine), g.com1}; }

// Puts the machine back to the snapshot taken as `t` and checks it is where
// it was then; the serial output goes back to what the run had printed by
// then (`ref`: going forward, the machine had not printed it yet). Returns
// how long the restore took.
double restore_to(Guest& g, ReplaySnapshots& store, const Taken& t, const Reference& ref)
{
    const std::optional<size_t> index = store.latest_at_or_before(t.key);
    REQUIRE(index);
    REQUIRE(store.key(*index) == t.key);
    const double start = cpu_ms();
    ErrorOr<std::vector<u8>> extra = store.restore(*index, *g.machine);
    const double took = cpu_ms() - start;
    REQUIRE_FALSE(extra.is_error());
    CHECK(extra.value() == extra_of(t.key));
    CHECK(point(*g.machine) == t.at);
    CHECK(saved_state(*g.machine) == t.state);
    g.com1 = ref.com1.substr(0, t.com1);
    return took;
}

// Back to `t`, then on to `until` again: the run ends where it did, having
// printed the same.
void check_rerun(Guest& g, ReplaySnapshots& store, const Taken& t, u64 until, const Reference& ref)
{
    restore_to(g, store, t, ref);
    run_until(*g.machine, store, until);
    CHECK(point(*g.machine) == ref.end);
    CHECK(g.com1 == ref.com1);
}

void check_snapshot_and_back(bool jit)
{
    Guest g(jit);
    ReplaySnapshots store;
    const std::vector<Taken> taken = run_taking(g, store, 4'000'000, {1'500'000});
    // The guest did what the test is about: output, timer interrupts, both vCPUs.
    REQUIRE(g.com1.size() > taken[0].com1 + 10);
    u32 ticks = 0, ap_rounds = 0;
    REQUIRE(g.machine->memory().read_bytes(0x3004, &ticks, 4));
    REQUIRE(g.machine->memory().read_bytes(0x3008, &ap_rounds, 4));
    CHECK(ticks > 10);
    CHECK(ap_rounds > 10000);
    check_rerun(g, store, taken[0], 4'000'000, reference(g));
}

} // namespace

TEST_CASE("A machine put back to an in-memory snapshot runs on to the same registers, RAM and serial output")
{
    check_snapshot_and_back(true);
}

TEST_CASE("A machine put back to an in-memory snapshot runs on the same with the JIT off")
{
    check_snapshot_and_back(false);
}

TEST_CASE("An older in-memory snapshot restores after later ones were taken, and a later one after it")
{
    Guest g(true);
    ReplaySnapshots store;
    const std::vector<Taken> taken =
        run_taking(g, store, 5'000'000, {500'000, 1'200'000, 2'000'000, 2'800'000, 3'600'000});
    REQUIRE(store.count() == 5);
    const Reference ref = reference(g);
    check_rerun(g, store, taken[1], 5'000'000, ref);
    // The rerun passed the later snapshots' points: they are held already.
    CHECK(store.count() == 5);
    // From the machine at the end, back to the second, then straight on to
    // the fourth without running: the pages written between come forward.
    restore_to(g, store, taken[1], ref);
    check_rerun(g, store, taken[3], 5'000'000, ref);
    // And back to the first, which holds all of RAM.
    check_rerun(g, store, taken[0], 5'000'000, ref);
}

TEST_CASE("A snapshot taken between two held ones after a restore goes between them")
{
    Guest g(true);
    ReplaySnapshots store;
    const std::vector<Taken> taken = run_taking(g, store, 3'000'000, {500'000, 2'000'000});
    const Reference ref = reference(g);
    restore_to(g, store, taken[0], ref);
    std::vector<Taken> between;
    run_until(*g.machine, store, 3'000'000, [&](u64 retired) {
        if (!between.empty() || retired < 1'200'000)
            return;
        between.push_back({retired, point(*g.machine), saved_state(*g.machine), g.com1.size()});
        REQUIRE(store.take(*g.machine, retired, extra_of(retired)));
    });
    REQUIRE(store.count() == 3);
    CHECK(store.key(1) == between[0].key);
    check_rerun(g, store, between[0], 3'000'000, ref);
    check_rerun(g, store, taken[1], 3'000'000, ref);
    check_rerun(g, store, taken[0], 3'000'000, ref);
}

TEST_CASE("After a restore the dirty log is clean")
{
    Guest g(true);
    ReplaySnapshots store;
    run_taking(g, store, 2'000'000, {1'000'000});
    // Pages written and not yet collected when the restore comes.
    g.machine->run({}, 100'000);
    REQUIRE_FALSE(store.restore(0, *g.machine).is_error());
    PhysicalMemory::DirtyBitmap written;
    g.machine->memory().collect_dirty(written);
    for (u64 word : written)
        CHECK(word == 0);
}

TEST_CASE("The in-memory snapshots stay under their limit by thinning out older ones, and keep the first")
{
    Guest g(true);
    // About what one snapshot of this guest holds at first (its code and
    // the pages both vCPUs scatter over), so that a few deltas overflow it.
    std::vector<u64> at;
    for (u64 i = 1; i <= 24; ++i)
        at.push_back(i * 200'000);
    ReplaySnapshots probe;
    Guest sizing(true);
    run_taking(sizing, probe, 400'000, {200'000});
    const u64 limit = probe.bytes() * 6;
    ReplaySnapshots store(limit);
    u64 most = 0;
    std::vector<Taken> taken;
    run_until(*g.machine, store, 5'000'000, [&](u64 retired) {
        if (taken.size() == at.size() || retired < at[taken.size()])
            return;
        taken.push_back({retired, point(*g.machine), saved_state(*g.machine), g.com1.size()});
        REQUIRE(store.take(*g.machine, retired, extra_of(retired)));
        most = std::max(most, store.bytes());
    });
    CHECK(most <= limit);
    CHECK(store.count() < taken.size());
    CHECK(store.count() >= 3);
    CHECK(store.key(0) == taken[0].key);
    CHECK(store.key(store.count() - 1) == taken.back().key);
    // A snapshot that survived in the thinned part still puts the machine
    // back exactly (merged pages included), and so does the first.
    const Taken* kept = nullptr;
    for (const Taken& t : taken)
        if (t.key > store.key(0) && t.key < store.key(store.count() - 1) && store.latest_at_or_before(t.key) &&
            store.key(*store.latest_at_or_before(t.key)) == t.key)
            kept = kept ? kept : &t;
    REQUIRE(kept);
    CHECK(store.key(1) == kept->key);
    CHECK(kept->key != taken[1].key); // the second was thinned out
    const Reference ref = reference(g);
    check_rerun(g, store, *kept, 5'000'000, ref);
    check_rerun(g, store, taken[0], 5'000'000, ref);
    store.clear();
    CHECK(store.count() == 0);
    CHECK(store.bytes() == 0);
}

TEST_CASE("An in-memory snapshot is refused while a disk request waits for its completion, and a restore drops one")
{
    TempDir dir;
    MachineConfig config;
    config.memory_bytes = 32ull << 20;
    config.deterministic = true;
    config.enlightenments = false;
    config.drives = {{make_raw_image(dir.file("disk.img"), 1 << 20, true), 0, false, false}};
    ErrorOr<std::unique_ptr<Machine>> created = Machine::create(config);
    REQUIRE_FALSE(created.is_error());
    std::unique_ptr<Machine> machine = created.release_value();
    // Real mode, over and over: READ SECTORS of LBA 0 on the primary master,
    // 65535 rounds of LOOP (the completion comes 20,000 instructions of
    // virtual time after the command), the sector in with REP INSW at 0x9000.
    const std::vector<u8> code = {0xBA, 0xF6, 0x01, 0xB0, 0xE0, 0xEE, 0xBA, 0xF2, 0x01, 0xB0, 0x01, 0xEE, 0x30,
                                  0xC0, 0xBA, 0xF3, 0x01, 0xEE, 0x42, 0xEE, 0x42, 0xEE, 0xBA, 0xF7, 0x01, 0xB0,
                                  0x20, 0xEE, 0xB9, 0xFF, 0xFF, 0xE2, 0xFE, 0x31, 0xC0, 0x8E, 0xC0, 0xBF, 0x00,
                                  0x90, 0xBA, 0xF0, 0x01, 0xB9, 0x00, 0x01, 0xF3, 0x6D, 0xEB, 0xCE};
    REQUIRE(machine->memory().write_bytes(0x7C00, code.data(), code.size()));
    CpuState state = machine->vcpu_state(0);
    state.seg[CS].selector = 0;
    state.seg[CS].base = 0;
    state.rip = 0x7C00;
    machine->set_vcpu_state(0, state);
    machine->memory().start_dirty_log();
    const std::vector<u8> at_start = saved_state(*machine);
    ReplaySnapshots store;
    PhysicalMemory::DirtyBitmap written;
    machine->run({}, 20); // the command is out
    REQUIRE(machine->disk_requests_pending());
    machine->memory().collect_dirty(written);
    CHECK_FALSE(store.take(*machine, 1, {}));
    CHECK(store.count() == 0);
    CHECK(machine->rewind_state(at_start, 0).is_error());
    machine->run({}, 30'000);
    REQUIRE_FALSE(machine->disk_requests_pending());
    machine->memory().collect_dirty(written);
    REQUIRE(store.take(*machine, 2, extra_of(2)));
    const Taken taken{2, point(*machine), saved_state(*machine), 0};
    machine->run({}, 200'000);
    const Point end = point(*machine);
    // Back from a point where the next request is in flight: it is dropped
    // with the future it belonged to, and the rerun ends where the run did.
    for (int i = 0; i < 200 && !machine->disk_requests_pending(); ++i)
        machine->run({}, 1'000);
    REQUIRE(machine->disk_requests_pending());
    ErrorOr<std::vector<u8>> restored = store.restore(0, *machine);
    REQUIRE_FALSE(restored.is_error());
    CHECK_FALSE(machine->disk_requests_pending());
    CHECK(point(*machine) == taken.at);
    CHECK(saved_state(*machine) == taken.state);
    machine->run({}, 200'000);
    CHECK(point(*machine) == end);
}

// Not in CI: the numbers for docs/replay.md, on the Debian kernel booting
// (VIRIDIAN_SNAPSHOT_BENCH=1, guest/ from scripts/fetch-guest.sh, or
// VIRIDIAN_GUEST=DIR): a snapshot every 100 million instructions to 6
// billion, then the one at 4 billion and the first restored and rerun to
// the end, checked as the tests above check. Times are the thread's CPU time.
TEST_CASE("In-memory snapshots of a booting Linux put it back exactly (timed; VIRIDIAN_SNAPSHOT_BENCH)")
{
    if (!std::getenv("VIRIDIAN_SNAPSHOT_BENCH"))
        return;
    const std::string guest = std::getenv("VIRIDIAN_GUEST") ? std::getenv("VIRIDIAN_GUEST") : "guest";
    Guest linux_guest(true, 512ull << 20);
    Machine& machine = *linux_guest.machine;
    REQUIRE_FALSE(
        machine.load_kernel({guest + "/vmlinuz", "vmlinuz", "console=ttyS0 panic=-1", guest + "/initramfs.cpio.gz"})
            .is_error());
    machine.memory().start_dirty_log();
    const auto print = [](const char* format, auto... values) { std::printf(format, values...); std::fflush(stdout); };
    ReplaySnapshots store;
    constexpr u64 EVERY = 100'000'000, END = 6'000'000'000, BACK = 4'000'000'000;
    u64 next = EVERY;
    double take_ms = 0, state_ms = 0, first_ms = 0;
    u64 takes = 0, first_bytes = 0, pages = 0;
    std::vector<Taken> taken;
    const auto start = cpu_ms();
    run_until(machine, store, END, [&](u64 retired) {
        if (retired < next)
            return;
        next += EVERY;
        const u64 before = store.bytes();
        const auto t0 = cpu_ms();
        if (!store.take(machine, retired, extra_of(retired)))
            return print("snapshot at %llu refused (a disk request)\n", (unsigned long long)retired);
        const double took = cpu_ms() - t0;
        const auto t1 = cpu_ms();
        const std::vector<u8> state = saved_state(machine);
        state_ms += cpu_ms() - t1;
        if (takes++ == 0) {
            first_ms = took;
            first_bytes = store.bytes();
        } else {
            take_ms += took;
            pages += store.costs().take_pages;
        }
        print("snapshot at %llu: %.2f ms, %llu pages, %llu KiB (state %llu KiB)\n", (unsigned long long)retired, took,
              (unsigned long long)store.costs().take_pages, (unsigned long long)((store.bytes() - before) >> 10),
              (unsigned long long)(state.size() >> 10));
        if (taken.empty() || (taken.size() == 1 && retired >= BACK))
            taken.push_back({retired, point(machine), state, linux_guest.com1.size()});
    });
    const double run_ms = cpu_ms() - start;
    REQUIRE(taken.size() == 2);
    print("boot to %llu instructions: %.0f ms with %llu snapshots; the first %.1f ms, %llu KiB; the others %.2f ms "
          "(of which the state %.2f ms), %llu pages and %llu KiB each on average; %llu MiB held\n",
          (unsigned long long)END, run_ms, (unsigned long long)takes, first_ms, (unsigned long long)(first_bytes >> 10),
          take_ms / double(takes - 1), state_ms / double(takes), (unsigned long long)(pages / (takes - 1)),
          (unsigned long long)((store.bytes() - first_bytes) / (takes - 1) >> 10),
          (unsigned long long)(store.bytes() >> 20));
    const Reference ref = reference(linux_guest);
    const size_t last_line = ref.com1.rfind('\n', ref.com1.size() - 2);
    print("serial output at the end: %zu bytes, the last line: %s", ref.com1.size(),
          ref.com1.substr(last_line == std::string::npos ? 0 : last_line + 1).c_str());
    for (auto it = taken.rbegin(); it != taken.rend(); ++it) {
        const u64 from = machine.retired();
        const double took = restore_to(linux_guest, store, *it, ref);
        print("\nrestore from %llu to %llu: %.2f ms, %llu pages compared or copied\n", (unsigned long long)from,
              (unsigned long long)it->key, took, (unsigned long long)store.costs().restore_pages);
        const auto rerun = cpu_ms();
        run_until(machine, store, END);
        print("rerun of %llu instructions: %.0f ms\n", (unsigned long long)(machine.retired() - it->key),
              cpu_ms() - rerun);
        CHECK(point(machine) == ref.end);
        CHECK(linux_guest.com1 == ref.com1);
    }
}
