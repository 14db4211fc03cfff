#include "cli/model.h"

#include <cstdio>
#include <cstdlib>
#include <regex>

namespace pw::spec {
// Defined by the generated model_data.cc in pw_spec. ServiceModel keeps the
// model as a sorted nlohmann::json, which loses member order; the CLI needs it.
extern const std::string_view kModelJson;
}  // namespace pw::spec

namespace pw::cli {

const OJson& OrderedModel() {
  static const OJson* model = [] {
    OJson j = OJson::parse(spec::kModelJson, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.contains("shapes") || !j.contains("operations")) {
      std::fputs("embedded service model is not valid JSON\n", stderr);
      std::abort();
    }
    return new OJson(std::move(j));  // Lives for the whole process.
  }();
  return *model;
}

const OJson* FindShape(std::string_view name) {
  const OJson& shapes = OrderedModel()["shapes"];
  auto it = shapes.find(std::string(name));
  return it == shapes.end() ? nullptr : &*it;
}

const OJson* FindOperation(std::string_view name) {
  const OJson& ops = OrderedModel()["operations"];
  auto it = ops.find(std::string(name));
  return it == ops.end() ? nullptr : &*it;
}

namespace {

std::string IoShapeName(std::string_view operation, const char* which) {
  const OJson* op = FindOperation(operation);
  if (op == nullptr || !op->contains(which)) return "";
  return (*op)[which].value("shape", "");
}

}  // namespace

std::string InputShapeName(std::string_view operation) { return IoShapeName(operation, "input"); }

std::string OutputShapeName(std::string_view operation) { return IoShapeName(operation, "output"); }

std::string ShapeType(std::string_view shape_name) {
  const OJson* shape = FindShape(shape_name);
  return shape == nullptr ? "" : shape->value("type", "");
}

std::string FlagName(std::string_view operation, std::string_view member) {
  if (member == "version") {
    if (operation == "GetPipeline") return "pipeline-version";
    if (operation == "CreateCustomActionType" || operation == "DeleteCustomActionType") {
      return "action-version";
    }
  }
  return ToKebab(member);
}

std::string ToKebab(std::string_view name_view) {
  static const std::regex kSpecial("[A-Z]{2,}s$");  // "ARNs" -> "-arns"
  static const std::regex kFirstCap("(.)([A-Z][a-z]+)");
  static const std::regex kEndCap("([a-z0-9])([A-Z])");
  std::string name(name_view);
  if (name.find('-') != std::string::npos) return name;
  std::smatch m;
  if (std::regex_search(name, m, kSpecial)) {
    std::string matched = m.str();
    for (char& c : matched) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    name = name.substr(0, name.size() - matched.size()) + "-" + matched;
  }
  std::string s1 = std::regex_replace(name, kFirstCap, "$1-$2");
  std::string out = std::regex_replace(s1, kEndCap, "$1-$2");
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string OperationForVerb(std::string_view verb) {
  for (const auto& [name, op] : OrderedModel()["operations"].items()) {
    if (ToKebab(name) == verb) return name;
  }
  return "";
}

}  // namespace pw::cli
