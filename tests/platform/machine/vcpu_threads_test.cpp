// The pool of one host thread per vCPU (platform/machine/vcpu_threads.h).
#include "platform/machine/vcpu_threads.h"

#include <doctest/doctest.h>

#include <atomic>
#include <set>
#include <thread>
#include <vector>

TEST_CASE("Each vCPU's work runs on a thread of its own, the same one every round, and wait() waits for all")
{
    constexpr unsigned COUNT = 3;
    std::vector<std::thread::id> seen(COUNT);
    std::atomic<unsigned> calls{0};
    VcpuThreads threads;
    for (unsigned round = 0; round < 50; ++round) {
        std::vector<std::thread::id> this_round(COUNT);
        threads.start(COUNT, [&](unsigned index) {
            // The slowest of them decides when wait() returns.
            if (index == round % COUNT)
                std::this_thread::sleep_for(std::chrono::microseconds(200));
            this_round[index] = std::this_thread::get_id();
            ++calls;
        });
        threads.wait();
        REQUIRE(calls == (round + 1) * COUNT);
        for (unsigned i = 0; i < COUNT; ++i) {
            CHECK(this_round[i] != std::this_thread::get_id());
            if (round == 0)
                seen[i] = this_round[i];
            CHECK(this_round[i] == seen[i]);
        }
    }
    CHECK(std::set<std::thread::id>(seen.begin(), seen.end()).size() == COUNT);
}
