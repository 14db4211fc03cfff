#include "cli/jmespath.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <map>
#include <optional>
#include <vector>

// The lexer, parser (a Pratt parser with jmespath.py's binding powers) and
// tree interpreter follow jmespath.py 1.0.1 rule for rule, so `--query`
// answers what `aws --query` answers. Errors travel as a private exception
// inside this file and leave it as a Status (Compile, Search).

namespace pw::cli {

namespace jmespath_internal {

enum class Kind {
  kIdentity,
  kCurrent,
  kField,
  kSubexpression,
  kIndexExpression,
  kIndex,
  kSlice,
  kProjection,
  kValueProjection,
  kFlatten,
  kFilterProjection,
  kComparator,
  kOr,
  kAnd,
  kNot,
  kPipe,
  kMultiSelectList,
  kMultiSelectDict,
  kLiteral,
  kFunction,
  kExpref,
};

struct Node {
  Kind kind = Kind::kIdentity;
  std::string name;                 // Field, function, comparator, multi-select key.
  OJson value;                      // Literal.
  int64_t index = 0;                // Index.
  std::optional<int64_t> slice[3];  // Slice start, stop, step.
  std::vector<std::shared_ptr<Node>> children;
  std::vector<std::string> keys;  // MultiSelectDict: key of each child.
};

}  // namespace jmespath_internal

namespace {

using jmespath_internal::Kind;
using jmespath_internal::Node;
using NodePtr = std::shared_ptr<Node>;

struct JmesError {
  std::string kind;  // "syntax", "invalid-type", ...
  std::string message;
};

[[noreturn]] void Throw(std::string kind, std::string message) {
  throw JmesError{std::move(kind), std::move(message)};
}

// ---- lexer -------------------------------------------------------------------

enum class Tok {
  kEof,
  kUnquotedIdentifier,
  kQuotedIdentifier,
  kLiteral,
  kNumber,
  kDot,
  kStar,
  kRbracket,
  kLbracket,
  kFlatten,
  kFilter,
  kLbrace,
  kRbrace,
  kLparen,
  kRparen,
  kComma,
  kColon,
  kPipe,
  kOr,
  kAnd,
  kNot,
  kEq,
  kNe,
  kLt,
  kLte,
  kGt,
  kGte,
  kCurrent,
  kExpref,
};

struct Token {
  Tok type = Tok::kEof;
  std::string text;  // Identifier name.
  OJson value;       // Literal.
  int64_t number = 0;
  size_t pos = 0;
};

int BindingPower(Tok t) {
  switch (t) {
    case Tok::kPipe:
      return 1;
    case Tok::kOr:
      return 2;
    case Tok::kAnd:
      return 3;
    case Tok::kEq:
    case Tok::kNe:
    case Tok::kLt:
    case Tok::kLte:
    case Tok::kGt:
    case Tok::kGte:
      return 5;
    case Tok::kFlatten:
      return 9;
    case Tok::kStar:
      return 20;
    case Tok::kFilter:
      return 21;
    case Tok::kDot:
      return 40;
    case Tok::kNot:
      return 45;
    case Tok::kLbrace:
      return 50;
    case Tok::kLbracket:
      return 55;
    case Tok::kLparen:
      return 60;
    default:
      return 0;
  }
}
constexpr int kProjectionStop = 10;

bool IsIdentStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsIdentChar(char c) { return IsIdentStart(c) || (c >= '0' && c <= '9'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

class Lexer {
 public:
  explicit Lexer(std::string_view in) : in_(in) {}

  std::vector<Token> Tokens() {
    std::vector<Token> out;
    while (pos_ < in_.size()) {
      const char c = in_[pos_];
      Token t;
      t.pos = pos_;
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        ++pos_;
        continue;
      }
      if (IsIdentStart(c)) {
        size_t start = pos_;
        while (pos_ < in_.size() && IsIdentChar(in_[pos_])) ++pos_;
        t.type = Tok::kUnquotedIdentifier;
        t.text = std::string(in_.substr(start, pos_ - start));
      } else if (IsDigit(c) || c == '-') {
        size_t start = pos_;
        ++pos_;
        while (pos_ < in_.size() && IsDigit(in_[pos_])) ++pos_;
        std::string digits(in_.substr(start, pos_ - start));
        if (digits == "-") Throw("syntax", "Unknown token '-' at column " + Column(start));
        if (digits.size() > 18) Throw("syntax", "Number too large at column " + Column(start));
        t.type = Tok::kNumber;
        t.number = std::strtoll(digits.c_str(), nullptr, 10);
      } else if (c == '"') {
        t.type = Tok::kQuotedIdentifier;
        std::string raw = Until('"');
        OJson parsed = OJson::parse("\"" + raw + "\"", nullptr, false);
        if (parsed.is_discarded() || !parsed.is_string()) {
          Throw("syntax", "Invalid quoted identifier at column " + Column(t.pos));
        }
        t.text = parsed.get<std::string>();
      } else if (c == '\'') {
        t.type = Tok::kLiteral;
        std::string raw = Until('\'');
        std::string text;
        for (size_t i = 0; i < raw.size(); ++i) {
          if (raw[i] == '\\' && i + 1 < raw.size() && raw[i + 1] == '\'') {
            text += '\'';
            ++i;
          } else {
            text += raw[i];
          }
        }
        t.value = text;
      } else if (c == '`') {
        t.type = Tok::kLiteral;
        std::string raw = Until('`');
        std::string text;
        for (size_t i = 0; i < raw.size(); ++i) {
          if (raw[i] == '\\' && i + 1 < raw.size() && raw[i + 1] == '`') {
            text += '`';
            ++i;
          } else {
            text += raw[i];
          }
        }
        OJson parsed = OJson::parse(text, nullptr, false);
        if (parsed.is_discarded()) {
          // jmespath.py's deprecated form: `foo` is the string "foo".
          std::string trimmed = text;
          while (!trimmed.empty() && trimmed.front() == ' ') trimmed.erase(trimmed.begin());
          parsed = OJson::parse("\"" + trimmed + "\"", nullptr, false);
        }
        if (parsed.is_discarded()) {
          Throw("syntax", "Bad JSON literal at column " + Column(t.pos) + ": " + text);
        }
        t.value = std::move(parsed);
      } else {
        t.type = Operator(c);
      }
      out.push_back(std::move(t));
    }
    Token eof;
    eof.type = Tok::kEof;
    eof.pos = in_.size();
    out.push_back(eof);
    return out;
  }

 private:
  std::string Column(size_t pos) const { return std::to_string(pos); }

  // The text up to the closing `quote` (backslash escapes the next
  // character and both are kept); pos_ ends after it.
  std::string Until(char quote) {
    const size_t start = pos_;
    ++pos_;
    std::string out;
    while (pos_ < in_.size() && in_[pos_] != quote) {
      if (in_[pos_] == '\\' && pos_ + 1 < in_.size()) {
        out += in_[pos_++];
      }
      out += in_[pos_++];
    }
    if (pos_ >= in_.size()) {
      Throw("syntax", std::string("Unclosed ") + quote + " delimiter at column " + Column(start));
    }
    ++pos_;
    return out;
  }

  // One- and two-character operators; advances pos_.
  Tok Operator(char c) {
    const char next = pos_ + 1 < in_.size() ? in_[pos_ + 1] : '\0';
    auto one = [&](Tok t) {
      pos_ += 1;
      return t;
    };
    auto two = [&](Tok t) {
      pos_ += 2;
      return t;
    };
    switch (c) {
      case '.':
        return one(Tok::kDot);
      case '*':
        return one(Tok::kStar);
      case ']':
        return one(Tok::kRbracket);
      case ',':
        return one(Tok::kComma);
      case ':':
        return one(Tok::kColon);
      case '@':
        return one(Tok::kCurrent);
      case '(':
        return one(Tok::kLparen);
      case ')':
        return one(Tok::kRparen);
      case '{':
        return one(Tok::kLbrace);
      case '}':
        return one(Tok::kRbrace);
      case '[':
        if (next == ']') return two(Tok::kFlatten);
        if (next == '?') return two(Tok::kFilter);
        return one(Tok::kLbracket);
      case '|':
        return next == '|' ? two(Tok::kOr) : one(Tok::kPipe);
      case '&':
        return next == '&' ? two(Tok::kAnd) : one(Tok::kExpref);
      case '!':
        return next == '=' ? two(Tok::kNe) : one(Tok::kNot);
      case '<':
        return next == '=' ? two(Tok::kLte) : one(Tok::kLt);
      case '>':
        return next == '=' ? two(Tok::kGte) : one(Tok::kGt);
      case '=':
        if (next == '=') return two(Tok::kEq);
        break;
      default:
        break;
    }
    Throw("syntax", std::string("Unknown token '") + c + "' at column " + Column(pos_));
  }

  std::string_view in_;
  size_t pos_ = 0;
};

// ---- parser ------------------------------------------------------------------

NodePtr Make(Kind kind, std::vector<NodePtr> children = {}) {
  auto n = std::make_shared<Node>();
  n->kind = kind;
  n->children = std::move(children);
  return n;
}

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  NodePtr Parse() {
    NodePtr root = Expression(0);
    if (Current() != Tok::kEof) Error(tokens_[i_], "Unexpected token");
    return root;
  }

 private:
  Tok Current() const { return tokens_[i_].type; }
  Tok Lookahead(size_t n) const {
    return i_ + n < tokens_.size() ? tokens_[i_ + n].type : Tok::kEof;
  }
  void Advance() {
    if (i_ + 1 < tokens_.size()) ++i_;
  }
  [[noreturn]] void Error(const Token& t, const std::string& what) const {
    if (t.type == Tok::kEof) Throw("syntax", "Incomplete expression");
    Throw("syntax", what + " at column " + std::to_string(t.pos));
  }
  void Match(Tok t) {
    if (Current() != t) Error(tokens_[i_], "Unexpected token");
    Advance();
  }

  NodePtr Expression(int binding_power) {
    Token left_token = tokens_[i_];
    Advance();
    NodePtr left = Nud(left_token);
    while (binding_power < BindingPower(Current())) {
      Token t = tokens_[i_];
      Advance();
      left = Led(t, left);
    }
    return left;
  }

  NodePtr Nud(const Token& t) {
    switch (t.type) {
      case Tok::kLiteral: {
        NodePtr n = Make(Kind::kLiteral);
        n->value = t.value;
        return n;
      }
      case Tok::kUnquotedIdentifier: {
        NodePtr n = Make(Kind::kField);
        n->name = t.text;
        return n;
      }
      case Tok::kQuotedIdentifier: {
        NodePtr n = Make(Kind::kField);
        n->name = t.text;
        if (Current() == Tok::kLparen) {
          Error(tokens_[i_], "Quoted identifier not allowed for function names");
        }
        return n;
      }
      case Tok::kStar: {
        NodePtr right = Current() == Tok::kRbracket ? Make(Kind::kIdentity)
                                                    : ProjectionRhs(BindingPower(Tok::kStar));
        return Make(Kind::kValueProjection, {Make(Kind::kIdentity), right});
      }
      case Tok::kFilter:
        return Led(t, Make(Kind::kIdentity));
      case Tok::kLbrace:
        return MultiSelectHash();
      case Tok::kLparen: {
        NodePtr e = Expression(0);
        Match(Tok::kRparen);
        return e;
      }
      case Tok::kFlatten: {
        NodePtr left = Make(Kind::kFlatten, {Make(Kind::kIdentity)});
        NodePtr right = ProjectionRhs(BindingPower(Tok::kFlatten));
        return Make(Kind::kProjection, {left, right});
      }
      case Tok::kNot:
        return Make(Kind::kNot, {Expression(BindingPower(Tok::kNot))});
      case Tok::kLbracket: {
        if (Current() == Tok::kNumber || Current() == Tok::kColon) {
          NodePtr right = IndexExpression();
          return ProjectIfSlice(Make(Kind::kIdentity), right);
        }
        if (Current() == Tok::kStar && Lookahead(1) == Tok::kRbracket) {
          Advance();
          Advance();
          NodePtr right = ProjectionRhs(BindingPower(Tok::kStar));
          return Make(Kind::kProjection, {Make(Kind::kIdentity), right});
        }
        return MultiSelectList();
      }
      case Tok::kCurrent:
        return Make(Kind::kCurrent);
      case Tok::kExpref:
        return Make(Kind::kExpref, {Expression(BindingPower(Tok::kExpref))});
      default:
        Error(t, "Unexpected token");
    }
  }

  NodePtr Led(const Token& t, NodePtr left) {
    switch (t.type) {
      case Tok::kDot: {
        if (Current() != Tok::kStar) {
          NodePtr right = DotRhs(BindingPower(Tok::kDot));
          if (left->kind == Kind::kSubexpression) {
            left->children.push_back(right);
            return left;
          }
          return Make(Kind::kSubexpression, {left, right});
        }
        Advance();
        NodePtr right = ProjectionRhs(BindingPower(Tok::kDot));
        return Make(Kind::kValueProjection, {left, right});
      }
      case Tok::kPipe:
        return Make(Kind::kPipe, {left, Expression(BindingPower(Tok::kPipe))});
      case Tok::kOr:
        return Make(Kind::kOr, {left, Expression(BindingPower(Tok::kOr))});
      case Tok::kAnd:
        return Make(Kind::kAnd, {left, Expression(BindingPower(Tok::kAnd))});
      case Tok::kLparen: {
        if (left->kind != Kind::kField) {
          Error(i_ >= 2 ? tokens_[i_ - 2] : t, "Invalid function name");
        }
        NodePtr fn = Make(Kind::kFunction);
        fn->name = left->name;
        while (Current() != Tok::kRparen) {
          fn->children.push_back(Expression(0));
          if (Current() == Tok::kComma) Match(Tok::kComma);
        }
        Match(Tok::kRparen);
        return fn;
      }
      case Tok::kFilter: {
        NodePtr condition = Expression(0);
        Match(Tok::kRbracket);
        NodePtr right = Current() == Tok::kFlatten ? Make(Kind::kIdentity)
                                                   : ProjectionRhs(BindingPower(Tok::kFilter));
        return Make(Kind::kFilterProjection, {left, right, condition});
      }
      case Tok::kEq:
      case Tok::kNe:
      case Tok::kLt:
      case Tok::kLte:
      case Tok::kGt:
      case Tok::kGte: {
        NodePtr n = Make(Kind::kComparator, {left, Expression(BindingPower(t.type))});
        n->name = t.type == Tok::kEq    ? "eq"
                  : t.type == Tok::kNe  ? "ne"
                  : t.type == Tok::kLt  ? "lt"
                  : t.type == Tok::kLte ? "lte"
                  : t.type == Tok::kGt  ? "gt"
                                        : "gte";
        return n;
      }
      case Tok::kFlatten: {
        NodePtr flat = Make(Kind::kFlatten, {left});
        NodePtr right = ProjectionRhs(BindingPower(Tok::kFlatten));
        return Make(Kind::kProjection, {flat, right});
      }
      case Tok::kLbracket: {
        if (Current() == Tok::kNumber || Current() == Tok::kColon) {
          NodePtr right = IndexExpression();
          if (left->kind == Kind::kIndexExpression) {
            left->children.push_back(right);
            return left;
          }
          return ProjectIfSlice(left, right);
        }
        Match(Tok::kStar);
        Match(Tok::kRbracket);
        NodePtr right = ProjectionRhs(BindingPower(Tok::kStar));
        return Make(Kind::kProjection, {left, right});
      }
      default:
        Error(t, "Unexpected token");
    }
  }

  NodePtr IndexExpression() {
    if (Lookahead(0) == Tok::kColon || Lookahead(1) == Tok::kColon) return SliceExpression();
    NodePtr n = Make(Kind::kIndex);
    n->index = tokens_[i_].number;
    Advance();
    Match(Tok::kRbracket);
    return n;
  }

  NodePtr SliceExpression() {
    NodePtr n = Make(Kind::kSlice);
    int part = 0;
    while (Current() != Tok::kRbracket && part < 3) {
      if (Current() == Tok::kColon) {
        ++part;
        if (part == 3) Error(tokens_[i_], "Syntax error");
        Advance();
      } else if (Current() == Tok::kNumber) {
        n->slice[part] = tokens_[i_].number;
        Advance();
      } else {
        Error(tokens_[i_], "Syntax error");
      }
    }
    Match(Tok::kRbracket);
    return n;
  }

  NodePtr ProjectIfSlice(NodePtr left, NodePtr right) {
    const bool slice = right->kind == Kind::kSlice;
    NodePtr index = Make(Kind::kIndexExpression, {left, right});
    if (!slice) return index;
    return Make(Kind::kProjection, {index, ProjectionRhs(BindingPower(Tok::kStar))});
  }

  NodePtr MultiSelectList() {
    NodePtr n = Make(Kind::kMultiSelectList);
    while (true) {
      n->children.push_back(Expression(0));
      if (Current() == Tok::kRbracket) break;
      Match(Tok::kComma);
    }
    Match(Tok::kRbracket);
    return n;
  }

  NodePtr MultiSelectHash() {
    NodePtr n = Make(Kind::kMultiSelectDict);
    while (true) {
      const Token key = tokens_[i_];
      if (key.type != Tok::kQuotedIdentifier && key.type != Tok::kUnquotedIdentifier) {
        Error(key, "Expecting an identifier");
      }
      Advance();
      Match(Tok::kColon);
      n->keys.push_back(key.text);
      n->children.push_back(Expression(0));
      if (Current() == Tok::kComma) {
        Match(Tok::kComma);
      } else if (Current() == Tok::kRbrace) {
        Match(Tok::kRbrace);
        break;
      }
    }
    return n;
  }

  NodePtr ProjectionRhs(int binding_power) {
    if (BindingPower(Current()) < kProjectionStop) return Make(Kind::kIdentity);
    if (Current() == Tok::kLbracket || Current() == Tok::kFilter) {
      return Expression(binding_power);
    }
    if (Current() == Tok::kDot) {
      Match(Tok::kDot);
      return DotRhs(binding_power);
    }
    Error(tokens_[i_], "Syntax error");
  }

  NodePtr DotRhs(int binding_power) {
    const Tok t = Current();
    if (t == Tok::kQuotedIdentifier || t == Tok::kUnquotedIdentifier || t == Tok::kStar) {
      return Expression(binding_power);
    }
    if (t == Tok::kLbracket) {
      Match(Tok::kLbracket);
      return MultiSelectList();
    }
    if (t == Tok::kLbrace) {
      Match(Tok::kLbrace);
      return MultiSelectHash();
    }
    Error(tokens_[i_], "Expecting an identifier, '[', '{' or '*' after '.'");
  }

  std::vector<Token> tokens_;
  size_t i_ = 0;
};

// ---- interpreter -------------------------------------------------------------

bool IsFalse(const OJson& v) {
  if (v.is_null()) return true;
  if (v.is_boolean()) return !v.get<bool>();
  if (v.is_string()) return v.get_ref<const std::string&>().empty();
  if (v.is_array() || v.is_object()) return v.empty();
  return false;
}

// jmespath.py's equality: Python ==, except that 0/1 never equal false/true.
bool Equals(const OJson& a, const OJson& b) {
  if (a.is_number() && b.is_number()) return a.get<double>() == b.get<double>();
  if (a.type() != b.type()) return false;
  if (a.is_array()) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      if (!Equals(a[i], b[i])) return false;
    }
    return true;
  }
  if (a.is_object()) {
    if (a.size() != b.size()) return false;
    for (const auto& [k, v] : a.items()) {
      auto it = b.find(k);
      if (it == b.end() || !Equals(v, *it)) return false;
    }
    return true;
  }
  return a == b;
}

std::string TypeName(const OJson& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "boolean";
  if (v.is_number()) return "number";
  if (v.is_string()) return "string";
  if (v.is_array()) return "array";
  return "object";
}

size_t CodePoints(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80) ++n;
  }
  return n;
}

// An evaluated function argument: a value, or an expression reference.
struct Arg {
  OJson value;
  const Node* expref = nullptr;
};

class Interpreter {
 public:
  OJson Visit(const Node& n, const OJson& value) const {
    switch (n.kind) {
      case Kind::kIdentity:
      case Kind::kCurrent:
        return value;
      case Kind::kField: {
        if (!value.is_object()) return nullptr;
        auto it = value.find(n.name);
        return it == value.end() ? OJson() : *it;
      }
      case Kind::kSubexpression:
      case Kind::kIndexExpression: {
        OJson result = value;
        for (const NodePtr& c : n.children) result = Visit(*c, result);
        return result;
      }
      case Kind::kIndex: {
        if (!value.is_array()) return nullptr;
        int64_t size = static_cast<int64_t>(value.size());
        int64_t i = n.index < 0 ? n.index + size : n.index;
        if (i < 0 || i >= size) return nullptr;
        return value[static_cast<size_t>(i)];
      }
      case Kind::kSlice:
        return value.is_array() ? Slice(n, value) : OJson();
      case Kind::kProjection: {
        OJson base = Visit(*n.children[0], value);
        if (!base.is_array()) return nullptr;
        OJson out = OJson::array();
        for (const OJson& el : base) {
          OJson r = Visit(*n.children[1], el);
          if (!r.is_null()) out.push_back(std::move(r));
        }
        return out;
      }
      case Kind::kValueProjection: {
        OJson base = Visit(*n.children[0], value);
        if (!base.is_object()) return nullptr;
        OJson out = OJson::array();
        for (const auto& [k, el] : base.items()) {
          OJson r = Visit(*n.children[1], el);
          if (!r.is_null()) out.push_back(std::move(r));
        }
        return out;
      }
      case Kind::kFlatten: {
        OJson base = Visit(*n.children[0], value);
        if (!base.is_array()) return nullptr;
        OJson out = OJson::array();
        for (const OJson& el : base) {
          if (el.is_array()) {
            for (const OJson& inner : el) out.push_back(inner);
          } else {
            out.push_back(el);
          }
        }
        return out;
      }
      case Kind::kFilterProjection: {
        OJson base = Visit(*n.children[0], value);
        if (!base.is_array()) return nullptr;
        OJson out = OJson::array();
        for (const OJson& el : base) {
          if (IsFalse(Visit(*n.children[2], el))) continue;
          OJson r = Visit(*n.children[1], el);
          if (!r.is_null()) out.push_back(std::move(r));
        }
        return out;
      }
      case Kind::kComparator:
        return Compare(n, value);
      case Kind::kOr: {
        OJson left = Visit(*n.children[0], value);
        return IsFalse(left) ? Visit(*n.children[1], value) : left;
      }
      case Kind::kAnd: {
        OJson left = Visit(*n.children[0], value);
        return IsFalse(left) ? left : Visit(*n.children[1], value);
      }
      case Kind::kNot:
        return IsFalse(Visit(*n.children[0], value));
      case Kind::kPipe:
        return Visit(*n.children[1], Visit(*n.children[0], value));
      case Kind::kMultiSelectList: {
        if (value.is_null()) return nullptr;
        OJson out = OJson::array();
        for (const NodePtr& c : n.children) out.push_back(Visit(*c, value));
        return out;
      }
      case Kind::kMultiSelectDict: {
        if (value.is_null()) return nullptr;
        OJson out = OJson::object();
        for (size_t i = 0; i < n.children.size(); ++i) {
          out[n.keys[i]] = Visit(*n.children[i], value);
        }
        return out;
      }
      case Kind::kLiteral:
        return n.value;
      case Kind::kFunction:
        return Call(n, value);
      case Kind::kExpref:
        // Only meaningful as a function argument (Call handles those).
        Throw("invalid-type",
              "an expression reference (&...) is only allowed as a function "
              "argument");
    }
    return nullptr;
  }

 private:
  static OJson Slice(const Node& n, const OJson& list) {
    const int64_t len = static_cast<int64_t>(list.size());
    const int64_t step = n.slice[2].value_or(1);
    if (step == 0) Throw("invalid-value", "slice step cannot be 0");
    auto clamp = [&](std::optional<int64_t> v, bool is_start) -> int64_t {
      if (!v) {
        if (step > 0) return is_start ? 0 : len;
        return is_start ? len - 1 : -1;
      }
      int64_t x = *v;
      if (x < 0) {
        x += len;
        if (x < 0) x = step < 0 ? -1 : 0;
      } else if (x >= len) {
        x = step < 0 ? len - 1 : len;
      }
      return x;
    };
    const int64_t start = clamp(n.slice[0], true);
    const int64_t stop = clamp(n.slice[1], false);
    OJson out = OJson::array();
    if (step > 0) {
      for (int64_t i = start; i < stop; i += step) out.push_back(list[static_cast<size_t>(i)]);
    } else {
      for (int64_t i = start; i > stop; i += step) out.push_back(list[static_cast<size_t>(i)]);
    }
    return out;
  }

  OJson Compare(const Node& n, const OJson& value) const {
    OJson left = Visit(*n.children[0], value);
    OJson right = Visit(*n.children[1], value);
    if (n.name == "eq") return Equals(left, right);
    if (n.name == "ne") return !Equals(left, right);
    // Ordering: numbers with numbers, strings with strings (jmespath.py);
    // anything else is null.
    int cmp = 0;
    if (left.is_number() && right.is_number()) {
      double a = left.get<double>();
      double b = right.get<double>();
      cmp = a < b ? -1 : (a > b ? 1 : 0);
    } else if (left.is_string() && right.is_string()) {
      cmp = left.get_ref<const std::string&>().compare(right.get_ref<const std::string&>());
      cmp = cmp < 0 ? -1 : (cmp > 0 ? 1 : 0);
    } else {
      return nullptr;
    }
    if (n.name == "lt") return cmp < 0;
    if (n.name == "lte") return cmp <= 0;
    if (n.name == "gt") return cmp > 0;
    return cmp >= 0;
  }

  // ---- functions ----

  [[noreturn]] static void TypeError(const std::string& fn, const OJson& got,
                                     const std::string& expected) {
    Throw("invalid-type", "In function " + fn + "(), invalid type for value: " +
                              got.dump(-1, ' ', false, OJson::error_handler_t::replace) +
                              ", expected one of: " + expected + ", received: \"" + TypeName(got) +
                              "\"");
  }

  static void Arity(const std::string& fn, const std::vector<Arg>& args, size_t min,
                    bool variadic = false) {
    if (args.size() == min || (variadic && args.size() >= min)) return;
    Throw("invalid-arity", "Expected " + std::string(variadic ? "at least " : "") +
                               std::to_string(min) + " argument" + (min == 1 ? "" : "s") +
                               " for function " + fn + "(), received " +
                               std::to_string(args.size()));
  }

  static const OJson& Want(const std::string& fn, const Arg& a,
                           std::initializer_list<const char*> types) {
    if (a.expref != nullptr) {
      std::string list;
      for (const char* t : types) list += std::string(list.empty() ? "" : ", ") + t;
      Throw("invalid-type", "In function " + fn + "(), invalid type for value: expref, " +
                                "expected one of: " + list);
    }
    const std::string actual = TypeName(a.value);
    for (const char* t : types) {
      if (actual == t) return a.value;
    }
    std::string list;
    for (const char* t : types) list += std::string(list.empty() ? "" : ", ") + t;
    TypeError(fn, a.value, list);
  }

  static const Node& WantExpref(const std::string& fn, const Arg& a) {
    if (a.expref == nullptr) TypeError(fn, a.value, "expref");
    return *a.expref;
  }

  // Every element of `list` a number, or every one a string (sortable).
  static void WantUniform(const std::string& fn, const OJson& list, bool strings_allowed,
                          const char* expected) {
    if (list.empty()) return;
    const bool numbers = list[0].is_number();
    const bool strings = list[0].is_string() && strings_allowed;
    for (const OJson& el : list) {
      if (!((numbers && el.is_number()) || (strings && el.is_string()))) {
        TypeError(fn, list, expected);
      }
    }
  }

  static bool Less(const OJson& a, const OJson& b) {
    if (a.is_number()) return a.get<double>() < b.get<double>();
    return a.get_ref<const std::string&>() < b.get_ref<const std::string&>();
  }

  // The key `expr` gives each element, all numbers or all strings.
  std::vector<OJson> Keys(const std::string& fn, const Node& expr, const OJson& list,
                          bool strings_allowed) const {
    std::vector<OJson> keys;
    for (const OJson& el : list) keys.push_back(Visit(expr, el));
    if (keys.empty()) return keys;
    const bool numbers = keys[0].is_number();
    const bool strings = keys[0].is_string() && strings_allowed;
    for (const OJson& k : keys) {
      if (!((numbers && k.is_number()) || (strings && k.is_string()))) {
        TypeError(fn, k, strings_allowed ? "number, string" : "number");
      }
    }
    return keys;
  }

  OJson Call(const Node& n, const OJson& value) const {
    std::vector<Arg> args;
    for (const NodePtr& c : n.children) {
      Arg a;
      if (c->kind == Kind::kExpref) {
        a.expref = c->children[0].get();
      } else {
        a.value = Visit(*c, value);
      }
      args.push_back(std::move(a));
    }
    const std::string& fn = n.name;
    if (fn == "abs" || fn == "ceil" || fn == "floor") {
      Arity(fn, args, 1);
      const OJson& x = Want(fn, args[0], {"number"});
      if (x.is_number_float()) {
        double d = x.get<double>();
        if (fn == "abs") return std::fabs(d);
        double r = fn == "ceil" ? std::ceil(d) : std::floor(d);
        if (std::fabs(r) < 9e15) return static_cast<int64_t>(r);
        return r;
      }
      if (fn == "abs" && x.is_number_integer()) return std::llabs(x.get<int64_t>());
      return x;
    }
    if (fn == "avg" || fn == "sum") {
      Arity(fn, args, 1);
      const OJson& list = Want(fn, args[0], {"array"});
      for (const OJson& el : list) {
        if (!el.is_number()) TypeError(fn, list, "array-number");
      }
      if (fn == "avg" && list.empty()) return nullptr;
      bool all_int = true;
      int64_t isum = 0;
      double dsum = 0;
      for (const OJson& el : list) {
        if (el.is_number_float()) all_int = false;
        if (el.is_number_integer()) isum += el.get<int64_t>();
        dsum += el.get<double>();
      }
      if (fn == "sum") return all_int ? OJson(isum) : OJson(dsum);
      return dsum / static_cast<double>(list.size());
    }
    if (fn == "contains") {
      Arity(fn, args, 2);
      const OJson& subject = Want(fn, args[0], {"array", "string"});
      if (args[1].expref != nullptr) TypeError(fn, OJson(), "any");
      if (subject.is_string()) {
        if (!args[1].value.is_string()) return false;
        return subject.get_ref<const std::string&>().find(
                   args[1].value.get_ref<const std::string&>()) != std::string::npos;
      }
      for (const OJson& el : subject) {
        if (Equals(el, args[1].value)) return true;
      }
      return false;
    }
    if (fn == "ends_with" || fn == "starts_with") {
      Arity(fn, args, 2);
      const std::string& s = Want(fn, args[0], {"string"}).get_ref<const std::string&>();
      const std::string& x = Want(fn, args[1], {"string"}).get_ref<const std::string&>();
      if (x.size() > s.size()) return false;
      return fn == "starts_with" ? s.compare(0, x.size(), x) == 0
                                 : s.compare(s.size() - x.size(), x.size(), x) == 0;
    }
    if (fn == "join") {
      Arity(fn, args, 2);
      const std::string& glue = Want(fn, args[0], {"string"}).get_ref<const std::string&>();
      const OJson& list = Want(fn, args[1], {"array"});
      std::string out;
      for (size_t i = 0; i < list.size(); ++i) {
        if (!list[i].is_string()) TypeError(fn, list, "array-string");
        if (i > 0) out += glue;
        out += list[i].get_ref<const std::string&>();
      }
      return out;
    }
    if (fn == "keys" || fn == "values") {
      Arity(fn, args, 1);
      const OJson& obj = Want(fn, args[0], {"object"});
      OJson out = OJson::array();
      for (const auto& [k, v] : obj.items()) out.push_back(fn == "keys" ? OJson(k) : v);
      return out;
    }
    if (fn == "length") {
      Arity(fn, args, 1);
      const OJson& x = Want(fn, args[0], {"string", "array", "object"});
      if (x.is_string()) return CodePoints(x.get_ref<const std::string&>());
      return x.size();
    }
    if (fn == "map") {
      Arity(fn, args, 2);
      const Node& expr = WantExpref(fn, args[0]);
      const OJson& list = Want(fn, args[1], {"array"});
      OJson out = OJson::array();
      for (const OJson& el : list) out.push_back(Visit(expr, el));
      return out;
    }
    if (fn == "max" || fn == "min") {
      Arity(fn, args, 1);
      const OJson& list = Want(fn, args[0], {"array"});
      WantUniform(fn, list, true, "array-number, array-string");
      if (list.empty()) return nullptr;
      const OJson* best = &list[0];
      for (const OJson& el : list) {
        if (fn == "max" ? Less(*best, el) : Less(el, *best)) best = &el;
      }
      return *best;
    }
    if (fn == "max_by" || fn == "min_by") {
      Arity(fn, args, 2);
      const OJson& list = Want(fn, args[0], {"array"});
      const Node& expr = WantExpref(fn, args[1]);
      std::vector<OJson> keys = Keys(fn, expr, list, true);
      if (list.empty()) return nullptr;
      size_t best = 0;
      for (size_t i = 1; i < keys.size(); ++i) {
        if (fn == "max_by" ? Less(keys[best], keys[i]) : Less(keys[i], keys[best])) best = i;
      }
      return list[best];
    }
    if (fn == "merge") {
      Arity(fn, args, 1, true);
      OJson out = OJson::object();
      for (const Arg& a : args) {
        for (const auto& [k, v] : Want(fn, a, {"object"}).items()) out[k] = v;
      }
      return out;
    }
    if (fn == "not_null") {
      Arity(fn, args, 1, true);
      for (const Arg& a : args) {
        if (a.expref == nullptr && !a.value.is_null()) return a.value;
      }
      return nullptr;
    }
    if (fn == "reverse") {
      Arity(fn, args, 1);
      const OJson& x = Want(fn, args[0], {"string", "array"});
      if (x.is_array()) {
        OJson out = OJson::array();
        for (auto it = x.rbegin(); it != x.rend(); ++it) out.push_back(*it);
        return out;
      }
      // By code point.
      const std::string& s = x.get_ref<const std::string&>();
      std::vector<std::string> chars;
      for (size_t i = 0; i < s.size(); ++i) {
        if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80 || chars.empty()) {
          chars.emplace_back(1, s[i]);
        } else {
          chars.back() += s[i];
        }
      }
      std::string out;
      for (auto it = chars.rbegin(); it != chars.rend(); ++it) out += *it;
      return out;
    }
    if (fn == "sort") {
      Arity(fn, args, 1);
      OJson list = Want(fn, args[0], {"array"});
      WantUniform(fn, list, true, "array-number, array-string");
      std::vector<OJson> items(list.begin(), list.end());
      std::stable_sort(items.begin(), items.end(), Less);
      return OJson(items);
    }
    if (fn == "sort_by") {
      Arity(fn, args, 2);
      const OJson& list = Want(fn, args[0], {"array"});
      const Node& expr = WantExpref(fn, args[1]);
      std::vector<OJson> keys = Keys(fn, expr, list, true);
      std::vector<size_t> order(list.size());
      for (size_t i = 0; i < order.size(); ++i) order[i] = i;
      std::stable_sort(order.begin(), order.end(),
                       [&](size_t a, size_t b) { return Less(keys[a], keys[b]); });
      OJson out = OJson::array();
      for (size_t i : order) out.push_back(list[i]);
      return out;
    }
    if (fn == "to_array") {
      Arity(fn, args, 1);
      const OJson& x =
          Want(fn, args[0], {"null", "boolean", "number", "string", "array", "object"});
      return x.is_array() ? x : OJson::array({x});
    }
    if (fn == "to_string") {
      Arity(fn, args, 1);
      const OJson& x =
          Want(fn, args[0], {"null", "boolean", "number", "string", "array", "object"});
      if (x.is_string()) return x;
      return PythonJson(x);
    }
    if (fn == "to_number") {
      Arity(fn, args, 1);
      const OJson& x =
          Want(fn, args[0], {"null", "boolean", "number", "string", "array", "object"});
      if (x.is_number()) return x;
      if (!x.is_string()) return nullptr;
      const std::string& s = x.get_ref<const std::string&>();
      OJson parsed = OJson::parse(s, nullptr, false);
      if (!parsed.is_discarded() && parsed.is_number()) return parsed;
      // Python's float(): also "1e3", " 2 ", ".5", "1.".
      char* end = nullptr;
      double d = std::strtod(s.c_str(), &end);
      if (s.empty() || end == s.c_str()) return nullptr;
      while (*end == ' ') ++end;
      if (*end != '\0' || std::isnan(d) || std::isinf(d)) return nullptr;
      return d;
    }
    if (fn == "type") {
      Arity(fn, args, 1);
      const OJson& x =
          Want(fn, args[0], {"null", "boolean", "number", "string", "array", "object"});
      return TypeName(x);
    }
    Throw("unknown-function", "Unknown function: " + fn + "()");
  }

  // json.dumps(x, separators=(',', ':')) as jmespath.py's to_string does
  // (non-ASCII characters as \u escapes, as Python's ensure_ascii).
  static std::string PythonJson(const OJson& x) {
    std::string s = x.dump(-1, ' ', true, OJson::error_handler_t::replace);
    return s;
  }
};

}  // namespace

Result<JmesPath> JmesPath::Compile(std::string_view expression) {
  try {
    Lexer lexer(expression);
    Parser parser(lexer.Tokens());
    return JmesPath(parser.Parse());
  } catch (const JmesError& e) {
    return InvalidArgument(e.kind + ": " + e.message, "");
  }
}

Result<OJson> JmesPath::Search(const OJson& data) const {
  try {
    return Interpreter().Visit(*root_, data);
  } catch (const JmesError& e) {
    return InvalidArgument(e.kind + ": " + e.message, "");
  }
}

}  // namespace pw::cli
