// Fuzz target: one input is a whole snapshot file (header, zlib stream with
// the machine's state and RAM) read by load_snapshot through a FILE*, for a
// small machine chosen by the first byte (snapshot_fuzz_machine.h). A
// truncated or damaged file, or one of another configuration, is refused
// with one line; one that loads runs RUN_INSTRUCTIONS instructions. No
// crash, hang or sanitizer report either way. snapshot_fuzz.cpp feeds the
// state alone, which mutations reach far more often than through zlib.
#include "platform/machine/snapshot.h"
#include "tests/fuzz/snapshot_fuzz_machine.h"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    if (size < 2) // fmemopen needs at least one byte
        return 0;
    std::unique_ptr<Machine> machine = snapshot_fuzz::make_machine(data[0], false);
    if (!machine) {
        std::fprintf(stderr, "snapshot_file_fuzz: cannot build the machine\n");
        std::abort();
    }
    std::FILE* in = ::fmemopen(const_cast<uint8_t*>(data + 1), size - 1, "rb");
    if (!in)
        std::abort();
    ErrorOr<void> loaded = load_snapshot(*machine, in);
    std::fclose(in);
    if (loaded.is_error()) {
        snapshot_fuzz::check_refusal(loaded.error().message);
        return 0;
    }
    snapshot_fuzz::run_loaded(*machine);
    return 0;
}
