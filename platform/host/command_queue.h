// Commands for the machine's thread (docs/architecture.md "Threads"): the
// event loop (QMP, the console, signals) posts closures; the machine runs
// them at its HostPoll points, between vCPU slices, where it may change
// anything. An idle or paused machine blocks in wait_for(), which a post
// cuts short, so a command reaches a halted guest at once.
//
// Nothing is posted unless the host has something to say, so a run without
// host input runs exactly as it would without the queue (--deterministic).
//
// Device work (a disk's completion, a received frame) touches only the
// devices: while vCPUs run on threads of their own (KVM) the machine runs
// it at once under its device lock, and every other command when the
// vCPUs have stopped (run_device_work, Machine::run_parallel_round).
#pragma once

#include "mmu/base/types.h"

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>

class CommandQueue {
public:
    using Command = std::function<void()>;

    // Any thread. False (and the command dropped) once the queue is closed.
    bool post(Command command);
    bool post_device_work(Command command);
    // Posts and waits until the command has run. False when the queue is
    // closed or `timeout_ns` passes first; the command may then still run
    // later, so it must own (or outlive-safely reference) what it touches.
    bool call(Command command, u64 timeout_ns);

    // The machine's thread: runs every command posted so far, in order.
    // Returns how many ran.
    size_t run_pending();
    // The machine's thread: runs the device work posted so far, in order,
    // and leaves the other commands queued.
    size_t run_device_work();
    // Called (under the queue's lock, so never after it was replaced) when
    // anything is posted: a machine thread waiting elsewhere than in
    // wait_for() hears of it. Empty: none.
    void set_post_listener(std::function<void()> listener);
    // The machine's thread: blocks until a command is posted, the queue is
    // closed, or `timeout_ns` passes. Returns at once if one is waiting.
    void wait_for(u64 timeout_ns);

    // Refuses later posts and drops what is queued (their callers' call()
    // returns false): the machine's thread is done.
    void close();
    bool closed() const;

private:
    mutable std::mutex m_mutex;
    std::condition_variable m_posted;
    struct Entry {
        Command command;
        bool device_work = false;
    };
    bool push(Command command, bool device_work);
    std::deque<Entry> m_commands;
    std::function<void()> m_post_listener;
    bool m_closed = false;
};
