#include "server/serve.h"

#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <thread>

#include "api/dispatcher.h"
#include "api/execution_ops.h"
#include "api/forward.h"
#include "api/http_server.h"
#include "api/job_ops.h"
#include "api/pipeline_ops.h"
#include "api/s3_ops.h"
#include "api/trigger_ops.h"
#include "auth/authenticator.h"
#include "auth/keys.h"
#include "buckets/local_buckets.h"
#include "common/clock.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/thread_name.h"
#include "common/version.h"
#include "console/console.h"
#include "engine/engine.h"
#include "engine/git_connections.h"
#include "engine/leases.h"
#include "engine/log_shipper.h"
#include "engine/mirror_ledger.h"
#include "engine/server_metrics.h"
#include "http/server.h"
#include "runner/artifact_mirror.h"
#include "runner/mount_namespace.h"
#include "runner/remote_object_store.h"
#include "runner/sandbox.h"
#include "server/config_file.h"
#include "server/data_dir_lock.h"
#include "server/health.h"
#include "server/multi_server.h"
#include "sigv4/sigv4.h"
#include "store/store.h"

namespace pw::server {
namespace {

// Bytes of the regular files below `dir` (0 when absent). Errors skip the
// entry: a metric, not an audit.
uint64_t DirectoryBytes(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  uint64_t total = 0;
  for (fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec),
       end;
       !ec && it != end; it.increment(ec)) {
    std::error_code fec;
    if (it->is_regular_file(fec) && !fec) {
      const auto size = it->file_size(fec);
      if (!fec) total += size;
    }
  }
  return total;
}

// systemd's readiness protocol (Type=notify): "READY=1" as a datagram to
// $NOTIFY_SOCKET when it is set (a path, or "@name" in the abstract
// namespace). No-op otherwise; failures only logged.
void NotifyReady() {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || path[0] == '\0') return;
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  const size_t len = std::strlen(path);
  if (len >= sizeof addr.sun_path) return;
  std::memcpy(addr.sun_path, path, len);
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  static constexpr char kReady[] = "READY=1";
  const auto addr_len = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + len);
  if (::sendto(fd, kReady, sizeof kReady - 1, 0, reinterpret_cast<const sockaddr*>(&addr),
               addr_len) < 0) {
    PW_LOG(Warning) << "could not notify systemd of readiness: " << std::strerror(errno);
  }
  ::close(fd);
}

// glibc gives each thread that allocates while another holds the arena an
// arena of its own, up to 8 per core, and memory freed into one stays there:
// after a few large answers (a ListActionExecutions page reads ~100 runs) on
// the handler pool's threads, the server kept 57 MiB where it needs 31
// (make bench: 1,000 pipelines, 10^5 executions). One arena per core, at
// most 8, keeps it near its working set; MALLOC_ARENA_MAX, if set, decides.
void BoundMallocArenas() {
  if (std::getenv("MALLOC_ARENA_MAX") != nullptr) return;
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  mallopt(M_ARENA_MAX, static_cast<int>(std::clamp(cores, 2u, 8u)));
}

}  // namespace

int RunServe(const std::vector<std::string>& args) {
  BoundMallocArenas();
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
  double job_retention = 3600;
  double job_dispatch_timeout = 60;
  double worker_wait_timeout = 3600;
  double poll_wait = 2;
  double source_poll = 30;
  double approval_timeout = 7 * 24 * 3600;
  std::string artifact_endpoint;
  std::string artifact_bucket;
  std::string artifact_region = "us-east-1";
  std::string s3_endpoint;
  std::string s3_region = "us-east-1";
  http::ServerOptions http_opts;
  std::string sandbox = "auto";
  std::string action_user;
  app.add_option("--sandbox", sandbox,
                 "auto|bwrap|none: run Commands actions inside bubblewrap (auto: when it runs "
                 "here)");
  app.add_option("--action-user", action_user,
                 "run Commands actions as this user (the server must run as root)");
  std::vector<std::string> deploy_roots;
  uint64_t max_artifact_bytes = uint64_t{1} << 30;
  uint64_t max_unpacked_bytes = uint64_t{4} << 30;
  uint64_t max_artifact_entries = 100000;
  uint64_t max_object_bytes = uint64_t{5} << 30;
  std::string build_projects_file;
  app.add_option("--build-projects", build_projects_file,
                 "YAML file declaring CodeBuild projects (buildspec, environment, image, "
                 "timeout) and the secrets their builds may use (README: CodeBuild actions)");
  std::string container_runtime;
  app.add_option("--container-runtime", container_runtime,
                 "podman|docker (or the absolute path of a compatible CLI): run CodeBuild "
                 "projects that name an image inside that image");
  std::string git_connections_file;
  app.add_option("--git-connections", git_connections_file,
                 "JSON file mapping CodeStarSourceConnection ARNs and CodeCommit repository "
                 "names to Git URLs and credentials (README: Git connections and CodeCommit)");
  app.add_option("--listen", listen, "host:port to listen on; port 0 picks a free port");
  app.add_option("--data-dir", data_dir,
                 "directory for artifacts and logs, and the SQLite database unless --database");
  app.add_option("--database", database,
                 "postgresql://user@host[:port]/dbname[?param=value...]: keep the state in "
                 "this PostgreSQL database, which several servers can share (default: SQLite "
                 "in --data-dir); keep a password in ~/.pgpass or PGPASSWORD, not in the URL");
  int database_connections = 4;
  app.add_option("--database-connections", database_connections,
                 "most connections to the --database (PostgreSQL) this server opens, as calls "
                 "need them; a call waits while all are busy (1-64, default 4)")
      ->check(CLI::Range(1, 64));
  // Several servers on one PostgreSQL database (docs/multi-server.md).
  std::string server_id;
  std::string advertise_url;
  double lease_seconds = 10;
  app.add_option("--server-id", server_id,
                 "this server's name among several sharing one --database (PostgreSQL): each "
                 "pipeline is driven by one server holding its lease, any server answers any "
                 "call; needs --artifact-endpoint (letters, digits, '.', '_', '-')");
  app.add_option("--advertise-url", advertise_url,
                 "URL the other servers reach this one at (default: from --listen)");
  app.add_option("--lease-seconds", lease_seconds,
                 "seconds a pipeline's lease lasts without renewal (renewed every third of it): "
                 "how soon another server takes over after this one dies (default 10)")
      ->check(CLI::PositiveNumber);
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
  app.add_option("--job-dispatch-timeout", job_dispatch_timeout,
                 "seconds a job handed out by PollForJobs waits for AcknowledgeJob before it is "
                 "queued again under a new nonce")
      ->check(CLI::PositiveNumber);
  app.add_option("--worker-wait-timeout", worker_wait_timeout,
                 "seconds a queued job waits for a worker to acknowledge it before it fails "
                 "(default 3600; 0: wait forever)")
      ->check(CLI::NonNegativeNumber);
  int64_t retain_executions = 0;
  double retain_days = 0;
  double retain_artifact_grace = 3600;
  app.add_option("--retain-executions", retain_executions,
                 "keep at most this many executions per pipeline: older ended ones are deleted "
                 "with their action runs, logs and unreferenced artifacts (0: no limit; per "
                 "pipeline: the configuration file's retention section)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--retain-days", retain_days,
                 "delete ended executions last updated more than this many days ago (0: never)")
      ->check(CLI::NonNegativeNumber);
  int retain_batch = 100;
  app.add_option("--retain-batch", retain_batch,
                 "executions retention deletes per second at most (default 100)")
      ->check(CLI::PositiveNumber);
  app.add_option("--retain-artifact-grace", retain_artifact_grace,
                 "seconds a new artifact is protected from retention's sweep (default 3600)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--job-retention", job_retention,
                 "seconds an ended job (and its document) is kept before it is removed")
      ->check(CLI::NonNegativeNumber);
  int max_concurrent_executions = 50;
  app.add_option(
         "--max-concurrent-executions", max_concurrent_executions,
         "active executions a QUEUED or PARALLEL pipeline may have before "
         "StartPipelineExecution answers ConcurrentPipelineExecutionsLimitExceededException "
         "(default 50; 0: no limit)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--source-poll-interval", source_poll,
                 "seconds between checks of Git and S3 sources with PollForSourceChanges "
                 "(0: never)");
  app.add_option("--approval-timeout", approval_timeout,
                 "seconds a manual approval waits before it fails (default 7 days)");
  app.add_option("--artifact-endpoint", artifact_endpoint,
                 "URL of an S3-compatible service holding job artifacts instead of this server "
                 "(credentials from PIPEWRIGHT_ARTIFACT_ACCESS_KEY_ID / _SECRET_ACCESS_KEY / "
                 "_SESSION_TOKEN; job workers receive them, so scope them to the bucket)");
  app.add_option("--artifact-bucket", artifact_bucket, "the bucket at --artifact-endpoint");
  app.add_option("--artifact-region", artifact_region, "the region to sign for");
  app.add_option("--s3-endpoint", s3_endpoint,
                 "URL of an S3-compatible store (MinIO, Ceph, AWS) holding the buckets of "
                 "Source/S3 and Deploy/S3 actions, path-style (credentials from "
                 "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN)");
  app.add_option("--s3-region", s3_region, "the region to sign --s3-endpoint requests for");
  app.add_option("--poll-wait", poll_wait,
                 "seconds PollForJobs waits for a job before answering with none (long poll)");
  app.add_option("--tls-cert", http_opts.tls_cert_file,
                 "PEM certificate chain: serve HTTPS (TLS 1.2+) instead of HTTP");
  app.add_option("--tls-key", http_opts.tls_key_file, "PEM private key for --tls-cert");
  app.add_option("--max-connections", http_opts.max_connections,
                 "open connections in total (default 4096); past it the idlest is closed");
  app.add_option("--max-connections-per-client", http_opts.max_connections_per_client,
                 "open connections from one address (default 256); past it that client's "
                 "idlest connection is closed");
  app.add_option("--http-threads", http_opts.handler_threads,
                 "threads running requests (default 8); slow or idle clients hold none");
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
  app.add_option("--max-object-bytes", max_object_bytes,
                 "largest object the server's own S3 buckets accept (default 5 GiB)")
      ->check(CLI::PositiveNumber);
  // Operations (README: Operations): the configuration file, --check-config.
  std::string config_file;
  bool check_config = false;
  std::string log_format = "json";
  std::string log_level = "info";
  app.add_option("--log-format", log_format,
                 "json (one object per line), logfmt or text: the format of the log on stderr")
      ->check(CLI::IsMember({"json", "logfmt", "text"}));
  app.add_option("--log-level", log_level, "debug, info, warning or error: the least logged")
      ->check(CLI::IsMember({"debug", "info", "warning", "error"}));
  app.set_version_flag("--version",
                       std::string("pipewright ") + Version() + " (" + GitCommit() + ")");
  app.add_option("--config", config_file,
                 "YAML file setting any of these flags (key: the flag without '--') and the "
                 "git-connections and build-projects sections; flags given here win (the package's "
                 "unit passes "
                 "/etc/pipewright/pipewright.yaml)");
  app.add_flag("--check-config", check_config,
               "validate the flags and the --config file, print what is wrong, and exit "
               "(0: valid) without starting");
  ServeOptions serve_options;  // Filled from the flags above once parsed.
  std::vector<std::string> rev(args.rbegin(), args.rend());
  try {
    app.parse(rev);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  serve_options.server_id = server_id;
  // Inline sections of the configuration file. Each parses its node when
  // present; a flag of the same name given on the command line wins.
  // More sections: append {key, parser of the YAML::Node}.
  std::optional<engine::GitConnections> git_connections_section;
  std::optional<engine::BuildProjects> build_projects_section;
  RetentionSettings retention_section;
  std::vector<ConfigSection> config_sections = {
      {"retention",
       [&retention_section](const YAML::Node& node) -> Status {
         return ParseRetention(node, &retention_section);
       }},
      {"git-connections",
       [&git_connections_section](const YAML::Node& node) -> Status {
         PW_ASSIGN_OR_RETURN(auto parsed, engine::ParseGitConnections(YamlToJsonText(node)));
         git_connections_section = std::move(parsed);
         return Status::Ok();
       }},
      {"build-projects", [&build_projects_section](const YAML::Node& node) -> Status {
         PW_ASSIGN_OR_RETURN(auto parsed, engine::ParseBuildProjects(node));
         build_projects_section = std::move(parsed);
         return Status::Ok();
       }}};
  if (!config_file.empty()) {
    if (Status cs = ApplyConfigFile(config_file, app, config_sections); !cs.ok()) {
      std::fprintf(stderr, "pipewright: %s\n", cs.message().c_str());
      return 2;
    }
  }
  {
    LogFormat format = LogFormat::kJson;
    LogLevel level = LogLevel::kInfo;
    ParseLogFormat(log_format, &format);  // Both checked by their flags.
    ParseLogLevel(log_level, &level);
    SetLogFormat(format);
    SetLogLevel(level);
  }
  const bool postgres =
      database.rfind("postgresql://", 0) == 0 || database.rfind("postgres://", 0) == 0;
  if (!database.empty() && !postgres) {
    std::fprintf(stderr, "pipewright: --database must be a postgresql:// or postgres:// URL\n");
    return 2;
  }
  if (Status ms = CheckMultiServer(serve_options.server_id, postgres, artifact_endpoint);
      !ms.ok()) {
    std::fprintf(stderr, "pipewright: %s\n", ms.message().c_str());
    return 2;
  }
  const bool multi_server = !serve_options.server_id.empty();

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

  engine::GitConnections git_connections;
  if (!git_connections_file.empty()) {
    auto loaded = engine::LoadGitConnections(git_connections_file);
    Status files = loaded.ok() ? engine::CheckGitConnectionFiles(*loaded) : loaded.status();
    if (!files.ok()) {
      std::fprintf(stderr, "pipewright: --git-connections %s: %s\n", git_connections_file.c_str(),
                   files.message().c_str());
      return 2;
    }
    git_connections = *std::move(loaded);
  } else if (git_connections_section.has_value()) {
    if (Status files = engine::CheckGitConnectionFiles(*git_connections_section); !files.ok()) {
      std::fprintf(stderr, "pipewright: %s: git-connections: %s\n", config_file.c_str(),
                   files.message().c_str());
      return 2;
    }
    git_connections = *std::move(git_connections_section);
  }
  engine::BuildProjects build_projects;
  if (!build_projects_file.empty()) {
    auto loaded = engine::LoadBuildProjects(build_projects_file);
    if (!loaded.ok()) {
      std::fprintf(stderr, "pipewright: --build-projects %s: %s\n", build_projects_file.c_str(),
                   loaded.status().message().c_str());
      return 2;
    }
    build_projects = *std::move(loaded);
  } else if (build_projects_section.has_value()) {
    build_projects = *std::move(build_projects_section);
  }
  engine::ContainerRuntime runtime;
  if (!container_runtime.empty()) {
    auto found = engine::FindContainerRuntime(container_runtime);
    if (!found.ok()) {
      std::fprintf(stderr, "pipewright: --container-runtime %s: %s\n", container_runtime.c_str(),
                   found.status().message().c_str());
      return 2;
    }
    runtime = *std::move(found);
  }
  if (check_config) {
    // What start-up would refuse later, without creating or opening anything.
    if (!keys_file.empty()) {
      if (auto keys = auth::KeyStore::Load(keys_file); !keys.ok()) {
        std::fprintf(stderr, "pipewright: --auth-keys-file: %s\n", keys.status().message().c_str());
        return 2;
      }
    }
    for (const std::string* f : {&http_opts.tls_cert_file, &http_opts.tls_key_file}) {
      if (!f->empty() && ::access(f->c_str(), R_OK) != 0) {
        std::fprintf(stderr, "pipewright: cannot read %s\n", f->c_str());
        return 2;
      }
    }
    if (!action_user.empty() && geteuid() != 0) {
      std::fprintf(stderr, "pipewright: --action-user needs the server to run as root\n");
      return 2;
    }
    std::printf("configuration OK%s%s\n", config_file.empty() ? "" : ": ", config_file.c_str());
    return 0;
  }

  // Block the signals before any thread starts: one thread waits for them.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);
  // Also before any thread: the input overlays this server mounts stay in a
  // mount namespace of its own (see runner/mount_namespace.h).
  // Not with a runtime that hands containers to a daemon (docker, nerdctl):
  // the daemon mounts a build's directories from the host's namespace, where
  // the input overlays would not be. podman runs as the server's child.
  std::string mount_ns_problem =
      "--container-runtime " + runtime.path + " runs a daemon's containers";
  const bool daemon_runtime =
      !runtime.path.empty() &&
      std::filesystem::path(runtime.path).filename().string().rfind("podman", 0) != 0;
  const bool own_mount_namespace =
      !daemon_runtime && runner::EnterOwnMountNamespace(&mount_ns_problem);
  if (own_mount_namespace) {
    PW_LOG(Debug) << "mounts: a namespace of the server's own (slave of the host's)";
  } else {
    PW_LOG(Debug) << "mounts: the host's namespace (" << mount_ns_problem << ")";
  }

  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) {
    std::fprintf(stderr, "pipewright: cannot create --data-dir %s: %s\n", data_dir.c_str(),
                 ec.message().c_str());
    return 1;
  }
  // Before the store: a second server here would fail the first one's actions.
  auto data_dir_lock = LockDataDir(data_dir);
  if (!data_dir_lock.ok()) {
    std::fprintf(stderr, "pipewright: %s\n", data_dir_lock.status().message().c_str());
    return 1;
  }
  auto store = postgres ? store::OpenPostgresStore(database, database_connections)
                        : store::OpenSqliteStore(data_dir + "/pipewright.db");
  if (!store.ok()) {
    std::fprintf(stderr, "pipewright: %s\n", store.status().ToString().c_str());
    return 1;
  }
  SystemClock clock;
  engine::EngineOptions opts;
  opts.own_mount_namespace = own_mount_namespace;
  opts.region = region;
  opts.account_id = account;
  opts.data_dir = std::filesystem::absolute(data_dir).string();
  opts.start_on_create = !no_start_on_create;
  opts.local_runners = !no_local_runners;
  opts.job_timeout_seconds = job_timeout;
  opts.job_retention_seconds = job_retention;
  opts.retention = {retain_executions, retain_days};
  // The section's default applies unless a --retain-* flag (or key) was given.
  if (retention_section.default_policy && app.count("--retain-executions") == 0 &&
      app.count("--retain-days") == 0) {
    opts.retention = *retention_section.default_policy;
  }
  opts.retention_by_pipeline = retention_section.pipelines;
  opts.retention_artifact_grace_seconds = retain_artifact_grace;
  opts.retention_batch = static_cast<size_t>(retain_batch);
  opts.job_dispatch_timeout_seconds = job_dispatch_timeout;
  opts.worker_wait_seconds = worker_wait_timeout;
  opts.source_poll_seconds = source_poll;
  opts.max_concurrent_executions = max_concurrent_executions;
  opts.deploy_roots = deploy_roots;
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
  opts.git_connections = std::move(git_connections);
  opts.build_projects = std::move(build_projects);
  opts.container_runtime = runtime.path;
  opts.container_env = runtime.env;
  opts.max_artifact_bytes = max_artifact_bytes;
  {
    // Hidden from actions: the data directory (the engine adds it), the
    // server's working directory when it holds the data directory, and every
    // file of the server's own that may hold a secret: the keys, the TLS key
    // and certificate, the --config file, the git connections file and its
    // token files, the build projects file and the secret files it names.
    namespace fs = std::filesystem;
    std::vector<std::string> hide_dirs;
    std::vector<std::string> hide_files;
    const fs::path cwd = fs::current_path(ec);
    const fs::path data = fs::weakly_canonical(opts.data_dir, ec);
    const std::string system_dirs = " / /usr /bin /sbin /lib /lib64 /etc /var /opt /home ";
    if (!cwd.empty() && data.string().rfind(cwd.string() + "/", 0) == 0 &&
        system_dirs.find(" " + cwd.string() + " ") == std::string::npos) {
      hide_dirs.push_back(cwd.string());
    }
    std::vector<std::string> secret_files = {
        keys_file,   http_opts.tls_key_file, http_opts.tls_cert_file,
        config_file, git_connections_file,   build_projects_file};
    for (const auto& c : opts.git_connections.connections) secret_files.push_back(c.token_file);
    if (opts.git_connections.codecommit) {
      secret_files.push_back(opts.git_connections.codecommit->token_file);
    }
    for (const auto* values : {&opts.build_projects.parameters, &opts.build_projects.secrets}) {
      for (const auto& [name, value] : *values) secret_files.push_back(value.file);
    }
    // Paths actions read or deploy to keep away from the same files, whether
    // they exist now or not, in every sandbox mode. Not the working directory:
    // the data-directory rule already refuses a path that holds the data
    // directory, and sources below the working directory (examples/ beside
    // ./.pipewright) are ordinary.
    for (const std::string& f : secret_files) {
      if (!f.empty()) opts.protected_paths.push_back(fs::absolute(f, ec).string());
    }
    for (const std::string& f : secret_files) {
      if (f.empty()) continue;
      std::error_code fec;
      fs::path canonical = fs::weakly_canonical(f, fec);
      // bwrap binds /dev/null over a file that exists (a secret file made
      // later is read when a build needs it, and is not hidden: say so).
      if (fec || !fs::is_regular_file(canonical, fec)) {
        if (sandbox != "none") {
          PW_LOG(Warning) << "sandbox: " << f
                          << " is not a regular file now, so actions are not kept from reading it";
        }
        continue;
      }
      if (std::find(hide_files.begin(), hide_files.end(), canonical.string()) == hide_files.end()) {
        hide_files.push_back(canonical.string());
      }
    }
    if (!action_user.empty() && geteuid() != 0) {
      std::fprintf(stderr, "pipewright: --action-user needs the server to run as root\n");
      return 2;
    }
    // With --action-user the probe checks that user reaches the actions' directories.
    const std::string work_root = data.string() + "/work";
    if (!action_user.empty()) fs::create_directories(work_root, ec);
    auto sandbox_options = runner::ConfigureSandbox(sandbox, action_user, hide_dirs, hide_files,
                                                    action_user.empty() ? "" : work_root);
    if (!sandbox_options.ok()) {
      std::fprintf(stderr, "pipewright: %s\n", sandbox_options.status().message().c_str());
      return 2;
    }
    opts.sandbox = *std::move(sandbox_options);
  }
  // The runner pieces are made here and handed to the engine (tests pass
  // fakes instead).
  // The server's own S3 buckets (<data dir>/buckets, metadata in the store),
  // served on the API address and used by the S3 actions.
  buckets::LocalBucketsOptions bucket_opts;
  bucket_opts.root = opts.data_dir + "/buckets";
  bucket_opts.max_object_bytes = max_object_bytes;
  auto local_buckets = std::make_shared<buckets::LocalBuckets>(**store, clock, bucket_opts);
  if (Status bs = local_buckets->Open(); !bs.ok()) {
    std::fprintf(stderr, "pipewright: buckets: %s\n", bs.ToString().c_str());
    return 1;
  }
  engine::EngineRunners runners = engine::MakeRunners(opts);
  // S3 actions use the server's own buckets, unless --s3-endpoint points them
  // at another S3-compatible store. Several servers: never the own buckets
  // (their bodies are on one server's disk); without --s3-endpoint S3 actions
  // fail with a message naming it.
  if (!multi_server) runners.objects = local_buckets;
  if (!s3_endpoint.empty()) {
    auto env = [](const char* name) {
      const char* v = std::getenv(name);
      return std::string(v ? v : "");
    };
    runner::RemoteObjectStoreOptions s3;
    s3.endpoint_url = s3_endpoint;
    s3.region = s3_region;
    s3.credentials = {env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"),
                      env("AWS_SESSION_TOKEN")};
    if (s3.credentials.access_key_id.empty() || s3.credentials.secret_access_key.empty()) {
      std::fprintf(stderr,
                   "pipewright: --s3-endpoint needs credentials in AWS_ACCESS_KEY_ID / "
                   "AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones)\n");
      return 2;
    }
    auto remote = runner::RemoteObjectStore::Create(s3);
    if (!remote.ok()) {
      std::fprintf(stderr, "pipewright: --s3-endpoint: %s\n", remote.status().message().c_str());
      return 2;
    }
    runners.objects = std::move(*remote);
  }
  // Several servers: every artifact the built-in actions produce is also kept
  // in the shared bucket (artifacts/<revision>.zip), and a revision missing on
  // this server's disk is fetched from it (runner/artifact_mirror.h).
  if (multi_server && !artifact_endpoint.empty()) {
    runner::RemoteObjectStoreOptions s3;
    s3.endpoint_url = artifact_endpoint;
    s3.region = artifact_region;
    s3.credentials = {opts.artifact_s3_access_key_id, opts.artifact_s3_secret_access_key,
                      opts.artifact_s3_session_token};
    auto remote = runner::RemoteObjectStore::Create(s3);
    if (!remote.ok()) {
      std::fprintf(stderr, "pipewright: --artifact-endpoint: %s\n",
                   remote.status().message().c_str());
      return 2;
    }
    std::shared_ptr<runner::ObjectStore> shared = std::move(*remote);
    // Retention removes a shared copy only when no server has relied on it
    // for the grace period, as the shared database records (mirror_ledger.h).
    auto ledger = std::make_shared<engine::StoreMirrorLedger>(
        **store, clock, server_id, opts.retention_artifact_grace_seconds);
    runners.artifacts = std::make_unique<runner::ArtifactStore>(
        opts.data_dir + "/artifacts", runners.artifacts->limits(),
        runner::NewObjectStoreArtifactMirror(shared, artifact_bucket, artifact_endpoint),
        std::move(ledger));
  }
  // Several servers: action logs are shipped to the shared database, so any
  // server answers GET /logs/<id> (engine/log_shipper.h).
  std::shared_ptr<engine::LogShipper> log_shipper;
  if (multi_server) {
    const std::string logs_dir = opts.data_dir + "/logs/";
    log_shipper = std::make_shared<engine::LogShipper>(
        **store, [logs_dir](const std::string& id) { return logs_dir + id + ".log"; });
    runners.log_shipper = log_shipper;
  }
  engine::Engine engine(**store, clock, opts, std::move(runners));
  if (log_shipper) log_shipper->Start();
  if (!server_id.empty()) engine.EnableLeases(server_id, lease_seconds);
  std::unique_ptr<engine::LeaseManager> leases;  // Several servers only.

  api::Dispatcher dispatcher;
  api::RegisterPipelineOps(dispatcher, engine);
  api::RegisterExecutionOps(dispatcher, engine);
  api::RegisterJobOps(dispatcher, engine, poll_wait);
  api::RegisterTriggerOps(dispatcher, engine);
  {
    // Each connection is a descriptor: raise the soft limit to the hard one
    // and keep the connection cap below it (room for the store, logs, pipes).
    struct rlimit rl {};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
      rl.rlim_cur = rl.rlim_max;
      setrlimit(RLIMIT_NOFILE, &rl);
      getrlimit(RLIMIT_NOFILE, &rl);
      const size_t room = rl.rlim_cur > 512 ? static_cast<size_t>(rl.rlim_cur) - 256 : 256;
      if (http_opts.max_connections > room) {
        PW_LOG(Warning) << "--max-connections " << http_opts.max_connections
                        << " is over what the descriptor limit allows; using " << room;
        http_opts.max_connections = room;
      }
    }
  }
  http::Server http(http_opts);
  engine.SetJobQueuedListener([&http] { http.WakeParked(); });
  if (server_id.empty()) {
    api::RegisterApiRoute(http, dispatcher);
  } else {
    // The lease manager is made once the address is known (below); the
    // forwarder reads it through this pointer only after serving starts.
    api::RegisterApiRoute(
        http, dispatcher,
        [&leases, &engine](const http::Request& req,
                           std::string_view target) -> std::optional<api::HttpReply> {
          if (!leases) return std::nullopt;
          return api::MakeForwarder(engine, *leases)(req, target);
        });
  }
  api::RegisterServerOps(dispatcher, engine, lease_seconds);
  // Authentication (SigV4 or a console session) on every route but the
  // console's files, the sign-in call and the artifact endpoint (which takes
  // only the job's own credentials); per-key policies on every operation.
  std::unique_ptr<auth::Authenticator> authn;
  std::unique_ptr<auth::KeyStore> s3_keys;  // The same keys, for the S3 endpoint.
  if (!keys_file.empty()) {
    auto keys = auth::KeyStore::Load(keys_file);
    if (!keys.ok()) {
      std::fprintf(stderr, "pipewright: --auth-keys-file: %s\n", keys.status().message().c_str());
      return 2;
    }
    s3_keys = std::make_unique<auth::KeyStore>(*keys);
    auth::AuthenticatorOptions aopts;
    aopts.region = region;
    aopts.account_id = account;
    authn = std::make_unique<auth::Authenticator>(std::move(*keys), clock, aopts);
    http.SetAuthenticator(
        [a = authn.get()](http::AuthPhase phase, http::Request& req, http::Response& res) {
          Status s = a->Authenticate(phase, req, res);
          if (!s.ok()) {
            engine::Metrics()
                .auth_refusals.With({s.wire_name().empty() ? "Unauthenticated" : s.wire_name()})
                .Inc();
          }
          return s;
        });
    dispatcher.SetAuthorizer([a = authn.get()](std::string_view op, const nlohmann::json& input,
                                               const api::RequestContext& ctx) {
      Status s = a->Authorize(ctx.access_key_id, op, input);
      if (!s.ok()) {
        engine::Metrics()
            .auth_refusals.With({s.wire_name().empty() ? "AccessDenied" : s.wire_name()})
            .Inc();
      }
      return s;
    });
    http::RouteOptions sign_in;
    sign_in.auth = http::AuthMode::kPublic;
    sign_in.body = http::BodyMode::kMemory;
    sign_in.max_body_bytes = 16 * 1024;
    http.Route(
        "POST", "/console/api/session", sign_in,
        [a = authn.get()](const http::Request& req, http::Response& res) { a->SignIn(req, res); });
    http::RouteOptions pub;
    pub.auth = http::AuthMode::kPublic;
    http.Route("GET", "/console/api/session", pub,
               [a = authn.get()](const http::Request& req, http::Response& res) {
                 a->GetSession(req, res);
               });
    http.Route(
        "DELETE", "/console/api/session", pub,
        [a = authn.get()](const http::Request& req, http::Response& res) { a->SignOut(req, res); });
  } else {
    http::RouteOptions pub;
    pub.auth = http::AuthMode::kPublic;
    http.Route("GET", "/console/api/session", pub, &auth::Authenticator::SessionWithoutAuth);
  }
  // Action logs, for externalExecutionUrl and `pipewright logs`: ?offset=N
  // returns the bytes from N on. Authenticated like the API. Several servers:
  // a log that is not a local file is read from the database, where the
  // server running the action ships it (at most kMaxStoredLogRead a call).
  // With keys, a log is read as its pipeline's action executions are: the
  // key's policy must allow codepipeline:ListActionExecutions on the
  // pipeline the action execution belongs to (an unknown id is a 404).
  store::Store* shared_logs = multi_server ? store->get() : nullptr;
  http.Route("GET", R"(/logs/([0-9a-f-]{36}))", {},
             [&engine, shared_logs, a = authn.get(), db = store->get()](const http::Request& req,
                                                                        http::Response& res) {
               if (a != nullptr) {
                 auto pipeline = db->PipelineOfActionExecution(req.params[0]);
                 if (!pipeline.ok()) {
                   res.JsonError(503, "ServiceUnavailableException",
                                 "the database does not answer; try again");
                   return;
                 }
                 if (!pipeline->has_value()) {
                   res.status = 404;
                   res.SetHeader("Content-Type", "text/plain; charset=utf-8");
                   res.body = "no log for this action execution\n";
                   return;
                 }
                 Status allowed = a->Authorize(req.access_key_id, "ListActionExecutions",
                                               {{"pipelineName", **pipeline}});
                 if (!allowed.ok()) {
                   engine::Metrics().auth_refusals.With({"AccessDenied"}).Inc();
                   res.JsonError(403, "AccessDeniedException", allowed.message());
                   return;
                 }
               }
               std::string path = engine.LogPath(req.params[0]);
               struct stat st {};
               if (::stat(path.c_str(), &st) != 0 && shared_logs != nullptr) {
                 constexpr size_t kMaxStoredLogRead = size_t{32} << 20;
                 uint64_t offset = 0;
                 std::string off = req.Query("offset");
                 if (!off.empty() && off.size() < 19 &&
                     off.find_first_not_of("0123456789") == std::string::npos) {
                   offset = std::stoull(off);
                 }
                 auto stored = shared_logs->ReadActionLog(req.params[0], offset, kMaxStoredLogRead);
                 if (!stored.ok()) {
                   res.status = 503;
                   res.SetHeader("Content-Type", "text/plain; charset=utf-8");
                   res.body = "the database holding the logs does not answer; try again\n";
                   return;
                 }
                 if (stored->has_value()) {
                   res.SetHeader("Content-Type", "text/plain; charset=utf-8");
                   res.body = std::move(**stored);
                   return;
                 }
               }
               if (::stat(path.c_str(), &st) != 0) {
                 res.status = 404;
                 res.SetHeader("Content-Type", "text/plain; charset=utf-8");
                 res.body = "no log for this action execution\n";
                 return;
               }
               res.SetHeader("Content-Type", "text/plain; charset=utf-8");
               res.file = path;
               std::string off = req.Query("offset");
               if (!off.empty() && off.size() < 19 &&
                   off.find_first_not_of("0123456789") == std::string::npos) {
                 res.file_offset = std::stoull(off);
               }
             });
  // GET /metrics (README: Operations), before the S3 endpoint's /<bucket>.
  {
    engine::ServerMetrics& m = engine::Metrics();
    m.build_info.With({Version(), GitCommit()}).Set(1);
    m.registry.AddCollected("pipewright_work_queue_depth",
                            "Action work queued for the engine's threads, not yet started.", {},
                            [&engine] {
                              return std::vector<std::pair<metrics::Labels, double>>{
                                  {{}, static_cast<double>(engine.QueuedWork())}};
                            });
    m.registry.AddCollected(
        "pipewright_jobs_waiting",
        "Jobs no worker has acknowledged yet (Queued or Dispatched), by action type.",
        {"action_type"}, [&engine] {
          std::vector<std::pair<metrics::Labels, double>> out;
          for (const auto& [type, n] : engine.JobsWaiting()) {
            out.push_back({{type}, static_cast<double>(n)});
          }
          return out;
        });
    // The read caches (engine/read_cache.h): what the answers kept take, by
    // cache ("owner": one server alone, every pipeline; "stamped": several
    // servers, the pipelines another server drives; the other one is empty).
    auto caches = [&engine](bool bytes) {
      auto of = [bytes](const auto& cache) {
        return static_cast<double>(bytes ? cache.bytes() : cache.size());
      };
      return std::vector<std::pair<metrics::Labels, double>>{
          {{"owner"}, of(engine.read_cache())}, {{"stamped"}, of(engine.stamped_cache())}};
    };
    m.registry.AddCollected("pipewright_read_cache_bytes",
                            "Bytes of keys and answers the read caches keep, by cache.", {"cache"},
                            [caches] { return caches(true); });
    m.registry.AddCollected("pipewright_read_cache_answers",
                            "Answers the read caches keep, by cache.", {"cache"},
                            [caches] { return caches(false); });
    const std::string artifacts_dir = opts.data_dir + "/artifacts";
    m.registry.AddCollected("pipewright_artifact_store_bytes",
                            "Bytes of the artifact store (files under <data dir>/artifacts).", {},
                            [artifacts_dir] {
                              return std::vector<std::pair<metrics::Labels, double>>{
                                  {{}, static_cast<double>(DirectoryBytes(artifacts_dir))}};
                            });
    const double start_time = static_cast<double>(std::time(nullptr));
    m.registry.AddCollected(
        "pipewright_process_start_time_seconds",
        "When the server started, in seconds since the epoch.", {}, [start_time] {
          return std::vector<std::pair<metrics::Labels, double>>{{{}, start_time}};
        });
    std::function<Status(const http::Request&)> may_read_metrics;
    if (authn) {
      // As an operation of its own: codepipeline:GetMetrics on "*".
      may_read_metrics = [a = authn.get()](const http::Request& req) {
        Status s = a->Authorize(req.access_key_id, "GetMetrics", nlohmann::json::object());
        if (!s.ok()) engine::Metrics().auth_refusals.With({"AccessDenied"}).Inc();
        return s;
      };
    }
    api::RegisterMetricsRoute(
        http, [&m] { return m.Render(); }, std::move(may_read_metrics));
  }
  // The S3 endpoint: ordinary buckets with the server's keys, job artifact
  // objects with a job's own credentials. GET / (ListBuckets; browsers are
  // sent to the console) before the console; the rest last, as its routes
  // match any /<bucket>[/<key>].
  api::S3Endpoint s3;
  s3.engine = &engine;
  s3.buckets = local_buckets.get();
  s3.keys = s3_keys.get();
  s3.region = region;
  s3.account_id = account;
  s3.max_object_bytes = max_object_bytes;
  if (multi_server) s3.buckets_off = BucketsOffMessage();
  // GET /health for load balancers: public, read-only, before the S3 endpoint.
  Health health([st = store->get()] { return st->Ping(); }, serve_options.server_id);
  RegisterHealthRoute(http, health);
  // POST /_webhooks/…, before the S3 endpoint; bodies stream beside the buckets' uploads.
  api::RegisterWebhookRoute(http, engine, local_buckets->temp_dir());
  api::RegisterS3RootRoute(http, s3);
  console::RegisterConsole(http);
  api::RegisterS3Endpoint(http, s3);
  auto bound = http.Bind(listen);
  if (!bound.ok()) {
    std::fprintf(stderr, "pipewright: %s\n", bound.status().message().c_str());
    return 1;
  }
  const std::string scheme = http_opts.tls_cert_file.empty() ? "http://" : "https://";
  engine.SetPublicUrl(scheme + *bound);
  local_buckets->SetPublicUrl(scheme + *bound);
  if (Status rs = engine.Recover(); !rs.ok()) {
    std::fprintf(stderr, "pipewright: recovery failed: %s\n", rs.ToString().c_str());
    return 1;
  }
  if (!server_id.empty()) {
    engine::LeaseOptions lo;
    lo.server_id = server_id;
    lo.url = advertise_url.empty() ? scheme + *bound : advertise_url;
    lo.lease_seconds = lease_seconds;
    leases = std::make_unique<engine::LeaseManager>(**store, engine, lo);
    leases->Start();  // Takes a share of the pipelines (and recovers each) before serving.
  }
  health.SetReady(true);  // Start-up and recovery are done.
  std::printf("listening on %s%s\n", scheme.c_str(), bound->c_str());
  std::fflush(stdout);
  NotifyReady();
  PW_LOG(Info) << "pipewright serving on " << *bound << ", data in " << opts.data_dir
               << (postgres ? ", state in PostgreSQL" : "")
               << (multi_server ? ", server id " + serve_options.server_id : "");

  std::thread waiter([&] {
    NameThisThread("pw-signals");
    int sig = 0;
    sigwait(&sigs, &sig);
    PW_LOG(Info) << "signal " << sig << ": shutting down";
    health.SetReady(false);  // Load balancers stop sending new requests.
    http.Stop();
  });
  // One log line per request: written in batches (at most 100 ms late;
  // warnings and errors at once).
  SetLogBuffering(std::chrono::milliseconds(100));
  Status s = http.Serve();
  // The engine outlives the HTTP front (declared first): it must not wake
  // parked requests of a server that is going away.
  engine.SetJobQueuedListener(nullptr);
  // A clean stop hands the pipelines over at once (not after the expiry).
  if (leases) leases->Stop();
  // Serve() can also end on its own (socket error): wake the waiter.
  kill(getpid(), SIGTERM);
  waiter.join();
  FlushLog();
  if (!s.ok()) {
    std::fprintf(stderr, "pipewright: %s\n", s.message().c_str());
    return 1;
  }
  return 0;
}

}  // namespace pw::server
