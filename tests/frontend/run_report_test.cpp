#include "frontend/run_report.h"

#include <doctest/doctest.h>

#include <cstdio>
#include <string>

TEST_CASE("--stats prints the instructions first, then the device exits, the interrupts, VMBus, the heartbeat and the MSR accesses")
{
    char buffer[512] = {};
    std::FILE* out = fmemopen(buffer, sizeof buffer, "w");
    REQUIRE(out);
    print_stats(out, 1234,
                MachineStats{10, 20, 30, 40, 50, 60, 2, "no contact", 70, 80, 90, 0, {}, {}, false, 0} +
                    MachineStats{1, 2, 3, 4, 5, 6, 1, "ok", 7, 8, 9, 0, {}, {}, false, 0});
    std::fclose(out);
    CHECK(std::string(buffer) == "instructions: 1234\nport accesses: 11\nmmio accesses: 22\ninterrupts: 33\n"
                                 "vmbus messages: 44\nvmbus signals to host: 55\nvmbus signals to guest: 66\n"
                                 "vmbus requests refused: 3\n"
                                 "heartbeat: ok\nheartbeats answered: 77\nheartbeats missed: 88\n"
                                 "time sync messages: 99\nmsr accesses: 0\n");
}

TEST_CASE("--stats adds the MSR accesses and a hardware backend's exits by reason")
{
    char buffer[512] = {};
    std::FILE* out = fmemopen(buffer, sizeof buffer, "w");
    REQUIRE(out);
    MachineStats a;
    a.msr_accesses = 5;
    a.exits = VcpuExitCounts{1, 2, 3, 4, 5, 6, 7};
    MachineStats b;
    b.msr_accesses = 10;
    b.exits = VcpuExitCounts{10, 20, 30, 40, 50, 60, 70};
    print_stats(out, 1, a + b);
    std::fclose(out);
    const std::string text(buffer);
    CHECK(text.find("msr accesses: 15\n") != std::string::npos);
    CHECK(text.find("exits: 308 (io 11, mmio 22, msr 33, hlt 44, interrupt window 55, kick 66, other 77)\n") !=
          std::string::npos);
}

TEST_CASE("--stats shows the synthetic adapter's frames by channel, the later machine's")
{
    char buffer[512] = {};
    std::FILE* out = fmemopen(buffer, sizeof buffer, "w");
    REQUIRE(out);
    MachineStats before;
    before.netvsc_frames_by_channel = {100};
    MachineStats after;
    after.netvsc_frames_by_channel = {7, 9};
    after.netvsc_rss = true;
    after.netvsc_large_sends = 3;
    print_stats(out, 1, before + after);
    std::fclose(out);
    CHECK(std::string(buffer).find("netvsc rss: on\nnetvsc frames by channel: 7 9\nnetvsc large sends: 3\n") !=
          std::string::npos);
}
