#include "paravirt/vmbus/fcopy_ic.h"

#include "mmu/base/utf16.h"

#include <algorithm>
#include <cstdio>
#include <utility>

// Linux 6.1 takes file copy 1.1 only (fcopy_versions in hv_fcopy.c), the
// version of Windows Server 2012 R2's hosts.
FcopyIc::FcopyIc(GuestMemory memory, std::function<void()> signal_guest)
    : IcService(memory, std::move(signal_guest), {0x10001})
{
}

const char* FcopyIc::state_name(State state)
{
    switch (state) {
    case State::Idle: return "idle";
    case State::Starting: return "starting";
    case State::Writing: return "writing";
    case State::Completing: return "completing";
    case State::Cancelling: return "cancelling";
    case State::Completed: return "completed";
    case State::Failed: return "failed";
    case State::Cancelled: return "cancelled";
    }
    return "idle";
}

std::string FcopyIc::failure_text(Failure failure, u32 status)
{
    switch (failure) {
    case Failure::None: return "";
    case Failure::HostRead: return "the host's file could not be read";
    case Failure::ChannelClosed: return "the guest closed the file copy channel";
    case Failure::Restored: return "the machine was restored during the copy (the host's file is not saved)";
    case Failure::Guest: break;
    }
    switch (status) {
    case fcopy::ERROR_ALREADY_EXISTS: return "the file exists in the guest (overwrite is off)";
    case fcopy::ERROR_DISK_FULL: return "the guest's disk is full";
    case fcopy::E_FAIL:
        return "the guest failed the request (is hv_fcopy_daemon running, and does the directory exist?)";
    }
    char text[64];
    std::snprintf(text, sizeof text, "the guest answered status 0x%08x", status);
    return text;
}

std::optional<std::pair<std::string, std::string>> FcopyIc::split_destination(const std::string& path,
                                                                              std::string& error)
{
    const size_t slash = path.rfind('/');
    if (path.empty() || path[0] != '/' || slash == path.size() - 1) {
        error = "The destination must be an absolute path in the guest that names a file";
        return std::nullopt;
    }
    // The directory keeps its last '/': hv_fcopy_daemon makes (with
    // CREATE_PATH) only the components of the directory that a '/'
    // follows, and joins the two with another (a harmless "//").
    std::pair<std::string, std::string> parts{path.substr(0, slash + 1), path.substr(slash + 1)};
    for (const std::string* part : {&parts.first, &parts.second}) {
        const std::vector<u8> utf16 = utf8_to_utf16(*part);
        if (part->find('\0') != std::string::npos || utf16_to_utf8(utf16) != *part) {
            error = "The destination is not UTF-8 text";
            return std::nullopt;
        }
        if (utf16.size() / 2 >= fcopy::MAX_PATH || part->size() >= fcopy::MAX_PATH) {
            error = "The destination's directory and file name take at most 259 bytes each";
            return std::nullopt;
        }
    }
    return parts;
}

std::string FcopyIc::start(Copy copy)
{
    if (!negotiated())
        return "The guest's file copy service is not ready (is hv_utils loaded?)";
    if (busy())
        return "A file copy is under way";
    std::string error;
    const auto parts = split_destination(copy.destination, error);
    if (!parts)
        return error;
    std::vector<u8> m = request(ic::TYPE_FCOPY, fcopy::START_SIZE);
    auto put_name = [&m](unsigned at, const std::string& name) {
        const std::vector<u8> utf16 = utf8_to_utf16(name);
        std::ranges::copy(utf16, m.begin() + ic::HEADER_END + at);
    };
    store_le32(m, ic::HEADER_END + fcopy::OPERATION, fcopy::START_FILE_COPY);
    put_name(fcopy::PATH_NAME, parts->first);
    put_name(fcopy::FILE_NAME, parts->second);
    store_le32(m, ic::HEADER_END + fcopy::COPY_FLAGS,
               (copy.overwrite ? u32{fcopy::OVER_WRITE} : 0) | (copy.create_path ? u32{fcopy::CREATE_PATH} : 0));
    store_le64(m, ic::HEADER_END + fcopy::FILE_SIZE, copy.size);
    m_read = std::move(copy.read);
    m_size = copy.size;
    m_written = 0;
    m_chunk = 0;
    m_cancel_asked = false;
    m_failure = Failure::None;
    m_last_status = 0;
    if (!ask(fcopy::START_FILE_COPY, std::move(m), State::Starting))
        return "The guest's file copy service is not ready (is hv_utils loaded?)";
    return "";
}

bool FcopyIc::cancel()
{
    if (!busy() || m_state == State::Cancelling)
        return false;
    m_cancel_asked = true;
    return true;
}

bool FcopyIc::ask(u32 operation, std::vector<u8> message, State state)
{
    if (!is_open())
        return false;
    m_in_flight = operation;
    m_in_flight_transaction = message[ic::TRANSACTION];
    m_state = state;
    if (!send(message))
        m_unsent = std::move(message); // a full ring, which says when it has room
    return true;
}

void FcopyIc::on_room()
{
    if (!m_unsent.empty() && send(m_unsent))
        m_unsent.clear();
}

void FcopyIc::send_cancel(Failure failure)
{
    m_failure = failure;
    std::vector<u8> m = request(ic::TYPE_FCOPY, fcopy::HEADER_SIZE);
    store_le32(m, ic::HEADER_END + fcopy::OPERATION, fcopy::CANCEL_FCOPY);
    if (!ask(fcopy::CANCEL_FCOPY, std::move(m), State::Cancelling))
        finish(State::Failed, failure);
}

void FcopyIc::finish(State state, Failure failure)
{
    m_in_flight.reset();
    m_unsent.clear();
    m_read = nullptr;
    m_state = state;
    m_failure = failure;
}

void FcopyIc::next()
{
    if (m_cancel_asked)
        return send_cancel(Failure::None);
    if (!m_read) // restored mid-copy: nothing to read from
        return send_cancel(Failure::Restored);
    if (m_written == m_size) {
        std::vector<u8> m = request(ic::TYPE_FCOPY, fcopy::HEADER_SIZE);
        store_le32(m, ic::HEADER_END + fcopy::OPERATION, fcopy::COMPLETE_FCOPY);
        if (!ask(fcopy::COMPLETE_FCOPY, std::move(m), State::Completing))
            finish(State::Failed, Failure::ChannelClosed);
        return;
    }
    const u32 chunk = static_cast<u32>(std::min<u64>(fcopy::FRAGMENT, m_size - m_written));
    std::vector<u8> m = request(ic::TYPE_FCOPY, fcopy::WRITE_SIZE);
    const unsigned body = ic::HEADER_END;
    store_le32(m, body + fcopy::OPERATION, fcopy::WRITE_TO_FILE);
    store_le64(m, body + fcopy::OFFSET, m_written);
    store_le32(m, body + fcopy::DATA_SIZE, chunk);
    if (!m_read(m_written, std::span<u8>(m).subspan(body + fcopy::DATA, chunk)))
        return send_cancel(Failure::HostRead);
    m_chunk = chunk;
    if (!ask(fcopy::WRITE_TO_FILE, std::move(m), State::Writing))
        finish(State::Failed, Failure::ChannelClosed);
}

void FcopyIc::on_response(u16 type, std::span<const u8> m)
{
    // hv_fcopy.c answers in the request's own buffer, the daemon's status in
    // the IC header.
    if (type != ic::TYPE_FCOPY || !m_in_flight || m.size() < ic::HEADER_END + 4 ||
        m[ic::TRANSACTION] != m_in_flight_transaction ||
        load_le32(m, ic::HEADER_END + fcopy::OPERATION) != *m_in_flight)
        return;
    const u32 operation = *m_in_flight;
    const u32 status = load_le32(m, ic::STATUS);
    m_in_flight.reset();
    m_unsent.clear(); // answered before it was sent: a guest that guessed, and it counts
    if (operation == fcopy::CANCEL_FCOPY)
        return finish(m_failure == Failure::None ? State::Cancelled : State::Failed, m_failure);
    if (status != 0) {
        m_last_status = status;
        // A refused start left nothing open in the guest; a refused write
        // or completion leaves a part of the file, which a cancel removes.
        if (operation == fcopy::START_FILE_COPY)
            return finish(State::Failed, Failure::Guest);
        return send_cancel(Failure::Guest);
    }
    if (operation == fcopy::COMPLETE_FCOPY)
        return finish(State::Completed, Failure::None);
    if (operation == fcopy::WRITE_TO_FILE)
        m_written += m_chunk;
    next();
}

void FcopyIc::on_close()
{
    // A closed channel answers nothing: the copy under way is lost.
    if (m_in_flight)
        finish(State::Failed, Failure::ChannelClosed);
}

void FcopyIc::visit_state(StateVisitor& v)
{
    v.section("fcopy-ic", 1);
    visit_channel_state(v);
    v.field("state", m_state);
    v.field("failure", m_failure);
    if (v.loading() && (static_cast<u8>(m_state) > static_cast<u8>(State::Cancelled) ||
                        static_cast<u8>(m_failure) > static_cast<u8>(Failure::Restored)))
        return v.fail("fcopy-ic: bad state");
    bool in_flight = m_in_flight.has_value();
    u32 operation = m_in_flight.value_or(0);
    v.field("in_flight", in_flight);
    v.field("operation", operation);
    if (v.loading()) {
        if (operation > fcopy::CANCEL_FCOPY)
            return v.fail("fcopy-ic: bad operation");
        m_in_flight = in_flight ? std::optional<u32>(operation) : std::nullopt;
        // The host's file is not in the snapshot: a copy under way ends
        // with a cancel at the guest's next answer (next()).
        m_read = nullptr;
    }
    v.field("in_flight_transaction", m_in_flight_transaction);
    v.field("unsent", m_unsent);
    if (v.loading() && m_unsent.size() > ic::HEADER_END + fcopy::WRITE_SIZE)
        return v.fail("fcopy-ic: a waiting request too long");
    v.field("chunk", m_chunk);
    v.field("written", m_written);
    v.field("size", m_size);
    v.field("cancel_asked", m_cancel_asked);
    v.field("last_status", m_last_status);
    if (v.loading() && (m_chunk > fcopy::FRAGMENT || m_written > m_size))
        v.fail("fcopy-ic: bad counts");
}
