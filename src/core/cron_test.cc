// DeploymentWindow's cron evaluator: parsing errors, every field form, and
// the calendar arithmetic checked exhaustively against a naive day walk.

#include "core/cron.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace pw::core::cron_test {
namespace {

using ::testing::HasSubstr;

// Seconds of year/month/day hour:minute:second (UTC = local for these tests).
int64_t At(int y, int mo, int d, int h = 0, int mi = 0, int s = 0) {
  // Walk from 1970 by whole days: slow but obviously right.
  int64_t days = 0;
  for (int yy = 1970; yy < y; ++yy) {
    days += ((yy % 4 == 0 && yy % 100 != 0) || yy % 400 == 0) ? 366 : 365;
  }
  for (int mm = 1; mm < mo; ++mm) days += DaysInMonth(y, mm);
  days += d - 1;
  return days * 86400 + h * 3600 + mi * 60 + s;
}

bool Open(const char* cron, int64_t t) {
  auto c = ParseCron(cron);
  EXPECT_TRUE(c.ok()) << cron << ": " << c.status().message();
  return c.ok() && CronMatches(*c, t);
}

TEST(Cron, CivilConversionMatchesADayWalkFor1970To2200) {
  int weekday = 5;  // 1970-01-01: Thursday.
  int64_t days = 0;
  for (int y = 1970; y < 2200; ++y) {
    for (int m = 1; m <= 12; ++m) {
      for (int d = 1; d <= DaysInMonth(y, m); ++d) {
        const CivilTime t = ToCivil(days * 86400 + 3661);
        ASSERT_EQ(t.year, y);
        ASSERT_EQ(t.month, m);
        ASSERT_EQ(t.day, d);
        ASSERT_EQ(t.weekday, weekday);
        ASSERT_EQ(t.hour, 1);
        ASSERT_EQ(t.minute, 1);
        ASSERT_EQ(t.second, 1);
        weekday = weekday % 7 + 1;
        ++days;
      }
    }
  }
}

TEST(Cron, RefusesMalformedExpressionsNamingTheField) {
  EXPECT_THAT(ParseCron("* * *").status().message(), HasSubstr("needs 6"));
  EXPECT_THAT(ParseCron("* 60 * ? * *").status().message(), HasSubstr("minutes"));
  EXPECT_THAT(ParseCron("* * 24 ? * *").status().message(), HasSubstr("hours"));
  EXPECT_THAT(ParseCron("* * * 0 * ?").status().message(), HasSubstr("day-of-month"));
  EXPECT_THAT(ParseCron("* * * ? FOO *").status().message(), HasSubstr("month"));
  EXPECT_THAT(ParseCron("* * * ? * 8").status().message(), HasSubstr("day-of-week"));
  EXPECT_THAT(ParseCron("* * * 1 * MON").status().message(), HasSubstr("both"));
  EXPECT_THAT(ParseCron("* * * ? * MON#6").status().message(), HasSubstr("n#k"));
  EXPECT_THAT(ParseCron("* * * ? * * 1969").status().message(), HasSubstr("year"));
  EXPECT_THAT(ParseCron("* */0 * ? * *").status().message(), HasSubstr("step"));
  EXPECT_THAT(ParseCron("* 5-2 * ? * *").status().message(), HasSubstr("out of range"));
}

TEST(Cron, WeekdayOfficeHours) {
  const char* cron = "* * 9-16 ? * MON-FRI";
  EXPECT_TRUE(Open(cron, At(2026, 11, 30, 9, 0)));    // Monday 09:00.
  EXPECT_TRUE(Open(cron, At(2026, 11, 30, 16, 59)));  // Monday 16:59.
  EXPECT_FALSE(Open(cron, At(2026, 11, 30, 17, 0)));
  EXPECT_FALSE(Open(cron, At(2026, 11, 30, 8, 59)));
  EXPECT_FALSE(Open(cron, At(2026, 11, 29, 12, 0)));  // Sunday.
  EXPECT_FALSE(Open(cron, At(2026, 12, 5, 12, 0)));   // Saturday.
}

TEST(Cron, ListsStepsAndNames) {
  EXPECT_TRUE(Open("* 0/15 * ? * *", At(2026, 1, 1, 3, 45)));
  EXPECT_FALSE(Open("* 0/15 * ? * *", At(2026, 1, 1, 3, 46)));
  EXPECT_TRUE(Open("* 5/20 * ? * *", At(2026, 1, 1, 3, 25)));
  EXPECT_TRUE(Open("* */30 * ? * *", At(2026, 1, 1, 3, 30)));
  EXPECT_TRUE(Open("* 1,2,40-42 * ? * *", At(2026, 1, 1, 0, 41)));
  EXPECT_FALSE(Open("* 1,2,40-42 * ? * *", At(2026, 1, 1, 0, 43)));
  EXPECT_TRUE(Open("* * * ? JUN-AUG *", At(2026, 7, 15)));
  EXPECT_FALSE(Open("* * * ? jun-aug *", At(2026, 9, 1)));
  EXPECT_TRUE(Open("0 * * ? * *", At(2026, 7, 15, 1, 2, 0)));
  EXPECT_FALSE(Open("0 * * ? * *", At(2026, 7, 15, 1, 2, 1)));
  EXPECT_TRUE(Open("* * * ? * * 2026", At(2026, 7, 15)));
  EXPECT_FALSE(Open("* * * ? * * 2027-2030", At(2026, 7, 15)));
}

TEST(Cron, DayOfMonthSpecialForms) {
  EXPECT_TRUE(Open("* * * L * ?", At(2024, 2, 29)));  // Leap year.
  EXPECT_FALSE(Open("* * * L * ?", At(2024, 2, 28)));
  EXPECT_TRUE(Open("* * * L * ?", At(2025, 2, 28)));
  EXPECT_TRUE(Open("* * * L-3 * ?", At(2026, 1, 28)));
  // LW: last weekday; 2026-01-31 is a Saturday, so Friday the 30th.
  EXPECT_TRUE(Open("* * * LW * ?", At(2026, 1, 30)));
  EXPECT_FALSE(Open("* * * LW * ?", At(2026, 1, 31)));
  // 15W: 2026-03-15 is a Sunday: Monday the 16th.
  EXPECT_TRUE(Open("* * * 15W * ?", At(2026, 3, 16)));
  EXPECT_FALSE(Open("* * * 15W * ?", At(2026, 3, 15)));
  // 1W: 2026-08-01 is a Saturday: Monday the 3rd (not July 31st).
  EXPECT_TRUE(Open("* * * 1W * ?", At(2026, 8, 3)));
  // 31W in a 30-day month whose 30th is a Sunday (2025-11-30): Friday the 28th.
  EXPECT_TRUE(Open("* * * 31W * ?", At(2025, 11, 28)));
}

TEST(Cron, DayOfWeekSpecialForms) {
  EXPECT_TRUE(Open("* * * ? * L", At(2026, 12, 5)));  // Saturday.
  // 6L: the last Friday; 2026-11-27.
  EXPECT_TRUE(Open("* * * ? * 6L", At(2026, 11, 27)));
  EXPECT_FALSE(Open("* * * ? * 6L", At(2026, 11, 20)));
  // MON#2: the second Monday; 2026-11-09.
  EXPECT_TRUE(Open("* * * ? * MON#2", At(2026, 11, 9)));
  EXPECT_FALSE(Open("* * * ? * 2#2", At(2026, 11, 2)));
  EXPECT_FALSE(Open("* * * ? * 2#2", At(2026, 11, 16)));
}

TEST(Cron, EveryMinuteOfAWeekAgreesWithTheFieldsSeparately) {
  auto c = ParseCron("* 10-20 3,15 ? * TUE,THU");
  ASSERT_TRUE(c.ok());
  const int64_t start = At(2026, 11, 29);  // Sunday.
  int open = 0;
  for (int64_t t = start; t < start + 7 * 86400; t += 60) {
    const CivilTime ct = ToCivil(t);
    const bool want = ct.minute >= 10 && ct.minute <= 20 && (ct.hour == 3 || ct.hour == 15) &&
                      (ct.weekday == 3 || ct.weekday == 5);
    ASSERT_EQ(CronMatches(*c, t), want) << t;
    open += want;
  }
  EXPECT_EQ(open, 2 * 2 * 11);
}

}  // namespace
}  // namespace pw::core::cron_test
