#include "core/cron.h"

#include <array>
#include <cctype>
#include <string>
#include <vector>

namespace pw::core {
namespace {

constexpr std::array<std::string_view, 12> kMonths = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                                      "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr std::array<std::string_view, 7> kDays = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == sep) {
      out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}

struct Field {
  const char* name;
  int min, max;
  bool names_months = false, names_days = false;
};

Status Bad(const Field& f, std::string_view item, const std::string& why) {
  return InvalidArgument("Cron field " + std::string(f.name) + " '" + std::string(item) +
                         "': " + why);
}

// A number or (for months/weekdays) a name; -1 when neither.
int Value(const Field& f, std::string_view s) {
  if (s.empty() || s.size() > 4) return -1;
  bool digits = true;
  for (char c : s) digits = digits && std::isdigit(static_cast<unsigned char>(c));
  if (digits) return std::stoi(std::string(s));
  std::string up;
  for (char c : s) up += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (f.names_months) {
    for (size_t i = 0; i < kMonths.size(); ++i) {
      if (kMonths[i] == up) return static_cast<int>(i) + 1;
    }
  }
  if (f.names_days) {
    for (size_t i = 0; i < kDays.size(); ++i) {
      if (kDays[i] == up) return static_cast<int>(i) + 1;
    }
  }
  return -1;
}

// Sets the bits of one plain item (`*`, `a`, `a-b`, with `/step`) in `bits`
// (index = value - offset).
template <size_t N>
Status ParseItem(const Field& f, std::string_view item, std::bitset<N>& bits, int offset) {
  std::string_view range = item;
  int step = 1;
  if (size_t slash = item.find('/'); slash != std::string_view::npos) {
    range = item.substr(0, slash);
    std::string_view st = item.substr(slash + 1);
    bool digits = !st.empty() && st.size() <= 4;
    for (char c : st) digits = digits && std::isdigit(static_cast<unsigned char>(c));
    if (!digits || std::stoi(std::string(st)) == 0) return Bad(f, item, "the step is not a number");
    step = std::stoi(std::string(st));
  }
  int lo = f.min, hi = f.max;
  if (range != "*") {
    size_t dash = range.find('-');
    lo = Value(f, range.substr(0, dash));
    hi = dash == std::string_view::npos ? (step > 1 ? f.max : lo)  // `a/step` runs to the end.
                                        : Value(f, range.substr(dash + 1));
    if (lo < 0 || hi < 0) return Bad(f, item, "not a value, range or list");
    if (lo < f.min || hi > f.max || lo > hi) {
      return Bad(f, item,
                 "out of range (" + std::to_string(f.min) + "-" + std::to_string(f.max) + ")");
    }
  }
  for (int v = lo; v <= hi; v += step) bits.set(static_cast<size_t>(v - offset));
  return Status::Ok();
}

template <size_t N>
Status ParseList(const Field& f, std::string_view text, std::bitset<N>& bits, int offset) {
  for (std::string_view item : Split(text, ',')) {
    PW_RETURN_IF_ERROR(ParseItem(f, item, bits, offset));
  }
  return Status::Ok();
}

Status ParseDayOfMonth(std::string_view text, CronExpr& c) {
  const Field f{"day-of-month", 1, 31};
  if (text == "?" || text == "*") return Status::Ok();
  c.dom_any = false;
  if (text == "L") {
    c.last_day_offset = 0;
  } else if (text == "LW") {
    c.last_weekday = true;
  } else if (text.size() > 2 && text.substr(0, 2) == "L-") {
    int n = Value(f, text.substr(2));
    if (n < 0 || n > 30) return Bad(f, text, "L-n needs n between 0 and 30");
    c.last_day_offset = n;
  } else if (text.size() > 1 && text.back() == 'W') {
    int n = Value(f, text.substr(0, text.size() - 1));
    if (n < 1 || n > 31) return Bad(f, text, "nW needs a day between 1 and 31");
    c.nearest_weekday = n;
  } else {
    return ParseList(f, text, c.days, 0);
  }
  return Status::Ok();
}

Status ParseDayOfWeek(std::string_view text, CronExpr& c) {
  const Field f{"day-of-week", 1, 7, false, true};
  if (text == "?" || text == "*") return Status::Ok();
  c.dow_any = false;
  if (text == "L") {
    c.weekdays.set(7);
  } else if (size_t hash = text.find('#'); hash != std::string_view::npos) {
    int day = Value(f, text.substr(0, hash));
    int k = Value(f, text.substr(hash + 1));
    if (day < 1 || day > 7 || k < 1 || k > 5) {
      return Bad(f, text, "n#k needs a weekday 1-7 (or SUN-SAT) and k between 1 and 5");
    }
    c.nth_weekday = day;
    c.nth = k;
  } else if (text.size() > 1 && text.back() == 'L') {
    int day = Value(f, text.substr(0, text.size() - 1));
    if (day < 1 || day > 7) return Bad(f, text, "nL needs a weekday 1-7 (or SUN-SAT)");
    c.last_of_weekday = day;
  } else {
    return ParseList(f, text, c.weekdays, 0);
  }
  return Status::Ok();
}

bool IsWeekend(int weekday) { return weekday == 1 || weekday == 7; }

// Weekday (1 = Sunday) of year/month/day.
int WeekdayOf(int year, int month, int day);

bool DayMatches(const CronExpr& c, const CivilTime& t) {
  const int last = DaysInMonth(t.year, t.month);
  if (!c.dom_any) {
    if (c.last_day_offset >= 0) return t.day == last - c.last_day_offset;
    if (c.last_weekday) {
      int d = last;
      while (IsWeekend(WeekdayOf(t.year, t.month, d))) --d;
      return t.day == d;
    }
    if (c.nearest_weekday > 0) {
      int d = std::min(c.nearest_weekday, last);
      const int wd = WeekdayOf(t.year, t.month, d);
      if (wd == 7) d = d == 1 ? 3 : d - 1;         // Saturday: Friday, or Monday the 3rd.
      if (wd == 1) d = d == last ? d - 2 : d + 1;  // Sunday: Monday, or Friday before.
      return t.day == d;
    }
    return c.days.test(static_cast<size_t>(t.day));
  }
  if (!c.dow_any) {
    if (c.last_of_weekday > 0) return t.weekday == c.last_of_weekday && t.day + 7 > last;
    if (c.nth_weekday > 0) return t.weekday == c.nth_weekday && (t.day - 1) / 7 + 1 == c.nth;
    return c.weekdays.test(static_cast<size_t>(t.weekday));
  }
  return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

int WeekdayOf(int year, int month, int day) {
  const int64_t days = DaysFromCivil(year, month, day);
  // 1970-01-01 was a Thursday (5).
  return static_cast<int>(((days % 7 + 7) % 7 + 4) % 7) + 1;
}

}  // namespace

int DaysInMonth(int year, int month) {
  static constexpr std::array<int, 12> kLen = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : kLen[static_cast<size_t>(month - 1)];
}

CivilTime ToCivil(int64_t s) {
  int64_t days = s >= 0 ? s / 86400 : -((-s + 86399) / 86400);
  int64_t rem = s - days * 86400;
  CivilTime t;
  t.hour = static_cast<int>(rem / 3600);
  t.minute = static_cast<int>(rem % 3600 / 60);
  t.second = static_cast<int>(rem % 60);
  t.weekday = static_cast<int>(((days % 7 + 7) % 7 + 4) % 7) + 1;
  const int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  t.day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  t.month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  t.year = static_cast<int>(yoe + era * 400 + (t.month <= 2));
  return t;
}

Result<CronExpr> ParseCron(std::string_view text) {
  std::vector<std::string_view> fields;
  for (std::string_view f : Split(text, ' ')) {
    if (!f.empty()) fields.push_back(f);
  }
  if (fields.size() != 6 && fields.size() != 7) {
    return InvalidArgument("Cron '" + std::string(text) + "' has " + std::to_string(fields.size()) +
                           " fields; it needs 6 (seconds minutes hours day-of-month month "
                           "day-of-week) or 7 (plus year).");
  }
  CronExpr c;
  PW_RETURN_IF_ERROR(ParseList(Field{"seconds", 0, 59}, fields[0], c.seconds, 0));
  PW_RETURN_IF_ERROR(ParseList(Field{"minutes", 0, 59}, fields[1], c.minutes, 0));
  PW_RETURN_IF_ERROR(ParseList(Field{"hours", 0, 23}, fields[2], c.hours, 0));
  PW_RETURN_IF_ERROR(ParseDayOfMonth(fields[3], c));
  PW_RETURN_IF_ERROR(ParseList(Field{"month", 1, 12, true}, fields[4], c.months, 0));
  PW_RETURN_IF_ERROR(ParseDayOfWeek(fields[5], c));
  if (!c.dom_any && !c.dow_any) {
    return InvalidArgument("Cron '" + std::string(text) +
                           "' restricts both day-of-month and day-of-week; set one of them "
                           "to '?'.");
  }
  if (fields.size() == 7 && fields[6] != "*") {
    c.any_year = false;
    PW_RETURN_IF_ERROR(ParseList(Field{"year", 1970, 2199}, fields[6], c.years, 1970));
  }
  return c;
}

bool CronMatches(const CronExpr& c, int64_t local_seconds) {
  const CivilTime t = ToCivil(local_seconds);
  if (!c.any_year &&
      (t.year < 1970 || t.year > 2199 || !c.years.test(static_cast<size_t>(t.year - 1970)))) {
    return false;
  }
  return c.seconds.test(static_cast<size_t>(t.second)) &&
         c.minutes.test(static_cast<size_t>(t.minute)) &&
         c.hours.test(static_cast<size_t>(t.hour)) && c.months.test(static_cast<size_t>(t.month)) &&
         DayMatches(c, t);
}

}  // namespace pw::core
