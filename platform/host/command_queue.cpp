#include "platform/host/command_queue.h"

#include <chrono>
#include <future>
#include <memory>

bool CommandQueue::post(Command command) { return push(std::move(command), false); }

bool CommandQueue::post_device_work(Command command) { return push(std::move(command), true); }

bool CommandQueue::push(Command command, bool device_work)
{
    {
        std::lock_guard lock(m_mutex);
        if (m_closed)
            return false;
        m_commands.push_back({std::move(command), device_work});
        if (m_post_listener)
            m_post_listener();
    }
    m_posted.notify_all();
    return true;
}

void CommandQueue::set_post_listener(std::function<void()> listener)
{
    std::lock_guard lock(m_mutex);
    m_post_listener = std::move(listener);
}

bool CommandQueue::call(Command command, u64 timeout_ns)
{
    // The promise travels with the command: if the command is dropped
    // unrun (close()), destroying it breaks the promise and wakes us.
    auto done = std::make_shared<std::promise<void>>();
    std::future<void> finished = done->get_future();
    // Only the command holds the promise, so that dropping it breaks it.
    if (!post([command = std::move(command), done = std::move(done)] {
            command();
            done->set_value();
        }))
        return false;
    if (finished.wait_for(std::chrono::nanoseconds(timeout_ns)) != std::future_status::ready)
        return false;
    try {
        finished.get();
    } catch (const std::future_error&) {
        return false; // dropped by close()
    }
    return true;
}

size_t CommandQueue::run_pending()
{
    std::deque<Entry> ready;
    {
        std::lock_guard lock(m_mutex);
        ready.swap(m_commands);
    }
    for (Entry& entry : ready)
        entry.command();
    return ready.size();
}

size_t CommandQueue::run_device_work()
{
    std::deque<Entry> ready;
    {
        std::lock_guard lock(m_mutex);
        std::deque<Entry> others;
        for (Entry& entry : m_commands)
            (entry.device_work ? ready : others).push_back(std::move(entry));
        m_commands.swap(others);
    }
    for (Entry& entry : ready)
        entry.command();
    return ready.size();
}

void CommandQueue::wait_for(u64 timeout_ns)
{
    std::unique_lock lock(m_mutex);
    m_posted.wait_for(lock, std::chrono::nanoseconds(timeout_ns),
                      [this] { return !m_commands.empty() || m_closed; });
}

void CommandQueue::close()
{
    std::deque<Entry> dropped;
    {
        std::lock_guard lock(m_mutex);
        m_closed = true;
        dropped.swap(m_commands);
    }
    m_posted.notify_all();
    // `dropped` is destroyed here, outside the lock: breaking a promise
    // wakes its caller, which may post again (and be refused).
}

bool CommandQueue::closed() const
{
    std::lock_guard lock(m_mutex);
    return m_closed;
}
