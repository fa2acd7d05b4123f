#include "platform/replay/replay_log.h"

#include <bit>
#include <cstring>

namespace replay {

namespace {

const char* outcome_name(u8 kind)
{
    switch (static_cast<RunOutcome::Kind>(kind)) {
    case RunOutcome::Kind::GuestExit: return "the guest's exit";
    case RunOutcome::Kind::PowerOff: return "a power-off";
    case RunOutcome::Kind::Reset: return "a reset";
    case RunOutcome::Kind::TripleFault: return "a triple fault";
    case RunOutcome::Kind::InstructionLimit: return "the instruction limit";
    case RunOutcome::Kind::HaltedForever: return "halted vCPUs";
    case RunOutcome::Kind::GuestCrash: return "a guest crash";
    case RunOutcome::Kind::HostStop: return "a host stop";
    case RunOutcome::Kind::Checkpoint: return "a checkpoint";
    case RunOutcome::Kind::DebugStop: return "a debugger's stop";
    }
    return "an unknown end";
}

std::string where(u64 poll, u64 retired)
{
    return "instruction " + std::to_string(retired) + " (host poll " + std::to_string(poll) + ")";
}

// The medium a Kind::Medium input puts in, if it is an insert.
std::optional<MediumChange> medium_insert(const HostInput& input)
{
    if (input.kind != HostInput::Kind::Medium)
        return std::nullopt;
    std::optional<MediumChange> change = decode_medium(input.bytes);
    if (!change || change->action != TrayAction::Insert)
        return std::nullopt;
    return change;
}

std::string medium_role(u32 drive) { return "the medium of drive " + std::to_string(drive); }

} // namespace

u64 hash_cpu_state(const CpuState& s)
{
    std::vector<u64> words(s.gpr.begin(), s.gpr.end());
    words.insert(words.end(), {s.rip, s.rflags, s.cr0, s.cr2, s.cr3, s.cr4, s.cr8, s.xcr0, s.msr.efer});
    for (const Segment& seg : s.seg)
        words.insert(words.end(), {seg.selector, seg.base, seg.limit, seg.attr});
    for (const Segment* seg : {&s.ldtr, &s.tr})
        words.insert(words.end(), {seg->selector, seg->base, seg->limit, seg->attr});
    words.insert(words.end(), {s.gdtr.base, s.gdtr.limit, s.idtr.base, s.idtr.limit});
    words.insert(words.end(), {s.fpu.mxcsr, s.fpu.fcw, u64{s.events.halted}});
    for (const auto& x : s.fpu.xmm)
        words.insert(words.end(), {x[0], x[1]});
    for (const auto& y : s.fpu.ymm_high)
        words.insert(words.end(), {y[0], y[1]});
    return content_hash({reinterpret_cast<const u8*>(words.data()), words.size() * sizeof(u64)});
}

Record take_sync(Machine& machine, PhysicalMemory::DirtyBitmap& scratch)
{
    Record r;
    r.type = Record::Type::Sync;
    r.retired = machine.retired();
    for (unsigned i = 0; i < machine.vcpu_count(); ++i)
        r.vcpus.push_back({machine.vcpu_retired(i), hash_cpu_state(machine.vcpu_state(i))});
    PhysicalMemory& memory = machine.memory();
    memory.collect_dirty(scratch);
    u64 h = 0;
    for (size_t word = 0; word < scratch.size(); ++word) {
        for (u64 bits = scratch[word]; bits; bits &= bits - 1) {
            const u64 index = word * 64 + static_cast<u64>(std::countr_zero(bits));
            if (index >= memory.ram_page_count())
                break;
            h = content_hash({memory.ram_page_by_index(index), 4096}, h ^ index);
            ++r.dirty_pages;
        }
    }
    r.memory_hash = h;
    return r;
}

Recorder::Recorder(std::unique_ptr<RecordingWriter> writer, u64 sync_interval)
    : m_writer(std::move(writer)), m_sync_interval(sync_interval)
{
}

void Recorder::begin(Machine& machine)
{
    machine.memory().start_dirty_log();
    m_next_sync = machine.retired() + m_sync_interval;
}

void Recorder::write(const Record& record)
{
    if (!m_failure.empty())
        return;
    if (ErrorOr<void> written = m_writer->append(record); written.is_error())
        m_failure = written.error().message;
}

std::optional<int> Recorder::at_poll(Machine& machine, bool again)
{
    if (!again)
        ++m_poll;
    if (machine.retired() >= m_next_sync) {
        Record sync = take_sync(machine, m_scratch);
        sync.poll = m_poll;
        write(sync);
        ++m_syncs;
        m_next_sync = sync.retired + m_sync_interval;
        // A killed recording keeps everything up to here (in PATH.tmp).
        if (m_failure.empty())
            if (ErrorOr<void> flushed = m_writer->flush(); flushed.is_error())
                m_failure = flushed.error().message;
    }
    if (!m_failure.empty())
        return 1;
    return std::nullopt;
}

bool Recorder::live_input(Machine& machine, const HostInput& input)
{
    Record r;
    r.type = Record::Type::Input;
    r.poll = m_poll;
    r.retired = machine.retired();
    r.input = input;
    // A medium put in: the file's identity, as the header has the drives'
    // (the replay refuses a changed file).
    if (std::optional<MediumChange> change = medium_insert(input)) {
        ErrorOr<FileIdentity> identity = identify_file(medium_role(input.value), change->file);
        if (identity.is_error() && m_failure.empty())
            m_failure = identity.error().message;
        if (!identity.is_error()) {
            change->size = identity.value().size;
            change->hash = identity.value().hash;
            r.input.bytes = encode_medium(*change);
        }
    }
    write(r);
    ++m_inputs;
    if (input.kind == HostInput::Kind::SetLink)
        m_link_up = input.value != 0;
    return true;
}

ErrorOr<void> Recorder::finish(RunOutcome::Kind kind, int status, u64 retired, u64 total_retired)
{
    if (!m_failure.empty())
        return make_error(m_failure);
    Record end;
    end.type = Record::Type::End;
    end.poll = m_poll;
    end.retired = retired;
    end.end_kind = static_cast<u8>(kind);
    end.end_status = status;
    end.total_retired = total_retired;
    return m_writer->finish(end);
}

Replayer::Replayer(Recording recording) : m_recording(std::move(recording)) {}

void Replayer::begin(Machine& machine)
{
    machine.memory().start_dirty_log();
    // History starts again with each machine (a reboot makes a new one).
    if (m_snapshots) {
        m_snapshots->clear();
        m_snapshot_points.clear();
        m_snapshot_due = true;
    }
}

void Replayer::keep_snapshots(u64 max_bytes) { m_snapshots = std::make_unique<ReplaySnapshots>(max_bytes); }

const std::vector<u64>& Replayer::snapshot_units(size_t index) const
{
    return m_snapshot_points.at(m_snapshots->key(index)).units;
}

u64 Replayer::snapshot_retired(size_t index) const
{
    return m_snapshot_points.at(m_snapshots->key(index)).retired;
}

void Replayer::take_snapshot(Machine& machine)
{
    // A run that went back passes its snapshots again: the ones it has stay.
    const u64 key = machine.units();
    if (m_snapshots->count() > 0 && m_snapshots->key(m_snapshots->count() - 1) >= key)
        return;
    SnapshotPoint point{m_next, m_poll, m_serial_seen, m_syncs, m_link_up, machine.retired(), {}, machine.discs()};
    for (unsigned i = 0; i < machine.vcpu_count(); ++i)
        point.units.push_back(machine.vcpu_units(i));
    if (m_snapshots->take(machine, key, {}))
        m_snapshot_points[key] = std::move(point);
}

ErrorOr<void> Replayer::rewind(size_t index, Machine& machine)
{
    const SnapshotPoint& point = m_snapshot_points.at(m_snapshots->key(index));
    machine.restore_discs(point.discs);
    TRY(m_snapshots->restore(index, machine));
    machine.forget_round();
    m_next = point.next;
    m_poll = point.poll;
    m_serial_seen = point.serial_seen;
    m_syncs = point.syncs;
    m_link_up = point.link_up;
    m_divergence.reset();
    return {};
}

int Replayer::diverge(std::string message)
{
    if (!m_divergence)
        m_divergence = std::move(message);
    return DIVERGED;
}

std::optional<std::string> Replayer::compare(const Record& recorded, const Record& now) const
{
    const std::string at = "replay diverged at " + where(recorded.poll, recorded.retired) + ": ";
    if (recorded.vcpus.size() != now.vcpus.size())
        return at + "the recording has " + std::to_string(recorded.vcpus.size()) + " vCPUs, the replay " +
               std::to_string(now.vcpus.size());
    for (size_t i = 0; i < now.vcpus.size(); ++i) {
        if (recorded.vcpus[i].retired != now.vcpus[i].retired)
            return at + "vCPU " + std::to_string(i) + " retired " + std::to_string(now.vcpus[i].retired) +
                   " instructions, in the recording " + std::to_string(recorded.vcpus[i].retired);
        if (recorded.vcpus[i].state_hash != now.vcpus[i].state_hash)
            return at + "vCPU " + std::to_string(i) + "'s registers differ from the recording's";
    }
    if (recorded.memory_hash != now.memory_hash || recorded.dirty_pages != now.dirty_pages)
        return at + "the memory written since the last sync record differs (" +
               std::to_string(now.dirty_pages) + " pages written, in the recording " +
               std::to_string(recorded.dirty_pages) + ")";
    return std::nullopt;
}

std::optional<int> Replayer::at_poll(Machine& machine, bool again)
{
    if (m_divergence)
        return DIVERGED;
    if (!again)
        ++m_poll;
    const std::optional<int> stop = deliver(machine);
    // This point's inputs are in: a snapshot here resumes after them.
    if (!stop && m_snapshots && !again && std::exchange(m_snapshot_due, false))
        take_snapshot(machine);
    return stop;
}

std::optional<int> Replayer::deliver(Machine& machine)
{
    const u64 retired = machine.retired();
    while (m_next < m_recording.records.size()) {
        const Record& r = m_recording.records[m_next];
        if (r.poll > m_poll)
            return std::nullopt;
        if (r.type == Record::Type::End) {
            if (r.poll < m_poll)
                return diverge("replay diverged: the recording ended at " + where(r.poll, r.retired) +
                               " with " + outcome_name(r.end_kind) + "; the replay runs on at " +
                               where(m_poll, retired));
            if (r.end_kind != static_cast<u8>(RunOutcome::Kind::HostStop))
                return std::nullopt; // the guest ends the run by itself later
            if (r.retired != retired)
                return diverge("replay diverged: the recording was stopped by the host at " +
                               where(r.poll, r.retired) + ", the replay is at instruction " +
                               std::to_string(retired));
            ++m_next;
            return r.end_status;
        }
        if (r.poll < m_poll || r.retired != retired)
            return diverge("replay diverged at " + where(m_poll, retired) + ": the recording reached " +
                           (r.poll < m_poll ? "host poll " + std::to_string(r.poll) : std::string("it")) +
                           " at instruction " + std::to_string(r.retired) + " (with " +
                           (r.type == Record::Type::Sync ? "a sync record" : "an input") + " there)");
        if (r.type == Record::Type::Sync) {
            ++m_syncs;
            if (std::optional<std::string> differs = compare(r, take_sync(machine, m_scratch)))
                return diverge(*differs);
            if (m_snapshots) {
                m_snapshots->note_written(m_scratch);
                m_snapshot_due = true;
            }
        } else {
            HostInput input = r.input;
            if (input.kind == HostInput::Kind::SerialByte && m_alter && m_serial_seen++ == *m_alter)
                input.value ^= 1;
            if (input.kind == HostInput::Kind::SetLink)
                m_link_up = input.value != 0;
            // The file a recorded medium change put in must be the one recorded.
            if (const std::optional<MediumChange> change = medium_insert(input)) {
                const std::string at = "replay stopped at " + where(m_poll, retired) + ": ";
                ErrorOr<FileIdentity> now = identify_file(medium_role(input.value), change->file);
                if (now.is_error())
                    return diverge(at + now.error().message);
                if (now.value().size != change->size || now.value().hash != change->hash)
                    return diverge(at + "the medium '" + change->file + "' put into drive " +
                                   std::to_string(input.value) + " changed since the recording (" +
                                   std::to_string(change->size) + " bytes then, " +
                                   std::to_string(now.value().size) + " now, or other content)");
            }
            machine.apply_input(input);
        }
        ++m_next;
    }
    return diverge("replay diverged: the recording ends before " + where(m_poll, retired));
}

std::optional<std::string> Replayer::check_end(RunOutcome::Kind kind, int status, u64 total_retired) const
{
    if (m_divergence)
        return m_divergence;
    const Record& end = m_recording.records.back();
    if (m_next + 1 < m_recording.records.size())
        return "replay diverged: the run ended at instruction " + std::to_string(total_retired) +
               " before the recording's inputs did (next at " +
               where(m_recording.records[m_next].poll, m_recording.records[m_next].retired) + ")";
    // A cut-short recording's end is its last sync record, whose count is
    // the last machine's: the run's total is not in the file.
    if (static_cast<u8>(kind) != end.end_kind || status != end.end_status ||
        (!m_recording.cut_short && total_retired != end.total_retired))
        return "replay diverged: the run ended with " + std::string(outcome_name(static_cast<u8>(kind))) +
               " (status " + std::to_string(status) + ") after " + std::to_string(total_retired) +
               " instructions; the recording with " + outcome_name(end.end_kind) + " (status " +
               std::to_string(end.end_status) + ") after " + std::to_string(end.total_retired);
    return std::nullopt;
}

} // namespace replay
