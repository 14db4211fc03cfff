#include "server/health.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace pw::server::health_test {
namespace {

// Polls until an answer comes (the probe runs on Health's own thread).
HealthReport Await(Health& h) {
  const auto asked = std::chrono::steady_clock::now();
  const auto deadline = asked + std::chrono::seconds(10);
  for (;;) {
    if (auto r = h.Poll(asked)) return *r;
    if (std::chrono::steady_clock::now() > deadline) {
      ADD_FAILURE() << "no answer within 10 s";
      return {};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

TEST(Health, ReadyOnlyAfterStartUpAndWhileTheStoreAnswers) {
  std::atomic<bool> up{true};
  HealthOptions o;
  o.max_age_seconds = 0;  // Every poll after an answer probes again.
  Health h([&] { return up ? Status::Ok() : Unavailable("connection refused"); }, "s1", o);
  HealthReport r = Await(h);
  EXPECT_TRUE(r.live);
  EXPECT_FALSE(r.ready);  // Recovery not finished.
  EXPECT_NE(h.Json(r).find("\"status\":\"unavailable\""), std::string::npos) << h.Json(r);
  h.SetReady(true);
  r = Await(h);
  EXPECT_TRUE(r.ready);
  EXPECT_EQ(h.Json(r), "{\"live\":true,\"ready\":true,\"serverId\":\"s1\",\"status\":\"ok\"}\n");
  up = false;
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  r = Await(h);
  EXPECT_FALSE(r.ready);
  EXPECT_NE(r.detail.find("connection refused"), std::string::npos) << r.detail;
}

TEST(Health, OneProbeAnswersManyCallersWhileFresh) {
  std::atomic<int> probes{0};
  HealthOptions o;
  o.max_age_seconds = 60;
  Health h([&] { return ++probes, Status::Ok(); }, "", o);
  h.SetReady(true);
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(Await(h).ready);
  EXPECT_EQ(probes, 1);
  EXPECT_NE(h.Json(Await(h)).find("\"serverId\":null"), std::string::npos);
}

TEST(Health, AProbeThatHangsMakesItNotReadyAfterTheDeadlineWithoutASecondProbe) {
  std::atomic<bool> release{false};
  std::atomic<int> probes{0};
  HealthOptions o;
  o.deadline_seconds = 0.1;
  Health h(
      [&] {
        ++probes;
        while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        return Status::Ok();
      },
      "s1", o);
  h.SetReady(true);
  const auto asked = std::chrono::steady_clock::now();
  EXPECT_FALSE(h.Poll(asked).has_value());  // Started a probe: ask again shortly.
  HealthReport r = Await(h);                // Past the deadline: not ready, no waiting.
  EXPECT_FALSE(r.ready);
  EXPECT_NE(r.detail.find("did not answer"), std::string::npos) << r.detail;
  for (int i = 0; i < 10; ++i) {
    EXPECT_TRUE(h.Poll(std::chrono::steady_clock::now()).has_value());  // Immediate answers.
  }
  EXPECT_EQ(probes, 1);
  release = true;
}

}  // namespace
}  // namespace pw::server::health_test
