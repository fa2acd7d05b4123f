// The Machine's side of a debugger (platform/machine/machine_debug.cpp):
// breakpoints end run() with DebugStop on the right vCPU, a step runs one
// instruction, and memory is read and written as a debugger sees it.
#include "mmu/page_walker.h"
#include "platform/machine/machine.h"

#include <doctest/doctest.h>

namespace {

constexpr GuestPhys CODE = 0x7C00;

std::unique_ptr<Machine> real_mode_machine(std::initializer_list<u8> code, bool jit = true)
{
    MachineConfig config;
    config.memory_bytes = 32ull << 20;
    config.deterministic = true;
    config.jit = jit;
    ErrorOr<std::unique_ptr<Machine>> created = Machine::create(config);
    REQUIRE_FALSE(created.is_error());
    std::unique_ptr<Machine> machine = created.release_value();
    std::vector<u8> bytes(code);
    REQUIRE(machine->memory().write_bytes(CODE, bytes.data(), bytes.size()));
    CpuState state = machine->vcpu_state(0);
    state.seg[CS].selector = 0;
    state.seg[CS].base = 0;
    state.rip = CODE;
    machine->set_vcpu_state(0, state);
    return machine;
}

// inc ax ; inc bx ; jmp back to the start
const std::initializer_list<u8> SPIN = {0x40, 0x43, 0xEB, 0xFC};

} // namespace

TEST_CASE("A machine's run ends with DebugStop at a debugger breakpoint and goes on from there")
{
    auto machine = real_mode_machine(SPIN);
    machine->set_debug_points({CODE + 1}, {});
    RunOutcome outcome = machine->run();
    REQUIRE(outcome.kind == RunOutcome::Kind::DebugStop);
    CHECK(outcome.vcpu == 0);
    CHECK(outcome.debug.kind == DebugEvent::Kind::Breakpoint);
    CHECK(outcome.debug.address == CODE + 1);
    CHECK(machine->vcpu_state(0).rip == CODE + 1);
    CHECK((machine->vcpu_state(0).gpr[RAX] & 0xFFFF) == 1);
    // Continuing stops again: a breakpoint stops before its instruction, so
    // a debugger steps over it first (gdb does).
    machine->step_vcpu(0);
    outcome = machine->run();
    REQUIRE(outcome.kind == RunOutcome::Kind::DebugStop);
    CHECK(outcome.debug.kind == DebugEvent::Kind::Step);
    CHECK(machine->vcpu_state(0).rip == CODE + 2);
    outcome = machine->run();
    CHECK(outcome.debug.kind == DebugEvent::Kind::Breakpoint);
    CHECK((machine->vcpu_state(0).gpr[RAX] & 0xFFFF) == 2);
    machine->set_debug_points({}, {});
    CHECK(machine->run({}, 1000).kind == RunOutcome::Kind::InstructionLimit);
}

TEST_CASE("A debugger watchpoint on the machine stops after the write and names the address")
{
    // mov word [0x600], 0x1234 ; inc ax ; hlt
    auto machine = real_mode_machine({0xC7, 0x06, 0x00, 0x06, 0x34, 0x12, 0x40, 0xF4});
    machine->set_debug_points({}, {Watchpoint{0x600, 2, WatchKind::Write}});
    const RunOutcome outcome = machine->run();
    REQUIRE(outcome.kind == RunOutcome::Kind::DebugStop);
    CHECK(outcome.debug.kind == DebugEvent::Kind::Watchpoint);
    CHECK(outcome.debug.address == 0x600);
    CHECK(machine->vcpu_state(0).rip == CODE + 6);
}

TEST_CASE("A debugger reads and writes guest memory, RAM only, without faulting the guest")
{
    auto machine = real_mode_machine(SPIN);
    u8 bytes[4] = {};
    CHECK(machine->debug_read(0, CODE, bytes, 4, false) == 4);
    CHECK(bytes[0] == 0x40);
    const u8 patch[1] = {0x48}; // dec ax instead of inc ax
    CHECK(machine->debug_write(0, CODE, patch, 1, false) == 1);
    CHECK(machine->run({}, 300).kind == RunOutcome::Kind::InstructionLimit);
    CHECK((machine->vcpu_state(0).gpr[RAX] & 0xFFFF) == 0xFF9C); // -100
    // The local APIC's page is a device: a debugger never reads it.
    CHECK(machine->debug_read(0, 0xFEE00000, bytes, 4, true) == 0);
    CHECK(machine->debug_read(0, 40ull << 20, bytes, 4, true) == 0); // beyond RAM
}

TEST_CASE("A debugger reads through the guest's page tables and leaves unmapped pages alone")
{
    auto machine = real_mode_machine(SPIN);
    // Long mode with one 4 KiB page: linear 0x400000 → physical 0x9000.
    const u64 pml4 = 0x10000, pdpt = 0x11000, pd = 0x12000, pt = 0x13000;
    const u64 entries[][2] = {{pml4, pdpt | 3}, {pdpt, pd | 3}, {pd + 2 * 8, pt | 3}, {pt, 0x9000 | 3}};
    for (const auto& [where, value] : entries)
        REQUIRE(machine->memory().write_bytes(where, &value, 8));
    const u64 magic = 0x0123456789ABCDEF;
    REQUIRE(machine->memory().write_bytes(0x9000, &magic, 8));
    CpuState state = machine->vcpu_state(0);
    state.cr0 |= cr::CR0_PE | cr::CR0_PG;
    state.cr4 |= cr::CR4_PAE;
    state.cr3 = pml4;
    state.msr.efer |= cr::EFER_LME | cr::EFER_LMA;
    machine->set_vcpu_state(0, state);
    u64 read = 0;
    CHECK(machine->debug_read(0, 0x400000, reinterpret_cast<u8*>(&read), 8, false) == 8);
    CHECK(read == magic);
    CHECK(machine->debug_read(0, 0x401000, reinterpret_cast<u8*>(&read), 8, false) == 0);
    CHECK(machine->debug_read(0, 0x400FFC, reinterpret_cast<u8*>(&read), 8, false) == 4);
    CHECK(machine->debug_read(0, 0x8000000000000000, reinterpret_cast<u8*>(&read), 8, false) == 0);
    // The walk set no accessed bit.
    u64 pte = 0;
    REQUIRE(machine->memory().read_bytes(pt, &pte, 8));
    CHECK((pte & 0x20) == 0);
}

namespace {

// Two vCPUs: the BSP, in flat 32-bit protected mode at CODE, starts the AP
// (INIT, SIPI to 0x8000) and then spins on `inc ebx`; the AP spins on
// `inc ax` at 0x8000 in real mode.
std::unique_ptr<Machine> smp_machine(bool jit = true)
{
    MachineConfig config;
    config.memory_bytes = 32ull << 20;
    config.cpu_count = 2;
    config.deterministic = true;
    config.jit = jit;
    ErrorOr<std::unique_ptr<Machine>> created = Machine::create(config);
    REQUIRE_FALSE(created.is_error());
    std::unique_ptr<Machine> machine = created.release_value();
    const std::vector<u8> bsp = {
        0xB8, 0x00, 0x00, 0x00, 0x01, 0xA3, 0x10, 0x03, 0xE0, 0xFE, // ICR high: APIC ID 1
        0xB8, 0x00, 0x45, 0x00, 0x00, 0xA3, 0x00, 0x03, 0xE0, 0xFE, // INIT
        0xB8, 0x08, 0x46, 0x00, 0x00, 0xA3, 0x00, 0x03, 0xE0, 0xFE, // SIPI, vector 8
        0x43, 0xEB, 0xFD};                                           // inc ebx; jmp back
    const std::vector<u8> ap = {0x40, 0xEB, 0xFD};                   // inc ax; jmp back
    REQUIRE(machine->memory().write_bytes(CODE, bsp.data(), bsp.size()));
    REQUIRE(machine->memory().write_bytes(0x8000, ap.data(), ap.size()));
    CpuState state = machine->vcpu_state(0);
    state.cr0 |= cr::CR0_PE;
    for (unsigned s = 0; s < SEG_COUNT; ++s) {
        state.seg[s].base = 0;
        state.seg[s].limit = 0xFFFFFFFF;
        state.seg[s].attr = Segment::P | Segment::S | Segment::DB | Segment::G | (s == CS ? 0xB : 0x3);
    }
    state.rip = CODE;
    machine->set_vcpu_state(0, state);
    return machine;
}

constexpr u64 BSP_SPIN = CODE + 30;

} // namespace

TEST_CASE("A breakpoint on one vCPU stops the whole machine and names that vCPU")
{
    auto machine = smp_machine();
    machine->set_debug_points({0x8000 + 1}, {}); // the AP's jmp
    const RunOutcome outcome = machine->run({}, 1'000'000);
    REQUIRE(outcome.kind == RunOutcome::Kind::DebugStop);
    CHECK(outcome.vcpu == 1);
    CHECK_FALSE(machine->vcpu_waits_for_sipi(1));
    CHECK(machine->vcpu_state(1).rip == 1); // CS base 0x8000, IP 1
    CHECK((machine->vcpu_state(1).gpr[RAX] & 0xFFFF) == 1);
}

TEST_CASE("An AP the guest has not started waits for its SIPI")
{
    auto machine = smp_machine();
    CHECK(machine->vcpu_waits_for_sipi(1));
    CHECK_FALSE(machine->vcpu_waits_for_sipi(0));
}

TEST_CASE("Stepping one vCPU runs one of its instructions while the others stay stopped")
{
    auto machine = smp_machine();
    machine->set_debug_points({BSP_SPIN}, {});
    REQUIRE(machine->run({}, 1'000'000).kind == RunOutcome::Kind::DebugStop);
    machine->set_debug_points({}, {});
    // Let the AP run too, then stop both at the BSP's spin again.
    machine->run({}, 50'000);
    machine->set_debug_points({BSP_SPIN}, {});
    REQUIRE(machine->run({}, 1'000'000).kind == RunOutcome::Kind::DebugStop);
    const CpuState ap_before = machine->vcpu_state(1);
    const u64 ebx = machine->vcpu_state(0).gpr[RBX];
    CHECK(ap_before.gpr[RAX] != 0); // the AP has been running
    for (int i = 0; i < 4; ++i) {
        machine->step_vcpu(0);
        const RunOutcome outcome = machine->run({}, 1'000'000);
        REQUIRE(outcome.kind == RunOutcome::Kind::DebugStop);
        CHECK(outcome.debug.kind == DebugEvent::Kind::Step);
        CHECK(outcome.vcpu == 0);
    }
    CHECK(machine->vcpu_state(0).gpr[RBX] == ebx + 2); // inc, jmp, inc, jmp
    CHECK(machine->vcpu_state(1).gpr[RAX] == ap_before.gpr[RAX]);
    CHECK(machine->vcpu_state(1).rip == ap_before.rip);
}

namespace {

// Runs `machine` until `total` instructions have retired, through every
// debug stop, as a frontend that resumes at once would.
void run_to(Machine& machine, u64 total)
{
    while (machine.retired() < total) {
        const RunOutcome outcome = machine.run({}, total - machine.retired());
        if (outcome.kind != RunOutcome::Kind::DebugStop)
            REQUIRE(outcome.kind == RunOutcome::Kind::InstructionLimit);
    }
}

} // namespace

TEST_CASE("A position stop lands on the vCPU's exact unit count, inside a slice or at its next turn")
{
    auto machine = smp_machine();
    for (const Machine::Position position : {Machine::Position{1, 5}, Machine::Position{0, 30'123},
                                             Machine::Position{1, 20'000}, Machine::Position{0, 200'000}}) {
        CAPTURE(position.vcpu);
        CAPTURE(position.units);
        machine->stop_at_position(position);
        const RunOutcome outcome = machine->run({}, 10'000'000);
        REQUIRE(outcome.kind == RunOutcome::Kind::DebugStop);
        CHECK(outcome.vcpu == position.vcpu);
        CHECK(outcome.debug.kind == DebugEvent::Kind::Step);
        CHECK(machine->vcpu_units(position.vcpu) == position.units);
    }
    // Once: the next run goes on to its limit.
    CHECK(machine->run({}, 100'000).kind == RunOutcome::Kind::InstructionLimit);
}

TEST_CASE("A run stopped at positions and breakpoints schedules its vCPUs as an uninterrupted run")
{
    constexpr u64 TOTAL = 400'000;
    auto reference = smp_machine();
    run_to(*reference, TOTAL);
    for (bool jit : {true, false}) {
        CAPTURE(jit);
        auto machine = smp_machine(jit);
        // Stops inside slices, at their ends, and on both vCPUs.
        for (const Machine::Position position :
             {Machine::Position{1, 7}, Machine::Position{0, 20'000}, Machine::Position{0, 33'333},
              Machine::Position{1, 40'001}, Machine::Position{1, 90'000}}) {
            machine->stop_at_position(position);
            REQUIRE(machine->run({}, TOTAL - machine->retired()).kind == RunOutcome::Kind::DebugStop);
        }
        // Inside a block (the AP's jmp) and at a block's first instruction
        // (the AP's loop head, where translated code enters).
        for (const u64 breakpoint : {0x8000 + 1, 0x8000}) {
            machine->set_debug_points({breakpoint}, {});
            for (int i = 0; i < 3; ++i) {
                REQUIRE(machine->run({}, TOTAL - machine->retired()).kind == RunOutcome::Kind::DebugStop);
                // Off the breakpoint without the step (which holds the others).
                machine->stop_at_position(Machine::Position{1, machine->vcpu_units(1) + 1});
                machine->set_debug_points({}, {});
                REQUIRE(machine->run({}, TOTAL - machine->retired()).kind == RunOutcome::Kind::DebugStop);
                machine->set_debug_points({breakpoint}, {});
            }
        }
        machine->set_debug_points({}, {});
        run_to(*machine, TOTAL);
        for (unsigned v = 0; v < 2; ++v) {
            CHECK(machine->vcpu_units(v) == reference->vcpu_units(v));
            CHECK(machine->vcpu_state(v).gpr[RAX] == reference->vcpu_state(v).gpr[RAX]);
            CHECK(machine->vcpu_state(v).gpr[RBX] == reference->vcpu_state(v).gpr[RBX]);
            CHECK(machine->vcpu_state(v).rip == reference->vcpu_state(v).rip);
        }
    }
}

TEST_CASE("A stop at an instruction count lands on it exactly and the run goes on as if uninterrupted")
{
    constexpr u64 TOTAL = 300'000;
    auto reference = smp_machine();
    run_to(*reference, TOTAL);
    auto machine = smp_machine();
    for (u64 at : {1ull, 19'999ull, 20'000ull, 54'321ull, 123'456ull}) {
        CAPTURE(at);
        machine->stop_at_retired(at);
        const RunOutcome outcome = machine->run({}, TOTAL - machine->retired());
        REQUIRE(outcome.kind == RunOutcome::Kind::DebugStop);
        CHECK(outcome.debug.kind == DebugEvent::Kind::Step);
        CHECK(machine->retired() == at);
    }
    run_to(*machine, TOTAL);
    for (unsigned v = 0; v < 2; ++v) {
        CHECK(machine->vcpu_units(v) == reference->vcpu_units(v));
        CHECK(machine->vcpu_state(v).rip == reference->vcpu_state(v).rip);
    }
}

TEST_CASE("A position stop leaves an instruction-count stop further on armed, and the other way round")
{
    auto machine = smp_machine();
    machine->stop_at_retired(100'000);
    machine->stop_at_position(Machine::Position{0, 1'000});
    REQUIRE(machine->run({}, 1'000'000).kind == RunOutcome::Kind::DebugStop);
    CHECK(machine->vcpu_units(0) == 1'000);
    REQUIRE(machine->run({}, 1'000'000).kind == RunOutcome::Kind::DebugStop);
    CHECK(machine->retired() == 100'000);
    machine->stop_at_position(Machine::Position{1, 200'000});
    machine->stop_at_retired(150'000);
    REQUIRE(machine->run({}, 1'000'000).kind == RunOutcome::Kind::DebugStop);
    CHECK(machine->retired() == 150'000);
    REQUIRE(machine->run({}, 1'000'000).kind == RunOutcome::Kind::DebugStop);
    CHECK(machine->vcpu_units(1) == 200'000);
}
