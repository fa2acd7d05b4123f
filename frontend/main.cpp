// viridian's entry point: options → machine → run → exit status. Every
// error reaches here as a value and leaves as one line on stderr.
#include "frontend/console.h"
#include "frontend/options.h"
#include "frontend/run_report.h"
#include "frontend/tracer.h"
#include "platform/machine/machine.h"
#include "platform/machine/snapshot.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <unistd.h>
#include <vector>

#ifndef VIRIDIAN_DEMO_KERNEL
#define VIRIDIAN_DEMO_KERNEL ""
#endif

namespace {

constexpr const char* DEMO_FILE_NAME = "demo.elf";

ErrorOr<void> save_machine(Machine& machine, const MigrationUri& uri)
{
    return uri.kind == MigrationUri::Kind::File ? save_snapshot_file(machine, uri.target)
                                                : save_snapshot_exec(machine, uri.target);
}

ErrorOr<void> restore_machine(Machine& machine, const MigrationUri& uri)
{
    return uri.kind == MigrationUri::Kind::File ? load_snapshot_file(machine, uri.target)
                                                : load_snapshot_exec(machine, uri.target);
}

int fail(const std::string& message)
{
    std::fprintf(stderr, "viridian: %s\n", message.c_str());
    return exit_status::USAGE;
}

// Where a serial port's output goes: stdout, a file (truncated) or nowhere.
// nullptr and an error message when the file cannot be opened.
std::FILE* open_serial(const SerialTarget& target, std::string_view option, std::string& error)
{
    if (target.kind == SerialTarget::Kind::Stdio)
        return stdout;
    const std::string path = target.kind == SerialTarget::Kind::None ? "/dev/null" : target.path;
    std::FILE* file = std::fopen(path.c_str(), "wb");
    if (!file)
        error = std::string(option) + ": cannot open '" + path + "': " + std::strerror(errno);
    return file;
}

bool readable(const std::string& path)
{
    return !path.empty() && ::access(path.c_str(), R_OK) == 0;
}

// The demo is built beside the executable; fall back to the path the build
// compiled in (for a binary that was copied or symlinked elsewhere).
std::optional<std::string> find_demo_kernel()
{
    char self[4096];
    ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        std::string dir(self, static_cast<size_t>(n));
        dir = dir.substr(0, dir.rfind('/') + 1);
        if (readable(dir + DEMO_FILE_NAME))
            return dir + DEMO_FILE_NAME;
    }
    if (readable(VIRIDIAN_DEMO_KERNEL))
        return std::string(VIRIDIAN_DEMO_KERNEL);
    return std::nullopt;
}

} // namespace

int main(int argc, char** argv)
{
    std::vector<std::string_view> args(argv + 1, argv + argc);
    ErrorOr<Options> parsed = parse_options(args);
    if (parsed.is_error())
        return fail(parsed.error().message);
    Options options = parsed.value();
    if (options.help) {
        std::fputs(usage_text().c_str(), stdout);
        return exit_status::SUCCESS;
    }
    if (options.version) {
        std::fputs(version_text().c_str(), stdout);
        return exit_status::SUCCESS;
    }

    MachineConfig config;
    config.memory_bytes = options.memory_bytes;
    config.cpu_count = options.cpus;
    config.cpu_vendor = options.cpu_vendor;
    config.cpu_features = options.cpu_features;
    config.deterministic = options.deterministic;
    config.enlightenments = options.enlightenments;
    config.jit = options.jit;
    config.hyperv_test_device = options.hyperv_test_device;
    config.pc_testdev = options.pc_testdev;
    // Without --kernel the default guest boots: the Debian kernel and the
    // initramfs that scripts/fetch-guest.sh builds into guest/. Without
    // them (or with --demo) the built-in bare-metal demo runs.
    const std::string guest_dir = VIRIDIAN_GUEST_DIR;
    const bool have_guest = readable(guest_dir + "/vmlinuz") && readable(guest_dir + "/initramfs.cpio.gz");
    KernelSpec kernel;
    kernel.append = options.append;
    kernel.initrd = options.initrd;
    if (!options.kernel && !options.demo && have_guest) {
        options.kernel = guest_dir + "/vmlinuz";
        if (!options.initrd)
            kernel.initrd = guest_dir + "/initramfs.cpio.gz";
        kernel.append = std::string("console=ttyS0 panic=-1") + (options.append.empty() ? "" : " " + options.append);
    } else if (!options.kernel && !options.demo) {
        std::fprintf(stderr, "viridian: note: the default guest is missing (%s/vmlinuz); run "
                             "scripts/fetch-guest.sh. Running the built-in demo instead.\n",
                     guest_dir.c_str());
    }
    bool demo = !options.kernel;
    if (demo) {
        std::optional<std::string> path = find_demo_kernel();
        if (!path)
            return fail("no --kernel given and the built-in demo (" + std::string(DEMO_FILE_NAME) +
                        ") was not found beside the executable; run ninja -C build");
        kernel.path = *path;
        kernel.name = DEMO_FILE_NAME;
    } else {
        kernel.path = *options.kernel;
        kernel.name = *options.kernel;
    }
    std::string serial_error;
    std::FILE* const com1 = open_serial(options.serial, "--serial", serial_error);
    if (!com1)
        return fail(serial_error);
    std::FILE* const com2 = open_serial(options.serial2, "--serial2", serial_error);
    if (!com2)
        return fail(serial_error);
    // Lines reach the terminal as the guest ends them; a partial line (a
    // shell prompt) at the next poll.
    auto sink_to = [](std::FILE* file) {
        return [file](u8 byte) {
            std::fputc(byte, file);
            if (byte == '\n')
                std::fflush(file);
        };
    };
    config.com1_output = sink_to(com1);
    config.com2_output = sink_to(com2);

    // A trace writes a line per instruction: buffer stderr rather than make
    // a system call for each (everything is flushed at exit).
    std::unique_ptr<Tracer> tracer;
    if (options.trace) {
        ErrorOr<std::unique_ptr<Tracer>> created = Tracer::create(stderr);
        if (created.is_error())
            return fail(created.error().message);
        tracer = created.release_value();
        std::setvbuf(stderr, nullptr, _IOFBF, 1 << 16);
        config.trace = [t = tracer.get()](const CpuState& s, const u8* bytes, unsigned length) {
            t->trace(s, bytes, length);
        };
    }
    // Typed input reaches COM1; Ctrl-A x and SIGINT/SIGTERM end the run.
    Console console(true);
    config.input_can_wake = ::isatty(0);
    Machine* running = nullptr;
    const HostPoll poll = [&]() -> std::optional<int> {
        std::fflush(com1);
        console.poll([&](u8 byte) { running->serial_input(byte); });
        if (!console.quit_requested())
            return std::nullopt;
        std::fprintf(stderr, "\nviridian: %s\n", console.quit_reason().c_str());
        return console.quit_reason().find("SIG") == std::string::npos ? exit_status::SUCCESS
                                                                       : exit_status::INTERRUPTED;
    };

    // A guest reboot boots a fresh machine (new RAM, devices and vCPUs at
    // power-on) from the same files, as pressing reset would; --no-reboot
    // ends the run instead, with status 0.
    int status = exit_status::SUCCESS;
    u64 retired = 0; // by every machine of the run together
    bool first = true;
    for (;;) {
        ErrorOr<std::unique_ptr<Machine>> created = Machine::create(config);
        if (created.is_error())
            return fail(created.error().message);
        Machine& machine = *created.value();
        // --incoming restores the first machine; a reboot boots the kernel.
        ErrorOr<void> started = options.incoming && first ? restore_machine(machine, *options.incoming)
                                                          : machine.load_kernel(kernel);
        first = false;
        // A restored machine counts on from where it was saved.
        const u64 before = retired;
        retired += machine.retired();
        if (started.is_error())
            return fail(started.error().message);
        if (options.save_at)
            machine.stop_at(options.save_at->instructions);
        running = &machine;
        // The instruction limit is for the whole run, across restarts.
        std::optional<u64> limit;
        if (options.max_instructions)
            limit = *options.max_instructions > retired ? *options.max_instructions - retired : 0;
        const RunOutcome outcome = machine.run(poll, limit);
        retired = before + machine.retired();
        if (outcome.kind == RunOutcome::Kind::Checkpoint) {
            if (ErrorOr<void> saved = save_machine(machine, options.save_at->uri); saved.is_error())
                return fail(saved.error().message);
            std::fprintf(stderr, "viridian: saved the machine after %llu instructions\n",
                         static_cast<unsigned long long>(retired));
        }
        std::fflush(com1);
        std::fflush(com2);
        status = report_outcome(stderr, outcome, machine, retired);
        if (outcome.kind != RunOutcome::Kind::Reset)
            break;
        if (options.no_reboot) {
            std::fprintf(stderr, "viridian: the guest reset the machine; stopping (--no-reboot)\n");
            break;
        }
        std::fprintf(stderr, "viridian: the guest reset the machine; restarting\n");
    }
    if (options.stats)
        std::fprintf(stderr, "instructions: %llu\n", static_cast<unsigned long long>(retired));
    for (std::FILE* file : {com1, com2})
        if (file != stdout)
            std::fclose(file);

    // The demo reports success by writing 0 to the debug-exit port, which
    // QEMU turns into status 1; viridian's own demo run is a success, so the
    // README's main command exits 0.
    if (demo && status == 1)
        return exit_status::SUCCESS;
    return status;
}
