// The stack overflow handler and per-thread alternate signal stacks (what
// counts as an overflow, and how other faults are forwarded: overflow.h).
#include "fiber/internal/overflow.h"

#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>

#include "fiber/internal/context.h"

namespace ringo::fiber::internal {
namespace {

// How far below a stack a stack pointer may be and still count as "this stack
// overflowed" (a frame this large skipped the guard page).
constexpr std::size_t kBelowStackSlack = 1 << 20;

// The dispositions found at installation; index 0 SIGSEGV, 1 SIGBUS. Written
// before the handler is installed, read only by it.
struct sigaction g_previous[2];

int slot(int sig) { return sig == SIGSEGV ? 0 : 1; }

// ---- formatting without libc's formatters (async-signal-safe) ----

struct Line {
  char* out;
  std::size_t capacity;
  std::size_t size = 0;

  void put(const char* s) {
    while (*s != '\0' && size < capacity) out[size++] = *s++;
  }
  void put_decimal(std::size_t n) {
    char digits[24];
    int i = 0;
    do {
      digits[i++] = static_cast<char>('0' + n % 10);
      n /= 10;
    } while (n != 0);
    while (i > 0 && size < capacity) out[size++] = digits[--i];
  }
  void put_hex(std::uintptr_t n) {
    put("0x");
    char digits[2 * sizeof(n)];
    int i = 0;
    do {
      digits[i++] = "0123456789abcdef"[n & 0xf];
      n >>= 4;
    } while (n != 0);
    while (i > 0 && size < capacity) out[size++] = digits[--i];
  }
};

const std::byte* stack_pointer(const void* ucontext) {
  const auto* uc = static_cast<const ucontext_t*>(ucontext);
#if defined(__x86_64__)
  return reinterpret_cast<const std::byte*>(uc->uc_mcontext.gregs[REG_RSP]);
#elif defined(__aarch64__)
  return reinterpret_cast<const std::byte*>(uc->uc_mcontext.sp);
#else
  (void)uc;
  return nullptr;  // only the guard-page test applies
#endif
}

[[noreturn]] void report_and_abort(const Context& c, const void* addr, FaultKind kind) {
  char buf[256];
  const std::size_t n = format_overflow_report(buf, sizeof(buf), c.name(), c.stack().size(), addr,
                                               kind == FaultKind::guard_hit);
  for (std::size_t done = 0; done < n;) {
    const ssize_t w = ::write(STDERR_FILENO, buf + done, n - done);
    if (w <= 0 && errno != EINTR) break;
    if (w > 0) done += static_cast<std::size_t>(w);
  }
  std::abort();
}

// Not ours: let the previous disposition have it (see overflow.h).
void forward(int sig, siginfo_t* info, void* ucontext) {
  const struct sigaction& prev = g_previous[slot(sig)];
  const bool sent = info->si_code <= 0;  // kill(), tgkill(), sigqueue(): not a fault
  if ((prev.sa_flags & SA_SIGINFO) != 0) {
    if (prev.sa_sigaction != nullptr) return prev.sa_sigaction(sig, info, ucontext);
  } else if (prev.sa_handler == SIG_IGN) {
    if (sent) return;  // ignored, as before
  } else if (prev.sa_handler != SIG_DFL) {
    return prev.sa_handler(sig);
  }
  // Default (or an ignored fault, which the kernel turns into a kill): put it
  // back; returning re-runs the faulting instruction, which now ends the
  // process the way it would have ended without us.
  ::sigaction(sig, &prev, nullptr);
  if (sent) ::raise(sig);
}

void on_fault(int sig, siginfo_t* info, void* ucontext) {
  const int saved_errno = errno;
  if (info->si_code > 0) {  // raised by the kernel for this thread's fault
    const void* addr = info->si_addr;
    const void* sp = stack_pointer(ucontext);
    if (const Context* c = Context::running_for_signal(); c != nullptr) {
      const FaultKind kind = classify_fault(c->stack(), addr, sp);
      if (kind != FaultKind::not_ours) report_and_abort(*c, addr, kind);
    }
  }
  forward(sig, info, ucontext);
  errno = saved_errno;
}

sys::Result<void> install(int sig, const char* name) {
  // Read the previous disposition first, so the handler never sees it unset.
  if (::sigaction(sig, nullptr, &g_previous[slot(sig)]) != 0) return sys::Error::from_errno("sigaction", name);
  struct sigaction sa {};
  sa.sa_sigaction = on_fault;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  ::sigemptyset(&sa.sa_mask);
  if (::sigaction(sig, &sa, nullptr) != 0) return sys::Error::from_errno("sigaction", name);
  return sys::ok();
}

// ---- alternate signal stacks ----

struct SignalStack {
  std::byte* mapping = nullptr;  // guard page + stack
  std::size_t mapped = 0;
  stack_t replaced{};  // the too-small one we replaced, put back at exit
  bool put_back = false;

  ~SignalStack() {
    if (mapping == nullptr) return;
    stack_t off{};
    off.ss_flags = SS_DISABLE;
    ::sigaltstack(put_back ? &replaced : &off, nullptr);
    ::munmap(mapping, mapped);
  }
};

thread_local SignalStack t_signal_stack;

std::size_t signal_stack_size() {
  const long min = ::sysconf(_SC_MINSIGSTKSZ);  // grows with the CPU's register state (AVX-512, AMX)
  return std::max<std::size_t>(kSignalStackSize, min > 0 ? 4 * static_cast<std::size_t>(min) : 0);
}

}  // namespace

FaultKind classify_fault(const Stack& s, const void* address, const void* sp) {
  if (s.empty()) return FaultKind::not_ours;
  const auto* addr = static_cast<const std::byte*>(address);
  if (addr >= s.guard() && addr < s.bottom()) return FaultKind::guard_hit;
  const std::uintptr_t guard = reinterpret_cast<std::uintptr_t>(s.guard());
  const std::byte* lowest = s.guard() - std::min<std::uintptr_t>(kBelowStackSlack, guard);
  const auto* stack_pointer = static_cast<const std::byte*>(sp);
  const bool sp_below = stack_pointer != nullptr && stack_pointer >= lowest && stack_pointer < s.bottom();
  if (sp_below && addr >= lowest && addr < s.guard()) return FaultKind::below_stack;
  return FaultKind::not_ours;
}

std::size_t format_overflow_report(char* out, std::size_t capacity, const char* name,
                                   std::size_t stack_size, const void* address, bool guard_hit) {
  Line line{out, capacity};
  line.put("ringo: fiber '");
  line.put(name[0] != '\0' ? name : "(unnamed)");
  line.put("' overflowed its ");
  constexpr std::size_t kMiB = 1 << 20;
  if (stack_size >= kMiB && stack_size % kMiB == 0) {
    line.put_decimal(stack_size / kMiB);
    line.put(" MiB stack (");
  } else {
    line.put_decimal(stack_size / 1024);
    line.put(" KiB stack (");
  }
  line.put(guard_hit ? "guard page hit at " : "a frame larger than the guard page skipped it; fault at ");
  line.put_hex(reinterpret_cast<std::uintptr_t>(address));
  line.put(")\n");
  if (line.size == capacity && capacity > 0) out[capacity - 1] = '\n';
  return line.size;
}

sys::Result<void> install_overflow_handler() {
  static const sys::Result<void> installed = []() -> sys::Result<void> {
    if (sys::Result<void> r = install(SIGSEGV, "SIGSEGV"); !r.ok()) return r;
    return install(SIGBUS, "SIGBUS");
  }();
  return installed;
}

sys::Result<void> ensure_signal_stack() {
  SignalStack& mine = t_signal_stack;
  if (mine.mapping != nullptr) return sys::ok();
  stack_t current{};
  if (::sigaltstack(nullptr, &current) != 0) return sys::Error::from_errno("sigaltstack");
  const bool enabled = (current.ss_flags & SS_DISABLE) == 0;
  if (enabled && current.ss_size >= kMinSignalStack) return sys::ok();  // someone else's, large enough

  const std::size_t page = page_size();
  const std::size_t size = (signal_stack_size() + page - 1) / page * page;
  void* p = ::mmap(nullptr, size + page, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (p == MAP_FAILED) return sys::Error::from_errno("mmap", "alternate signal stack");
  auto* mapping = static_cast<std::byte*>(p);
  stack_t ss{};
  ss.ss_sp = mapping + page;
  ss.ss_size = size;
  const bool guarded = ::mprotect(mapping, page, PROT_NONE) == 0;
  if (!guarded || ::sigaltstack(&ss, nullptr) != 0) {
    sys::Error e = sys::Error::from_errno(guarded ? "sigaltstack" : "mprotect", "alternate signal stack");
    ::munmap(mapping, size + page);
    return e;
  }
  mine.mapping = mapping;
  mine.mapped = size + page;
  mine.replaced = current;
  mine.put_back = enabled;
  return sys::ok();
}

sys::Result<void> prepare_thread_for_overflow_reports() {
  if (sys::Result<void> r = install_overflow_handler(); !r.ok()) return r;
  return ensure_signal_stack();
}

}  // namespace ringo::fiber::internal
