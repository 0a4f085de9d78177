// Fiber stack overflow reports: a fiber that runs off the bottom of its stack
// faults in the stack's guard page; a SIGSEGV/SIGBUS handler, running on the
// thread's alternate signal stack (the fiber's own stack is exhausted), sees
// that the fault lies in the guard page of the context running on this thread
// and says so before aborting:
//   ringo: fiber 'conn-42' overflowed its 128 KiB stack (guard page hit at 0x7f3a1c2ff8)
// Any other fault goes on as if the handler were not there (below).
//
// Invariants:
//  - The handler is installed once per process (SA_SIGINFO | SA_ONSTACK);
//    each thread that creates a context gets an alternate signal stack first
//    (Context's constructor calls prepare_thread_for_overflow_reports()).
//  - The handler is async-signal-safe: it reads one constant-initialized
//    thread-local pointer (Context::running_for_signal, which names the stack
//    the thread is on, even mid-switch: see context.h) and that context's
//    fixed fields (stack bounds, name in a char array),
//    formats by hand into a stack buffer, and calls write(2) and abort() only:
//    no fmt, no malloc, no locks (the fault may be inside malloc).
//  - An overflow is a fault address in the guard page of the running context,
//    or a stack pointer below that stack's usable area (a frame bigger than
//    the guard page jumped over it; the fault then lands below the guard). A frame bigger than the guard
//    page that lands in another live mapping does not fault at all: build with
//    -fstack-clash-protection to make the compiler probe every page.
//  - Anything else is forwarded: to the previous handler if it was a
//    function (called directly, as Go's runtime and Breakpad chain; ASan's and
//    TSan's reports keep working), otherwise the previous disposition
//    (SIG_DFL/SIG_IGN) is put back and the fault re-happens on return (or a
//    signal sent with kill() is raised again), so the process dies exactly as
//    it would have without Ringo: a nullptr dereference is still a plain
//    SIGSEGV.
//  - An alternate stack someone else installed (ASan installs one per thread)
//    is kept when it has at least kMinSignalStack bytes; a smaller one is
//    replaced, and put back when the thread exits. Ours are freed then too.
//
// Rejected alternatives:
//  - Checking the stack depth in function prologues, like Go: needs compiler
//    support (gcc's -fsplit-stack is gcc-only and breaks with uninstrumented
//    libraries); a guard page costs nothing until it is hit.
//  - Checking the stack pointer at each switch: misses the deep call that
//    returns before the next switch, after corrupting the neighbour.
//  - Recovering (unwinding the fiber from the handler): the faulting frame
//    cannot continue, and unwinding through a signal frame is not something
//    C++ or glibc support; the stack is exhausted anyway. Report and abort.
//  - Letting the process die of a plain SIGSEGV: correct, but "Segmentation
//    fault" after 10 minutes of load says nothing; the fiber's name does.
//  - Forwarding to a previous *function* handler by putting it back and
//    re-raising: that uninstalls ours for good, yet the previous handler may
//    recover from the fault (a JIT's or a garbage collector's trick), and
//    every later overflow would go unreported. Only SIG_DFL/SIG_IGN are put
//    back (the process is about to die anyway).
#pragma once

#include <cstddef>

#include "fiber/stack.h"
#include "syscall/result.h"

namespace ringo::fiber::internal {

// An alternate signal stack of this size is ours to install; one of at least
// kMinSignalStack installed by someone else is kept.
inline constexpr std::size_t kSignalStackSize = 64 * 1024;
inline constexpr std::size_t kMinSignalStack = 16 * 1024;

// Both of the below; idempotent. Context calls it once per thread.
sys::Result<void> prepare_thread_for_overflow_reports();

// Installs, once per process, the SIGSEGV and SIGBUS handler (later calls
// return the first call's result).
sys::Result<void> install_overflow_handler();

// Gives the calling thread an alternate signal stack unless it has one large
// enough. Ours is freed (and any replaced one put back) at thread exit.
sys::Result<void> ensure_signal_stack();

enum class FaultKind {
  not_ours,     // forwarded to the previous disposition
  guard_hit,    // the fault address is in the stack's guard page
  below_stack,  // the stack pointer and the fault are below the stack (a frame skipped the guard)
};

// How the handler judges a fault at `address`, with the stack pointer at `sp`
// (null when unknown), against the stack of a context. Async-signal-safe.
FaultKind classify_fault(const Stack& stack, const void* address, const void* sp);

// The report line, with '\n', written into `out` (at most `capacity` bytes,
// cut if longer); returns its length. Async-signal-safe. `guard_hit` false
// means the stack pointer itself was found below the stack.
std::size_t format_overflow_report(char* out, std::size_t capacity, const char* name,
                                   std::size_t stack_size, const void* address, bool guard_hit);

}  // namespace ringo::fiber::internal
