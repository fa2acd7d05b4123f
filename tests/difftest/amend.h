// Reconstructing a host's results from a cpu-difftest report taken on that
// host: the interpreter's results (recorded with --record-oracle interp at
// the commit the report was taken at), amended by the host values each
// MISMATCH line gives. docs/difftest-corpora.md has the whole procedure.
#pragma once

#include "tests/difftest/difftest.h"
#include "tests/difftest/record.h"

#include <map>
#include <string>
#include <vector>

namespace difftest {

// One MISMATCH line of a report, parsed.
struct Amendment {
    struct Edit {
        enum class Kind { Gpr, Rip, Flag, Mem, FpField, Cr2, PfWrite } kind;
        unsigned at = 0; // GPR number, flag bit mask, data offset or image offset
        unsigned size = 0;
        u64 value = 0;
        std::vector<u8> bytes; // Mem
    };
    std::string line;
    bool fault_only = false; // "fault host=X ours=Y": the line tells only the host's fault
    bool host_faulted = false;
    u8 host_vector = 0;
    u64 host_cr2 = 0;
    std::vector<Edit> edits;
};

class Amendments {
public:
    // Reads every "MISMATCH seed=S case=C ..." line of `path` for `seed`;
    // other lines (the summary) are ignored. False with `error` naming the
    // line when a detail cannot be parsed.
    bool load(const std::string& path, u64 seed, std::string& error);
    const Amendment* find(u64 index) const;
    size_t size() const { return m_by_case.size(); }

private:
    std::map<u64, Amendment> m_by_case;
};

// Makes `r` say what the host did: for a fault-only line, the fault alone
// (and `known` becomes FaultOnly); otherwise every listed field.
void apply_amendment(const Amendment& a, Known& known, Result& r);

} // namespace difftest
