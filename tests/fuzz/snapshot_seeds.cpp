// Writes and checks the seeds of the snapshot fuzz targets: real saved states
// of the machines snapshot_fuzz_machine.h builds, taken after the seed
// program has run a few instructions and a few thousand (timers armed,
// interrupts delivered), for each configuration the first byte can choose.
//
//   snapshot-fuzz-seeds write CORPUS   writes CORPUS/snapshot/* and CORPUS/snapshot-file/*
//   snapshot-fuzz-seeds check CORPUS   every seed still loads (a change to a
//                                      saved structure makes them stale: write them again)
#include "platform/machine/snapshot.h"
#include "tests/fuzz/snapshot_fuzz_machine.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace {

using namespace snapshot_fuzz;

constexpr u8 SELECTORS[] = {0, TWO_VCPUS, NO_ENLIGHTENMENTS, TWO_VCPUS | NO_ENLIGHTENMENTS};
constexpr u64 POINTS[] = {40, 6000};

std::string seed_name(u8 selector, u64 point)
{
    return std::string(selector & TWO_VCPUS ? "cpus2" : "cpus1") +
           (selector & NO_ENLIGHTENMENTS ? "-plain" : "-hyperv") + "-at" + std::to_string(point);
}

bool write_file(const std::filesystem::path& path, u8 selector, const u8* data, size_t size)
{
    std::ofstream out(path, std::ios::binary);
    out.put(static_cast<char>(selector));
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    return static_cast<bool>(out);
}

int write_seeds(const std::filesystem::path& corpus)
{
    std::filesystem::create_directories(corpus / "snapshot");
    std::filesystem::create_directories(corpus / "snapshot-file");
    for (u8 selector : SELECTORS)
        for (u64 point : POINTS) {
            std::unique_ptr<Machine> machine = make_machine(selector, true);
            if (!machine)
                return 1;
            machine->run({}, point);
            StateVisitor state = StateVisitor::saver();
            machine->visit_state(state);
            char* buffer = nullptr;
            size_t length = 0;
            std::FILE* file = ::open_memstream(&buffer, &length);
            const bool saved = file && !save_snapshot(*machine, file).is_error();
            if (file)
                std::fclose(file);
            const std::string name = seed_name(selector, point);
            const bool ok = state.ok() && saved &&
                            write_file(corpus / "snapshot" / name, selector, state.bytes().data(),
                                       state.bytes().size()) &&
                            write_file(corpus / "snapshot-file" / name, selector,
                                       reinterpret_cast<const u8*>(buffer), length);
            std::free(buffer);
            if (!ok) {
                std::fprintf(stderr, "snapshot-fuzz-seeds: cannot write %s\n", name.c_str());
                return 1;
            }
            std::printf("%s: state %zu bytes, file %zu bytes\n", name.c_str(), state.bytes().size(), length);
        }
    return 0;
}

std::vector<u8> read_file(const std::filesystem::path& path)
{
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

int check_seeds(const std::filesystem::path& corpus)
{
    unsigned checked = 0, stale = 0;
    for (u8 selector : SELECTORS)
        for (u64 point : POINTS) {
            const std::string name = seed_name(selector, point);
            const std::vector<u8> state_seed = read_file(corpus / "snapshot" / name);
            const std::vector<u8> file_seed = read_file(corpus / "snapshot-file" / name);
            std::string why;
            if (state_seed.size() < 2 || file_seed.size() < 2 || state_seed[0] != selector ||
                file_seed[0] != selector) {
                why = "missing or empty";
            } else {
                std::unique_ptr<Machine> machine = make_machine(selector, false);
                StateVisitor state = StateVisitor::loader({state_seed.begin() + 1, state_seed.end()});
                machine->visit_state(state);
                if (!state.ok() || !state.at_end())
                    why = "state: " + (state.ok() ? std::string("longer than this build reads") : state.error());
                machine = make_machine(selector, false);
                std::FILE* in = ::fmemopen(const_cast<u8*>(file_seed.data() + 1), file_seed.size() - 1, "rb");
                ErrorOr<void> loaded = load_snapshot(*machine, in);
                std::fclose(in);
                if (why.empty() && loaded.is_error())
                    why = "file: " + loaded.error().message;
            }
            ++checked;
            if (!why.empty()) {
                ++stale;
                std::fprintf(stderr, "snapshot-fuzz-seeds: seed %s does not load (%s)\n", name.c_str(), why.c_str());
            }
        }
    if (stale)
        std::fprintf(stderr, "snapshot-fuzz-seeds: write them again: snapshot-fuzz-seeds write tests/fuzz/corpus\n");
    else
        std::printf("%u seeds load\n", checked);
    return stale ? 1 : 0;
}

} // namespace

int main(int argc, char** argv)
{
    if (argc == 3 && !std::strcmp(argv[1], "write"))
        return write_seeds(argv[2]);
    if (argc == 3 && !std::strcmp(argv[1], "check"))
        return check_seeds(argv[2]);
    std::fprintf(stderr, "usage: %s write|check CORPUS\n", argv[0]);
    return 2;
}
