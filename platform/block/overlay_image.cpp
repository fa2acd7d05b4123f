#include "platform/block/overlay_image.h"

#include <algorithm>
#include <cstring>
#include <unordered_map>

namespace {

class MemoryOverlay final : public BlockImage {
public:
    explicit MemoryOverlay(std::unique_ptr<BlockImage> base) : m_base(std::move(base)), m_info(m_base->info())
    {
        m_info.read_only = false;
    }

    const ImageInfo& info() const override { return m_info; }

    BlockStatus read(u64 offset, std::span<u8> out) override
    {
        TRY(check_request(m_info, offset, out.size()));
        // Runs of clusters the overlay does not hold go to the base in one read.
        u64 done = 0;
        while (done < out.size()) {
            const u64 at = offset + done;
            const u64 length = std::min<u64>(out.size() - done, CLUSTER - at % CLUSTER);
            if (const auto it = m_clusters.find(at / CLUSTER); it != m_clusters.end()) {
                std::memcpy(out.data() + done, it->second.get() + at % CLUSTER, length);
                done += length;
                continue;
            }
            u64 run = length;
            while (done + run < out.size() && !m_clusters.contains((at + run) / CLUSTER))
                run += std::min<u64>(out.size() - done - run, CLUSTER);
            TRY(m_base->read(at, out.subspan(done, run)));
            done += run;
        }
        return {};
    }

    BlockStatus write(u64 offset, std::span<const u8> data) override
    {
        TRY(check_request(m_info, offset, data.size()));
        u64 done = 0;
        while (done < data.size()) {
            const u64 at = offset + done;
            const u64 length = std::min<u64>(data.size() - done, CLUSTER - at % CLUSTER);
            u8* cluster = TRY(cluster_for(at / CLUSTER));
            std::memcpy(cluster + at % CLUSTER, data.data() + done, length);
            done += length;
        }
        return {};
    }

    // Nothing is durable by design: the writes go with the process.
    BlockStatus flush() override { return {}; }
    BlockStatus discard(u64 offset, u64 length) override { return check_request(m_info, offset, length); }

    BlockResult<Extent> map(u64 offset, u64 max_length) override
    {
        Extent extent = TRY(m_base->map(offset, max_length));
        // Clusters written here are data of this disk, whatever lies beneath.
        for (u64 at = offset; at < offset + extent.length; at = (at / CLUSTER + 1) * CLUSTER) {
            if (!m_clusters.contains(at / CLUSTER))
                continue;
            if (at > offset) {
                extent.length = at - offset; // the base's kind up to the first written cluster
                return extent;
            }
            u64 end = at;
            while (end < offset + max_length && m_clusters.contains(end / CLUSTER))
                end = (end / CLUSTER + 1) * CLUSTER;
            return Extent{offset, std::min(end, offset + max_length) - offset, ExtentKind::Data, std::nullopt};
        }
        extent.host_offset.reset(); // the base's file offsets say nothing of this disk
        return extent;
    }

    BlockResult<CheckReport> check(bool repair) override
    {
        if (repair)
            return BlockError{BlockErrorKind::ReadOnly, "a snapshot=on disk repairs nothing: its image is read-only"};
        return m_base->check(false);
    }

private:
    static constexpr u64 CLUSTER = 4096;

    // The overlay's copy of cluster `index`, made from the base's bytes the
    // first time it is written.
    BlockResult<u8*> cluster_for(u64 index)
    {
        if (const auto it = m_clusters.find(index); it != m_clusters.end())
            return it->second.get();
        auto bytes = std::make_unique<u8[]>(CLUSTER); // zeroed: the disk's short last cluster ends in zeros
        const u64 start = index * CLUSTER;
        const u64 length = std::min(CLUSTER, m_info.virtual_size - start);
        TRY(m_base->read(start, std::span<u8>(bytes.get(), length)));
        return m_clusters.emplace(index, std::move(bytes)).first->second.get();
    }

    std::unique_ptr<BlockImage> m_base;
    ImageInfo m_info;
    std::unordered_map<u64, std::unique_ptr<u8[]>> m_clusters;
};

} // namespace

std::unique_ptr<BlockImage> make_memory_overlay(std::unique_ptr<BlockImage> base)
{
    return std::make_unique<MemoryOverlay>(std::move(base));
}
