#pragma once

// Thread names: each long-lived thread of the server says what it is, as
// top -H, perf (--sort comm), gdb and /proc/<pid>/task/<tid>/comm show it:
// pw-work (the engine's work queue), pw-reaper (children's exits and
// output), pw-unmount (released overlays, spare run directories),
// pw-ticker, pw-http (request handlers), pw-log, pw-leases, pw-logship,
// pw-health, pw-signals, pw-job (a job worker's job). The main thread (the
// HTTP I/O loop in `serve`) is not renamed: its name is the process's, which
// ps -C and pgrep match.
//
//   std::thread t([] { NameThisThread("pw-ticker"); Loop(); });
//   ThisThreadName();  // "pw-ticker"

#include <string>
#include <string_view>

namespace pw {

// Names the calling thread; Linux keeps at most 15 bytes (the rest is cut).
void NameThisThread(std::string_view name);
// The calling thread's name (empty if it cannot be read).
std::string ThisThreadName();

}  // namespace pw
