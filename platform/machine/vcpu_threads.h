// One host thread per vCPU for a backend whose vCPUs block while they run
// (KVM_RUN): docs/architecture.md "Threads". The threads are made at the
// first round and live as long as the machine; between rounds they wait, so
// everything the machine does between rounds (host commands, snapshots,
// switching backends) still sees every vCPU stopped.
#pragma once

#include "mmu/base/types.h"

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

class VcpuThreads {
public:
    VcpuThreads() = default;
    VcpuThreads(const VcpuThreads&) = delete;
    VcpuThreads& operator=(const VcpuThreads&) = delete;
    // Joins the threads; no round may be running.
    ~VcpuThreads();

    // Runs work(i) on thread i for every i below `count` and returns at
    // once. The count is the first round's for the threads' whole life.
    void start(unsigned count, std::function<void(unsigned index)> work);
    // Until every work(i) of the last start() has returned.
    void wait();

private:
    void thread_main(unsigned index);

    std::mutex m_mutex;
    std::condition_variable m_started, m_finished;
    std::vector<std::thread> m_threads;
    std::function<void(unsigned)> m_work;
    u64 m_round = 0;       // start() calls so far
    unsigned m_working = 0; // threads still inside this round's work
    bool m_quit = false;
};
