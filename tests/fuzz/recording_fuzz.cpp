// Fuzz target: the recording loader (platform/replay/recording.h). The first
// byte picks how the rest is read: as a whole file; as the records of the
// event stream behind a valid header of this build (compressed here, so
// mutations reach the record parser rather than dying in zlib); or as
// byte flips over a valid recording. A recording either parses or is refused
// with one line; no crash, hang or sanitizer report either way.
#include "platform/replay/recording.h"

#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

replay::Recording valid_recording()
{
    replay::Recording rec;
    rec.header.build = replay::recording_build_identity();
    rec.header.args = {"--kernel", "k", "--deterministic"};
    rec.header.files = {{"kernel", "k", 10, 20}};
    rec.header.sync_interval = 1000;
    replay::Record input;
    input.poll = 2;
    input.retired = 100;
    input.input = {HostInput::Kind::NetFrame, 0, {1, 2, 3}};
    // A disc change (QMP blockdev-change-medium): byte flips reach its file
    // name, format and identity.
    replay::Record eject = input;
    eject.input = {HostInput::Kind::Medium, 1, encode_medium(TrayAction::Open)};
    MediumChange change(TrayAction::Insert);
    change.file = "b.iso";
    change.format = "raw";
    change.size = 4096;
    change.hash = 0x1234;
    replay::Record insert = input;
    insert.input = {HostInput::Kind::Medium, 1, encode_medium(change)};
    replay::Record sync;
    sync.type = replay::Record::Type::Sync;
    sync.poll = 3;
    sync.vcpus = {{1, 2}, {3, 4}};
    replay::Record end;
    end.type = replay::Record::Type::End;
    end.poll = 4;
    rec.records = {input, eject, insert, sync, end};
    return rec;
}

void check(const ErrorOr<replay::Recording>& parsed)
{
    if (parsed.is_error()) {
        const std::string& message = parsed.error().message;
        if (message.empty() || message.find('\n') != std::string::npos) {
            std::fprintf(stderr, "recording_fuzz: a refusal is not one line: '%s'\n", message.c_str());
            std::abort();
        }
        return;
    }
    if (parsed.value().records.empty() ||
        parsed.value().records.back().type != replay::Record::Type::End)
        std::abort(); // parse_recording promises an End last
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    if (size < 1)
        return 0;
    const std::span<const u8> rest(data + 1, size - 1);
    switch (data[0] % 3) {
    case 0:
        check(replay::parse_recording(rest));
        break;
    case 1: {
        replay::Recording rec = valid_recording();
        rec.records.clear();
        std::vector<u8> bytes = replay::serialize_recording(rec); // the header and an empty stream
        // Replace the empty stream with the input as the records.
        uLongf length = compressBound(rest.size());
        std::vector<u8> packed(length);
        compress2(packed.data(), &length, rest.data(), rest.size(), Z_BEST_SPEED);
        const std::vector<u8> empty = [] {
            uLongf n = compressBound(0);
            std::vector<u8> out(n);
            compress2(out.data(), &n, nullptr, 0, Z_BEST_SPEED);
            out.resize(n);
            return out;
        }();
        bytes.resize(bytes.size() - empty.size());
        bytes.insert(bytes.end(), packed.begin(), packed.begin() + static_cast<std::ptrdiff_t>(length));
        check(replay::parse_recording(bytes));
        break;
    }
    default: {
        std::vector<u8> bytes = replay::serialize_recording(valid_recording());
        for (size_t i = 0; i + 1 < rest.size(); i += 2)
            bytes[rest[i] % bytes.size()] ^= rest[i + 1];
        check(replay::parse_recording(bytes));
        break;
    }
    }
    return 0;
}
