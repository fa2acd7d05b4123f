// The guest file copy integration service (docs/vmbus.md "Integration
// services"; Hyper-V's "Guest services", what Copy-VMFile uses): the host
// copies one of its files into the guest's filesystem. Linux's hv_utils
// (hv_fcopy.c) passes each request to a user-space daemon
// (hv_fcopy_daemon, Debian's hyperv-daemons, in the default guest) through
// /dev/vmbus/hv_fcopy; without the daemon the kernel answers HV_E_FAIL.
//
// A copy is a conversation of requests, each answered before the next
// goes (hv_fcopy.c does not read the channel while one is being served):
//
//   START_FILE_COPY  the directory and the file name (UTF-16), the flags
//                    (create the directories, overwrite) and the size; the
//                    daemon creates and opens the file
//   WRITE_TO_FILE    up to 6 KiB at an offset, as many as the file needs
//   COMPLETE_FCOPY   the daemon closes the file
//   CANCEL_FCOPY     sent instead when a write failed, the host could not
//                    read its file or the copy was cancelled; the daemon
//                    removes what it wrote
//
// The host's file is read a fragment at a time, as the guest asks for the
// next; the guest's answers are checked (transaction, operation) before
// anything is taken from them.
#pragma once

#include "paravirt/vmbus/ic_service.h"

#include <optional>
#include <string>

namespace ic {
inline constexpr const char* FCOPY_CLASS_GUID = "34d14be3-dee4-41c8-9ae7-6b174977c192";
constexpr u16 TYPE_FCOPY = 7;
} // namespace ic

namespace fcopy {
// struct hv_fcopy_hdr (include/uapi/linux/hyperv.h) after the IC header: a
// u32 operation and two unused 16-byte GUIDs.
constexpr unsigned OPERATION = 0;
// struct hv_start_fcopy: file_name[260] and path_name[260] as UTF-16, u32
// copy_flags, u64 file_size.
constexpr unsigned FILE_NAME = 36, PATH_NAME = 556, COPY_FLAGS = 1076, FILE_SIZE = 1080,
                   START_SIZE = 1088;
// struct hv_do_fcopy: u32 pad, u64 offset, u32 size, data[6144]. Every
// write is sent whole (the kernel hands the daemon sizeof(hv_do_fcopy)
// bytes whatever arrived).
constexpr unsigned OFFSET = 40, DATA_SIZE = 48, DATA = 52, FRAGMENT = 6 * 1024, WRITE_SIZE = DATA + FRAGMENT;
// The other two operations carry the header only.
constexpr unsigned HEADER_SIZE = 36;
// W_MAX_PATH: UTF-16 units per name with its NUL. The kernel turns each
// name into UTF-8 in a buffer of W_MAX_PATH - 1 bytes and cuts what does
// not fit, so a name must fit both ways.
constexpr unsigned MAX_PATH = 260;
enum Operation : u32 { START_FILE_COPY = 0, WRITE_TO_FILE = 1, COMPLETE_FCOPY = 2, CANCEL_FCOPY = 3 };
enum CopyFlags : u32 { OVER_WRITE = 1, CREATE_PATH = 2 };
// What the daemon answers besides 0 (HV_E_FAIL, HV_ERROR_ALREADY_EXISTS,
// HV_ERROR_DISK_FULL).
constexpr u32 E_FAIL = 0x80004005, ERROR_ALREADY_EXISTS = 0x80070050, ERROR_DISK_FULL = 0x80070070;
} // namespace fcopy

class FcopyIc final : public IcService {
public:
    // Idle: no copy yet. Starting, Writing, Completing, Cancelling: a
    // request of that kind is with the guest. Completed, Failed and
    // Cancelled end a copy (the next may start).
    enum class State : u8 { Idle, Starting, Writing, Completing, Cancelling, Completed, Failed, Cancelled };
    // Why a copy failed.
    enum class Failure : u8 {
        None,
        Guest,         // the guest answered a non-zero status (last_status())
        HostRead,      // the host's file could not be read (shorter than it was?)
        ChannelClosed, // the guest closed the channel during the copy
        Restored,      // the machine was restored during the copy: the host's file was not saved
    };
    static const char* state_name(State state);
    // A sentence for failure() (and the guest's status, for Guest).
    static std::string failure_text(Failure failure, u32 status);

    // Reads out.size() bytes of the host's file at `offset`; false if it cannot.
    using Reader = std::function<bool(u64 offset, std::span<u8> out)>;
    struct Copy {
        std::string destination; // absolute path in the guest, with the file name
        u64 size = 0;
        bool create_path = false; // make the missing directories
        bool overwrite = false;   // replace a file already there
        Reader read;
    };

    FcopyIc(GuestMemory memory, std::function<void()> signal_guest);

    // Starts a copy; an empty string if it went, or why not (not
    // negotiated, a copy under way, a destination the guest cannot take).
    std::string start(Copy copy);
    // Ends the copy under way with a CANCEL_FCOPY once the guest has
    // answered its current request; false when none is under way.
    bool cancel();

    State state() const { return m_state; }
    bool busy() const { return m_in_flight.has_value(); }
    u64 bytes_written() const { return m_written; }
    u64 size() const { return m_size; }
    Failure failure() const { return m_failure; }
    u32 last_status() const { return m_last_status; }
    // The guest's path split as the daemon takes it: the directory with
    // its last '/' and the file name; nullopt and `error` set when the
    // guest cannot take it.
    static std::optional<std::pair<std::string, std::string>> split_destination(const std::string& path,
                                                                                std::string& error);

    void visit_state(StateVisitor& v);

private:
    void on_response(u16 type, std::span<const u8> message) override;
    void on_close() override;
    void on_room() override;
    // Sends the request that follows an answered one: the next write, the
    // completion, or a cancel.
    void next();
    // Sends a request, or keeps it until the guest makes room in the ring
    // (on_room); false only when the channel is closed.
    bool ask(u32 operation, std::vector<u8> message, State state);
    void send_cancel(Failure failure);
    void finish(State state, Failure failure);

    State m_state = State::Idle;
    Reader m_read; // empty after a restore: the host's file is not in a snapshot
    std::optional<u32> m_in_flight; // the operation asked, until answered
    std::vector<u8> m_unsent;       // the request asked, while the ring has no room for it
    u8 m_in_flight_transaction = 0;
    u32 m_chunk = 0;     // bytes in the write in flight
    u64 m_written = 0;   // bytes the guest has written
    u64 m_size = 0;
    bool m_cancel_asked = false;
    Failure m_failure = Failure::None;
    u32 m_last_status = 0;
};
