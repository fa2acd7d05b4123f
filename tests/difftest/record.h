// Recorded host results: `cpu-difftest --record FILE` writes what the host
// CPU did with every case of a run, `--replay FILE` judges the interpreter
// against such a file on any machine (docs/difftest-corpora.md).
//
// A file is one zlib (gzip-framed) stream: a header, then one entry per case
// in case order, then a trailer. Every integer is little-endian or LEB128.
// An entry stores the host's Result as what differs from the case's initial
// state, so a case that changes one register costs a few bytes.
#pragma once

#include "tests/difftest/difftest.h"
#include "tests/difftest/generator.h"

#include <string>
#include <vector>

namespace difftest {

constexpr char RECORD_MAGIC[8] = {'V', 'R', 'D', 'I', 'F', 'F', 'R', 'C'};
constexpr u32 RECORD_VERSION = 1;

// Who produced the results: the host's CPUID identity (leaf 0 vendor, leaf 1
// family/model/stepping with the extended fields folded in, the 0x80000002-4
// brand string), and a free-form note on how the file was made.
struct HostIdentity {
    std::string vendor; // "GenuineIntel", "AuthenticAMD"
    u32 family = 0, model = 0, stepping = 0;
    std::string brand;
    static HostIdentity of_this_host();
};

struct RecordHeader {
    u64 seed = 0;
    u64 first = 0; // the first case's index
    u64 count = 0;
    u32 modes = 0;    // MODE_64 | MODE_32 as the run had them
    std::string only; // the family filter ("" for all)
    HostIdentity host;
    HostFeatures features; // what generate_case reads from the host
    std::string source;    // "host", or how the results were reconstructed
};

// What an entry knows of the host's result.
enum class Known : u8 {
    HostLacks = 0, // not run: the host lacks the instruction's extension
    No32Bit = 1,   // not run: the host cannot run compatibility-mode code
    Unknown = 2,   // run, but the result is not known (a reconstruction's gap)
    FaultOnly = 3, // only whether it faulted, the vector, and CR2 for #PF
    Full = 4,      // the whole Result
};
const char* known_name(Known k);
inline bool known_ran(Known k)
{
    return k == Known::FaultOnly || k == Known::Full;
}

// A running digest of the cases a file covers, kept in its trailer: a replay
// whose generator no longer makes the recorded cases is refused.
u64 case_digest(u64 running, const TestCase& tc);

class RecordWriter {
public:
    RecordWriter() = default;
    RecordWriter(const RecordWriter&) = delete;
    RecordWriter& operator=(const RecordWriter&) = delete;
    ~RecordWriter();

    bool open(const std::string& path, const RecordHeader& header, std::string& error);
    // `r` only matters when `known` is FaultOnly or Full.
    void add(const TestCase& tc, Known known, const Result& r);
    // Writes the trailer (entry count, `digest`) and closes; false when
    // anything failed to write.
    bool finish(u64 digest, std::string& error);

private:
    void flush();

    void* m_file = nullptr; // gzFile
    std::vector<u8> m_buffer;
    u64 m_entries = 0;
    bool m_failed = false;
};

// Reads a whole file at open (a corpus file is a few MB decompressed).
class RecordReader {
public:
    bool open(const std::string& path, std::string& error);
    const RecordHeader& header() const { return m_header; }
    // The next entry; `tc` must be the case it belongs to. False with `error`
    // set when the stream is malformed or ends early.
    bool next(const TestCase& tc, Known& known, Result& r, std::string& error);
    // True when every entry was read and the trailer is right, `digest`
    // (the replay's case_digest) included.
    bool finish(u64 digest, std::string& error);

private:
    std::vector<u8> m_bytes;
    size_t m_at = 0;
    u64 m_entries = 0;
    RecordHeader m_header;
};

} // namespace difftest
