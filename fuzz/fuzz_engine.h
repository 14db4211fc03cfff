// What dispatch_fuzzer and http_fuzzer share: a data directory, a SQLite
// store and an Engine in it configured to run nothing outside the process (no
// start on create, no local runners, no source polling), and a Dispatcher
// with every operation registered on it, as `pipewright serve` registers them.
//
// PW_FUZZ_DIR: data directory to use (default: a fresh one under /dev/shm, so
// commits are cheap, removed at exit).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>

#include "api/dispatcher.h"
#include "api/execution_ops.h"
#include "api/job_ops.h"
#include "api/pipeline_ops.h"
#include "api/trigger_ops.h"
#include "common/clock.h"
#include "common/log.h"
#include "engine/engine.h"
#include "store/store.h"

namespace pw::fuzz {

[[noreturn]] inline void Die(const char* what, const std::string& detail) {
  std::fprintf(stderr, "%s: %s\n", what, detail.c_str());
  std::abort();
}

struct FuzzEngine {
  std::string dir;
  SystemClock clock;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<engine::Engine> engine;
  api::Dispatcher dispatcher;
};

// Lives for the whole process (libFuzzer exits without returning); aborts
// when the directory or the store cannot be made.
inline FuzzEngine* MakeFuzzEngine() {
  static std::string owned;  // Removed at exit when this process made it.
  auto* w = new FuzzEngine();
  SetLogLevel(LogLevel::kError);  // Only faults are worth a line: the rest slows every run.
  if (const char* d = std::getenv("PW_FUZZ_DIR"); d != nullptr && *d != '\0') {
    w->dir = d;
  } else {
    std::string tmpl =
        std::string(std::filesystem::exists("/dev/shm") ? "/dev/shm" : "/tmp") + "/pw-fuzz-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) Die("mkdtemp", tmpl);
    w->dir = owned = tmpl;
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(owned, ec);
    });
  }
  auto store = store::OpenSqliteStore(w->dir + "/pipewright.db");
  if (!store.ok()) Die("cannot open the store", store.status().ToString());
  w->store = std::move(*store);
  engine::EngineOptions o;
  o.data_dir = w->dir;
  o.start_on_create = false;
  o.local_runners = false;
  o.source_poll_seconds = 0;
  w->engine = std::make_unique<engine::Engine>(*w->store, w->clock, o);
  api::RegisterPipelineOps(w->dispatcher, *w->engine);
  api::RegisterExecutionOps(w->dispatcher, *w->engine);
  api::RegisterJobOps(w->dispatcher, *w->engine, /*poll_wait_seconds=*/0);
  api::RegisterTriggerOps(w->dispatcher, *w->engine);
  return w;
}

}  // namespace pw::fuzz
