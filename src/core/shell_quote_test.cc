#include "core/shell_quote.h"

#include <gtest/gtest.h>

namespace pw::core::shell_quote_test {
namespace {

// The payloads that must stay data whatever the quoting around the reference.
const char* const kPayloads[] = {
    "$(touch M)", "`touch M`",     "1.0; touch M", "'; touch M; '",  "\"; touch M; \"",
    "a\nb",       "back\\slash\\", "${HOME}",      "#{variables.x}",
};

struct Case {
  const char* command;
  const char* rewritten;
};

TEST(RewriteForShell, QuotesEachReferenceForWhereItStands) {
  const Case cases[] = {
      {"echo #{variables.x}", "echo \"${PW_VAR_1}\""},
      {"echo \"v=#{variables.x}!\"", "echo \"v=${PW_VAR_1}!\""},
      {"echo 'v=#{variables.x}!'", "echo 'v='\"${PW_VAR_1}\"'!'"},
      {"echo a#{variables.x}b", "echo a\"${PW_VAR_1}\"b"},
      // A backslash outside quotes escapes the next character only.
      {"echo \\'#{variables.x}", "echo \\'\"${PW_VAR_1}\""},
      {"echo \\\"#{variables.x}", "echo \\\"\"${PW_VAR_1}\""},
      // Right before a reference it is dropped (the quotes keep the value literal) ...
      {"echo \\#{variables.x}", "echo \"${PW_VAR_1}\""},
      // ... inside double quotes it stays one literal backslash.
      {"echo \"\\#{variables.x}\"", "echo \"\\\\${PW_VAR_1}\""},
      {"echo \"\\\"#{variables.x}\"", "echo \"\\\"${PW_VAR_1}\""},
      // Backslashes are not special inside single quotes.
      {"echo '\\'#{variables.x}", "echo '\\'\"${PW_VAR_1}\""},
      // $( … ) and backquotes open a fresh context, also inside double quotes.
      {"echo \"$(printf %s #{variables.x})\"", "echo \"$(printf %s \"${PW_VAR_1}\")\""},
      {"echo \"$(echo \"#{variables.x}\")\"", "echo \"$(echo \"${PW_VAR_1}\")\""},
      {"echo $( (echo x) ; echo #{variables.x})", "echo $( (echo x) ; echo \"${PW_VAR_1}\")"},
      {"echo `echo #{variables.x}`", "echo `echo \"${PW_VAR_1}\"`"},
      {"echo \"`echo #{variables.x}`\"", "echo \"`echo \"${PW_VAR_1}\"`\""},
      // A reference at the start of a word is not a comment; a comment is kept as written.
      {"#{variables.x}", "\"${PW_VAR_1}\""},
      {"echo hi # it's #{variables.x}", "echo hi # it's #{variables.x}"},
      {"echo a#b '#{variables.x}'", "echo a#b ''\"${PW_VAR_1}\"''"},
      {"no references, ${HOME} and $(date) stay", "no references, ${HOME} and $(date) stay"},
  };
  for (const Case& c : cases) {
    for (const char* payload : kPayloads) {
      auto r = RewriteForShell({c.command}, {{"variables.x", payload}});
      ASSERT_TRUE(r.ok()) << c.command << ": " << r.status().ToString();
      EXPECT_EQ(r->commands, std::vector<std::string>{c.rewritten}) << c.command;
      const bool referenced = std::string(c.rewritten).find("PW_VAR_1") != std::string::npos;
      if (referenced) {
        // The value only ever travels in the environment, byte for byte.
        ASSERT_EQ(r->environment.size(), 1u) << c.command;
        EXPECT_EQ(r->environment[0].first, "PW_VAR_1");
        EXPECT_EQ(r->environment[0].second, payload);
        EXPECT_EQ(r->commands[0].find(payload), std::string::npos)
            << c.command << " with " << payload;
      } else {
        EXPECT_TRUE(r->environment.empty()) << c.command;
      }
    }
  }
}

TEST(RewriteForShell, OneVariablePerDistinctReferenceAcrossCommands) {
  Variables scope = {{"variables.a", "1"}, {"Build.Tag", "v2"}};
  auto r = RewriteForShell({"echo #{variables.a} #{Build.Tag}", "echo '#{variables.a}'"}, scope);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->commands[0], "echo \"${PW_VAR_1}\" \"${PW_VAR_2}\"");
  EXPECT_EQ(r->commands[1], "echo ''\"${PW_VAR_1}\"''");
  using Env = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(r->environment, (Env{{"PW_VAR_1", "1"}, {"PW_VAR_2", "v2"}}));
}

TEST(RewriteForShell, UnresolvableUnterminatedOrNulValueIsAnError) {
  auto missing = RewriteForShell({"true", "echo #{Nope.X}"}, {});
  EXPECT_EQ(missing.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(missing.status().message().find("Command 2"), std::string::npos);
  EXPECT_NE(missing.status().message().find("#{Nope.X}"), std::string::npos);
  EXPECT_FALSE(RewriteForShell({"echo #{variables.x"}, {{"variables.x", "1"}}).ok());
  auto nul = RewriteForShell({"echo #{variables.x}"}, {{"variables.x", std::string("a\0b", 3)}});
  EXPECT_EQ(nul.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(nul.status().message().find("NUL"), std::string::npos);
  auto nul_command = RewriteForShell({std::string("true\0touch M", 12)}, {});
  EXPECT_EQ(nul_command.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(nul_command.status().message().find("Command 1"), std::string::npos);
}

TEST(CommandLines, ListedCommandsWinOverConfiguredLines) {
  EXPECT_EQ(CommandLines({"a", "b"}, "c"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(CommandLines({}, "c\n \n\td\n"), (std::vector<std::string>{"c", "\td"}));
  EXPECT_TRUE(CommandLines({}, "").empty());
}

}  // namespace
}  // namespace pw::core::shell_quote_test
