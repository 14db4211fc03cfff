#include "engine/leases.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace pw::engine::leases_test {
namespace {

store::Lease L(const std::string& p, const std::string& owner, bool expired = false) {
  return {p, owner, 1, 0, expired};
}

std::vector<std::string> Names(int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back("p" + std::to_string(i));
  return out;
}

TEST(PlanLeasesTest, AloneTakesEverythingFree) {
  LeaseInput in{"a", Names(3), {}, {"a"}, {}, {}};
  LeasePlan plan = PlanLeases(in);
  EXPECT_EQ(plan.take.size(), 3u);
  EXPECT_TRUE(plan.release.empty());
}

TEST(PlanLeasesTest, FairShareIsCeilOfPipelinesOverLiveServers) {
  struct Case {
    int pipelines, servers, held, want_take, want_release;
  };
  for (const Case& c : std::vector<Case>{{5, 2, 0, 3, 0},
                                         {5, 2, 3, 0, 0},
                                         {6, 3, 6, 0, 4},
                                         {6, 3, 1, 1, 0},
                                         {1, 3, 0, 1, 0},
                                         {0, 2, 0, 0, 0}}) {
    LeaseInput in;
    in.self = "a";
    in.pipelines = Names(c.pipelines);
    for (int i = 0; i < c.servers; ++i)
      in.live_servers.insert(i == 0 ? "a" : "s" + std::to_string(i));
    for (int i = 0; i < c.held; ++i) {
      in.held["p" + std::to_string(i)] = 1;
      in.leases.push_back(L("p" + std::to_string(i), "a"));
    }
    LeasePlan plan = PlanLeases(in);
    EXPECT_EQ(static_cast<int>(plan.take.size()), c.want_take)
        << c.pipelines << " pipelines, " << c.servers << " servers, " << c.held << " held";
    EXPECT_EQ(static_cast<int>(plan.release.size()), c.want_release);
    EXPECT_EQ(static_cast<int>(plan.renew.size()), c.held - c.want_release);
  }
}

TEST(PlanLeasesTest, LeasesOfOthersAreTakenOnlyOnceExpired) {
  LeaseInput in{"a",        Names(3), {L("p0", "b"), L("p1", "dead", true), L("p2", "")},
                {"a", "b"}, {},       {}};
  LeasePlan plan = PlanLeases(in);
  std::sort(plan.take.begin(), plan.take.end());
  EXPECT_EQ(plan.take, (std::vector<std::string>{"p1", "p2"}));
}

TEST(PlanLeasesTest, BusyPipelinesAreNeverReleased) {
  LeaseInput in{"a",         Names(4), {}, {"a", "b"}, {{"p0", 1}, {"p1", 1}, {"p2", 1}, {"p3", 1}},
                {"p2", "p3"}};
  LeasePlan plan = PlanLeases(in);
  std::sort(plan.release.begin(), plan.release.end());
  EXPECT_EQ(plan.release, (std::vector<std::string>{"p0", "p1"}));
  EXPECT_EQ(plan.renew.size(), 2u);
}

TEST(PlanLeasesTest, DeletedPipelinesAreNotRenewed) {
  LeaseInput in{"a", Names(1), {}, {"a"}, {{"p0", 1}, {"gone", 1}}, {}};
  LeasePlan plan = PlanLeases(in);
  EXPECT_EQ(plan.renew, (std::vector<std::string>{"p0"}));
}

}  // namespace
}  // namespace pw::engine::leases_test
