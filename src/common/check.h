#pragma once

// PW_CHECK(cond): aborts in every build when an invariant of our own code is
// broken. Never use it on data from the network, the database, a config file
// or a child process: return a Status instead.

#include <cstdio>
#include <cstdlib>

#define PW_CHECK(cond)                                                              \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)
