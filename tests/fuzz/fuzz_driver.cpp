// A plain driver for the fuzz targets, for builds without libFuzzer: feeds
// seeded random inputs (reproducible) so the test suite exercises the target
// on every run. Usage: <binary> [--seed N] [--runs M] [--max-len L] [--corpus DIR]
// With --corpus, the inputs are the files in DIR, each once as it is, then
// mutated copies of them (a few bytes overwritten, bits flipped, cut short):
// for targets whose inputs random bytes would almost never get far into.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

std::vector<std::vector<uint8_t>> read_corpus(const char* dir)
{
    std::vector<std::filesystem::path> paths;
    for (const auto& entry : std::filesystem::directory_iterator(dir))
        if (entry.is_regular_file())
            paths.push_back(entry.path());
    std::sort(paths.begin(), paths.end()); // the same order on every host: reproducible
    std::vector<std::vector<uint8_t>> seeds;
    for (const auto& path : paths) {
        std::ifstream in(path, std::ios::binary);
        seeds.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    return seeds;
}

// A few of the changes libFuzzer's mutators make, enough to walk a seed's
// fields off their valid values.
void mutate(std::vector<uint8_t>& input, std::mt19937_64& rng)
{
    static constexpr uint64_t INTERESTING[] = {0, 1, 2, 7, 8, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x7FFFFFFF,
                                               0xFFFFFFFF, ~0ull, 1ull << 63};
    const unsigned changes = 1 + rng() % 8;
    for (unsigned i = 0; i < changes && !input.empty(); ++i) {
        const size_t at = rng() % input.size();
        switch (rng() % 16) {
        case 0: // cut short
            input.resize(at);
            break;
        case 1: case 2: case 3: case 4:
            input[at] ^= static_cast<uint8_t>(1u << (rng() % 8));
            break;
        case 5: case 6: case 7: case 8: case 9:
            input[at] = static_cast<uint8_t>(rng());
            break;
        default: { // a whole little-endian value
            const uint64_t value = INTERESTING[rng() % std::size(INTERESTING)];
            const size_t width = size_t{1} << (rng() % 4);
            for (size_t b = 0; b < width && at + b < input.size(); ++b)
                input[at + b] = static_cast<uint8_t>(value >> (8 * b));
            break;
        }
        }
    }
}

} // namespace

int main(int argc, char** argv)
{
    uint64_t seed = 1, runs = 2000, max_len = 256;
    const char* corpus = nullptr;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--seed"))
            seed = std::strtoull(argv[i + 1], nullptr, 0);
        else if (!std::strcmp(argv[i], "--runs"))
            runs = std::strtoull(argv[i + 1], nullptr, 0);
        else if (!std::strcmp(argv[i], "--max-len"))
            max_len = std::strtoull(argv[i + 1], nullptr, 0);
        else if (!std::strcmp(argv[i], "--corpus"))
            corpus = argv[i + 1];
        else {
            std::fprintf(stderr, "usage: %s [--seed N] [--runs M] [--max-len L] [--corpus DIR]\n", argv[0]);
            return 2;
        }
    }
    std::mt19937_64 rng(seed);
    std::vector<uint8_t> input;
    if (corpus) {
        const std::vector<std::vector<uint8_t>> seeds = read_corpus(corpus);
        if (seeds.empty()) {
            std::fprintf(stderr, "%s: no seeds in %s\n", argv[0], corpus);
            return 2;
        }
        for (const auto& s : seeds)
            LLVMFuzzerTestOneInput(s.data(), s.size());
        for (uint64_t run = 0; run < runs; ++run) {
            input = seeds[rng() % seeds.size()];
            mutate(input, rng);
            LLVMFuzzerTestOneInput(input.data(), input.size());
        }
        std::printf("%zu seeds and %llu mutations of them, no crash\n", seeds.size(),
                    static_cast<unsigned long long>(runs));
        return 0;
    }
    for (uint64_t run = 0; run < runs; ++run) {
        input.resize(2 + rng() % max_len);
        for (auto& b : input)
            b = static_cast<uint8_t>(rng());
        LLVMFuzzerTestOneInput(input.data(), input.size());
    }
    std::printf("%llu inputs, no crash\n", static_cast<unsigned long long>(runs));
    return 0;
}
