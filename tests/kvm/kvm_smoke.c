// kvm_smoke — checks that /dev/kvm runs guest code, without viridian, and
// measures what one exit to user space costs. Run inside the nested guest
// by nested_roms_test.sh before the ROMs, so that a failure there tells a
// broken nested KVM from a broken backend.
//
// A real-mode guest at 0x1000 writes port 0x80 COUNT times and halts; each
// OUT is a KVM_EXIT_IO (Linux Documentation/virt/kvm/api.rst, "kvm_run").
// Prints one line and exits 0 when every exit came as expected.
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static int fail(const char* what)
{
    printf("kvm-smoke: FAIL: %s: %s\n", what, strerror(errno));
    return 1;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char** argv)
{
    const unsigned count = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 0) : 10000;
    if (count == 0 || count > 0xFFFF) {
        printf("kvm-smoke: FAIL: COUNT must be 1-65535\n");
        return 2;
    }
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0)
        return fail("open /dev/kvm");
    if (ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
        return fail("KVM_GET_API_VERSION");
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0)
        return fail("KVM_CREATE_VM");

    const size_t ram_size = 0x10000;
    uint8_t* ram = mmap(NULL, ram_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (ram == MAP_FAILED)
        return fail("mmap guest RAM");
    // mov cx, count; again: out 0x80, al; loop again; hlt
    const uint8_t code[] = {0xB9, (uint8_t)count, (uint8_t)(count >> 8), 0xE6, 0x80, 0xE2, 0xFC, 0xF4};
    memcpy(ram + 0x1000, code, sizeof code);
    struct kvm_userspace_memory_region region = {
        .slot = 0, .guest_phys_addr = 0, .memory_size = ram_size, .userspace_addr = (uintptr_t)ram};
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
        return fail("KVM_SET_USER_MEMORY_REGION");

    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (vcpu < 0)
        return fail("KVM_CREATE_VCPU");
    int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (run_size <= 0)
        return fail("KVM_GET_VCPU_MMAP_SIZE");
    struct kvm_run* run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    if (run == MAP_FAILED)
        return fail("mmap kvm_run");

    struct kvm_sregs sregs;
    if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
        return fail("KVM_GET_SREGS");
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0)
        return fail("KVM_SET_SREGS");
    struct kvm_regs regs = {.rip = 0x1000, .rflags = 0x2};
    if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
        return fail("KVM_SET_REGS");

    unsigned outs = 0;
    const double start = now();
    for (;;) {
        if (ioctl(vcpu, KVM_RUN, 0) < 0)
            return fail("KVM_RUN");
        if (run->exit_reason == KVM_EXIT_HLT)
            break;
        if (run->exit_reason != KVM_EXIT_IO || run->io.direction != KVM_EXIT_IO_OUT ||
            run->io.port != 0x80 || run->io.size != 1) {
            printf("kvm-smoke: FAIL: unexpected exit %u after %u OUTs\n", run->exit_reason, outs);
            return 1;
        }
        outs++;
    }
    const double seconds = now() - start;
    if (outs != count) {
        printf("kvm-smoke: FAIL: %u OUTs, expected %u\n", outs, count);
        return 1;
    }
    printf("kvm-smoke: ok, %u port exits in %.0f ms (%.1f us each)\n", outs, seconds * 1e3,
           seconds * 1e6 / outs);
    return 0;
}
