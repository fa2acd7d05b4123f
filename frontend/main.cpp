// viridian's entry point: options → machine → run → exit status. Every
// error reaches here as a value and leaves as one line on stderr.
#include "frontend/machine.h"
#include "frontend/options.h"

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
    config.append = options.append;
    config.initrd = options.initrd;
    config.trace = options.trace;
    config.deterministic = options.deterministic;
    config.enlightenments = options.enlightenments;
    config.jit = options.jit;
    config.hyperv_test_device = options.hyperv_test_device;
    config.pc_testdev = options.pc_testdev;
    config.max_instructions = options.max_instructions;
    // Without --kernel the default guest boots: the Debian kernel and the
    // initramfs that scripts/fetch-guest.sh builds into guest/. Without
    // them (or with --demo) the built-in bare-metal demo runs.
    const std::string guest_dir = VIRIDIAN_GUEST_DIR;
    const bool have_guest = readable(guest_dir + "/vmlinuz") && readable(guest_dir + "/initramfs.cpio.gz");
    if (!options.kernel && !options.demo && have_guest) {
        options.kernel = guest_dir + "/vmlinuz";
        if (!options.initrd)
            config.initrd = guest_dir + "/initramfs.cpio.gz";
        config.append = std::string("console=ttyS0 panic=-1") + (options.append.empty() ? "" : " " + options.append);
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
        config.kernel_path = *path;
        config.kernel_name = DEMO_FILE_NAME;
    } else {
        config.kernel_path = *options.kernel;
        config.kernel_name = *options.kernel;
    }
    std::string serial_error;
    config.serial_out = open_serial(options.serial, "--serial", serial_error);
    if (!config.serial_out)
        return fail(serial_error);
    config.serial2_out = open_serial(options.serial2, "--serial2", serial_error);
    if (!config.serial2_out)
        return fail(serial_error);

    // A trace writes a line per instruction: buffer stderr rather than make
    // a system call for each (everything is flushed at exit).
    if (options.trace)
        std::setvbuf(stderr, nullptr, _IOFBF, 1 << 16);

    // A guest reboot boots a fresh machine (new RAM, devices and vCPUs at
    // power-on) from the same files, as pressing reset would; --no-reboot
    // ends the run instead, with status 0.
    int status = exit_status::SUCCESS;
    u64 retired = 0;
    for (;;) {
        ErrorOr<std::unique_ptr<Machine>> machine = Machine::create(config);
        if (machine.is_error())
            return fail(machine.error().message);
        status = machine.value()->run();
        retired += machine.value()->retired();
        std::fflush(config.serial_out);
        if (!machine.value()->reset_requested())
            break;
        if (options.no_reboot) {
            std::fprintf(stderr, "viridian: the guest reset the machine; stopping (--no-reboot)\n");
            break;
        }
        std::fprintf(stderr, "viridian: the guest reset the machine; restarting\n");
        // The instruction limit is for the whole run, across restarts.
        if (config.max_instructions)
            *config.max_instructions -= machine.value()->retired();
    }
    if (options.stats)
        std::fprintf(stderr, "instructions: %llu\n", static_cast<unsigned long long>(retired));
    for (std::FILE* file : {config.serial_out, config.serial2_out})
        if (file != stdout)
            std::fclose(file);

    // The demo reports success by writing 0 to the debug-exit port, which
    // QEMU turns into status 1; viridian's own demo run is a success, so the
    // README's main command exits 0.
    if (demo && status == 1)
        return exit_status::SUCCESS;
    return status;
}
