# Writes OUT, a C++ file defining pw::console::EmbeddedAssetsData() with every
# file directly in DIR (sorted by name), each as a byte array. Bytes, not a raw
# string literal, so any file (SVG, PNG, text containing any delimiter) embeds.
file(GLOB files LIST_DIRECTORIES false RELATIVE ${DIR} ${DIR}/*)
list(SORT files)
set(arrays "")
set(entries "")
set(i 0)
foreach(name ${files})
  file(READ ${DIR}/${name} hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  # Line breaks every 32 bytes keep the generated file readable by editors.
  string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){32})" "\\1\n" bytes "${bytes}")
  string(APPEND arrays "// ${name}\nconst unsigned char kAsset${i}[] = {\n${bytes}0x00};\n")
  string(APPEND entries "      {\"${name}\", Bytes(kAsset${i}, sizeof(kAsset${i}) - 1)},\n")
  math(EXPR i "${i} + 1")
endforeach()
file(WRITE ${OUT} "// Generated from ${DIR} by embed_assets.cmake; do not edit.
#include <cstddef>
#include <string_view>
#include <vector>

#include \"console/assets.h\"

namespace pw::console {
namespace {

std::string_view Bytes(const unsigned char* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

${arrays}
}  // namespace

const std::vector<RawAsset>& EmbeddedAssetsData() {
  static const std::vector<RawAsset> kAssets = {
${entries}  };
  return kAssets;
}

}  // namespace pw::console
")
