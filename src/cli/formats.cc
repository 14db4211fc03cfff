#include "cli/formats.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <set>
#include <vector>

namespace pw::cli {

namespace {

bool IsScalar(const OJson& v) { return !v.is_array() && !v.is_object(); }

// Python's str() of a JSON value.
std::string PyStr(const OJson& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "None";
  if (v.is_boolean()) return v.get<bool>() ? "True" : "False";
  if (v.is_number_float()) {
    std::string s = v.dump();
    // Python writes integral floats with ".0", as nlohmann does.
    return s;
  }
  return v.dump(-1, ' ', false, OJson::error_handler_t::replace);
}

std::string Upper(std::string s) {
  for (char& c : s) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return s;
}

// ---- text (awscli/text.py) ---------------------------------------------------

void FormatText(const OJson& item, std::string& out, const std::optional<std::string>& identifier,
                const std::vector<std::string>* scalar_keys);

void FormatScalarList(const std::vector<const OJson*>& elements,
                      const std::optional<std::string>& identifier, std::string& out) {
  if (identifier) {
    for (const OJson* e : elements) out += Upper(*identifier) + "\t" + PyStr(*e) + "\n";
    return;
  }
  for (size_t i = 0; i < elements.size(); ++i) {
    if (i > 0) out += "\t";
    out += PyStr(*elements[i]);
  }
  out += "\n";
}

void FormatList(const OJson& item, const std::optional<std::string>& identifier, std::string& out) {
  if (item.empty()) return;
  const bool any_dict =
      std::any_of(item.begin(), item.end(), [](auto& e) { return e.is_object(); });
  const bool any_list = std::any_of(item.begin(), item.end(), [](auto& e) { return e.is_array(); });
  if (any_dict) {
    std::set<std::string> keys;
    for (const OJson& e : item) {
      if (!e.is_object()) continue;
      for (const auto& [k, v] : e.items()) {
        if (IsScalar(v)) keys.insert(k);
      }
    }
    std::vector<std::string> all(keys.begin(), keys.end());
    for (const OJson& e : item) FormatText(e, out, identifier, &all);
    return;
  }
  std::vector<const OJson*> scalars;
  std::vector<const OJson*> others;
  for (const OJson& e : item) (IsScalar(e) ? scalars : others).push_back(&e);
  if (any_list) {
    if (!scalars.empty()) FormatScalarList(scalars, identifier, out);
    for (const OJson* e : others) FormatText(*e, out, identifier, nullptr);
    return;
  }
  FormatScalarList(scalars, identifier, out);
}

void FormatDict(const OJson& item, const std::optional<std::string>& identifier,
                const std::vector<std::string>* scalar_keys, std::string& out) {
  std::vector<std::string> scalars;
  std::vector<std::pair<std::string, const OJson*>> non_scalars;
  if (scalar_keys == nullptr) {
    std::vector<std::string> keys;
    for (const auto& [k, v] : item.items()) keys.push_back(k);
    std::sort(keys.begin(), keys.end());
    for (const std::string& k : keys) {
      const OJson& v = item[k];
      if (IsScalar(v)) {
        scalars.push_back(PyStr(v));
      } else {
        non_scalars.emplace_back(k, &v);
      }
    }
  } else {
    for (const std::string& k : *scalar_keys) {
      auto it = item.find(k);
      scalars.push_back(it == item.end() ? "" : PyStr(*it));
    }
    std::vector<std::string> rest;
    for (const auto& [k, v] : item.items()) {
      if (std::find(scalar_keys->begin(), scalar_keys->end(), k) == scalar_keys->end()) {
        rest.push_back(k);
      }
    }
    std::sort(rest.begin(), rest.end());
    for (const std::string& k : rest) non_scalars.emplace_back(k, &item[k]);
  }
  if (!scalars.empty()) {
    if (identifier) scalars.insert(scalars.begin(), Upper(*identifier));
    for (size_t i = 0; i < scalars.size(); ++i) out += (i > 0 ? "\t" : "") + scalars[i];
    out += "\n";
  }
  for (const auto& [key, value] : non_scalars) FormatText(*value, out, key, nullptr);
}

void FormatText(const OJson& item, std::string& out, const std::optional<std::string>& identifier,
                const std::vector<std::string>* scalar_keys) {
  if (item.is_object()) {
    FormatDict(item, identifier, scalar_keys, out);
  } else if (item.is_array()) {
    FormatList(item, identifier, out);
  } else {
    out += PyStr(item) + "\n";
  }
}

// ---- table (awscli/table.py, colour off) -------------------------------------

// Display width; awscli counts East Asian wide characters twice, this counts
// code points (identical for the ASCII and Latin text of pipeline output).
size_t TextLength(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80) ++n;
  }
  return n;
}

std::string Repeat(char c, long n) { return n > 0 ? std::string(static_cast<size_t>(n), c) : ""; }

std::string CenterText(const std::string& text, long length, const std::string& left,
                       const std::string& right) {
  const long text_length = static_cast<long>(TextLength(text));
  // Python's // floors.
  auto floordiv = [](long a, long b) { return a >= 0 ? a / b : -((-a + b - 1) / b); };
  const long char_start = floordiv(length, 2) - floordiv(text_length, 2) - 1;
  std::string out = left + Repeat(' ', char_start) + text;
  const long so_far = static_cast<long>(TextLength(left)) + char_start + text_length;
  out += Repeat(' ', length - static_cast<long>(TextLength(right)) - so_far);
  return out + right;
}

std::string AlignLeft(const std::string& text, long length, const std::string& left,
                      const std::string& right) {
  const long text_length = static_cast<long>(TextLength(text));
  const long computed = text_length + 2 + static_cast<long>(left.size() + right.size());
  const long padding = length - computed >= 0 ? 2 : 0;
  const long so_far = static_cast<long>(left.size()) + padding + text_length;
  return left + Repeat(' ', padding) + text +
         Repeat(' ', length - so_far - static_cast<long>(right.size())) + right;
}

struct Section {
  std::string title;
  std::vector<std::string> headers;
  std::vector<std::vector<std::string>> rows;
  long indent_level = 0;
  std::optional<size_t> num_cols;
  std::vector<long> max_widths;

  void UpdateMaxWidths(const std::vector<std::string>& row) {
    if (max_widths.empty()) {
      for (const auto& el : row) max_widths.push_back(static_cast<long>(TextLength(el)));
      return;
    }
    for (size_t i = 0; i < row.size() && i < max_widths.size(); ++i) {
      max_widths[i] = std::max(static_cast<long>(TextLength(row[i])), max_widths[i]);
    }
  }
  void AddHeader(const std::vector<std::string>& h) {
    UpdateMaxWidths(h);
    if (!num_cols) num_cols = h.size();
    headers = h;
  }
  void AddRow(const std::vector<std::string>& row) {
    if (!num_cols) num_cols = row.size();
    rows.push_back(row);
    UpdateMaxWidths(row);
  }
  std::vector<long> ColumnWidths(long padding, std::optional<long> max_width) const {
    std::vector<long> unscaled;
    for (long w : max_widths) unscaled.push_back(w + padding);
    if (!max_width || unscaled.empty()) return unscaled;
    long sum = 0;
    for (long w : unscaled) sum += w;
    const double scale = static_cast<double>(*max_width) / static_cast<double>(sum);
    std::vector<long> scaled;
    for (long w : unscaled) {
      // Python's round(): half to even, as nearbyint in the default mode.
      scaled.push_back(static_cast<long>(std::nearbyint(scale * static_cast<double>(w))));
    }
    long total = 0;
    for (long w : scaled) total += w;
    long off_by = total - *max_width;
    while (off_by != 0) {
      const long n = static_cast<long>(scaled.size());
      for (long k = 0; k < n; ++k) {
        const long i = off_by < 0 ? n - 1 - k : k;
        if (off_by > 0) {
          scaled[static_cast<size_t>(i)] -= 1;
          off_by -= 1;
        } else {
          scaled[static_cast<size_t>(i)] += 1;
          off_by += 1;
        }
        if (off_by == 0) break;
      }
    }
    return scaled;
  }
  long TotalWidth(long padding, bool with_border, long outer_padding) const {
    long total = 0;
    for (long w : ColumnWidths(0, std::nullopt)) total += w + padding;
    if (with_border) total += 2;
    total += 2 * outer_padding;
    return std::max(static_cast<long>(TextLength(title)) + 2 + 2 * outer_padding, total);
  }
};

class MultiTable {
 public:
  explicit MultiTable(long terminal_width) : terminal_width_(terminal_width) {}

  void NewSection(const std::string& title, long indent) {
    sections_.emplace_back();
    sections_.back().title = title;
    sections_.back().indent_level = indent;
  }
  Section& Current() { return sections_.back(); }

  std::string Render() {
    long max_width = MaxWidth();
    if (max_width > terminal_width_) {
      for (Section& s : sections_) {
        if (s.rows.size() == 1 && !s.headers.empty()) {
          Section vertical;
          vertical.title = s.title;
          vertical.indent_level = s.indent_level;
          for (size_t i = 0; i < s.headers.size() && i < s.rows[0].size(); ++i) {
            vertical.AddRow({s.headers[i], s.rows[0][i]});
          }
          s = vertical;
        }
      }
      max_width = MaxWidth();
    }
    std::string out = Repeat('-', max_width) + "\n";
    for (const Section& s : sections_) RenderSection(s, max_width, out);
    return out;
  }

 private:
  long MaxWidth() const {
    long w = 0;
    for (const Section& s : sections_) w = std::max(w, s.TotalWidth(4, true, s.indent_level));
    return w;
  }

  // IndentedStream: each line framed by the section's indentation.
  static void Write(std::string& out, long indent, const std::string& line) {
    out += Repeat('|', indent) + line + Repeat('|', indent) + "\n";
  }

  static std::string LineBreak(const std::vector<long>& widths) {
    std::string s;
    for (size_t i = 0; i < widths.size(); ++i) {
      s += i == 0 ? "+" + Repeat('-', widths[i] - 2) + "+" : Repeat('-', widths[i] - 1) + "+";
    }
    return s;
  }

  void RenderSection(const Section& s, long max_width, std::string& out) const {
    const long width = max_width - s.indent_level * 2;
    if (!s.title.empty()) {
      Write(out, s.indent_level, CenterText(s.title, width, "|", "|"));
      if (s.headers.empty() && s.rows.empty()) {
        Write(out, s.indent_level, "+" + Repeat('-', width - 2) + "+");
      }
    }
    if (!s.headers.empty()) {
      std::vector<long> widths = s.ColumnWidths(4, width);
      std::string line;
      for (size_t i = 0; i < widths.size() && i < s.headers.size(); ++i) {
        line += CenterText(s.headers[i], widths[i], i == 0 ? "|" : "", "|");
      }
      Write(out, s.indent_level, LineBreak(widths));
      Write(out, s.indent_level, line);
    }
    if (s.rows.empty()) return;
    std::vector<long> widths = s.ColumnWidths(4, width);
    if (widths.empty()) return;
    Write(out, s.indent_level, LineBreak(widths));
    for (const auto& row : s.rows) {
      std::string line;
      for (size_t i = 0; i < widths.size() && i < row.size(); ++i) {
        line += AlignLeft(row[i], widths[i], i == 0 ? "|" : "", "|");
      }
      Write(out, s.indent_level, line);
    }
    Write(out, s.indent_level, LineBreak(widths));
  }

  long terminal_width_;
  std::vector<Section> sections_;
};

// TableFormatter._build_table and friends.
class TableBuilder {
 public:
  explicit TableBuilder(MultiTable& table) : table_(table) {}

  bool Build(const std::optional<std::string>& title, const OJson& current, long indent) {
    if (IsFalsy(current)) return false;
    if (title) table_.NewSection(*title, indent);
    if (current.is_array()) {
      if (current[0].is_object()) {
        FromList(current, indent, title);
      } else {
        for (const OJson& item : current) {
          if (IsScalar(item)) {
            Row({PyStr(item)});
          } else if (std::all_of(item.begin(), item.end(), [](auto& e) { return IsScalar(e); })) {
            std::vector<std::string> row;
            for (const OJson& e : item) row.push_back(PyStr(e));
            Row(row);
          } else {
            Build(std::nullopt, item, 0);
          }
        }
      }
    }
    if (current.is_object()) FromDict(current, indent);
    return true;
  }

 private:
  static bool IsFalsy(const OJson& v) {
    if (v.is_null()) return true;
    if (v.is_boolean()) return !v.get<bool>();
    if (v.is_number()) return v.get<double>() == 0;
    if (v.is_string() || v.is_array() || v.is_object()) return v.empty();
    return false;
  }

  // The top-level call always opens a section, so there is a current one.
  void Row(const std::vector<std::string>& row) { table_.Current().AddRow(row); }
  void Header(const std::vector<std::string>& h) { table_.Current().AddHeader(h); }

  static void Group(const OJson& current, std::vector<std::string>& headers,
                    std::vector<std::string>& more) {
    for (const auto& [k, v] : current.items()) (IsScalar(v) ? headers : more).push_back(k);
    std::sort(headers.begin(), headers.end());
    std::sort(more.begin(), more.end());
  }

  void FromDict(const OJson& current, long indent) {
    std::vector<std::string> headers;
    std::vector<std::string> more;
    Group(current, headers, more);
    if (headers.size() == 1) {
      Row({headers[0], PyStr(current[headers[0]])});
    } else if (!headers.empty()) {
      Header(headers);
      std::vector<std::string> row;
      for (const auto& h : headers) row.push_back(PyStr(current[h]));
      Row(row);
    }
    for (const auto& k : more) Build(k, current[k], indent + 1);
  }

  void FromList(const OJson& current, long indent, const std::optional<std::string>& title) {
    std::set<std::string> header_set;
    std::set<std::string> more_set;
    for (const OJson& item : current) {
      if (!item.is_object()) continue;
      std::vector<std::string> h;
      std::vector<std::string> m;
      Group(item, h, m);
      header_set.insert(h.begin(), h.end());
      more_set.insert(m.begin(), m.end());
    }
    std::vector<std::string> headers(header_set.begin(), header_set.end());
    std::vector<std::string> more(more_set.begin(), more_set.end());
    Header(headers);
    bool first = true;
    for (const OJson& element : current) {
      if (!first && !more.empty()) {
        table_.NewSection(title.value_or(""), indent);
        Header(headers);
      }
      first = false;
      std::vector<std::string> row;
      for (const auto& h : headers) {
        auto it = element.is_object() ? element.find(h) : element.end();
        row.push_back(element.is_object() && it != element.end() ? PyStr(*it) : "");
      }
      Row(row);
      for (const auto& k : more) {
        if (element.is_object() && element.contains(k)) Build(k, element[k], indent + 1);
      }
    }
  }

  MultiTable& table_;
};

}  // namespace

std::string RenderText(const OJson& response) {
  std::string out;
  FormatText(response, out, std::nullopt, nullptr);
  return out;
}

std::string RenderTable(std::string_view title, const OJson& response, size_t terminal_width) {
  MultiTable table(static_cast<long>(terminal_width));
  TableBuilder builder(table);
  if (!builder.Build(std::string(title), response, 0)) return "";
  return table.Render();
}

}  // namespace pw::cli
