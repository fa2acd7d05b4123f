#include "tests/difftest/host_runner.h"

#include <csetjmp>
#include <csignal>
#include <cstring>
#include <sys/mman.h>
#include <sys/time.h>
#include <ucontext.h>

namespace difftest {

namespace {

// What the signal handler saw. Plain globals: a signal handler has no other
// way to hand data back, and there is one runner per process.
struct Capture {
    int signal = 0;
    u64 trapno = 0;
    u64 err = 0;
    u64 address = 0;
    Regs regs;
    FpImage fp;
};

sigjmp_buf g_jump;
Capture g_capture;
volatile sig_atomic_t g_in_test = 0;
volatile u64 g_serial = 0; // counts runs, for the watchdog
volatile u64 g_serial_at_last_tick = ~0ull;
volatile unsigned g_stuck_ticks = 0;
constexpr size_t ALT_STACK_SIZE = 64 * 1024;
alignas(16) u8 g_alt_stack[ALT_STACK_SIZE];

// The x87/SSE/AVX state at the signal, from the frame the kernel built with
// XSAVE: the legacy region, and YMM_Hi128 when the frame has an XSAVE header
// (FP_XSTATE_MAGIC1 in the software-reserved bytes) that marks AVX in use.
void capture_fp(const ucontext_t* uc, FpImage& out)
{
    const auto* frame = reinterpret_cast<const u8*>(uc->uc_mcontext.fpregs);
    std::memcpy(out.b.data(), frame, fpimg::XSTATE_BV);
    std::memset(out.b.data() + fpimg::XSTATE_BV, 0, fpimg::SIZE - fpimg::XSTATE_BV);
    constexpr u32 XSAVE_FRAME_MAGIC = 0x46505853; // FP_XSTATE_MAGIC1
    u32 magic = 0;
    std::memcpy(&magic, frame + 464, 4);
    if (magic != XSAVE_FRAME_MAGIC)
        return;
    u64 xstate_bv = 0;
    std::memcpy(&xstate_bv, frame + fpimg::XSTATE_BV, 8);
    if (xstate_bv & 4)
        std::memcpy(out.b.data() + fpimg::YMM_HI, frame + fpimg::YMM_HI, 256);
}

void on_signal(int sig, siginfo_t* info, void* context)
{
    // The kernel clears DF and TF for a handler but not AC, which a tested
    // POPF may have set: with CR0.AM on, the handler's own unaligned accesses
    // would then raise #AC.
    asm volatile("pushfq\n\tandq $~0x40000, (%%rsp)\n\tpopfq" ::: "memory", "cc");
    if (sig == SIGALRM) {
        // Watchdog: a case still running after a second of ticks is hung
        // (an instruction takes nanoseconds; a second survives descheduling).
        if (!g_in_test || g_serial != g_serial_at_last_tick) {
            g_serial_at_last_tick = g_serial;
            g_stuck_ticks = 0;
            return;
        }
        g_stuck_ticks = g_stuck_ticks + 1;
        if (g_stuck_ticks < 4)
            return;
    } else if (!g_in_test) {
        // A crash of the tester itself: let it die with the usual signal.
        signal(sig, SIG_DFL);
        return;
    }
    g_in_test = 0;
    const auto* uc = static_cast<const ucontext_t*>(context);
    const greg_t* g = uc->uc_mcontext.gregs;
    Capture& c = g_capture;
    c.signal = sig;
    c.trapno = static_cast<u64>(g[REG_TRAPNO]);
    c.err = static_cast<u64>(g[REG_ERR]);
    c.address = reinterpret_cast<u64>(info->si_addr);
    static constexpr int order[16] = {REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP,
                                      REG_RSI, REG_RDI, REG_R8,  REG_R9,  REG_R10, REG_R11,
                                      REG_R12, REG_R13, REG_R14, REG_R15};
    for (unsigned i = 0; i < 16; ++i)
        c.regs.gpr[i] = static_cast<u64>(g[order[i]]);
    c.regs.rip = static_cast<u64>(g[REG_RIP]);
    c.regs.rflags = static_cast<u64>(g[REG_EFL]);
    capture_fp(uc, c.fp);
    // SA_NODEFER left the signal unblocked, so no mask needs restoring.
    siglongjmp(g_jump, 1);
}

} // namespace

bool HostRunner::init(std::string& error)
{
    void* window = mmap(reinterpret_cast<void*>(WINDOW_VA), WINDOW_SIZE, PROT_NONE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (window != reinterpret_cast<void*>(WINDOW_VA)) {
        error = "cannot reserve the test window at 0x10000000 (address in use?)";
        return false;
    }
    if (mprotect(reinterpret_cast<void*>(CODE_VA), PAGE_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC) ||
        mprotect(reinterpret_cast<void*>(DATA_VA), DATA_SIZE, PROT_READ | PROT_WRITE)) {
        error = "cannot make the code page RWX (W^X policy?)";
        return false;
    }

    stack_t ss{};
    ss.ss_sp = g_alt_stack;
    ss.ss_size = ALT_STACK_SIZE;
    if (sigaltstack(&ss, nullptr)) {
        error = "sigaltstack failed";
        return false;
    }
    struct sigaction sa {};
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (int sig : {SIGTRAP, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGALRM}) {
        if (sigaction(sig, &sa, nullptr)) {
            error = "sigaction failed";
            return false;
        }
    }
    const itimerval tick{{0, 250000}, {0, 250000}};
    if (setitimer(ITIMER_REAL, &tick, nullptr)) {
        error = "setitimer failed";
        return false;
    }
    // The probe: a NOP in a 32-bit case. Where compatibility mode is not to
    // be had, the prologue's far jump raises #GP before the NOP.
    TestCase probe;
    probe.mode32 = true;
    probe.bytes[0] = 0x90;
    probe.length = 1;
    alignas(4096) static u8 page[PAGE_SIZE];
    build_code_page(probe, page);
    const Result r = run(probe, page);
    m_can_run_32 = r.ok && !r.faulted && r.regs.rip == INSN_VA + 1;
    return true;
}

Result HostRunner::run(const TestCase& tc, const u8* code_page)
{
    std::memcpy(reinterpret_cast<void*>(CODE_VA), code_page, PAGE_SIZE);
    std::memcpy(reinterpret_cast<void*>(DATA_VA), tc.data.data(), DATA_SIZE);
    g_capture = Capture{};
    g_serial = g_serial + 1;
    if (sigsetjmp(g_jump, 0) == 0) {
        g_in_test = 1;
        // The prologue never returns: the INT3 after the instruction (or a
        // fault) ends the run through the signal handler.
        reinterpret_cast<void (*)()>(CODE_VA)();
        __builtin_unreachable();
    }

    Result r;
    const Capture& c = g_capture;
    r.regs = c.regs;
    r.fp = c.fp;
    std::memcpy(r.data.data(), reinterpret_cast<const void*>(DATA_VA), DATA_SIZE);
    if (c.signal == SIGTRAP && c.trapno == 3) {
        r.regs.rip -= 1; // the INT3 that ended the run
        return r;
    }
    r.faulted = true;
    r.vector = static_cast<u8>(c.trapno);
    r.error_code = static_cast<u32>(c.err);
    if (r.vector == 14)
        r.fault_address = c.address;
    if (c.signal == SIGALRM) {
        r.ok = false;
        r.error = "host: the instruction did not finish (hung)";
        return r;
    }
    // SIGFPE: #DE, and #MF/#XM for the x87 and SIMD exceptions left unmasked.
    const bool known =
        (c.signal == SIGFPE && (c.trapno == 0 || c.trapno == 16 || c.trapno == 19)) ||
        (c.signal == SIGILL && c.trapno == 6) ||
        (c.signal == SIGSEGV &&
         (c.trapno == 4 || c.trapno == 5 || c.trapno == 13 || c.trapno == 14)) ||
        (c.signal == SIGBUS && (c.trapno == 12 || c.trapno == 17));
    // A fault inside the prologue is the harness's own; one at a branch
    // target is the instruction's and is compared like any other.
    if (!known || (c.regs.rip >= CODE_VA && c.regs.rip < CODE_VA + INSN_OFFSET)) {
        r.ok = false;
        r.error = "host: unexpected signal " + std::to_string(c.signal) + " trap " +
                  std::to_string(c.trapno) + " at rip " + std::to_string(c.regs.rip);
    }
    return r;
}

} // namespace difftest
