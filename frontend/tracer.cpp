#include "frontend/tracer.h"

#include <capstone/capstone.h>

#include <string>

unsigned code_size_of(const CpuState& state)
{
    if (state.in_64bit_code())
        return 8;
    if (state.protected_mode() && !state.v86_mode() && (state.seg[CS].attr & Segment::DB))
        return 4;
    return 2;
}

namespace {

unsigned mode_index(unsigned code_size)
{
    return code_size == 8 ? 2 : code_size == 4 ? 1 : 0;
}

constexpr cs_mode MODES[3] = {CS_MODE_16, CS_MODE_32, CS_MODE_64};

} // namespace

ErrorOr<std::unique_ptr<Tracer>> Tracer::create(std::FILE* out)
{
    std::unique_ptr<Tracer> tracer(new Tracer(out));
    for (unsigned i = 0; i < 3; ++i) {
        csh handle = 0;
        cs_err err = cs_open(CS_ARCH_X86, MODES[i], &handle);
        if (err != CS_ERR_OK)
            return make_error(std::string("cannot start the Capstone disassembler: ") +
                              cs_strerror(err));
        tracer->m_handles[i] = handle;
    }
    return tracer;
}

Tracer::~Tracer()
{
    for (size_t& handle : m_handles) {
        if (handle) {
            csh h = handle;
            cs_close(&h);
        }
    }
}

void Tracer::trace(const CpuState& state, const u8* bytes, unsigned length)
{
    unsigned size = code_size_of(state);
    char line[256];
    int n = size == 8 ? std::snprintf(line, sizeof line, "%04x:%016llx  ", state.seg[CS].selector,
                                      static_cast<unsigned long long>(state.rip))
                      : std::snprintf(line, sizeof line, "%04x:%08llx  ", state.seg[CS].selector,
                                      static_cast<unsigned long long>(state.rip));
    std::string text(line, static_cast<size_t>(n));
    for (unsigned i = 0; i < length; ++i) {
        std::snprintf(line, sizeof line, "%02x", bytes[i]);
        text += line;
    }
    // Pad the bytes column so the disassembly lines up for up to 10 bytes.
    if (length < 10)
        text.append(2 * (10 - length), ' ');
    text += "  ";

    cs_insn* insn = nullptr;
    size_t count = cs_disasm(m_handles[mode_index(size)], bytes, length, state.rip, 1, &insn);
    if (count > 0) {
        text += insn[0].mnemonic;
        if (insn[0].op_str[0]) {
            text += ' ';
            text += insn[0].op_str;
        }
        cs_free(insn, count);
    } else {
        text += "(not decoded by capstone)";
    }
    text += '\n';
    std::fwrite(text.data(), 1, text.size(), m_out);
}
