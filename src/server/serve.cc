#include "server/serve.h"

#include <httplib.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <thread>

#include "api/dispatcher.h"
#include "api/execution_ops.h"
#include "api/http_server.h"
#include "api/job_ops.h"
#include "api/pipeline_ops.h"
#include "common/clock.h"
#include "common/log.h"
#include "console/console.h"
#include "engine/engine.h"
#include "sigv4/sigv4.h"
#include "store/store.h"

namespace pw::server {
namespace {

// Reads "ACCESS_KEY_ID:SECRET" lines ('#' comments allowed).
Result<std::map<std::string, std::string>> ReadKeys(const std::string& path) {
  std::ifstream in(path);
  if (!in) return InvalidArgument("cannot read --auth-keys-file " + path);
  std::map<std::string, std::string> keys;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto colon = line.find(':');
    if (colon == std::string::npos) {
      return InvalidArgument("--auth-keys-file lines must be ACCESS_KEY_ID:SECRET");
    }
    keys[line.substr(0, colon)] = line.substr(colon + 1);
  }
  return keys;
}

}  // namespace

int RunServe(const std::vector<std::string>& args) {
  CLI::App app{"Pipewright server: the CodePipeline API on this machine", "pipewright serve"};
  std::string listen = "127.0.0.1:8480";
  std::string data_dir = "./.pipewright";
  std::string region = "us-east-1";
  std::string account = "123456789012";
  std::string keys_file;
  std::string database;
  bool no_start_on_create = false;
  bool no_local_runners = false;
  double job_timeout = 24 * 3600;
  double poll_wait = 2;
  double source_poll = 30;
  double approval_timeout = 7 * 24 * 3600;
  std::string artifact_endpoint;
  std::string artifact_bucket;
  std::string artifact_region = "us-east-1";
  std::vector<std::string> deploy_roots;
  uint64_t max_artifact_bytes = uint64_t{1} << 30;
  uint64_t max_unpacked_bytes = uint64_t{4} << 30;
  uint64_t max_artifact_entries = 100000;
  app.add_option("--listen", listen, "host:port to listen on; port 0 picks a free port");
  app.add_option("--data-dir", data_dir,
                 "directory for artifacts and logs, and the SQLite database unless --database");
  app.add_option("--database", database,
                 "postgresql://user@host[:port]/dbname[?param=value...]: keep the state in "
                 "this PostgreSQL database, which several servers can share (default: SQLite "
                 "in --data-dir); keep a password in ~/.pgpass or PGPASSWORD, not in the URL");
  app.add_option("--region", region, "region named in ARNs");
  app.add_option("--account-id", account, "12-digit account id named in ARNs");
  app.add_option("--auth-keys-file", keys_file,
                 "verify SigV4 signatures against ACCESS_KEY_ID:SECRET lines in this file");
  app.add_flag("--no-start-on-create", no_start_on_create,
               "do not start an execution when a pipeline is created");
  app.add_flag(
      "--no-local-runners", no_local_runners,
      "run no Commands actions here: dispatch them as jobs to `pipewright worker --builtin`");
  app.add_option("--job-timeout", job_timeout,
                 "seconds a job worker has, after acknowledging a job, to report its result");
  app.add_option("--source-poll-interval", source_poll,
                 "seconds between checks of Git sources with PollForSourceChanges (0: never)");
  app.add_option("--approval-timeout", approval_timeout,
                 "seconds a manual approval waits before it fails (default 7 days)");
  app.add_option("--artifact-endpoint", artifact_endpoint,
                 "URL of an S3-compatible service holding job artifacts instead of this server "
                 "(credentials from PIPEWRIGHT_ARTIFACT_ACCESS_KEY_ID / _SECRET_ACCESS_KEY / "
                 "_SESSION_TOKEN; job workers receive them, so scope them to the bucket)");
  app.add_option("--artifact-bucket", artifact_bucket, "the bucket at --artifact-endpoint");
  app.add_option("--artifact-region", artifact_region, "the region to sign for");
  app.add_option("--poll-wait", poll_wait,
                 "seconds PollForJobs waits for a job before answering with none (long poll)");
  app.add_option("--deploy-root", deploy_roots,
                 "absolute directory below which Deploy/Directory actions may write "
                 "(repeatable; without it Deploy/Directory is refused)")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_option("--max-artifact-bytes", max_artifact_bytes,
                 "largest artifact zip accepted or produced (default 1 GiB)");
  app.add_option("--max-unpacked-bytes", max_unpacked_bytes,
                 "most bytes one artifact may unpack to (default 4 GiB)");
  app.add_option("--max-artifact-entries", max_artifact_entries,
                 "most entries in one artifact zip (default 100000)");
  std::vector<std::string> rev(args.rbegin(), args.rend());
  try {
    app.parse(rev);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  const bool postgres =
      database.rfind("postgresql://", 0) == 0 || database.rfind("postgres://", 0) == 0;
  if (!database.empty() && !postgres) {
    std::fprintf(stderr, "pipewright: --database must be a postgresql:// or postgres:// URL\n");
    return 2;
  }

  for (const auto& root : deploy_roots) {
    if (root.empty() || root[0] != '/') {
      std::fprintf(stderr, "pipewright: --deploy-root %s must be an absolute path\n", root.c_str());
      return 2;
    }
  }
  if (max_artifact_bytes == 0 || max_unpacked_bytes == 0 || max_artifact_entries == 0) {
    std::fprintf(stderr,
                 "pipewright: --max-artifact-bytes, --max-unpacked-bytes and "
                 "--max-artifact-entries must be positive\n");
    return 2;
  }

  // Block the signals before any thread starts: one thread waits for them.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) {
    std::fprintf(stderr, "pipewright: cannot create --data-dir %s: %s\n", data_dir.c_str(),
                 ec.message().c_str());
    return 1;
  }
  auto store = postgres ? store::OpenPostgresStore(database)
                        : store::OpenSqliteStore(data_dir + "/pipewright.db");
  if (!store.ok()) {
    std::fprintf(stderr, "pipewright: %s\n", store.status().ToString().c_str());
    return 1;
  }
  SystemClock clock;
  engine::EngineOptions opts;
  opts.region = region;
  opts.account_id = account;
  opts.data_dir = std::filesystem::absolute(data_dir).string();
  opts.start_on_create = !no_start_on_create;
  opts.local_runners = !no_local_runners;
  opts.job_timeout_seconds = job_timeout;
  opts.source_poll_seconds = source_poll;
  opts.deploy_roots = deploy_roots;
  opts.max_artifact_bytes = max_artifact_bytes;
  opts.max_unpacked_bytes = max_unpacked_bytes;
  opts.max_artifact_entries = max_artifact_entries;
  if (!artifact_endpoint.empty()) {
    auto env = [](const char* name) {
      const char* v = std::getenv(name);
      return std::string(v ? v : "");
    };
    if (artifact_bucket.empty() || env("PIPEWRIGHT_ARTIFACT_ACCESS_KEY_ID").empty()) {
      std::fprintf(
          stderr,
          "pipewright: --artifact-endpoint needs --artifact-bucket and the credentials "
          "in PIPEWRIGHT_ARTIFACT_ACCESS_KEY_ID / PIPEWRIGHT_ARTIFACT_SECRET_ACCESS_KEY\n");
      return 2;
    }
    opts.artifact_s3_endpoint = artifact_endpoint;
    opts.artifact_s3_bucket = artifact_bucket;
    opts.artifact_s3_region = artifact_region;
    opts.artifact_s3_access_key_id = env("PIPEWRIGHT_ARTIFACT_ACCESS_KEY_ID");
    opts.artifact_s3_secret_access_key = env("PIPEWRIGHT_ARTIFACT_SECRET_ACCESS_KEY");
    opts.artifact_s3_session_token = env("PIPEWRIGHT_ARTIFACT_SESSION_TOKEN");
  }
  opts.approval_timeout_seconds = approval_timeout;
  engine::Engine engine(**store, clock, opts);

  api::Dispatcher dispatcher;
  api::RegisterPipelineOps(dispatcher, engine);
  api::RegisterExecutionOps(dispatcher, engine);
  api::RegisterJobOps(dispatcher, engine, poll_wait);
  api::HttpServer http(dispatcher, {});
  if (!keys_file.empty()) {
    auto keys = ReadKeys(keys_file);
    if (!keys.ok()) {
      std::fprintf(stderr, "pipewright: %s\n", keys.status().message().c_str());
      return 2;
    }
    http.SetAuthenticator(
        [keys = *keys, &opts](const httplib::Request& req) -> Result<std::string> {
          sigv4::HttpRequestView view;
          view.method = req.method;
          std::string target = req.target;
          auto q = target.find('?');
          view.path = q == std::string::npos ? target : target.substr(0, q);
          view.query = q == std::string::npos ? "" : target.substr(q + 1);
          for (const auto& [k, v] : req.headers) view.headers.emplace_back(k, v);
          view.body = req.body;
          PW_ASSIGN_OR_RETURN(
              std::string akid,
              sigv4::Verify(view, "codepipeline", static_cast<int64_t>(std::time(nullptr)),
                            [&keys](std::string_view id) -> std::optional<sigv4::SecretInfo> {
                              auto it = keys.find(std::string(id));
                              if (it == keys.end()) return std::nullopt;
                              return sigv4::SecretInfo{it->second, "", 0};
                            }));
          return "arn:aws:iam::" + opts.account_id + ":user/" + akid;
        });
  }
  // Action logs, for externalExecutionUrl and `pipewright logs`: ?offset=N
  // returns the bytes from N on.
  http.raw().Get(
      R"(/logs/([0-9a-f-]{36}))", [&engine](const httplib::Request& req, httplib::Response& res) {
        std::ifstream f(engine.LogPath(req.matches[1].str()), std::ios::binary);
        if (!f) {
          res.status = 404;
          res.set_content("no log for this action execution\n", "text/plain");
          return;
        }
        long offset = 0;
        if (req.has_param("offset")) offset = std::atol(req.get_param_value("offset").c_str());
        f.seekg(offset);
        std::string body((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        res.set_content(body, "text/plain; charset=utf-8");
      });
  console::RegisterConsole(http.raw());
  // Last: the S3-style artifact routes match any /<bucket>/<key>.
  api::RegisterArtifactEndpoint(http.raw(), engine);
  auto bound = http.Bind(listen);
  if (!bound.ok()) {
    std::fprintf(stderr, "pipewright: %s\n", bound.status().message().c_str());
    return 1;
  }
  engine.SetPublicUrl("http://" + *bound);
  if (Status rs = engine.Recover(); !rs.ok()) {
    std::fprintf(stderr, "pipewright: recovery failed: %s\n", rs.ToString().c_str());
    return 1;
  }
  std::printf("listening on http://%s\n", bound->c_str());
  std::fflush(stdout);
  PW_LOG(Info) << "pipewright serving on " << *bound << ", data in " << opts.data_dir
               << (postgres ? ", state in PostgreSQL" : "");

  std::thread waiter([&] {
    int sig = 0;
    sigwait(&sigs, &sig);
    PW_LOG(Info) << "signal " << sig << ": shutting down";
    http.Stop();
  });
  Status s = http.Serve();
  // Serve() can also end on its own (socket error): wake the waiter.
  kill(getpid(), SIGTERM);
  waiter.join();
  if (!s.ok()) {
    std::fprintf(stderr, "pipewright: %s\n", s.message().c_str());
    return 1;
  }
  return 0;
}

}  // namespace pw::server
