// A disk as a device model uses it (docs/storage.md "Requests"): the model
// submits requests on the machine thread and is called back on the machine
// thread when each one is done, so a slow host disk never stalls a vCPU.
//
// With Execution::WorkerThread the image's I/O runs on the device's own
// thread, one request at a time in submission order (the formats are not
// thread-safe); the guest may still keep many requests in flight. With
// Execution::Inline (--deterministic, tests) the I/O is done inside
// submit() and only the callback is deferred; where it runs is up to the
// machine's `RunOnMachine`, which in deterministic mode delivers it at a
// fixed point of virtual time so a run replays exactly.
#pragma once

#include "platform/block/block_image.h"

#include <functional>
#include <memory>

enum class BlockOp : u8 { Read, Write, Flush, Discard };

struct BlockRequest {
    BlockOp op = BlockOp::Read;
    u64 offset = 0; // bytes; sector-aligned (checked: OutOfRange otherwise)
    u64 length = 0;
    // Read: filled; Write: the data. Owned by the submitter, which keeps it
    // alive and untouched until the callback.
    u8* buffer = nullptr;
};

using BlockCallback = std::function<void(BlockStatus)>;
// Arranges for `deliver` to run on the machine thread (any thread may call it).
using RunOnMachine = std::function<void(std::function<void()> deliver)>;

class BlockDevice {
public:
    enum class Execution : u8 { WorkerThread, Inline };

    BlockDevice(std::unique_ptr<BlockImage> image, Execution execution,
                RunOnMachine run_on_machine);
    // Lets queued requests finish (their callbacks are not called) and stops
    // the worker.
    ~BlockDevice();
    BlockDevice(const BlockDevice&) = delete;
    BlockDevice& operator=(const BlockDevice&) = delete;

    const ImageInfo& info() const { return m_image_info; }
    bool read_only() const { return m_image_info.read_only; }

    // Machine thread. A request the disk refuses outright (out of range, a
    // write to a read-only disk) is called back with its error the same way.
    void submit(const BlockRequest& request, BlockCallback done);
    // Machine thread: submitted and not yet called back.
    size_t in_flight() const { return m_in_flight; }
    // Machine thread: waits for every submitted request's I/O and runs their
    // callbacks now (before a snapshot, a reset or exit).
    void drain();

    // The image, for what is not a request (snapshots name it, tools query it).
    // Only while nothing is in flight.
    BlockImage& image() { return *m_image; }

private:
    struct Queue;
    struct Finished;

    BlockStatus perform(const BlockRequest& request);
    void finish(BlockCallback done, BlockStatus status);
    void deliver_finished();
    void worker_loop();

    std::unique_ptr<BlockImage> m_image;
    ImageInfo m_image_info;
    Execution m_execution;
    RunOnMachine m_run_on_machine;
    size_t m_in_flight = 0;
    std::shared_ptr<Queue> m_queue;
};
