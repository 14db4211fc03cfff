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

#include <string>

namespace pw::runner {

// True once the process is in a namespace of its own set up as above; false
// with `why` when it could not be (not privileged: EPERM, which also means no
// overlays can be mounted; more than one thread running; no /proc).
bool EnterOwnMountNamespace(std::string* why);

// Whether the mount holding `path` propagates mount events to or from other
// mounts ("shared:" among its optional fields in /proc/self/mountinfo);
// false when it cannot tell (tests).
bool MountIsShared(const std::string& path);

}  // namespace pw::runner
