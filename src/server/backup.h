#pragma once

// `pipewright backup` and `pipewright restore` (README: Operations).
//
//   pipewright backup --data-dir /var/lib/pipewright --to /srv/backup/pw.tar.gz
//   pipewright restore --from /srv/backup/pw.tar.gz --data-dir /var/lib/pipewright-new
//
// A backup may run while the server runs. It first copies the SQLite
// database with SQLite's online backup API (a consistent snapshot, taken
// while the server keeps writing), then the files of the data directory
// (artifacts, action logs, bucket objects). Files are only ever added under
// new names or appended to, and the database refers to a file only once it
// is complete, so every file the snapshot names is in the archive (files
// newer than the snapshot may be too: unreferenced, harmless). The archive is
// a gzip-compressed POSIX tar written by Debian's tar (run without a shell).
// With PostgreSQL (--database) the directory holds no database: back that up
// with pg_dump and this command for the files.
//
// Restore unpacks into a new or empty directory and checks the database.

#include <string>
#include <vector>

namespace pw::server {

// Runs `verb` ("backup" or "restore") with its arguments. Returns the exit
// code: 0 done, 1 failed (the message on stderr), 2 bad arguments.
int RunBackupCommand(const std::string& verb, const std::vector<std::string>& args);

}  // namespace pw::server
