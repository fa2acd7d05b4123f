/* The guest side of the disk-crash test (tests/guest/disk_crash_test.py):
 * writes numbered 4 KiB records to a block device with O_DIRECT, flushes the
 * disk's write cache (fdatasync on a block device sends ATA FLUSH CACHE) and
 * only then prints "ack N" on the console, until the host kills the machine.
 * Every record acknowledged this way must be on the disk afterwards.
 *
 *   crash-writer DEVICE FIRST [COUNT]
 *
 * Record N goes to slot slot_of(N) (a 4 KiB-aligned place, scattered over
 * the whole disk so that dynamic VHD and VHDX blocks keep being allocated;
 * slot 0 is skipped so that sector 0 never looks like a partition table).
 * Each of its 8 sectors stands alone (magic, N, slot, sector index, a fill
 * derived from them, a checksum), so the host can tell an intact sector of
 * any record from a torn or stale one. The host computes slot_of() and the
 * checksum the same way; keep the two in step.
 *
 * Records are written in batches of 1..8 (each batch's writes are in flight
 * together from the disk's point of view: none of them is flushed before the
 * last), then one flush acknowledges the whole batch.
 *
 * Built static on the host by the test. It is also the whole userland of the
 * test's initramfs, as /init (the default guest's busybox initramfs takes
 * several seconds of the boot to unpack, and the boot is most of each kill's
 * time): as process 1 it mounts devtmpfs, takes the console, loads the
 * kernel modules in /modules in name order (the test numbers them so that
 * each comes after what it needs), waits for DEVICE, and reads FIRST and
 * COUNT from the kernel command line's crash_first= and crash_count=
 * (undotted, so the kernel hands them to init as environment variables).
 * After COUNT records it powers the machine off. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { SECTOR = 512, RECORD = 4096, MAX_BATCH = 8 };
static const uint64_t MAGIC = 0x4853415243524956ull; /* "VIRCRASH" in memory */

static uint64_t mix(uint64_t x) /* splitmix64's finaliser */
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t fnv1a(const unsigned char* p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static void put64(unsigned char* p, uint64_t v) { memcpy(p, &v, 8); } /* x86: little-endian */

static void fill_record(unsigned char* buf, uint64_t n, uint64_t slot)
{
    for (unsigned s = 0; s < RECORD / SECTOR; s++) {
        unsigned char* p = buf + s * SECTOR;
        put64(p, MAGIC);
        put64(p + 8, n);
        put64(p + 16, slot);
        put64(p + 24, s);
        for (unsigned i = 32; i < SECTOR - 8; i += 8)
            put64(p + i, mix(n * 64 + s * 8 + i / 8));
        put64(p + SECTOR - 8, fnv1a(p, SECTOR - 8));
    }
}

static int compare_names(const struct dirent** a, const struct dirent** b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* As /init: the console, the modules, the disk. */
static void start_as_init(const char* device)
{
    mkdir("/dev", 0755);
    mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
    int console = open("/dev/console", O_RDWR);
    if (console >= 0) {
        dup2(console, 0);
        dup2(console, 1);
        dup2(console, 2);
    }
    struct dirent** names;
    int count = scandir("/modules", &names, NULL, compare_names);
    for (int i = 0; i < count; i++) {
        char path[512];
        snprintf(path, sizeof path, "/modules/%s", names[i]->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (names[i]->d_name[0] != '.' &&
            (fd < 0 || syscall(SYS_finit_module, fd, "", 0) != 0) && errno != EEXIST)
            fprintf(stderr, "crash-writer: loading %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
    }
    /* sd attaches the disk asynchronously after its module loads. */
    for (int tries = 0; tries < 6000; tries++) {
        int fd = open(device, O_RDONLY);
        uint64_t size = 0;
        if (fd >= 0 && ioctl(fd, BLKGETSIZE64, &size) == 0 && size > 0) {
            close(fd);
            return;
        }
        if (fd >= 0)
            close(fd);
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
}

int main(int argc, char** argv)
{
    const char* device = argc > 1 ? argv[1] : "/dev/sda";
    const char* first = argc > 2 ? argv[2] : getenv("crash_first");
    const char* limit = argc > 3 ? argv[3] : getenv("crash_count");
    const int init = getpid() == 1;
    if (init)
        start_as_init(device);
    if (!first) {
        fprintf(stderr, "usage: crash-writer DEVICE FIRST [COUNT]\n");
        return 2;
    }
    uint64_t n = strtoull(first, NULL, 0);
    uint64_t count = limit ? strtoull(limit, NULL, 0) : UINT64_MAX;
    int fd = open(device, O_RDWR | O_DIRECT);
    uint64_t size = 0;
    struct stat st;
    if (fd >= 0 && ioctl(fd, BLKGETSIZE64, &size) != 0 && fstat(fd, &st) == 0)
        size = (uint64_t)st.st_size; /* a plain file, when tried on the host */
    if (fd < 0 || size == 0) {
        fprintf(stderr, "crash-writer: %s: %s\n", device, strerror(errno));
        return 1;
    }
    uint64_t slots = size / RECORD;
    if (slots < 2) {
        fprintf(stderr, "crash-writer: %s is too small\n", device);
        return 1;
    }
    unsigned char* buf = aligned_alloc(RECORD, RECORD);
    printf("crash-writer: start %llu slots %llu\n", (unsigned long long)n,
           (unsigned long long)slots);
    fflush(stdout);
    for (uint64_t done = 0; done < count;) {
        unsigned batch = 1 + (unsigned)(mix(n ^ 0x5a5a) % MAX_BATCH);
        for (unsigned b = 0; b < batch; b++, n++, done++) {
            uint64_t slot = 1 + mix(n) % (slots - 1);
            fill_record(buf, n, slot);
            if (pwrite(fd, buf, RECORD, (off_t)(slot * RECORD)) != RECORD) {
                fprintf(stderr, "crash-writer: write of record %llu: %s\n",
                        (unsigned long long)n, strerror(errno));
                return 1;
            }
        }
        if (fdatasync(fd) != 0) {
            fprintf(stderr, "crash-writer: flush: %s\n", strerror(errno));
            return 1;
        }
        printf("ack %llu\n", (unsigned long long)(n - 1));
        fflush(stdout);
    }
    printf("crash-writer: done\n");
    fflush(stdout);
    if (init) {
        close(fd);
        sync();
        reboot(RB_POWER_OFF);
    }
    return 0;
}
