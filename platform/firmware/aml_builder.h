// A small encoder for the ACPI Machine Language subset the DSDT needs
// (ACPI 6.x chapter 20): names and paths, integers, strings, EISA IDs,
// buffers, packages, Scope/Device/Name, methods with If/Else/Return/Store,
// and resource templates (chapter 6.4). Every function returns the encoded
// bytes of one term; composite terms take their children already encoded.
#pragma once

#include "mmu/base/types.h"

#include <initializer_list>
#include <span>
#include <string_view>
#include <vector>

namespace aml {

using Bytes = std::vector<u8>;
using TermList = std::vector<Bytes>;

// PkgLength for a body of `body_length` bytes (20.2.4): counts itself.
Bytes pkg_length(size_t body_length);
// NameString: "\\_SB.PCI0", "^LNKA", "_HID"; segments shorter than four
// characters are padded with '_'.
Bytes name_string(std::string_view path);

Bytes integer(u64 value);
Bytes string(std::string_view text);
// Compressed EISA ID ("PNP0A03") as a DWORD integer (6.1.5).
Bytes eisa_id(std::string_view id);
u32 eisa_id_value(std::string_view id);
Bytes buffer(std::span<const u8> data);
Bytes package(const TermList& elements);
// A reference to a named object (a NameString as a term).
Bytes ref(std::string_view path);
Bytes arg(unsigned n);   // Arg0..Arg6
Bytes local(unsigned n); // Local0..Local7

Bytes name(std::string_view name, const Bytes& value);
Bytes scope(std::string_view path, const TermList& body);
Bytes device(std::string_view name, const TermList& body);
Bytes method(std::string_view name, unsigned arg_count, bool serialized, const TermList& body);
Bytes return_value(const Bytes& value);
Bytes if_then(const Bytes& predicate, const TermList& body);
Bytes else_do(const TermList& body);
Bytes store(const Bytes& source, const Bytes& target);

// A ResourceTemplate() buffer (6.4): descriptors then the end tag.
class ResourceTemplate {
public:
    ResourceTemplate& io(u16 min, u16 max, u8 alignment, u8 length);
    ResourceTemplate& irq_no_flags(u16 irq_mask);
    ResourceTemplate& irq(u16 irq_mask, bool edge, bool active_low, bool shared);
    ResourceTemplate& memory32_fixed(u32 base, u32 length, bool writable);
    // Producer ranges for a root bridge (MinFixed, MaxFixed, PosDecode).
    ResourceTemplate& word_bus_number(u16 min, u16 max);
    ResourceTemplate& word_io(u16 min, u16 max);
    ResourceTemplate& dword_memory(u32 min, u32 max, bool cacheable, bool writable);
    ResourceTemplate& qword_memory(u64 min, u64 max, bool cacheable, bool writable);
    // Extended interrupt descriptor, consumer.
    ResourceTemplate& interrupt(u32 gsi, bool edge, bool active_low, bool shared);
    // The Buffer term.
    Bytes build() const;
    // The raw descriptor bytes including the end tag (for tests).
    Bytes descriptors() const;

private:
    void large(u8 tag, const Bytes& body);
    Bytes m_bytes;
};

} // namespace aml
