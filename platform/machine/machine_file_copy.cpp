// A host file copied into the running guest (QMP x-guest-file-copy;
// docs/qmp.md "Copying a file into the guest"), through the file copy
// integration service (paravirt/vmbus/fcopy_ic.h).
#include "platform/block/host_file.h"
#include "platform/machine/machine.h"

#include <memory>

std::optional<std::string> Machine::start_file_copy(const FileCopyRequest& request)
{
    if (!m_fcopy_ic)
        return "The machine has no Hyper-V enlightenments (--enlightenments off)";
    // The file stays open (and read-locked) until the copy ends: a file
    // that changes size on the way fails the copy rather than send a mix.
    BlockResult<HostFile> opened = HostFile::open(request.source, FileAccess::ReadOnly);
    if (opened.is_error())
        return opened.error().message;
    auto file = std::make_shared<HostFile>(opened.release_value());
    BlockResult<u64> size = file->size();
    if (size.is_error())
        return size.error().message;
    FcopyIc::Copy copy;
    copy.destination = request.destination;
    copy.size = size.value();
    copy.create_path = request.create_path;
    copy.overwrite = request.overwrite;
    copy.read = [file](u64 offset, std::span<u8> out) { return !file->read_at(offset, out).is_error(); };
    std::string error = m_fcopy_ic->start(std::move(copy));
    if (!error.empty())
        return error;
    m_file_copy = request;
    return std::nullopt;
}

std::optional<std::string> Machine::cancel_file_copy()
{
    if (!m_fcopy_ic || !m_fcopy_ic->cancel())
        return "No file copy is under way";
    return std::nullopt;
}

FileCopyStatus Machine::file_copy_status() const
{
    FileCopyStatus status;
    if (!m_fcopy_ic) {
        status.state = "not offered";
        return status;
    }
    status.state = FcopyIc::state_name(m_fcopy_ic->state());
    status.source = m_file_copy.source;
    status.destination = m_file_copy.destination;
    status.size = m_fcopy_ic->size();
    status.written = m_fcopy_ic->bytes_written();
    status.error = FcopyIc::failure_text(m_fcopy_ic->failure(), m_fcopy_ic->last_status());
    return status;
}
