#pragma once

// The server's own mount namespace.
//
// The server mounts an overlay for every input artifact an action reads
// (UnpackCache). In the host's mount namespace those mounts take part in the
// host's propagation: on a systemd host `/` is shared, so each overlay is
// copied into every namespace that receives the host's mounts, and each
// unmount is propagated into the namespaces copied from the server's, the
// bubblewrap sandboxes among them. A sandbox still setting itself up (it
// remounts every mount it copied read-only, one by one) then finds one gone
// and fails ("Unable to apply mount flags: remount ...: No such file or
// directory"): a parallel group of 40 sandboxed actions failed every time.
//
// EnterOwnMountNamespace moves the process into a namespace of its own whose
// mounts are all slaves: mounts the host makes later still reach the server
// (a file system mounted after it started is seen), but the overlays it
// mounts are private. They propagate nowhere (not to the host, not into the
// running sandboxes), their unmount does not reach a sandbox's copies, and
// they vanish with the server's process, even after a crash.
//
//   std::string why;
//   if (!runner::EnterOwnMountNamespace(&why)) PW_LOG(Info) << why;
//
// Thread-hostile: it must run before the process starts any thread (unshare
// would move the calling thread alone); it refuses otherwise.

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace pw::runner {

// True once the process is in a namespace of its own set up as above; false
// with `why` when it could not be (not privileged: EPERM, which also means no
// overlays can be mounted; more than one thread running; no /proc).
bool EnterOwnMountNamespace(std::string* why);

// Whether the mount holding `path` propagates mount events to or from other
// mounts ("shared:" among its optional fields in /proc/self/mountinfo);
// false when it cannot tell (tests).
bool MountIsShared(const std::string& path);

// One action's own mount namespace, entered by the thread that mounts the
// action's inputs and spawns its sandbox, and left right after the spawn:
// the overlays live in it alone, so the server's namespace never holds them
// and each bwrap copies (and reads back from /proc, under the kernel's one
// global namespace lock) the server's few mounts and its own overlay rather
// than every overlay of its parallel group. The namespace ends when this
// object and the processes in it are gone; that is the unmount.
//
//   PW_ASSIGN_OR_RETURN(auto ns, ActionMountNamespace::Enter());
//   Mount(...); PW_ASSIGN_OR_RETURN(std::string view, ns->Pin(dir)); Spawn(...);
//   ns->Leave();          // The same thread, before it does anything else.
//   ... read `view` from any thread ...; ns.reset();
//
// Thread-compatible; Enter and Leave on one thread, the rest on any.
class ActionMountNamespace {
 public:
  // Moves the calling thread into a new mount namespace, a copy of its
  // current one (its mounts slaves where they were: see above). Fails,
  // nothing changed, where unshare(2) is refused.
  static Result<std::shared_ptr<ActionMountNamespace>> Enter();
  ~ActionMountNamespace();
  ActionMountNamespace(const ActionMountNamespace&) = delete;
  ActionMountNamespace& operator=(const ActionMountNamespace&) = delete;

  // A path to `dir` as this namespace shows it, valid from any thread in any
  // namespace while this object lives ("/proc/self/fd/<n>"). Call it inside.
  // Fails when `dir` cannot be opened (out of descriptors, say): `dir` itself,
  // read from another namespace, would be the empty mount point, so the
  // caller must fail rather than read it.
  Result<std::string> Pin(const std::string& dir);
  // Moves the thread that entered back where it came from, its working
  // directory restored (setns resets it to the root). Aborts if it cannot:
  // the thread would go on mounting in the wrong place.
  void Leave();

 private:
  ActionMountNamespace() = default;
  int ns_fd_ = -1;    // The action's namespace: keeps it alive.
  int home_fd_ = -1;  // The namespace the thread came from.
  int cwd_fd_ = -1;   // The thread's working directory there.
  bool inside_ = false;
  std::vector<int> pinned_;
};

}  // namespace pw::runner
