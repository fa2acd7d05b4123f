// The machine thread's side in a test of a block device or a disk model:
// deliveries are collected and run when the test says so.
#pragma once

#include "platform/block/block_device.h"

#include <functional>
#include <mutex>
#include <vector>

struct FakeMachine {
    std::mutex mutex;
    std::vector<std::function<void()>> posted;

    RunOnMachine runner()
    {
        return [this](std::function<void()> deliver) {
            std::lock_guard lock(mutex);
            posted.push_back(std::move(deliver));
        };
    }
    size_t run_posted()
    {
        std::vector<std::function<void()>> batch;
        {
            std::lock_guard lock(mutex);
            batch.swap(posted);
        }
        for (auto& deliver : batch)
            deliver();
        return batch.size();
    }
};
