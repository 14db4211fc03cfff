#include "cli/paginator.h"

#include <array>

namespace pw::cli {

namespace {

constexpr std::array<PaginatorSpec, 8> kPaginators = {{
    {"ListActionExecutions", "nextToken", "nextToken", "maxResults", "actionExecutionDetails"},
    {"ListActionTypes", "nextToken", "nextToken", "", "actionTypes"},
    {"ListDeployActionExecutionTargets", "nextToken", "nextToken", "maxResults", "targets"},
    {"ListPipelineExecutions", "nextToken", "nextToken", "maxResults",
     "pipelineExecutionSummaries"},
    {"ListPipelines", "nextToken", "nextToken", "maxResults", "pipelines"},
    {"ListRuleExecutions", "nextToken", "nextToken", "maxResults", "ruleExecutionDetails"},
    {"ListTagsForResource", "nextToken", "nextToken", "maxResults", "tags"},
    {"ListWebhooks", "NextToken", "NextToken", "MaxResults", "webhooks"},
}};

constexpr std::string_view kBase64 =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string Base64Encode(std::string_view in) {
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t n = (static_cast<uint8_t>(in[i]) << 16) | (static_cast<uint8_t>(in[i + 1]) << 8) |
                 static_cast<uint8_t>(in[i + 2]);
    out += kBase64[(n >> 18) & 63];
    out += kBase64[(n >> 12) & 63];
    out += kBase64[(n >> 6) & 63];
    out += kBase64[n & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t n = static_cast<uint8_t>(in[i]) << 16;
    out += kBase64[(n >> 18) & 63];
    out += kBase64[(n >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t n = (static_cast<uint8_t>(in[i]) << 16) | (static_cast<uint8_t>(in[i + 1]) << 8);
    out += kBase64[(n >> 18) & 63];
    out += kBase64[(n >> 12) & 63];
    out += kBase64[(n >> 6) & 63];
    out += '=';
  }
  return out;
}

std::optional<std::string> Base64Decode(std::string_view in) {
  std::string out;
  uint32_t buf = 0;
  int bits = 0;
  size_t pad = 0;
  for (char c : in) {
    if (c == '=') {
      ++pad;
      continue;
    }
    if (pad > 0) return std::nullopt;
    size_t v = kBase64.find(c);
    if (v == std::string_view::npos) return std::nullopt;
    buf = (buf << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buf >> bits) & 0xFF);
    }
  }
  if (pad > 2 || (in.size() % 4) != 0) return std::nullopt;
  return out;
}

// Python's str() of a flat token dict, for the repeated-token error.
std::string PythonDict(const OJson& token) {
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : token.items()) {
    if (!first) out += ", ";
    first = false;
    out += "'" + k + "': ";
    out += v.is_string() ? "'" + v.get<std::string>() + "'" : (v.is_null() ? "None" : v.dump());
  }
  return out + "}";
}

}  // namespace

const PaginatorSpec* FindPaginator(std::string_view operation) {
  for (const auto& p : kPaginators) {
    if (p.operation == operation) return &p;
  }
  return nullptr;
}

std::string EncodeResumeToken(const OJson& token) {
  // json.dumps defaults: ", " and ": " separators, ASCII-only output.
  std::string json = "{";
  bool first = true;
  for (const auto& [k, v] : token.items()) {
    if (!first) json += ", ";
    first = false;
    json += OJson(k).dump(-1, ' ', true) + ": " + v.dump(-1, ' ', true);
  }
  json += "}";
  return Base64Encode(json);
}

Result<OJson> DecodeResumeToken(std::string_view token) {
  std::optional<std::string> raw = Base64Decode(token);
  OJson j = raw ? OJson::parse(*raw, nullptr, false) : OJson();
  if (!raw || j.is_discarded() || !j.is_object()) {
    return InvalidArgument("Bad starting token: " + std::string(token), "");
  }
  return j;
}

Result<OJson> Paginate(const PaginatorSpec& spec, OJson input, const PaginateOptions& options,
                       const std::function<Result<OJson>(const OJson& input)>& fetch) {
  const std::string in_key(spec.input_token);
  const std::string out_key(spec.output_token);
  const std::string result_key(spec.result_key);
  if (options.page_size && !spec.limit_key.empty()) {
    input[std::string(spec.limit_key)] = *options.page_size;
  }

  // The token that fetched the current page, as botocore keeps it.
  OJson next_token = OJson::object();
  next_token[in_key] = nullptr;
  int64_t starting_truncation = 0;
  if (!options.starting_token.empty()) {
    PW_ASSIGN_OR_RETURN(OJson decoded, DecodeResumeToken(options.starting_token));
    if (decoded.contains("boto_truncate_amount")) {
      if (!decoded["boto_truncate_amount"].is_number_integer()) {
        return InvalidArgument("Bad starting token: " + options.starting_token, "");
      }
      starting_truncation = decoded["boto_truncate_amount"].get<int64_t>();
      decoded.erase("boto_truncate_amount");
    }
    if (decoded.contains(in_key)) next_token[in_key] = decoded[in_key];
  }

  OJson result = OJson::object();
  auto append = [&](const OJson& items) {
    if (!items.is_array()) return;
    if (!result.contains(result_key)) result[result_key] = OJson::array();
    for (const auto& item : items) result[result_key].push_back(item);
  };
  std::optional<OJson> resume_token;
  std::optional<OJson> previous_token;
  int64_t total = 0;
  bool first = true;
  while (true) {
    OJson request = input;
    if (next_token[in_key].is_null()) {
      request.erase(in_key);
    } else {
      request[in_key] = next_token[in_key];
    }
    PW_ASSIGN_OR_RETURN(OJson page, fetch(request));
    OJson items = page.contains(result_key) ? page[result_key] : OJson::array();
    if (!items.is_array()) items = OJson::array();
    if (first && starting_truncation > 0) {
      OJson sliced = OJson::array();
      for (size_t k = static_cast<size_t>(starting_truncation); k < items.size(); ++k) {
        sliced.push_back(items[k]);
      }
      items = std::move(sliced);
    }
    if (!first) starting_truncation = 0;
    first = false;

    const int64_t n = static_cast<int64_t>(items.size());
    if (options.max_items && total + n > *options.max_items) {
      const int64_t keep = *options.max_items - total;
      OJson kept = OJson::array();
      for (int64_t k = 0; k < keep; ++k) kept.push_back(items[static_cast<size_t>(k)]);
      append(kept);
      OJson token = next_token;
      token["boto_truncate_amount"] = keep + starting_truncation;
      resume_token = token;
      break;
    }
    if (page.contains(result_key)) append(items);
    total += n;
    OJson received = OJson::object();
    received[in_key] = page.contains(out_key) ? page[out_key] : OJson();
    if (received[in_key].is_string() && received[in_key].get<std::string>().empty()) {
      received[in_key] = nullptr;  // botocore treats "" as no token.
    }
    if (received[in_key].is_null()) break;
    if (options.max_items && total == *options.max_items) {
      resume_token = received;
      break;
    }
    if (previous_token && *previous_token == received) {
      return Internal("The same next token was received twice: " + PythonDict(received));
    }
    previous_token = received;
    next_token = received;
  }
  if (resume_token) result["NextToken"] = EncodeResumeToken(*resume_token);
  return result;
}

}  // namespace pw::cli
