# Writes OUT, a C++ file defining NS::VAR (default pw::spec::kModelJson), a
# std::string_view with the contents of IN. Also used for the action type table
# (engine/CMakeLists.txt).
if(NOT DEFINED NS)
  set(NS pw::spec)
endif()
if(NOT DEFINED VAR)
  set(VAR kModelJson)
endif()
file(READ ${IN} content)
file(WRITE ${OUT} "// Generated from ${IN}; do not edit.\n#include <string_view>\nnamespace ${NS} {\nextern const std::string_view ${VAR};\nconst std::string_view ${VAR} = R\"PWMODEL(${content})PWMODEL\";\n}  // namespace ${NS}\n")
