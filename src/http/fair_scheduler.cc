#include "http/fair_scheduler.h"

#include <algorithm>
#include <utility>

namespace pw::http {

FairScheduler::FairScheduler(size_t slots, std::function<void(Task)> post)
    : slots_(std::max<size_t>(1, slots)),
      per_client_(slots_ > 1 ? slots_ - std::max<size_t>(1, slots_ / 4) : 1),
      post_(std::move(post)) {}

void FairScheduler::Post(const std::string& client, Task task) {
  std::vector<Ready> ready;
  {
    MutexLock lock(mu_);
    Client& c = clients_[client];
    if (c.waiting.empty()) {
      c.arrived = ++arrive_seq_;
      turns_.emplace(c.last_served, c.arrived, client);
    }
    c.waiting.push_back(std::move(task));
    ++waiting_count_;
    ready = TakeLocked();
  }
  Submit(std::move(ready));
}

size_t FairScheduler::Waiting() const {
  MutexLock lock(mu_);
  return waiting_count_;
}

std::vector<FairScheduler::Ready> FairScheduler::TakeLocked() {
  std::vector<Ready> ready;
  while (running_ < slots_ && !turns_.empty()) {
    // The first in turn order that is under the per-client bound. A client
    // alone is bound too: the tasks it starts alone would hold every slot
    // when another client comes.
    auto turn = turns_.begin();
    while (turn != turns_.end() && clients_[std::get<2>(*turn)].running >= per_client_) ++turn;
    if (turn == turns_.end()) break;
    std::string name = std::get<2>(*turn);
    turns_.erase(turn);
    Client& c = clients_[name];
    ready.push_back(Ready{name, std::move(c.waiting.front())});
    c.waiting.pop_front();
    --waiting_count_;
    ++c.running;
    ++running_;
    c.last_served = ++serve_seq_;
    // Its next task waits for every client served before it.
    if (!c.waiting.empty()) turns_.emplace(c.last_served, c.arrived, name);
  }
  return ready;
}

void FairScheduler::Finished(const std::string& client) {
  std::vector<Ready> next;
  {
    MutexLock lock(mu_);
    --running_;
    auto it = clients_.find(client);
    if (it != clients_.end() && --it->second.running == 0 && it->second.waiting.empty()) {
      clients_.erase(it);  // Idle: its next task counts as a new client's.
    }
    next = TakeLocked();
  }
  Submit(std::move(next));
}

void FairScheduler::Submit(std::vector<Ready> tasks) {
  for (Ready& r : tasks) {
    post_([this, r = std::move(r)] {
      // The slot is given back, and the next task handed on, even if the task throws.
      struct Done {
        FairScheduler* s;
        const std::string& client;
        ~Done() { s->Finished(client); }
      } done{this, r.client};
      r.task();
    });
  }
}

}  // namespace pw::http
