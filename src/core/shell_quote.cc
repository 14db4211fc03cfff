#include "core/shell_quote.h"

#include <map>

namespace pw::core {
namespace {

enum class Quote {
  kNone,    // Plain shell text.
  kSingle,  // Inside '…': only the closing quote is special.
  kDouble,  // Inside "…": $, `, \ and the closing quote are special.
};

enum class Frame {
  kTop,          // The command itself.
  kDollarParen,  // Inside $( … ): a fresh quoting context.
  kBacktick,     // Inside ` … `: a fresh quoting context.
};

struct Context {
  Frame frame = Frame::kTop;
  Quote quote = Quote::kNone;
  int parens = 0;  // Unquoted '(' not yet closed within this frame.
};

bool StartsWord(std::string_view text, size_t i) {
  if (i == 0) return true;
  const char c = text[i - 1];
  return c == ' ' || c == '\t' || c == '\n' || c == ';' || c == '&' || c == '|' || c == '(' ||
         c == ')' || c == '<' || c == '>';
}

class Rewriter {
 public:
  explicit Rewriter(const Variables& scope) : scope_(scope) {}

  Result<std::string> Rewrite(std::string_view text, size_t command) {
    std::string out;
    std::vector<Context> stack(1);
    size_t i = 0;
    while (i < text.size()) {
      Context& ctx = stack.back();
      const char c = text[i];
      if (text.substr(i, 2) == "#{") {
        PW_ASSIGN_OR_RETURN(size_t end, Reference(text, i, command, ctx.quote, &out));
        i = end;
        continue;
      }
      if (ctx.quote == Quote::kSingle) {
        if (c == '\'') ctx.quote = Quote::kNone;
        out += c;
        ++i;
        continue;
      }
      if (c == '\\') {
        const bool before_reference = text.substr(i + 1, 2) == "#{";
        if (ctx.quote == Quote::kDouble) {
          if (before_reference) {
            out += "\\\\";  // Still one literal backslash before the expansion.
            ++i;
            continue;
          }
          const char next = i + 1 < text.size() ? text[i + 1] : '\0';
          const bool escapes =
              next == '$' || next == '`' || next == '"' || next == '\\' || next == '\n';
          out += text.substr(i, escapes ? 2 : 1);
          i += escapes ? 2 : 1;
          continue;
        }
        if (before_reference) {  // The quotes keep the value's first character literal.
          ++i;
          continue;
        }
        out += text.substr(i, 2);
        i += 2;
        continue;
      }
      if (text.substr(i, 2) == "$(") {
        stack.push_back({Frame::kDollarParen, Quote::kNone, 0});
        out += "$(";
        i += 2;
        continue;
      }
      if (c == '`') {
        if (ctx.frame == Frame::kBacktick) {
          stack.pop_back();
        } else {
          stack.push_back({Frame::kBacktick, Quote::kNone, 0});
        }
        out += c;
        ++i;
        continue;
      }
      if (ctx.quote == Quote::kDouble) {
        if (c == '"') ctx.quote = Quote::kNone;
        out += c;
        ++i;
        continue;
      }
      // Unquoted.
      if (c == '#' && StartsWord(text, i)) {  // A comment, to the end of the line.
        size_t nl = text.find('\n', i);
        if (nl == std::string_view::npos) nl = text.size();
        out += text.substr(i, nl - i);
        i = nl;
        continue;
      }
      if (c == '\'') {
        ctx.quote = Quote::kSingle;
      } else if (c == '"') {
        ctx.quote = Quote::kDouble;
      } else if (c == '(') {
        ++ctx.parens;
      } else if (c == ')') {
        if (ctx.parens > 0) {
          --ctx.parens;
        } else if (ctx.frame == Frame::kDollarParen) {
          stack.pop_back();
        }
      }
      out += c;
      ++i;
    }
    return out;
  }

  std::vector<std::pair<std::string, std::string>> TakeEnvironment() { return std::move(env_); }

 private:
  // Appends the expansion for the reference at text[start] ("#{"); returns
  // the index just past its '}'.
  Result<size_t> Reference(std::string_view text, size_t start, size_t command, Quote quote,
                           std::string* out) {
    const std::string where = "Command " + std::to_string(command) + ": ";
    const size_t close = text.find('}', start + 2);
    if (close == std::string_view::npos) {
      return InvalidArgument(where + "unterminated variable reference '" +
                             std::string(text.substr(start)) + "': close it with '}'.");
    }
    const std::string ref(text.substr(start + 2, close - start - 2));
    auto value = scope_.find(ref);
    if (value == scope_.end()) {
      return InvalidArgument(where + "variable #{" + ref +
                             "} cannot be resolved: no earlier action in this execution produced "
                             "it (check the namespace and that the action succeeded) and no "
                             "pipeline variable has that name.");
    }
    if (value->second.find('\0') != std::string::npos) {
      return InvalidArgument(where + "the value of variable #{" + ref +
                             "} holds a NUL byte, which a command's environment cannot carry.");
    }
    auto [it, added] = names_.try_emplace(ref);
    if (added) {
      it->second = std::string(kShellVariablePrefix) + std::to_string(names_.size());
      env_.emplace_back(it->second, value->second);
    }
    const std::string expansion = "${" + it->second + "}";
    switch (quote) {
      case Quote::kNone:
        *out += "\"" + expansion + "\"";
        break;
      case Quote::kDouble:
        *out += expansion;
        break;
      case Quote::kSingle:
        *out += "'\"" + expansion + "\"'";
        break;
    }
    return close + 1;
  }

  const Variables& scope_;
  std::map<std::string, std::string> names_;  // Reference -> environment variable.
  std::vector<std::pair<std::string, std::string>> env_;
};

}  // namespace

Result<ShellCommands> RewriteForShell(const std::vector<std::string>& commands,
                                      const Variables& scope) {
  Rewriter rewriter(scope);
  ShellCommands out;
  for (size_t i = 0; i < commands.size(); ++i) {
    if (commands[i].find('\0') != std::string::npos) {
      return InvalidArgument("Command " + std::to_string(i + 1) +
                             " holds a NUL byte, which would silently cut the script short.");
    }
    PW_ASSIGN_OR_RETURN(std::string text, rewriter.Rewrite(commands[i], i + 1));
    out.commands.push_back(std::move(text));
  }
  out.environment = rewriter.TakeEnvironment();
  return out;
}

std::vector<std::string> CommandLines(const std::vector<std::string>& listed,
                                      std::string_view configured) {
  if (!listed.empty()) return listed;
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= configured.size()) {
    size_t nl = configured.find('\n', pos);
    std::string_view line =
        configured.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    if (line.find_first_not_of(" \t\r") != std::string_view::npos) out.emplace_back(line);
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  return out;
}

}  // namespace pw::core
