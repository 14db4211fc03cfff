"""The Debian package (issue 17): scripts/make-deb (what `make deb` runs) over the built binary,
then its control data, files, conffile, maintainer scripts, the unit checked by
`systemd-analyze verify`, the packaged configuration checked by the packaged binary, and lintian
(errors) when installed. Installing into a clean bookworm chroot needs debootstrap and a mirror:
skipped with a message where debootstrap is missing.

Run: /usr/bin/python3 -m unittest tests/e2e/test_package.py
"""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import PIPEWRIGHT, ROOT


def run(*args, **kw):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=300, **kw)


@unittest.skipUnless(shutil.which("dpkg-deb"), "dpkg-deb is not installed")
class PackageTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="pw-e2e-deb-")
        r = run(os.path.join(ROOT, "scripts", "make-deb"), PIPEWRIGHT, cls.tmp)
        assert r.returncode == 0, r.stderr
        cls.deb = r.stdout.strip()
        cls.root = os.path.join(cls.tmp, "root")
        r = run("dpkg-deb", "-x", cls.deb, cls.root)
        assert r.returncode == 0, r.stderr
        cls.control = os.path.join(cls.tmp, "control")
        r = run("dpkg-deb", "-e", cls.deb, cls.control)
        assert r.returncode == 0, r.stderr
        with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
            cls.version = re.search(r"project\(pipewright VERSION ([0-9.]+)", f.read()).group(1)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_name_version_and_dependencies(self):
        self.assertEqual(os.path.basename(self.deb),
                         "pipewright_%s_%s.deb" % (self.version,
                                                   run("dpkg", "--print-architecture").stdout.strip()))
        fields = run("dpkg-deb", "-f", self.deb, "Package", "Version", "Depends").stdout
        self.assertIn("Package: pipewright\n", fields)
        self.assertIn("Version: %s\n" % self.version, fields)
        self.assertRegex(fields, r"Depends: .*libc6 \(>= [0-9.]+\)")
        for dep in ("adduser", "libsqlite3-0", "libgit2-1.5", "libyaml-cpp0.7"):
            self.assertIn(dep, fields)

    def test_files_owners_and_conffile(self):
        listing = run("dpkg-deb", "-c", self.deb).stdout
        for path, mode in (("./usr/bin/pipewright", "-rwxr-xr-x"),
                           ("./lib/systemd/system/pipewright.service", "-rw-r--r--"),
                           ("./etc/pipewright/pipewright.yaml", "-rw-r--r--"),
                           ("./usr/share/doc/pipewright/copyright", "-rw-r--r--"),
                           ("./usr/share/doc/pipewright/changelog.gz", "-rw-r--r--")):
            line = [l for l in listing.splitlines() if l.endswith(" " + path)]
            self.assertEqual(len(line), 1, path)
            self.assertTrue(line[0].startswith(mode + " root/root"), line[0])
        with open(os.path.join(self.control, "conffiles")) as f:
            self.assertEqual(f.read(), "/etc/pipewright/pipewright.yaml\n")
        with open(os.path.join(self.control, "postinst")) as f:
            postinst = f.read()
        self.assertIn("adduser --system --group --home /var/lib/pipewright", postinst)
        self.assertIn("install -d -o pipewright -g pipewright -m 0750 /var/lib/pipewright", postinst)
        for script in ("postinst", "prerm", "postrm"):
            path = os.path.join(self.control, script)
            self.assertTrue(os.access(path, os.X_OK), script)
            self.assertEqual(run("sh", "-n", path).returncode, 0, script)
        r = run("md5sum", "--check", "--quiet", os.path.join(self.control, "md5sums"), cwd=self.root)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_packaged_binary_and_configuration(self):
        binary = os.path.join(self.root, "usr", "bin", "pipewright")
        r = run(binary, "--version")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith("pipewright %s (" % self.version), r.stdout)
        self.assertNotIn(".debug_info", run("objdump", "-h", binary).stdout)  # Stripped.
        config = os.path.join(self.root, "etc", "pipewright", "pipewright.yaml")
        r = run(binary, "serve", "--config", config, "--check-config")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("configuration OK", r.stdout)

    def test_unit(self):
        with open(os.path.join(self.root, "lib/systemd/system/pipewright.service")) as f:
            unit = f.read()
        for line in ("Type=notify", "User=pipewright", "Restart=on-failure", "NoNewPrivileges=yes",
                     "ProtectSystem=strict", "ReadWritePaths=/var/lib/pipewright", "PrivateTmp=yes",
                     "ExecStart=/usr/bin/pipewright serve --config /etc/pipewright/pipewright.yaml"):
            self.assertIn(line + "\n", unit)
        if not shutil.which("systemd-analyze"):
            self.skipTest("systemd-analyze is not installed")
        # verify --root: the package's files plus the host's units (targets it orders against).
        units = os.path.join(self.root, "lib", "systemd", "system")
        for name in os.listdir("/lib/systemd/system"):
            src = os.path.join("/lib/systemd/system", name)
            if not os.path.exists(os.path.join(units, name)) and os.path.isfile(src):
                shutil.copy(src, units, follow_symlinks=True)
        r = run("systemd-analyze", "verify", "--man=no", "--root=" + self.root,
                "/lib/systemd/system/pipewright.service", cwd=self.tmp)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr.strip(), "")  # Warnings (a bad value is only "ignoring") too.

    @unittest.skipUnless(shutil.which("lintian"), "lintian is not installed")
    def test_lintian_finds_no_error(self):
        r = run("lintian", "--fail-on", "error", "--tag-display-limit", "0", self.deb)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotRegex(r.stdout, r"(?m)^E: ")

    @unittest.skipUnless(shutil.which("debootstrap"), "debootstrap is not installed: the install "
                         "into a clean bookworm chroot (user, directory, unit) is not exercised here")
    def test_install_in_a_clean_chroot(self):
        chroot = os.path.join(self.tmp, "chroot")
        r = run("debootstrap", "--variant=minbase", "bookworm", chroot)
        if r.returncode != 0:
            self.skipTest("debootstrap could not build a chroot (no mirror?): " + r.stderr[-300:])
        shutil.copy(self.deb, os.path.join(chroot, "tmp"))
        r = run("chroot", chroot, "sh", "-c", "apt-get install -y /tmp/" + os.path.basename(self.deb))
        self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr[-2000:])
        self.assertIn("pipewright:", run("chroot", chroot, "getent", "passwd", "pipewright").stdout)
        st = os.stat(os.path.join(chroot, "var/lib/pipewright"))
        self.assertEqual(oct(st.st_mode & 0o777), "0o750")


if __name__ == "__main__":
    unittest.main()
