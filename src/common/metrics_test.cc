#include "common/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <thread>
#include <vector>

namespace pw::metrics::metrics_test {
namespace {

TEST(Metrics, RendersCountersGaugesAndHistogramsInTheTextFormat) {
  Registry r;
  auto& requests = r.AddCounter("pw_requests_total", "Requests\nserved \\ here.", {"operation"});
  requests.With({"GetPipeline"}).Inc();
  requests.With({"GetPipeline"}).Inc(2);
  requests.With({"say \"hi\"\n"}).Inc();
  r.AddGauge("pw_up", "Up.").With({}).Set(1);
  auto& latency = r.AddHistogram("pw_seconds", "Latency.", {"op"}, {0.1, 1});
  latency.With({"a"}).Observe(0.25);
  latency.With({"a"}).Observe(0.5);
  latency.With({"a"}).Observe(5);
  r.AddCollected("pw_depth", "Depth.", {"type"}, [] {
    return std::vector<std::pair<Labels, double>>{{{"x"}, 3}, {{"bad", "labels"}, 1}};
  });
  EXPECT_EQ(r.Render(),
            "# HELP pw_requests_total Requests\\nserved \\\\ here.\n"
            "# TYPE pw_requests_total counter\n"
            "pw_requests_total{operation=\"GetPipeline\"} 3\n"
            "pw_requests_total{operation=\"say \\\"hi\\\"\\n\"} 1\n"
            "# HELP pw_up Up.\n"
            "# TYPE pw_up gauge\n"
            "pw_up 1\n"
            "# HELP pw_seconds Latency.\n"
            "# TYPE pw_seconds histogram\n"
            "pw_seconds_bucket{op=\"a\",le=\"0.1\"} 0\n"
            "pw_seconds_bucket{op=\"a\",le=\"1\"} 2\n"
            "pw_seconds_bucket{op=\"a\",le=\"+Inf\"} 3\n"
            "pw_seconds_sum{op=\"a\"} 5.75\n"
            "pw_seconds_count{op=\"a\"} 3\n"
            "# HELP pw_depth Depth.\n"
            "# TYPE pw_depth gauge\n"
            "pw_depth{type=\"x\"} 3\n");
}

TEST(Metrics, ValuesUseTheShortestExactForm) {
  EXPECT_EQ(FormatValue(0.001), "0.001");
  EXPECT_EQ(FormatValue(2.5), "2.5");
  EXPECT_EQ(FormatValue(42), "42");
  EXPECT_EQ(FormatValue(HUGE_VAL), "+Inf");
  EXPECT_EQ(FormatValue(std::nan("")), "NaN");
  EXPECT_EQ(FormatValue(0.1 + 0.2), "0.30000000000000004");
}

TEST(Metrics, BoundaryValueCountsInItsBucket) {
  Registry r;
  auto& h = r.AddHistogram("h", "h", {}, {1, 2});
  h.With({}).Observe(1);
  EXPECT_EQ(h.With({}).CumulativeCounts(), (std::vector<uint64_t>{1, 1, 1}));
}

// Run under ThreadSanitizer (make tsan): no race between updates and renders.
TEST(Metrics, ConcurrentUpdatesAreAllCounted) {
  Registry r;
  auto& c = r.AddCounter("c_total", "c", {"t"});
  auto& h = r.AddHistogram("h", "h", {"t"});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&c, &h, t] {
      for (int i = 0; i < 1000; ++i) {
        c.With({std::to_string(i % 3)}).Inc();
        h.With({std::to_string(t)}).Observe(0.01);
      }
    });
  }
  std::string rendered;
  for (int i = 0; i < 10; ++i) rendered = r.Render();
  for (auto& th : threads) th.join();
  EXPECT_EQ(c.With({"0"}).Value() + c.With({"1"}).Value() + c.With({"2"}).Value(), 4000u);
  EXPECT_EQ(h.With({"3"}).CumulativeCounts().back(), 1000u);
}

}  // namespace
}  // namespace pw::metrics::metrics_test
