# Writes OUT, a C++ file defining pw::spec::kModelJson with the contents of IN.
file(READ ${IN} content)
file(WRITE ${OUT} "// Generated from ${IN}; do not edit.\n#include <string_view>\nnamespace pw::spec {\nextern const std::string_view kModelJson;\nconst std::string_view kModelJson = R\"PWMODEL(${content})PWMODEL\";\n}  // namespace pw::spec\n")
