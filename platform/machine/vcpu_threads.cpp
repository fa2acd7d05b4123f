#include "platform/machine/vcpu_threads.h"

#include <pthread.h>
#include <string>

VcpuThreads::~VcpuThreads()
{
    {
        std::lock_guard lock(m_mutex);
        m_quit = true;
    }
    m_started.notify_all();
    for (std::thread& thread : m_threads)
        thread.join();
}

void VcpuThreads::start(unsigned count, std::function<void(unsigned index)> work)
{
    {
        std::lock_guard lock(m_mutex);
        m_work = std::move(work);
        m_working = count;
        ++m_round;
    }
    while (m_threads.size() < count) {
        const unsigned index = static_cast<unsigned>(m_threads.size());
        m_threads.emplace_back([this, index] { thread_main(index); });
        // The name `top -H` and gdb show (at most 15 characters).
        const std::string name = "vcpu " + std::to_string(index);
        pthread_setname_np(m_threads.back().native_handle(), name.c_str());
    }
    m_started.notify_all();
}

void VcpuThreads::wait()
{
    std::unique_lock lock(m_mutex);
    m_finished.wait(lock, [this] { return m_working == 0; });
}

void VcpuThreads::thread_main(unsigned index)
{
    // A thread made during a round joins that round.
    u64 done = 0;
    {
        std::lock_guard lock(m_mutex);
        done = m_round - 1;
    }
    for (;;) {
        std::function<void(unsigned)> work;
        {
            std::unique_lock lock(m_mutex);
            m_started.wait(lock, [&] { return m_quit || m_round != done; });
            if (m_quit)
                return;
            done = m_round;
            work = m_work;
        }
        work(index);
        {
            std::lock_guard lock(m_mutex);
            if (--m_working == 0)
                m_finished.notify_all();
        }
    }
}
