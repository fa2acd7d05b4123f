// The host half of the SSE host-comparison test: an asm routine that loads a
// Machine into the real registers, calls a JIT page holding the instruction
// and RET, and stores the registers back; faults come back through signals.
#include "tests/cpu/simd_host_runner.h"

#if defined(__x86_64__)

#include <csetjmp>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <sys/mman.h>
#include <ucontext.h>

// Loads a Machine, calls the code (one instruction and RET), stores the Machine.
extern "C" void viridian_simd_host_run(Machine* m, const void* code);
extern "C" {
Machine* viridian_simd_host_state;
const void* viridian_simd_host_code;
std::uint32_t viridian_simd_host_mxcsr;
}

asm(R"(
    .text
    .p2align 4
    .type viridian_simd_host_run, @function
viridian_simd_host_run:
    push %rbx
    push %rbp
    push %r12
    push %r13
    push %r14
    push %r15
    sub $8, %rsp
    mov %rdi, viridian_simd_host_state(%rip)
    mov %rsi, viridian_simd_host_code(%rip)
    stmxcsr viridian_simd_host_mxcsr(%rip)
    movq 144(%rdi), %mm0
    movq 152(%rdi), %mm1
    movq 160(%rdi), %mm2
    movq 168(%rdi), %mm3
    movq 176(%rdi), %mm4
    movq 184(%rdi), %mm5
    movq 192(%rdi), %mm6
    movq 200(%rdi), %mm7
    movdqu 208(%rdi), %xmm0
    movdqu 224(%rdi), %xmm1
    movdqu 240(%rdi), %xmm2
    movdqu 256(%rdi), %xmm3
    movdqu 272(%rdi), %xmm4
    movdqu 288(%rdi), %xmm5
    movdqu 304(%rdi), %xmm6
    movdqu 320(%rdi), %xmm7
    movdqu 336(%rdi), %xmm8
    movdqu 352(%rdi), %xmm9
    movdqu 368(%rdi), %xmm10
    movdqu 384(%rdi), %xmm11
    movdqu 400(%rdi), %xmm12
    movdqu 416(%rdi), %xmm13
    movdqu 432(%rdi), %xmm14
    movdqu 448(%rdi), %xmm15
    ldmxcsr 136(%rdi)
    pushq 128(%rdi)
    popfq
    mov 0(%rdi), %rax
    mov 8(%rdi), %rcx
    mov 16(%rdi), %rdx
    mov 24(%rdi), %rbx
    mov 40(%rdi), %rbp
    mov 48(%rdi), %rsi
    mov 64(%rdi), %r8
    mov 72(%rdi), %r9
    mov 80(%rdi), %r10
    mov 88(%rdi), %r11
    mov 96(%rdi), %r12
    mov 104(%rdi), %r13
    mov 112(%rdi), %r14
    mov 120(%rdi), %r15
    mov 56(%rdi), %rdi
    call *viridian_simd_host_code(%rip)
    push %rax
    mov viridian_simd_host_state(%rip), %rax
    popq 0(%rax)
    pushfq
    popq 128(%rax)
    mov %rcx, 8(%rax)
    mov %rdx, 16(%rax)
    mov %rbx, 24(%rax)
    mov %rbp, 40(%rax)
    mov %rsi, 48(%rax)
    mov %rdi, 56(%rax)
    mov %r8, 64(%rax)
    mov %r9, 72(%rax)
    mov %r10, 80(%rax)
    mov %r11, 88(%rax)
    mov %r12, 96(%rax)
    mov %r13, 104(%rax)
    mov %r14, 112(%rax)
    mov %r15, 120(%rax)
    stmxcsr 136(%rax)
    movq %mm0, 144(%rax)
    movq %mm1, 152(%rax)
    movq %mm2, 160(%rax)
    movq %mm3, 168(%rax)
    movq %mm4, 176(%rax)
    movq %mm5, 184(%rax)
    movq %mm6, 192(%rax)
    movq %mm7, 200(%rax)
    movdqu %xmm0, 208(%rax)
    movdqu %xmm1, 224(%rax)
    movdqu %xmm2, 240(%rax)
    movdqu %xmm3, 256(%rax)
    movdqu %xmm4, 272(%rax)
    movdqu %xmm5, 288(%rax)
    movdqu %xmm6, 304(%rax)
    movdqu %xmm7, 320(%rax)
    movdqu %xmm8, 336(%rax)
    movdqu %xmm9, 352(%rax)
    movdqu %xmm10, 368(%rax)
    movdqu %xmm11, 384(%rax)
    movdqu %xmm12, 400(%rax)
    movdqu %xmm13, 416(%rax)
    movdqu %xmm14, 432(%rax)
    movdqu %xmm15, 448(%rax)
    emms
    ldmxcsr viridian_simd_host_mxcsr(%rip)
    add $8, %rsp
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbp
    pop %rbx
    ret
    .size viridian_simd_host_run, .-viridian_simd_host_run
)");

namespace {

// ---- Host side ----

sigjmp_buf g_jump;
volatile sig_atomic_t g_in_case = 0;
int g_vector = -1;
Machine g_fault_state;
constexpr int SIGNALS[4] = {SIGFPE, SIGSEGV, SIGILL, SIGBUS};
struct sigaction g_previous[4];

void on_signal(int, siginfo_t*, void* context)
{
    if (!g_in_case)
        std::abort();
    g_in_case = 0;
    const auto* uc = static_cast<const ucontext_t*>(context);
    g_vector = static_cast<int>(uc->uc_mcontext.gregs[REG_TRAPNO]);
    // The state at the fault: an SSE fault leaves XMM and MXCSR as the
    // instruction found them, plus the exception flags it raised.
    const auto* fp = uc->uc_mcontext.fpregs;
    g_fault_state.mxcsr = fp->mxcsr;
    for (unsigned i = 0; i < 16; ++i)
        std::memcpy(g_fault_state.xmm[i], &fp->_xmm[i], 16);
    siglongjmp(g_jump, 1);
}

} // namespace

SimdHostRunner::SimdHostRunner()
{
    void* p =
        mmap(nullptr, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        std::abort();
    m_page = static_cast<std::uint8_t*>(p);
    struct sigaction sa {};
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    for (unsigned i = 0; i < 4; ++i)
        sigaction(SIGNALS[i], &sa, &g_previous[i]);
}

SimdHostRunner::~SimdHostRunner()
{
    for (unsigned i = 0; i < 4; ++i)
        sigaction(SIGNALS[i], &g_previous[i], nullptr);
    munmap(m_page, 4096);
}

int SimdHostRunner::run(const std::vector<std::uint8_t>& code, Machine& m)
{
    std::memcpy(m_page, code.data(), code.size());
    m_page[code.size()] = 0xC3; // RET
    g_vector = -1;
    if (sigsetjmp(g_jump, 0) == 0) {
        g_in_case = 1;
        viridian_simd_host_run(&m, m_page);
        g_in_case = 0;
        return -1;
    }
    // Back from the handler with the kernel's fresh FPU state.
    asm volatile("emms\n\tldmxcsr %0" ::"m"(viridian_simd_host_mxcsr));
    m.mxcsr = g_fault_state.mxcsr;
    std::memcpy(m.xmm, g_fault_state.xmm, sizeof m.xmm);
    return g_vector;
}

#endif
