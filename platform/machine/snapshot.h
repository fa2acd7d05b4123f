// Whole-machine snapshots (docs/snapshots.md): a header that names the
// format, the build and the machine's configuration, then one zlib stream
// with the machine's state (Machine::visit_state) and its RAM, zero pages
// left out. Saving to a file writes a temporary file and renames it, so a
// crash never leaves a half-written snapshot under the name asked for.
#pragma once

#include "platform/machine/machine.h"

#include <cstdio>
#include <string>

// The configuration a snapshot must be loaded into, as text: what changes
// what the guest sees (memory, vCPUs, CPU model and features, clock mode,
// enlightenments). Options that only change how the host runs the guest
// (the JIT, tracing, where serial output goes) may differ.
std::string snapshot_configuration(const MachineConfig& config);

// Writes the machine as it is now. Call it between runs (Machine::run has
// returned).
ErrorOr<void> save_snapshot(Machine& machine, std::FILE* out);
ErrorOr<void> save_snapshot_file(Machine& machine, const std::string& path);
// Through a shell command that reads the snapshot on its standard input
// (QEMU's `exec:` migration); it must exit with status 0.
ErrorOr<void> save_snapshot_exec(Machine& machine, const std::string& command);

// Loads a snapshot into a machine made with the same configuration that has
// not run yet. A snapshot of another format, build or configuration, or a
// damaged one, is refused with one line saying why.
ErrorOr<void> load_snapshot(Machine& machine, std::FILE* in);
ErrorOr<void> load_snapshot_file(Machine& machine, const std::string& path);
// From a shell command that writes the snapshot on its standard output.
ErrorOr<void> load_snapshot_exec(Machine& machine, const std::string& command);
