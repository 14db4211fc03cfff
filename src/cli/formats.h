#pragma once

// `--output text` and `--output table`: the aws CLI's text and table
// formatters (awscli/text.py; awscli/formatter.py TableFormatter with
// awscli/table.py MultiTable, colour off), ported rule for rule so scripts
// written against `aws --output text` read Pipewright's the same way. Pure.
//
//   std::string t = cli::RenderText(response);
//   std::string tab = cli::RenderTable("GetPipelineState", response, 80);

#include <string>
#include <string_view>

#include "cli/model.h"

namespace pw::cli {

// Tab-separated text: a dict's scalars on one line (keys sorted), its lists
// and dicts below, prefixed by their key in upper case; scalars as Python
// prints them (True, None, 1.5).
std::string RenderText(const OJson& response);

// The aws CLI's boxed table titled `title` (the operation name), at most
// `terminal_width` columns wide before a section turns vertical. "" for an
// empty response.
std::string RenderTable(std::string_view title, const OJson& response, size_t terminal_width);

}  // namespace pw::cli
