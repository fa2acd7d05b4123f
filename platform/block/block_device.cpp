#include "platform/block/block_device.h"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

struct BlockDevice::Finished {
    BlockCallback done;
    BlockStatus status;
};

// Shared with the worker thread and with deliveries still queued on the
// machine after the device is gone (they then find `owner` cleared).
struct BlockDevice::Queue {
    struct Pending {
        BlockRequest request;
        BlockCallback done;
    };

    std::mutex mutex;
    std::condition_variable work_posted;
    std::condition_variable became_idle;
    std::deque<Pending> pending;
    std::vector<Finished> finished;
    bool busy = false;
    std::atomic<bool> stopping = false;
    std::thread worker;
    BlockDevice* owner = nullptr; // machine thread only
};

BlockDevice::BlockDevice(std::unique_ptr<BlockImage> image, Execution execution,
                         RunOnMachine run_on_machine)
    : m_image(std::move(image)), m_image_info(m_image->info()), m_execution(execution),
      m_run_on_machine(std::move(run_on_machine)), m_queue(std::make_shared<Queue>())
{
    m_queue->owner = this;
    if (m_execution == Execution::WorkerThread)
        m_queue->worker = std::thread([this] { worker_loop(); });
}

BlockDevice::~BlockDevice()
{
    m_queue->owner = nullptr;
    if (m_queue->worker.joinable()) {
        {
            std::lock_guard lock(m_queue->mutex);
            m_queue->stopping = true;
        }
        m_queue->work_posted.notify_all();
        m_queue->worker.join();
    }
}

BlockStatus BlockDevice::perform(const BlockRequest& request)
{
    switch (request.op) {
    case BlockOp::Read:
        TRY(check_request(m_image_info, request.offset, request.length));
        return m_image->read(request.offset, std::span(request.buffer, request.length));
    case BlockOp::Write:
        if (m_image_info.read_only)
            return block_error(BlockErrorKind::ReadOnly, "the disk is read-only");
        TRY(check_request(m_image_info, request.offset, request.length));
        return m_image->write(request.offset, std::span<const u8>(request.buffer, request.length));
    case BlockOp::Flush:
        if (m_image_info.read_only)
            return {};
        return m_image->flush();
    case BlockOp::Discard:
        if (m_image_info.read_only)
            return block_error(BlockErrorKind::ReadOnly, "the disk is read-only");
        TRY(check_request(m_image_info, request.offset, request.length));
        return m_image->discard(request.offset, request.length);
    }
    return block_error(BlockErrorKind::InvalidArgument, "unknown request");
}

void BlockDevice::submit(const BlockRequest& request, BlockCallback done)
{
    ++m_in_flight;
    if (m_execution == Execution::Inline) {
        finish(std::move(done), perform(request));
        return;
    }
    {
        std::lock_guard lock(m_queue->mutex);
        m_queue->pending.push_back({request, std::move(done)});
    }
    m_queue->work_posted.notify_one();
}

// Either thread: records a result and asks the machine to deliver it.
void BlockDevice::finish(BlockCallback done, BlockStatus status)
{
    bool first;
    {
        std::lock_guard lock(m_queue->mutex);
        first = m_queue->finished.empty();
        m_queue->finished.push_back({std::move(done), std::move(status)});
    }
    // One delivery per batch: it takes everything finished by then.
    if (first)
        m_run_on_machine([queue = m_queue] {
            if (queue->owner)
                queue->owner->deliver_finished();
        });
}

void BlockDevice::deliver_finished()
{
    std::vector<Finished> batch;
    {
        std::lock_guard lock(m_queue->mutex);
        batch.swap(m_queue->finished);
    }
    for (Finished& entry : batch) {
        --m_in_flight;
        entry.done(std::move(entry.status));
    }
}

void BlockDevice::drain()
{
    // Callbacks may submit more (a model chaining its next request), so
    // until nothing is left.
    while (m_in_flight > 0) {
        if (m_queue->worker.joinable()) {
            std::unique_lock lock(m_queue->mutex);
            m_queue->became_idle.wait(
                lock, [&] { return m_queue->pending.empty() && !m_queue->busy; });
        }
        deliver_finished();
    }
}

void BlockDevice::worker_loop()
{
    std::unique_lock lock(m_queue->mutex);
    while (true) {
        m_queue->work_posted.wait(lock,
                                  [&] { return m_queue->stopping || !m_queue->pending.empty(); });
        if (m_queue->pending.empty()) // stopping, nothing left
            return;
        Queue::Pending next = std::move(m_queue->pending.front());
        m_queue->pending.pop_front();
        m_queue->busy = true;
        lock.unlock();
        BlockStatus status = perform(next.request);
        if (!m_queue->stopping)
            finish(std::move(next.done), std::move(status));
        lock.lock();
        m_queue->busy = false;
        if (m_queue->pending.empty())
            m_queue->became_idle.notify_all();
    }
}
