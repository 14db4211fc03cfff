#include "server/backup.h"

#include <spawn.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/status.h"
#include "common/version.h"

extern char** environ;

namespace pw::server {
namespace {

namespace fs = std::filesystem;

constexpr const char* kDatabase = "pipewright.db";
constexpr const char* kManifest = "pipewright-backup.json";

// Runs `argv` (argv[0] a full path) and returns its exit status, or -1.
int Run(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawn(&pid, args[0], nullptr, nullptr, args.data(), environ) != 0) return -1;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Copies the database at `from` into a new file `to` with the online backup
// API: a consistent snapshot even while the server writes (it restarts when a
// write lands between steps, so copy in one step and retry when busy).
Status SnapshotDatabase(const std::string& from, const std::string& to) {
  sqlite3* src = nullptr;
  sqlite3* dst = nullptr;
  auto close = [&] {
    sqlite3_close(src);
    sqlite3_close(dst);
  };
  if (sqlite3_open_v2(from.c_str(), &src, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    std::string msg = src ? sqlite3_errmsg(src) : "out of memory";
    close();
    return Unavailable("cannot open the database " + from + ": " + msg);
  }
  sqlite3_busy_timeout(src, 10000);
  if (sqlite3_open_v2(to.c_str(), &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    close();
    return Unavailable("cannot create " + to);
  }
  sqlite3_backup* b = sqlite3_backup_init(dst, "main", src, "main");
  if (b == nullptr) {
    std::string msg = sqlite3_errmsg(dst);
    close();
    return Unavailable("cannot start the database backup: " + msg);
  }
  int rc = SQLITE_OK;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  do {
    rc = sqlite3_backup_step(b, -1);
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
      if (std::chrono::steady_clock::now() > deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  } while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
  sqlite3_backup_finish(b);
  if (rc != SQLITE_DONE) {
    std::string msg = sqlite3_errstr(rc);
    close();
    return Unavailable("the database backup failed: " + msg);
  }
  // The copy is a rollback-journal database: one file, no -wal beside it.
  char* err = nullptr;
  sqlite3_exec(dst, "PRAGMA journal_mode=DELETE", nullptr, nullptr, &err);
  sqlite3_free(err);
  close();
  return Status::Ok();
}

// "ok", or what PRAGMA quick_check found.
std::string CheckDatabase(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return "cannot open it";
  }
  std::string result = "no answer";
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, nullptr) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW) {
    const unsigned char* text = sqlite3_column_text(st, 0);
    result = text ? reinterpret_cast<const char*>(text) : "";
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return result;
}

int Backup(const std::string& data_dir, const std::string& to) {
  std::error_code ec;
  if (!fs::is_directory(data_dir, ec)) {
    std::fprintf(stderr, "pipewright: backup: %s is not a directory\n", data_dir.c_str());
    return 2;
  }
  const fs::path target = fs::absolute(to, ec);
  const fs::path data = fs::weakly_canonical(data_dir, ec);
  if (fs::weakly_canonical(target, ec).string().rfind(data.string() + "/", 0) == 0) {
    std::fprintf(stderr, "pipewright: backup: --to must be outside the data directory\n");
    return 2;
  }
  std::string stage_template = target.string() + ".staging-XXXXXX";
  if (mkdtemp(stage_template.data()) == nullptr) {
    std::fprintf(stderr, "pipewright: backup: cannot create a directory beside %s: %s\n",
                 target.c_str(), std::strerror(errno));
    return 1;
  }
  const fs::path stage = stage_template;
  auto fail = [&stage](const std::string& msg) {
    std::error_code rm;
    fs::remove_all(stage, rm);
    std::fprintf(stderr, "pipewright: backup: %s\n", msg.c_str());
    return 1;
  };
  const bool sqlite = fs::exists(data / kDatabase, ec);
  if (sqlite) {
    if (Status s = SnapshotDatabase((data / kDatabase).string(), (stage / kDatabase).string());
        !s.ok()) {
      return fail(s.message());
    }
    if (std::string check = CheckDatabase((stage / kDatabase).string()); check != "ok") {
      return fail("the database copy failed its check: " + check);
    }
  }
  {
    nlohmann::json manifest = {{"version", Version()},
                               {"commit", GitCommit()},
                               {"created", static_cast<int64_t>(std::time(nullptr))},
                               {"dataDir", data.string()},
                               {"database", sqlite ? "sqlite" : "none (PostgreSQL: pg_dump)"}};
    std::ofstream out(stage / kManifest);
    out << manifest.dump(2) << "\n";
    if (!out) return fail("cannot write the manifest");
  }
  const std::string partial = target.string() + ".partial";
  std::vector<std::string> argv = {"/usr/bin/tar",
                                   "--create",
                                   "--gzip",
                                   "--format=posix",
                                   "--file=" + partial,
                                   "--warning=no-file-changed",
                                   "--warning=no-file-removed",
                                   "--ignore-failed-read",
                                   "--exclude=./pipewright.db",
                                   "--exclude=./pipewright.db-wal",
                                   "--exclude=./pipewright.db-shm",
                                   "--exclude=./pipewright.db-journal",
                                   "-C",
                                   stage.string()};
  if (sqlite) argv.push_back(kDatabase);
  argv.push_back(kManifest);
  argv.insert(argv.end(), {"-C", data.string(), "."});
  // 1: a file changed while it was read (an action log grew): the archive
  // holds a prefix of it, which is what a log is.
  const int rc = Run(argv);
  if (rc != 0 && rc != 1) {
    std::error_code rm;
    fs::remove(partial, rm);
    return fail("tar failed (exit " + std::to_string(rc) + ")");
  }
  fs::rename(partial, target, ec);
  if (ec) return fail("cannot move the archive into place: " + ec.message());
  fs::remove_all(stage, ec);
  const auto size = fs::file_size(target, ec);
  std::printf("backed up %s to %s (%llu bytes%s)\n", data.c_str(), target.c_str(),
              static_cast<unsigned long long>(size),
              sqlite ? "" : "; no SQLite database: back up PostgreSQL with pg_dump");
  return 0;
}

int Restore(const std::string& from, const std::string& data_dir) {
  std::error_code ec;
  if (!fs::is_regular_file(from, ec)) {
    std::fprintf(stderr, "pipewright: restore: cannot read %s\n", from.c_str());
    return 2;
  }
  if (fs::exists(data_dir, ec) && !fs::is_empty(data_dir, ec)) {
    std::fprintf(stderr,
                 "pipewright: restore: %s is not empty; restore into a new or empty directory "
                 "(and point the server at it)\n",
                 data_dir.c_str());
    return 2;
  }
  fs::create_directories(data_dir, ec);
  if (ec) {
    std::fprintf(stderr, "pipewright: restore: cannot create %s: %s\n", data_dir.c_str(),
                 ec.message().c_str());
    return 1;
  }
  const std::string dir = fs::absolute(data_dir, ec).string();
  const int rc = Run({"/usr/bin/tar", "--extract", "--gzip",
                      "--file=" + fs::absolute(from).string(), "--no-same-owner", "-C", dir});
  if (rc != 0) {
    std::fprintf(stderr, "pipewright: restore: tar failed (exit %d); %s is left as it is\n", rc,
                 dir.c_str());
    return 1;
  }
  nlohmann::json manifest;
  {
    std::ifstream in(fs::path(dir) / kManifest);
    manifest = nlohmann::json::parse(in, nullptr, false);
  }
  if (!manifest.is_object()) {
    std::fprintf(stderr, "pipewright: restore: %s is not a pipewright backup (no %s)\n",
                 from.c_str(), kManifest);
    return 1;
  }
  fs::remove(fs::path(dir) / kManifest, ec);
  const std::string db = (fs::path(dir) / kDatabase).string();
  if (fs::exists(db, ec)) {
    if (std::string check = CheckDatabase(db); check != "ok") {
      std::fprintf(stderr, "pipewright: restore: the database failed its check: %s\n",
                   check.c_str());
      return 1;
    }
  }
  std::printf("restored %s (pipewright %s, from %s) into %s\n", from.c_str(),
              manifest.value("version", "?").c_str(), manifest.value("dataDir", "?").c_str(),
              dir.c_str());
  return 0;
}

}  // namespace

int RunBackupCommand(const std::string& verb, const std::vector<std::string>& args) {
  CLI::App app{verb == "backup" ? "Back up a data directory, also while the server runs"
                                : "Restore a backup into a new or empty data directory",
               "pipewright " + verb};
  std::string data_dir;
  std::string file;
  app.add_option("--data-dir", data_dir, "the server's data directory")->required();
  if (verb == "backup") {
    app.add_option("--to", file, "the archive to write (.tar.gz)")->required();
  } else {
    app.add_option("--from", file, "the archive `pipewright backup` wrote")->required();
  }
  std::vector<std::string> rev(args.rbegin(), args.rend());
  try {
    app.parse(rev);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return verb == "backup" ? Backup(data_dir, file) : Restore(file, data_dir);
}

}  // namespace pw::server
