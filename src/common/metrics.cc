#include "common/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "common/check.h"

namespace pw::metrics {

Histogram::Histogram(const std::vector<double>* bounds)
    : bounds_(bounds), counts_(new std::atomic<uint64_t>[bounds->size() + 1]) {
  for (size_t i = 0; i <= bounds_->size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double v) {
  const size_t i =
      static_cast<size_t>(std::lower_bound(bounds_->begin(), bounds_->end(), v) - bounds_->begin());
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::CumulativeCounts() const {
  std::vector<uint64_t> out;
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_->size(); ++i) {
    total += counts_[i].load(std::memory_order_relaxed);
    out.push_back(total);
  }
  return out;
}

std::vector<double> DurationBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

std::string EscapeHelp(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string EscapeLabelValue(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '"') {
      out += "\\\"";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[40];
  if (v == std::trunc(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
  }
  for (int precision = 15; precision <= 17; ++precision) {  // The shortest that reads back.
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

FamilyBase::FamilyBase(std::string name, std::string help, Type type,
                       std::vector<std::string> label_names)
    : name_(std::move(name)),
      help_(std::move(help)),
      type_(type),
      label_names_(std::move(label_names)) {}

void FamilyBase::Render(std::string& out) const {
  static constexpr const char* kTypes[] = {"counter", "gauge", "histogram"};
  out += "# HELP " + name_ + " " + EscapeHelp(help_) + "\n";
  out += "# TYPE " + name_ + " " + kTypes[static_cast<int>(type_)] + "\n";
  RenderSeries(out);
}

void FamilyBase::Sample(std::string& out, std::string_view suffix, const Labels& values,
                        std::string_view extra_label, std::string_view extra_value,
                        double value) const {
  out += name_;
  out += suffix;
  if (!label_names_.empty() || !extra_label.empty()) {
    out += '{';
    bool first = true;
    for (size_t i = 0; i < label_names_.size() && i < values.size(); ++i) {
      if (!first) out += ',';
      first = false;
      out += label_names_[i] + "=\"" + EscapeLabelValue(values[i]) + "\"";
    }
    if (!extra_label.empty()) {
      if (!first) out += ',';
      out += std::string(extra_label) + "=\"" + EscapeLabelValue(extra_value) + "\"";
    }
    out += '}';
  }
  out += ' ';
  out += FormatValue(value);
  out += '\n';
}

template <typename T>
T& Family<T>::With(const Labels& values) {
  // A programming error (labels are fixed at each call site), never input.
  PW_CHECK(values.size() == label_names_.size());
  MutexLock lock(mu_);
  auto& slot = series_[values];
  if (!slot) {
    if constexpr (std::is_same_v<T, Histogram>) {
      slot = std::make_unique<Histogram>(&bounds_);
    } else {
      slot = std::make_unique<T>();
    }
  }
  return *slot;
}

template <typename T>
void Family<T>::RenderSeries(std::string& out) const {
  MutexLock lock(mu_);
  for (const auto& [labels, series] : series_) {
    if constexpr (std::is_same_v<T, Histogram>) {
      const std::vector<uint64_t> counts = series->CumulativeCounts();
      for (size_t i = 0; i < bounds_.size(); ++i) {
        Sample(out, "_bucket", labels, "le", FormatValue(bounds_[i]),
               static_cast<double>(counts[i]));
      }
      Sample(out, "_bucket", labels, "le", "+Inf", static_cast<double>(counts.back()));
      Sample(out, "_sum", labels, "", "", series->Sum());
      Sample(out, "_count", labels, "", "", static_cast<double>(counts.back()));
    } else {
      Sample(out, "", labels, "", "", static_cast<double>(series->Value()));
    }
  }
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

namespace {

class CollectedFamily : public FamilyBase {
 public:
  CollectedFamily(std::string name, std::string help, std::vector<std::string> label_names,
                  Collect collect)
      : FamilyBase(std::move(name), std::move(help), Type::kGauge, std::move(label_names)),
        collect_(std::move(collect)) {}

 private:
  void RenderSeries(std::string& out) const override {
    for (const auto& [labels, value] : collect_()) {
      if (labels.size() == label_names_.size()) Sample(out, "", labels, "", "", value);
    }
  }
  Collect collect_;
};

}  // namespace

Family<Counter>& Registry::AddCounter(std::string name, std::string help,
                                      std::vector<std::string> label_names) {
  auto f = std::make_unique<Family<Counter>>(std::move(name), std::move(help), Type::kCounter,
                                             std::move(label_names));
  auto& ref = *f;
  families_.push_back(std::move(f));
  return ref;
}

Family<Gauge>& Registry::AddGauge(std::string name, std::string help,
                                  std::vector<std::string> label_names) {
  auto f = std::make_unique<Family<Gauge>>(std::move(name), std::move(help), Type::kGauge,
                                           std::move(label_names));
  auto& ref = *f;
  families_.push_back(std::move(f));
  return ref;
}

Family<Histogram>& Registry::AddHistogram(std::string name, std::string help,
                                          std::vector<std::string> label_names,
                                          std::vector<double> bounds) {
  std::sort(bounds.begin(), bounds.end());
  auto f = std::make_unique<Family<Histogram>>(std::move(name), std::move(help), Type::kHistogram,
                                               std::move(label_names), std::move(bounds));
  auto& ref = *f;
  families_.push_back(std::move(f));
  return ref;
}

void Registry::AddCollected(std::string name, std::string help,
                            std::vector<std::string> label_names, Collect collect) {
  families_.push_back(std::make_unique<CollectedFamily>(
      std::move(name), std::move(help), std::move(label_names), std::move(collect)));
}

std::string Registry::Render() const {
  std::string out;
  for (const auto& f : families_) f->Render(out);
  return out;
}

}  // namespace pw::metrics
