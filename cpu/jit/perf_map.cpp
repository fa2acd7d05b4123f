#include "cpu/jit/perf_map.h"

#include <cinttypes>
#include <unistd.h>

PerfMap::PerfMap(const std::string& path) : m_file(std::fopen(path.c_str(), "w")) {}

PerfMap::~PerfMap()
{
    if (m_file)
        std::fclose(m_file);
}

void PerfMap::add(const void* start, size_t bytes, u64 guest_linear, GuestPhys guest_phys)
{
    if (!m_file || bytes == 0)
        return;
    std::lock_guard<std::mutex> hold(m_lock);
    // Flushed line by line: perf reads the file while (or after) the
    // process runs, and a killed machine must still leave a whole map.
    std::fprintf(m_file, "%" PRIxPTR " %zx guest_%" PRIx64 " [phys %" PRIx64 "]\n",
                 reinterpret_cast<uintptr_t>(start), bytes, guest_linear, guest_phys);
    std::fflush(m_file);
}

std::string PerfMap::default_path()
{
    return "/tmp/perf-" + std::to_string(getpid()) + ".map";
}
