// Fuzz target: one input is the state part of a whole-machine snapshot
// (Machine::visit_state's stream, docs/snapshots.md) for a small machine
// chosen by the first byte (snapshot_fuzz_machine.h). A snapshot is user
// input: a crafted one can hand every device, the vCPUs and the Hyper-V
// partition any field values, past the header and zlib checks that
// snapshot_file_fuzz.cpp covers. Whatever it holds, the load either fails
// with a one-line reason or gives a machine that runs: no crash, assert,
// hang or sanitizer report, now or while the loaded machine runs
// RUN_INSTRUCTIONS instructions.
//
// Built two ways, like the other targets: with libFuzzer (scripts/fuzz.sh)
// and with the seeded driver fuzz_driver.cpp, which mutates the seeds in
// tests/fuzz/corpus/snapshot (written by snapshot_seeds.cpp).
#include "tests/fuzz/snapshot_fuzz_machine.h"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    if (size < 1)
        return 0;
    std::unique_ptr<Machine> machine = snapshot_fuzz::make_machine(data[0], false);
    if (!machine) {
        std::fprintf(stderr, "snapshot_fuzz: cannot build the machine\n");
        std::abort();
    }
    StateVisitor state = StateVisitor::loader(std::vector<u8>(data + 1, data + size));
    machine->visit_state(state);
    if (!state.ok()) {
        snapshot_fuzz::check_refusal(state.error());
        return 0;
    }
    snapshot_fuzz::run_loaded(*machine);
    return 0;
}
