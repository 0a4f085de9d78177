// Result<T>: a value or an Error, the return type of every fallible call from
// syscall/ up through net/.
//
// Invariants:
//  - An Error is built at the syscall boundary from errno (Error::from_errno),
//    right after the failing call: errno is never read later, and in particular
//    never after a fiber switch, where another fiber may have overwritten it.
//  - An Error names the call and its errno: message() reads like
//    "accept4: EMFILE (Too many open files)". The call name (and optional
//    subject, e.g. the socket option) are static strings, so an Error is two
//    pointers and a std::error_code: cheap to return on hot paths.
//  - Reading the value of an error Result (or the error of a value Result)
//    is a broken invariant: it aborts with a message that names both.
//
// Rejected alternatives: std::expected is C++23 and absent from clang 14's and
// g++ 12's C++20 libraries; exceptions cost too much on the hot I/O paths and
// lose the errno name; returning -errno ints (as the kernel does) loses the
// name of the call by the time the error reaches a log line.
#pragma once

#include <cerrno>
#include <new>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

namespace ringo::sys {

class Error {
 public:
  Error() = default;
  // `op` and `subject` must be static strings (they are not copied).
  Error(const char* op, int errnum, const char* subject = nullptr, const char* hint = nullptr)
      : op_(op), subject_(subject), hint_(hint), code_(errnum, std::system_category()) {}

  // Captures errno now; call it straight after the failing call.
  static Error from_errno(const char* op, const char* subject = nullptr) {
    return Error(op, errno, subject);
  }

  const char* op() const { return op_; }
  const char* subject() const { return subject_; }
  const char* hint() const { return hint_; }
  const std::error_code& code() const { return code_; }
  int errnum() const { return code_.value(); }
  bool is(int errnum) const { return code_.value() == errnum; }

  Error with_hint(const char* hint) const {
    Error e = *this;
    e.hint_ = hint;
    return e;
  }

  // "op subject: ENAME (description): hint"
  std::string message() const;

 private:
  const char* op_ = "?";
  const char* subject_ = nullptr;
  const char* hint_ = nullptr;
  std::error_code code_;
};

// errno's symbolic name ("EMFILE"), or "E?<n>" when glibc has none.
const char* errno_name(int errnum);

[[noreturn]] void result_misuse(const char* what, const Error* error);

template <class T>
class [[nodiscard]] Result {
 public:
  Result(const T& v) : ok_(true) { new (&value_) T(v); }  // NOLINT: implicit by design
  Result(T&& v) : ok_(true) { new (&value_) T(std::move(v)); }  // NOLINT
  Result(Error e) : ok_(false) { new (&error_) Error(e); }  // NOLINT

  Result(const Result& o) : ok_(o.ok_) {
    if (ok_) new (&value_) T(o.value_); else new (&error_) Error(o.error_);
  }
  Result(Result&& o) noexcept(std::is_nothrow_move_constructible_v<T>) : ok_(o.ok_) {
    if (ok_) new (&value_) T(std::move(o.value_)); else new (&error_) Error(o.error_);
  }
  Result& operator=(Result o) noexcept(std::is_nothrow_move_constructible_v<T>) {
    destroy();
    ok_ = o.ok_;
    if (ok_) new (&value_) T(std::move(o.value_)); else new (&error_) Error(o.error_);
    return *this;
  }
  ~Result() { destroy(); }

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }

  T& value() & { check_value(); return value_; }
  const T& value() const& { check_value(); return value_; }
  T&& value() && { check_value(); return std::move(value_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }

  template <class U>
  T value_or(U&& fallback) const& { return ok_ ? value_ : T(std::forward<U>(fallback)); }

  const Error& error() const {
    if (ok_) result_misuse("error() of a Result that holds a value", nullptr);
    return error_;
  }

 private:
  void check_value() const {
    if (!ok_) result_misuse("value() of a Result that holds an error", &error_);
  }
  void destroy() {
    if (ok_) value_.~T(); else error_.~Error();
  }

  bool ok_;
  union {
    T value_;
    Error error_;
  };
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error e) : ok_(false), error_(e) {}  // NOLINT: implicit by design

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  void value() const {
    if (!ok_) result_misuse("value() of a Result<void> that holds an error", &error_);
  }
  const Error& error() const {
    if (ok_) result_misuse("error() of a Result that holds a value", nullptr);
    return error_;
  }

 private:
  bool ok_ = true;
  Error error_;
};

inline Result<void> ok() { return {}; }

}  // namespace ringo::sys
