// See loop_group.h.
#include "reactor/loop_group.h"

#include <future>
#include <optional>

#include "syscall/cpu.h"
#include "syscall/log.h"

namespace ringo::reactor {
namespace {

// What a loop thread reports back to start(): its loop, or why it has none.
struct Started {
  Loop* loop = nullptr;
  std::optional<sys::Error> error;
};

thread_local LoopGroup* t_group = nullptr;

void loop_thread(LoopGroup* group, int index, int cpu, bool pin, Loop::Options options,
                 std::promise<Started> ready, std::shared_future<void> release) {
  t_group = group;
  sys::set_log_loop_index(index);
  if (pin) {
    if (auto r = sys::pin_to_cpu(cpu); !r) {
      ready.set_value({nullptr, r.error()});
      return;
    }
  }
  options.index = index;
  auto loop = Loop::create(options);
  if (!loop) {
    ready.set_value({nullptr, loop.error()});
    return;
  }
  std::unique_ptr<Loop> owned = std::move(*loop);
  ready.set_value({owned.get(), std::nullopt});
  owned->run();
  // The stop that ended run() was posted by LoopGroup::stop, which may still be
  // inside post() (reading this loop) when run() returns: destroy the loop
  // only once stop() says every post is done. Destroyed here, on its own
  // thread (io_uring SINGLE_ISSUER).
  release.wait();
}

}  // namespace

LoopGroup* LoopGroup::current() { return t_group; }

sys::Result<std::unique_ptr<LoopGroup>> LoopGroup::start(Options options) {
  std::vector<int> cpus = options.cpus;
  if (cpus.empty()) {
    auto mask = sys::affinity_cpus();
    if (!mask) return mask.error();
    cpus = *mask;
  }
  if (options.count > 0 && options.count < cpus.size()) cpus.resize(options.count);
  if (cpus.empty()) return sys::Error("LoopGroup::start", EINVAL, nullptr, "no CPU to run a loop on");

  std::unique_ptr<LoopGroup> group(new LoopGroup);
  std::optional<sys::Error> failure;
  for (std::size_t i = 0; i < cpus.size(); ++i) {
    std::promise<Started> promise;
    std::future<Started> started = promise.get_future();
    group->threads_.emplace_back(loop_thread, group.get(), static_cast<int>(i), cpus[i], options.pin, options.loop,
                                 std::move(promise), group->released_);
    Started s = started.get();
    if (!s.loop) {
      failure = s.error;
      group->threads_.back().join();
      group->threads_.pop_back();
      break;
    }
    group->loops_.push_back(s.loop);
    group->cpus_.push_back(options.pin ? cpus[i] : -1);
  }
  if (failure) {
    group->stop();
    return *failure;
  }
  sys::log(sys::LogLevel::info, "loop group: {} loops on {}", group->size(),
           group->loops_.front()->backend().describe());
  return group;
}

LoopGroup::~LoopGroup() { stop(); }

void LoopGroup::stop() {
  if (stopped_) return;
  stopped_ = true;
  for (Loop* loop : loops_) loop->stop();
  release_.set_value();  // every stop() has returned: loops may now be destroyed
  for (std::thread& t : threads_) t.join();
  loops_.clear();
  threads_.clear();
}

}  // namespace ringo::reactor
