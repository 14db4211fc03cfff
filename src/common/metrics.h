#pragma once

// Metrics in the Prometheus text exposition format (version 0.0.4): counters,
// gauges and histograms, each a family with fixed label names, rendered by a
// Registry for GET /metrics. Debian has no development package of a C++
// Prometheus client, so this is the small part of one the server needs.
//
//   metrics::Registry r;
//   auto& requests = r.AddCounter("pw_requests_total", "Requests served.", {"operation"});
//   requests.With({"GetPipeline"}).Inc();           // A mutex only to find the series…
//   metrics::Counter& c = requests.With({"ListPipelines"});
//   c.Inc();                                         // …then lock-free (atomics).
//   std::string text = r.Render();
//
// Thread-safe: series are found under their family's mutex and updated with
// atomics; references returned by With() stay valid as long as the registry.
// Families are added before the registry is shared between threads.

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/mutex.h"
#include "common/thread_annotations.h"

namespace pw::metrics {

using Labels = std::vector<std::string>;  // Values, in the family's label-name order.

class Counter {
 public:
  void Inc(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double v) { value_.fetch_add(v, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Observations counted in buckets by upper bound (cumulative when rendered).
class Histogram {
 public:
  explicit Histogram(const std::vector<double>* bounds);  // Sorted; borrowed from the family.
  void Observe(double v);
  // Cumulative counts per bound, then the total count; and the sum.
  std::vector<uint64_t> CumulativeCounts() const;
  double Sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  const std::vector<double>* bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // One per bound, plus +Inf.
  std::atomic<double> sum_{0};
};

// Bucket bounds for durations in seconds, 1 ms to 60 s.
std::vector<double> DurationBuckets();

enum class Type { kCounter, kGauge, kHistogram };

class FamilyBase {
 public:
  FamilyBase(std::string name, std::string help, Type type, std::vector<std::string> label_names);
  virtual ~FamilyBase() = default;
  FamilyBase(const FamilyBase&) = delete;
  FamilyBase& operator=(const FamilyBase&) = delete;
  // Appends "# HELP", "# TYPE" and the samples of every series.
  void Render(std::string& out) const;

 protected:
  virtual void RenderSeries(std::string& out) const = 0;
  // `name{labels,extra} value\n`.
  void Sample(std::string& out, std::string_view suffix, const Labels& values,
              std::string_view extra_label, std::string_view extra_value, double value) const;
  const std::string name_;
  const std::string help_;
  const Type type_;
  const std::vector<std::string> label_names_;
};

template <typename T>
class Family : public FamilyBase {
 public:
  Family(std::string name, std::string help, Type type, std::vector<std::string> label_names)
      : Family(std::move(name), std::move(help), type, std::move(label_names), {}) {}
  Family(std::string name, std::string help, Type type, std::vector<std::string> label_names,
         std::vector<double> bounds)
      : FamilyBase(std::move(name), std::move(help), type, std::move(label_names)),
        bounds_(std::move(bounds)) {}
  // The series of `values` (created at 0 when new). PW_CHECKs the label count.
  T& With(const Labels& values) EXCLUDES(mu_);

 private:
  void RenderSeries(std::string& out) const override EXCLUDES(mu_);
  const std::vector<double> bounds_;  // Histograms only.
  mutable Mutex mu_;
  std::map<Labels, std::unique_ptr<T>> series_ GUARDED_BY(mu_);
};

// A gauge family whose samples a function computes at each render (e.g.
// queue depths read from their owner). The function must be thread-safe.
using Collect = std::function<std::vector<std::pair<Labels, double>>()>;

class Registry {
 public:
  Family<Counter>& AddCounter(std::string name, std::string help,
                              std::vector<std::string> label_names = {});
  Family<Gauge>& AddGauge(std::string name, std::string help,
                          std::vector<std::string> label_names = {});
  Family<Histogram>& AddHistogram(std::string name, std::string help,
                                  std::vector<std::string> label_names,
                                  std::vector<double> bounds = DurationBuckets());
  // Adds a computed gauge family; call before serving.
  void AddCollected(std::string name, std::string help, std::vector<std::string> label_names,
                    Collect collect);
  // Every family, in the order added, in the text format.
  std::string Render() const;

 private:
  std::vector<std::unique_ptr<FamilyBase>> families_;
};

// The text format's escaping: `\` and newline in HELP; also `"` in label values.
std::string EscapeHelp(std::string_view s);
std::string EscapeLabelValue(std::string_view s);
// A sample value: integers exactly, others with 17 significant digits,
// +Inf, -Inf, NaN.
std::string FormatValue(double v);

inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace pw::metrics
