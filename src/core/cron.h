#pragma once

// DeploymentWindow's cron expressions (AWS's rule reference, Quartz-style):
//   seconds minutes hours day-of-month month day-of-week [year]
// Fields take `,` lists, `a-b` ranges, `/step` increments and `*`; months
// JAN-DEC or 1-12, weekdays SUN-SAT or 1-7 (1 = Sunday). Day-of-month also
// takes `?`, `L` (last day), `L-n` (n days before the last), `nW` (weekday
// nearest day n, within the month) and `LW` (last weekday); day-of-week takes
// `?`, `L` (Saturday), `nL` (last weekday n of the month) and `n#k` (k-th
// weekday n). At most one of the two day fields may be restricted: the other
// is `?` or `*`. Years 1970-2199.
// A time lies inside the window when every field matches it. Pure: no clock,
// no time zone database (the caller passes local wall-clock seconds).
// Thread-compatible value type.
//
//   auto cron = ParseCron("* * 9-16 ? * MON-FRI");       // weekdays 09:00-16:59
//   bool open = CronMatches(*cron, utc_seconds + offset);  // local time

#include <bitset>
#include <cstdint>
#include <string_view>

#include "common/status.h"

namespace pw::core {

struct CronExpr {
  std::bitset<60> seconds, minutes;
  std::bitset<24> hours;
  std::bitset<13> months;  // 1-12.
  // Day of month: plain days 1-31, and the special forms.
  bool dom_any = true;  // `*` or `?`.
  std::bitset<32> days;
  int last_day_offset = -1;   // `L` = 0, `L-n` = n; -1 = unused.
  bool last_weekday = false;  // `LW`.
  int nearest_weekday = 0;    // `nW`: n; 0 = unused.
  // Day of week (1 = Sunday .. 7 = Saturday).
  bool dow_any = true;
  std::bitset<8> weekdays;
  int last_of_weekday = 0;  // `nL`: n; 0 = unused.
  int nth_weekday = 0;      // `n#k`: n; 0 = unused.
  int nth = 0;              // `n#k`: k (1-5).
  bool any_year = true;
  std::bitset<230> years;  // 1970 + i.
};

// Parses `text`. kInvalidArgument naming the field and what is wrong.
Result<CronExpr> ParseCron(std::string_view text);

// Whether the wall-clock second `local_seconds` (seconds since 1970-01-01
// 00:00:00 of the local calendar, i.e. UTC seconds plus the zone's offset)
// lies inside the window.
bool CronMatches(const CronExpr& cron, int64_t local_seconds);

// The broken-down calendar time of `local_seconds` (proleptic Gregorian).
struct CivilTime {
  int year = 1970, month = 1, day = 1, hour = 0, minute = 0, second = 0;
  int weekday = 5;  // 1 = Sunday .. 7 = Saturday (1970-01-01 was a Thursday).
};
CivilTime ToCivil(int64_t local_seconds);
int DaysInMonth(int year, int month);

}  // namespace pw::core
