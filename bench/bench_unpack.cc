// bench_unpack: what handing an input artifact to an action costs, per action:
// ArtifactStore::Extract (unzip every time, as before) against
// UnpackCache::Materialize (unpacked once, then a copy), on the same zip.
//
// Usage: bench_unpack [--files=60] [--file-bytes=4200] [--reps=200]
// The default tree is bench_all.py's source artifact: 60 files of ~4 KB in 6 directories.

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "bench_harness.h"
#include "runner/artifact_store.h"
#include "runner/temp_dir.h"
#include "runner/unpack_cache.h"

namespace pw::bench {
namespace {

namespace fs = std::filesystem;

int Main(int argc, char** argv) {
  int files = 60, file_bytes = 4200, reps = 200;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a.rfind("--files=", 0) == 0)
      files = std::atoi(argv[i] + 8);
    else if (a.rfind("--file-bytes=", 0) == 0)
      file_bytes = std::atoi(argv[i] + 13);
    else if (a.rfind("--reps=", 0) == 0)
      reps = std::atoi(argv[i] + 7);
    else {
      std::fprintf(stderr, "usage: %s [--files=60] [--file-bytes=4200] [--reps=200]\n", argv[0]);
      return 2;
    }
  }
  auto tmp = runner::ScopedTempDir::Create("pw-bench-unpack");
  if (!tmp.ok()) return 1;
  const fs::path root(tmp->path());
  for (int f = 0; f < files; ++f) {
    const fs::path dir = root / "src" / ("pkg" + std::to_string(f % 6)) / "src";
    fs::create_directories(dir);
    std::ofstream(dir / ("file" + std::to_string(f) + ".txt"))
        << std::string(static_cast<size_t>(file_bytes), static_cast<char>('a' + f % 26));
  }
  runner::ArtifactStore store((root / "artifacts").string());
  auto rev = store.PutDirectory((root / "src").string());
  if (!rev.ok()) return 1;
  runner::UnpackCache copies(&store, (root / "unpacked-copy").string(), 16, uint64_t{1} << 30,
                             runner::UnpackCache::Mode::kCopy);
  runner::UnpackCache overlays(&store, (root / "unpacked").string());
  std::vector<double> extract, copy, copy_rm, overlay, overlay_release;
  for (int i = -5; i < reps; ++i) {
    const std::string a = (root / "work" / ("x" + std::to_string(i))).string();
    const std::string b = (root / "work" / ("c" + std::to_string(i))).string();
    const std::string c = (root / "work" / ("o" + std::to_string(i))).string();
    double t0 = MonoNow();
    if (!store.Extract(*rev, a).ok()) return 1;
    double t1 = MonoNow();
    if (!copies.Materialize(*rev, b).ok()) return 1;
    double t2 = MonoNow();
    std::error_code ec;
    fs::remove_all(a, ec);
    double t3 = MonoNow();
    fs::remove_all(b, ec);
    double t4 = MonoNow();
    double t5 = t4, t6 = t4;
    if (overlays.overlays()) {
      if (!overlays.Materialize(*rev, c).ok()) return 1;
      t5 = MonoNow();
      if (!overlays.Release(c)) fs::remove_all(c, ec);
      t6 = MonoNow();
    }
    if (i >= 0) {
      extract.push_back(t1 - t0);
      copy.push_back(t2 - t1);
      copy_rm.push_back(t4 - t3);
      overlay.push_back(t5 - t4);
      overlay_release.push_back(t6 - t5);
    }
  }
  auto line = [](const char* what, const std::vector<double>& v) {
    const Stats s = Summarize(v);
    std::printf("  %-44s median %s ms  p90 %s ms\n", what, Ms(s.median).c_str(), Ms(s.p90).c_str());
  };
  std::printf("input artifact of %d files x %d bytes, %d reps (load %s)\n", files, file_bytes, reps,
              LoadAverage().c_str());
  line("Extract (unzip per action)", extract);
  line("UnpackCache::Materialize, copy", copy);
  line("  then remove_all of the copy", copy_rm);
  if (overlays.overlays()) {
    line("UnpackCache::Materialize, overlay", overlay);
    line("  then Release (unmount queued)", overlay_release);
  } else {
    std::printf("  (no overlays here: %s)\n", overlays.overlay_problem().c_str());
  }
  return 0;
}

}  // namespace
}  // namespace pw::bench

int main(int argc, char** argv) { return pw::bench::Main(argc, argv); }
