#include "frontend/run_report.h"

#include <doctest/doctest.h>

#include <cstdio>
#include <string>

TEST_CASE("--stats prints the instructions first, then the device exits, the interrupts and the heartbeat")
{
    char buffer[512] = {};
    std::FILE* out = fmemopen(buffer, sizeof buffer, "w");
    REQUIRE(out);
    print_stats(out, 1234,
                MachineStats{10, 20, 30, 40, 50, 60, "no contact", 70, 80, 90} +
                    MachineStats{1, 2, 3, 4, 5, 6, "ok", 7, 8, 9});
    std::fclose(out);
    CHECK(std::string(buffer) == "instructions: 1234\nport accesses: 11\nmmio accesses: 22\ninterrupts: 33\n"
                                 "vmbus messages: 44\nvmbus signals to host: 55\nvmbus signals to guest: 66\n"
                                 "heartbeat: ok\nheartbeats answered: 77\nheartbeats missed: 88\n"
                                 "time sync messages: 99\n");
}
