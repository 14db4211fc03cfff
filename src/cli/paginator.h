#pragma once

// Client-side pagination as the aws CLI does it (botocore PageIterator and
// build_full_result): fetch every page, merge the result list, honour
// --max-items / --starting-token / --page-size, and hand back a resume token
// ("NextToken") that is base64 of {"nextToken": ..., "boto_truncate_amount": N}.
// Pure: pages come from an injected fetcher. Thread-compatible.
//
//   const PaginatorSpec* spec = FindPaginator("ListPipelines");
//   auto all = Paginate(*spec, input, {.max_items = 10}, fetch_page);

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "cli/model.h"
#include "common/status.h"

namespace pw::cli {

// One entry of paginators-1.json.
struct PaginatorSpec {
  std::string_view operation;
  std::string_view input_token;  // "nextToken" (ListWebhooks: "NextToken").
  std::string_view output_token;
  std::string_view limit_key;   // "" when the operation has none.
  std::string_view result_key;  // "pipelines", ...
};

// The paginator for `operation`, or nullptr if it is not paginated.
const PaginatorSpec* FindPaginator(std::string_view operation);

struct PaginateOptions {
  std::optional<int64_t> max_items;  // --max-items
  std::optional<int64_t> page_size;  // --page-size, sent as the limit key.
  std::string starting_token;        // --starting-token, a previous "NextToken".
};

// Sends `input` (plus paging members) through `fetch`, which returns one page
// already shaped by the output model. Returns the merged result
// {<result_key>: [...], "NextToken": "..."} (NextToken only when --max-items
// cut the listing short). Fails with kInvalidArgument for a bad starting token,
// kInternal if the server repeats a token, or whatever `fetch` fails with.
Result<OJson> Paginate(const PaginatorSpec& spec, OJson input, const PaginateOptions& options,
                       const std::function<Result<OJson>(const OJson& input)>& fetch);

// The aws resume token for `token` (base64 of Python's json.dumps).
std::string EncodeResumeToken(const OJson& token);

// Decodes a resume token into its JSON object; kInvalidArgument if malformed.
Result<OJson> DecodeResumeToken(std::string_view token);

}  // namespace pw::cli
