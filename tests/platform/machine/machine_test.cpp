// The Machine built in-process from a configuration alone: code is placed
// in its RAM, the boot vCPU pointed at it, and the run's outcome, the
// registers and the serial output are compared.
#include "platform/machine/machine.h"
#include "tests/state_patch.h"

#include <doctest/doctest.h>

#include <algorithm>

#include <chrono>
#include <cstddef>
#include <initializer_list>
#include <string>
#include <thread>

namespace {

constexpr GuestPhys CODE = 0x7C00;

struct TestMachine {
    std::string com1;
    std::unique_ptr<Machine> machine;

    explicit TestMachine(unsigned cpus = 1, bool jit = true, CommandQueue* commands = nullptr,
                         bool input_can_wake = false, bool deterministic = true)
    {
        MachineConfig config;
        config.commands = commands;
        config.input_can_wake = input_can_wake;
        config.memory_bytes = 32ull << 20;
        config.cpu_count = cpus;
        config.deterministic = deterministic;
        config.jit = jit;
        config.com1_output = [this](u8 byte) { com1.push_back(static_cast<char>(byte)); };
        ErrorOr<std::unique_ptr<Machine>> created = Machine::create(config);
        REQUIRE_FALSE(created.is_error());
        machine = created.release_value();
    }

    // Real mode at 0000:7C00 with the given code there, as a boot sector runs.
    void boot_real_mode(std::initializer_list<u8> code)
    {
        std::vector<u8> bytes(code);
        REQUIRE(machine->memory().write_bytes(CODE, bytes.data(), bytes.size()));
        CpuState state = machine->vcpu_state(0);
        state.seg[CS].selector = 0;
        state.seg[CS].base = 0;
        state.rip = CODE;
        machine->set_vcpu_state(0, state);
    }
};

// mov dx,0x3F8; mov al,'h'; out dx,al; mov al,'i'; out dx,al;
// mov ax,0x1234; mov bx,ax; add bx,0x0101;
// mov dx,0xF4; mov al,0x10; out dx,al (debug exit: status 0x21); hlt
const std::initializer_list<u8> HELLO = {
    0xBA, 0xF8, 0x03, 0xB0, 0x68, 0xEE, 0xB0, 0x69, 0xEE, 0xB8, 0x34, 0x12, 0x89, 0xC3,
    0x81, 0xC3, 0x01, 0x01, 0xBA, 0xF4, 0x00, 0xB0, 0x10, 0xEE, 0xF4};

} // namespace

TEST_CASE("A machine built from a configuration alone runs code placed in its RAM")
{
    TestMachine t;
    t.boot_real_mode(HELLO);
    const RunOutcome outcome = t.machine->run();
    CHECK(outcome.kind == RunOutcome::Kind::GuestExit);
    CHECK(outcome.status == 0x21);
    CHECK(t.com1 == "hi");
    const CpuState state = t.machine->vcpu_state(0);
    CHECK((state.gpr[RBX] & 0xFFFF) == 0x1335);
    CHECK(state.rip == CODE + 24); // after the OUT to the debug-exit port
    CHECK(t.machine->retired() == 11);
}

TEST_CASE("A machine's run stops at its instruction limit and can go on from there")
{
    TestMachine t;
    t.boot_real_mode({0x40, 0xEB, 0xFD}); // inc ax; jmp back
    RunOutcome outcome = t.machine->run({}, 1001);
    CHECK(outcome.kind == RunOutcome::Kind::InstructionLimit);
    CHECK(t.machine->retired() == 1001);
    CHECK((t.machine->vcpu_state(0).gpr[RAX] & 0xFFFF) == 501);
    outcome = t.machine->run({}, 1000);
    CHECK(outcome.kind == RunOutcome::Kind::InstructionLimit);
    CHECK(t.machine->retired() == 2001);
    CHECK((t.machine->vcpu_state(0).gpr[RAX] & 0xFFFF) == 1001);
}

TEST_CASE("A machine with every vCPU halted and interrupts off reports it cannot wake")
{
    TestMachine t(2);
    t.boot_real_mode({0xFA, 0xF4}); // cli; hlt
    const RunOutcome outcome = t.machine->run();
    CHECK(outcome.kind == RunOutcome::Kind::HaltedForever);
    CHECK(t.machine->retired() == 2); // the AP never left wait-for-SIPI
}

TEST_CASE("A fault with no way to deliver it ends the machine's run as a triple fault")
{
    TestMachine t;
    t.boot_real_mode({0xCC}); // int3 with an IDT too short for any vector
    CpuState state = t.machine->vcpu_state(0);
    state.idtr.limit = 0;
    t.machine->set_vcpu_state(0, state);
    const RunOutcome outcome = t.machine->run();
    CHECK(outcome.kind == RunOutcome::Kind::TripleFault);
    CHECK(outcome.vcpu == 0);
}

TEST_CASE("The host poll ends a machine's run with the status it returns")
{
    TestMachine t;
    t.boot_real_mode({0xEB, 0xFE}); // jmp $
    unsigned polls = 0;
    const RunOutcome outcome = t.machine->run([&]() -> std::optional<int> {
        return ++polls == 3 ? std::optional<int>(130) : std::nullopt;
    });
    CHECK(outcome.kind == RunOutcome::Kind::HostStop);
    CHECK(outcome.status == 130);
    // Polls come between rounds, about every QUANTUM instructions.
    CHECK(t.machine->retired() >= 2 * Machine::QUANTUM);
    CHECK(t.machine->retired() < 3 * Machine::QUANTUM);
}

TEST_CASE("The host poll is asked after every idle wait of a deterministic machine")
{
    TestMachine t;
    // sti; hlt; jmp back: the PIT's IRQ 0 fires on and on, masked at the
    // 8259A (its power-on state), so the vCPU never wakes and no
    // instruction retires; only the host can end this run.
    t.boot_real_mode({0xFB, 0xF4, 0xEB, 0xFD});
    unsigned polls = 0;
    const RunOutcome outcome =
        t.machine->run([&]() -> std::optional<int> { return ++polls == 5 ? std::optional<int>(3) : std::nullopt; });
    CHECK(outcome.kind == RunOutcome::Kind::HostStop);
    CHECK(outcome.status == 3);
    CHECK(t.machine->retired() == 2);
}

TEST_CASE("Typed input reaches the guest through COM1")
{
    TestMachine t;
    // mov dx,0x3FD; poll: in al,dx; test al,1; jz poll; mov dx,0x3F8;
    // in al,dx; out dx,al (echo); mov dx,0xF4; out dx,al
    t.boot_real_mode({0xBA, 0xFD, 0x03, 0xEC, 0xA8, 0x01, 0x74, 0xFB, 0xBA, 0xF8, 0x03,
                      0xEC, 0xEE, 0xBA, 0xF4, 0x00, 0xEE});
    bool typed = false;
    const RunOutcome outcome = t.machine->run([&]() -> std::optional<int> {
        if (!typed)
            t.machine->serial_input('x');
        typed = true;
        return std::nullopt;
    });
    CHECK(outcome.kind == RunOutcome::Kind::GuestExit);
    CHECK(outcome.status == (('x' << 1) | 1));
    CHECK(t.com1 == "x");
}

TEST_CASE("The same program on the interpreter alone and with the JIT retires the same")
{
    TestMachine interpreted(1, false), translated(1, true);
    for (TestMachine* t : {&interpreted, &translated}) {
        t->boot_real_mode(HELLO);
        CHECK(t->machine->run().kind == RunOutcome::Kind::GuestExit);
    }
    CHECK(interpreted.machine->retired() == translated.machine->retired());
    CHECK(interpreted.com1 == translated.com1);
}

TEST_CASE("A machine refuses a saved vCPU state with a flag that is no bool or registers no instruction sets")
{
    TestMachine t;
    StateVisitor save = StateVisitor::saver();
    t.machine->visit_state(save);
    REQUIRE(save.ok());
    // The machine's section and vCPU count, then vCPU 0's section and its CpuState.
    const size_t cpu = section_bytes("machine") + 4 + section_bytes("vcpu");
    struct Bad {
        size_t offset;
        u64 value;
        size_t size;
    };
    const Bad cases[] = {
        {offsetof(CpuState, events) + offsetof(PendingEvents, halted), 2, 1},
        {offsetof(CpuState, events) + offsetof(PendingEvents, nmi), 0xFF, 1},
        {offsetof(CpuState, cr0), 0x80000010, 8},                       // PG without PE
        {offsetof(CpuState, cr4), 1ull << 30, 8},                       // reserved
        {offsetof(CpuState, msr) + offsetof(MsrState, efer), 1 << 10, 8}, // LMA without LME and PG
        {offsetof(CpuState, rflags), 0, 8},                             // bit 1 reads 1
        {offsetof(CpuState, fpu) + offsetof(FpuState, mxcsr), 0x10000, 4},
        {offsetof(CpuState, xcr0), 0, 8}, // x87 is always enabled
        {offsetof(CpuState, rip), 1ull << 40, 8}, // beyond 4 GiB in real mode
    };
    for (const Bad& bad : cases) {
        CAPTURE(bad.offset);
        std::vector<u8> bytes = save.bytes();
        std::memcpy(bytes.data() + cpu + bad.offset, &bad.value, bad.size);
        TestMachine fresh;
        StateVisitor load = StateVisitor::loader(bytes);
        fresh.machine->visit_state(load);
        CHECK_FALSE(load.ok());
        CHECK(load.error().find("vCPU") != std::string::npos);
    }
    TestMachine fresh;
    StateVisitor load = StateVisitor::loader(save.bytes());
    fresh.machine->visit_state(load);
    CHECK(load.ok());
}

TEST_CASE("A machine refuses a state whose guest TSC ran at another rate")
{
    // A KVM machine's guest TSC runs at the host's rate, the interpreter's
    // at 1 GHz: the guest calibrated its clocks against the one it had.
    TestMachine t;
    StateVisitor save = StateVisitor::saver();
    t.machine->visit_state(save);
    REQUIRE(save.ok());
    // The rate lies before the CPU's feature words, which come just before
    // the clock's section (its name's length, then the name).
    const std::string clock = "virtual-clock";
    std::vector<u8> bytes = save.bytes();
    const auto at = std::search(bytes.begin(), bytes.end(), clock.begin(), clock.end());
    REQUIRE(at != bytes.end());
    const size_t rate = static_cast<size_t>(at - bytes.begin()) - 4 - 4 * static_cast<size_t>(FeatureWord::Count) - 8;
    u64 hz = 0;
    std::memcpy(&hz, bytes.data() + rate, 8);
    REQUIRE(hz == 1'000'000'000);
    hz = 2'994'000'000;
    std::memcpy(bytes.data() + rate, &hz, 8);
    TestMachine fresh;
    StateVisitor load = StateVisitor::loader(bytes);
    fresh.machine->visit_state(load);
    CHECK_FALSE(load.ok());
    CHECK(load.error().find("the snapshot's guest TSC runs at 2994000 kHz, this machine's at 1000000 kHz") == 0);
}

TEST_CASE("A machine refuses a state whose CPU offered a feature it lacks, and takes one that offered fewer")
{
    // The guest may be using any feature it found: a restore on a machine
    // without it (a KVM host offering less, other --cpu-features) would
    // make its instructions fault.
    const auto make = [](const char* features) {
        MachineConfig config;
        config.memory_bytes = 32ull << 20;
        config.deterministic = true;
        config.cpu_features = features;
        ErrorOr<std::unique_ptr<Machine>> created = Machine::create(config);
        REQUIRE_FALSE(created.is_error());
        return created.release_value();
    };
    const auto state_of = [](Machine& machine) {
        StateVisitor save = StateVisitor::saver();
        machine.visit_state(save);
        REQUIRE(save.ok());
        return save.bytes();
    };
    std::unique_ptr<Machine> full = make(""), narrow = make("-aes");
    StateVisitor refused = StateVisitor::loader(state_of(*full));
    make("-aes")->visit_state(refused);
    CHECK_FALSE(refused.ok());
    CHECK(refused.error() == "the snapshot's CPU offers features this machine's does not (CPUID.01H:ECX bits "
                             "0x2000000): restore it with the source's --cpu and --cpu-features, on a host that has them");
    StateVisitor taken = StateVisitor::loader(state_of(*narrow));
    make("")->visit_state(taken);
    CHECK(taken.ok());
}

TEST_CASE("A paused machine retires nothing until a host command resumes it")
{
    CommandQueue commands;
    TestMachine t(1, true, &commands);
    t.boot_real_mode({0xEB, 0xFE}); // jmp $
    t.machine->pause();
    u64 retired_while_paused = ~0ull;
    std::thread host([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
        commands.post([&] {
            retired_while_paused = t.machine->retired();
            t.machine->resume();
        });
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
        commands.post([&] { t.machine->request_reset(); });
    });
    const RunOutcome outcome = t.machine->run();
    host.join();
    CHECK(retired_while_paused == 0);
    CHECK(outcome.kind == RunOutcome::Kind::Reset);
    CHECK(outcome.by_host);
    CHECK(t.machine->retired() > 0);
}

TEST_CASE("A halted guest that only host input can wake waits for a host command")
{
    CommandQueue commands;
    TestMachine t(1, true, &commands, true, false); // host time: a real wait
    t.boot_real_mode({0xFB, 0xF4, 0xEB, 0xFD}); // sti; hlt; jmp back (no timer armed)
    std::thread host([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
        commands.post([&] { t.machine->request_reset(); });
    });
    const RunOutcome outcome = t.machine->run();
    host.join();
    CHECK(outcome.kind == RunOutcome::Kind::Reset);
}

TEST_CASE("A deterministic machine whose vCPUs idle between timers still takes host commands")
{
    CommandQueue commands;
    TestMachine t(1, true, &commands);
    // sti; hlt; jmp back. The board keeps a timer of its own armed, so
    // virtual time skips from deadline to deadline and no instruction
    // retires between them.
    t.boot_real_mode({0xFB, 0xF4, 0xEB, 0xFD});
    std::thread host([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
        commands.post([&] { t.machine->request_reset(); });
    });
    const RunOutcome outcome = t.machine->run();
    host.join();
    CHECK(outcome.kind == RunOutcome::Kind::Reset);
}

TEST_CASE("An idle guest's waits go to the host's idle work instead of a sleep, and to a sleep when it has none")
{
    for (const bool has_work : {true, false}) {
        CAPTURE(has_work);
        TestMachine t(1, true, nullptr, false, false); // host time: real waits
        // sti; hlt; jmp back: the board's own timers bound each wait.
        t.boot_real_mode({0xFB, 0xF4, 0xEB, 0xFD});
        unsigned calls = 0;
        u64 budgets = 0;
        t.machine->set_idle_work([&](u64 budget_ns) {
            CHECK(budget_ns > 0);
            CHECK(budget_ns <= 10'000'000);
            ++calls;
            budgets += budget_ns;
            return has_work;
        });
        const auto start = std::chrono::steady_clock::now();
        unsigned polls = 0; // a bound, should the work never be asked
        const RunOutcome outcome = t.machine->run([&]() -> std::optional<int> {
            return calls == 20 || ++polls == 500 ? std::optional<int>(5) : std::nullopt;
        });
        const u64 elapsed = static_cast<u64>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count());
        CHECK(outcome.kind == RunOutcome::Kind::HostStop);
        CHECK(calls == 20);
        if (has_work)
            CHECK(elapsed < budgets / 2); // the work took no time and nothing slept
        else
            CHECK(elapsed >= budgets * 9 / 10); // each wait slept its budget
    }
}

TEST_CASE("The host's power button shows in the guest's PM1 status register")
{
    TestMachine t;
    // mov dx,0x600; in ax,dx (PM1_STS); mov al,ah; mov dx,0xF4; out dx,al
    t.boot_real_mode({0xBA, 0x00, 0x06, 0xED, 0x88, 0xE0, 0xBA, 0xF4, 0x00, 0xEE});
    t.machine->press_power_button();
    const RunOutcome outcome = t.machine->run();
    CHECK(outcome.kind == RunOutcome::Kind::GuestExit);
    // PWRBTN_STS is bit 8, so AH = 1; the debug-exit status is (AH << 1) | 1.
    CHECK(outcome.status == 3);
}

TEST_CASE("An enlightened machine offers six integration services, closed until the guest opens them")
{
    TestMachine t;
    const std::vector<IntegrationServiceState> services = t.machine->integration_services();
    REQUIRE(services.size() == 6);
    const char* names[] = {"shutdown", "heartbeat", "time-sync", "kvp", "vss", "fcopy"};
    for (size_t i = 0; i < 6; ++i) {
        CHECK(services[i].name == names[i]);
        CHECK(services[i].state == "closed");
        CHECK(services[i].version == 0);
    }
    CHECK(t.machine->stats().heartbeat == "closed");
}

TEST_CASE("A file copy into a guest that has not opened the service is refused, as is a missing host file")
{
    TestMachine t;
    FileCopyRequest request;
    request.source = "/nonexistent/viridian-file";
    request.destination = "/tmp/f";
    CHECK(t.machine->start_file_copy(request) == "/nonexistent/viridian-file: cannot open: No such file or directory");
    request.source = "/proc/self/exe"; // any file the test can read
    CHECK(t.machine->start_file_copy(request) == "The guest's file copy service is not ready (is hv_utils loaded?)");
    CHECK(t.machine->cancel_file_copy() == "No file copy is under way");
    const FileCopyStatus status = t.machine->file_copy_status();
    CHECK(status.state == "idle");
    CHECK(status.source.empty());
}

TEST_CASE("A machine without the enlightenments reports its integration services not offered")
{
    MachineConfig config;
    config.memory_bytes = 32ull << 20;
    config.enlightenments = false;
    ErrorOr<std::unique_ptr<Machine>> created = Machine::create(config);
    REQUIRE_FALSE(created.is_error());
    const std::unique_ptr<Machine> machine = created.release_value();
    for (const IntegrationServiceState& s : machine->integration_services())
        CHECK(s.state == "not offered");
    CHECK(machine->stats().heartbeat == "not offered");
}
