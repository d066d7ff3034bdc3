"""Installed sessionfs works as a mount(8) helper: mount -t fuse.sessionfs and fstab.

InstallTest INSTALLS the build (`meson install -C $SFS_BUILD`) into its
configured prefix, edits /etc/fstab and may add /sbin/mount.fuse.sessionfs
(both restored afterwards): run it as root on a disposable machine (CI).
Skipped when not root. It mounts with `mount -t fuse.sessionfs`, with fstab
lines (`mount MNT` from /etc/fstab, `mount -T FILE MNT`), through the
installed mount.fuse.sessionfs link run as mount(8) runs it, and through that
link placed in /sbin (mount.fuse3's drop_privileges, which mounts by
itself, is refused): every such mount must be nosuid,nodev in the kernel's
mount table, though mount.fuse3 hands the daemon mount(8)'s defaults
"dev,suid", and a set-user-ID-root program planted in a session must run
with the caller's euid and a device node must not open; with -o
sfs_allow_suid,sfs_allow_dev both work.

LayoutTest (no root, nothing outside temp directories): `meson install
--destdir` writes nothing outside DESTDIR/PREFIX, and a fresh `meson setup
--prefix=P` installs every file, the helper link too, under P unless
-Dfstab_helper_dir names another place.
"""
import errno
import json
import os
import shutil
import tempfile
import unittest

import sfs

FSTAB = "/etc/fstab"
SBIN_HELPER = "/sbin/mount.fuse.sessionfs"
README_OPTS = "idle_lock=30m,allow_other,default_permissions,nofail"  # README's fstab line


def installed(build):
    """{source: installed path} of @build (meson introspect --installed)."""
    r = sfs.run(["meson", "introspect", build, "--installed"])
    if r.rc != 0:
        raise AssertionError("meson introspect failed: %r" % r)
    return json.loads(r.out)


def helper_link(build):
    links = [d for s, d in installed(build).items() if s == "mount.fuse.sessionfs"]
    if len(links) != 1:
        raise AssertionError("no mount.fuse.sessionfs among the installed files")
    return links[0]


class InstallTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root: installs the build and edits /etc/fstab")
        sfs.need_binaries()
        meson = shutil.which("meson")
        if not meson:
            raise AssertionError("meson not found in PATH")
        r = sfs.run([meson, "install", "-C", sfs.BUILD], timeout=300)
        if r.rc != 0:
            raise AssertionError("meson install failed: %r" % r)

    def setUp(self):
        self.e = sfs.Env()
        self.addCleanup(self.e.cleanup)
        self.mnt = self.e.path("mnt-helper")
        os.mkdir(self.mnt)
        self.addCleanup(sfs.umount, self.mnt)

    def check_mounted(self):
        self.assertTrue(os.path.ismount(self.mnt), "%s is not mounted" % self.mnt)
        self.assertEqual(sorted(os.listdir(self.mnt)), ["archive", "sessions"])
        with open("/proc/self/mounts") as f:
            lines = [ln.split() for ln in f if ln.split()[1] == self.mnt]
        self.assertEqual(len(lines), 1, lines)
        self.assertEqual(lines[0][2], "fuse.sessionfs", lines)
        self.assertLessEqual({"nosuid", "nodev"}, set(lines[0][3].split(",")), lines)
        self.assertLessEqual({"nosuid", "nodev"}, sfs.mount_options(self.mnt))
        # and it is a working sessionfs: a session can be made and used
        r = self.e.ctl("new", self.mnt, password=sfs.PASSWORD)
        self.assertEqual(r.rc, 0, r)
        sid = r.out.strip()
        sfs.write_file(os.path.join(self.mnt, "sessions", sid, "x.txt"), "via helper")
        self.assertEqual(sfs.read_file(os.path.join(self.mnt, "sessions", sid, "x.txt")),
                         b"via helper")
        self.umount()

    def umount(self):
        r = sfs.run(["umount", self.mnt])
        self.assertEqual(r.rc, 0, r)
        self.assertFalse(os.path.ismount(self.mnt))

    def setid(self, allowed):
        """Mounted allow_other: a set-user-ID-root id(1) and a /dev/zero
        node in a new session work only if @allowed."""
        os.chmod(self.e.tmp, 0o755)  # let nobody reach the mountpoint
        r = self.e.ctl("new", self.mnt, password=sfs.PASSWORD)
        self.assertEqual(r.rc, 0, r)
        outcome = sfs.setid_outcome(os.path.join(self.mnt, "sessions", r.out.strip()))
        flags = sfs.mount_options(self.mnt)
        if allowed:
            self.assertEqual({"nosuid", "nodev"} & flags, set())
            self.assertEqual(outcome, (0, b"\0" * 4))
        else:
            self.assertLessEqual({"nosuid", "nodev"}, flags)
            self.assertEqual(outcome, (sfs.NOBODY, "EACCES"))
        self.umount()

    def fstab_file(self, opts):
        """A private fstab (for mount -T) with one line for the store."""
        path = self.e.path("fstab")
        with open(path, "w") as f:
            f.write("%s %s fuse.sessionfs %s 0 0\n" % (self.e.store, self.mnt, opts))
        return path

    def test_mount_t(self):
        r = sfs.run(["mount", "-t", "fuse.sessionfs", self.e.store, self.mnt])
        self.assertEqual(r.rc, 0, r)
        self.check_mounted()

    def test_mount_t_with_options(self):
        r = sfs.run(["mount", "-t", "fuse.sessionfs", "-o", "allow_other,default_permissions",
                     self.e.store, self.mnt])
        self.assertEqual(r.rc, 0, r)
        with open("/proc/self/mounts") as f:
            opts = [ln.split()[3] for ln in f if ln.split()[1] == self.mnt]
        self.assertEqual(len(opts), 1)
        self.assertIn("allow_other", opts[0])
        self.assertIn("default_permissions", opts[0])
        self.check_mounted()

    def test_fstab(self):
        with open(FSTAB, "rb") as f:
            saved = f.read()
        try:
            with open(FSTAB, "ab") as f:
                if saved and not saved.endswith(b"\n"):
                    f.write(b"\n")
                f.write(("%s %s fuse.sessionfs noauto 0 0\n"
                         % (self.e.store, self.mnt)).encode())
            r = sfs.run(["mount", self.mnt])
            self.assertEqual(r.rc, 0, r)
            self.check_mounted()
        finally:
            with open(FSTAB, "wb") as f:
                f.write(saved)

    def test_mount_t_setid(self):
        r = sfs.run(["mount", "-t", "fuse.sessionfs", "-o", "allow_other",
                     self.e.store, self.mnt])
        self.assertEqual(r.rc, 0, r)
        self.setid(allowed=False)

    def test_mount_t_explicit_dev_suid_ignored(self):
        r = sfs.run(["mount", "-t", "fuse.sessionfs", "-o", "allow_other,dev,suid",
                     self.e.store, self.mnt])
        self.assertEqual(r.rc, 0, r)
        self.setid(allowed=False)

    def test_mount_t_allowed(self):
        r = sfs.run(["mount", "-t", "fuse.sessionfs", "-o",
                     "allow_other,sfs_allow_suid,sfs_allow_dev", self.e.store, self.mnt])
        self.assertEqual(r.rc, 0, r)
        self.setid(allowed=True)

    def test_fstab_file(self):
        r = sfs.run(["mount", "-T", self.fstab_file(README_OPTS), self.mnt])
        self.assertEqual(r.rc, 0, r)
        self.setid(allowed=False)

    def test_fstab_file_allowed(self):
        r = sfs.run(["mount", "-T", self.fstab_file(README_OPTS + ",sfs_allow_suid,sfs_allow_dev"),
                     self.mnt])
        self.assertEqual(r.rc, 0, r)
        self.setid(allowed=True)

    def test_installed_link(self):
        # the installed link, run as mount(8) runs a helper it found
        link = helper_link(sfs.BUILD)
        self.assertTrue(os.path.islink(link), link)
        self.assertEqual(os.path.basename(os.path.realpath(link)), "mount.fuse3")
        r = sfs.run([link, self.e.store, self.mnt, "-o", "rw,allow_other"])
        self.assertEqual(r.rc, 0, r)
        self.setid(allowed=False)

    def test_link_in_sbin(self):
        # as after -Dfstab_helper_dir=/sbin: mount(8) finds mount.fuse.sessionfs
        if os.path.lexists(SBIN_HELPER):
            self.assertEqual(os.path.basename(os.path.realpath(SBIN_HELPER)), "mount.fuse3")
        else:
            os.symlink(os.path.realpath(helper_link(sfs.BUILD)), SBIN_HELPER)
            self.addCleanup(os.unlink, SBIN_HELPER)
        r = sfs.run(["mount", "-T", self.fstab_file(README_OPTS), self.mnt])
        self.assertEqual(r.rc, 0, r)
        self.setid(allowed=False)
        r = sfs.run(["mount", "-t", "fuse.sessionfs", "-o", "allow_other", self.e.store,
                     self.mnt])
        self.assertEqual(r.rc, 0, r)
        self.check_mounted()

    def test_drop_privileges_refused(self):
        # mount.fuse3 would mount by itself, dev,suid, and hand over /dev/fd/N
        r = sfs.run(["mount", "-t", "fuse.sessionfs", "-o", "drop_privileges",
                     self.e.store, self.mnt])
        self.assertNotEqual(r.rc, 0, r)
        self.assertIn("drop_privileges) is not supported", r.err)
        # mount.fuse3's own mount stays, served by no one (os.path.ismount
        # cannot see it: its lstat fails with ENOTCONN)
        with open("/proc/self/mountinfo") as f:
            left = [ln for ln in f if ln.split()[4] == self.mnt]
        if left:
            with self.assertRaises(OSError) as cm:
                os.listdir(self.mnt)
            self.assertEqual(cm.exception.errno, errno.ENOTCONN)
            r = sfs.run(["umount", self.mnt])
            self.assertEqual(r.rc, 0, r)

    def test_mount_refuses_non_store(self):
        os.mkdir(self.e.path("not-a-store"))
        r = sfs.run(["mount", "-t", "fuse.sessionfs", self.e.path("not-a-store"), self.mnt])
        self.assertNotEqual(r.rc, 0, r)
        self.assertFalse(os.path.ismount(self.mnt))
        self.assertIn("not a sessionfs store", r.err)


class LayoutTest(unittest.TestCase):
    """Where `meson install` puts things: under the prefix, and only there."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="sfs-install-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        with open(os.path.join(sfs.BUILD, "meson-info", "meson-info.json")) as f:
            self.source = json.load(f)["directories"]["source"]

    def prefix_of(self, build):
        r = sfs.run(["meson", "introspect", build, "--buildoptions"])
        self.assertEqual(r.rc, 0, r)
        return [o["value"] for o in json.loads(r.out) if o["name"] == "prefix"][0]

    def under(self, path, top):
        return os.path.commonpath([path, top]) == top

    def test_destdir_holds_everything_under_the_prefix(self):
        dest = os.path.join(self.tmp, "dest")
        r = sfs.run(["meson", "install", "-C", sfs.BUILD, "--no-rebuild", "--destdir", dest],
                    timeout=300)
        self.assertEqual(r.rc, 0, r)
        top = os.path.join(dest, self.prefix_of(sfs.BUILD).lstrip("/"))
        found = []
        for dirpath, dnames, fnames in os.walk(dest):
            for n in dnames + fnames:
                p = os.path.join(dirpath, n)
                if os.path.islink(p) or not os.path.isdir(p):
                    found.append(p)
                    self.assertTrue(self.under(p, top), "%s: outside %s" % (p, top))
        self.assertIn(os.path.join(top, "bin", "sessionfs"), found)
        link = os.path.join(top, "sbin", "mount.fuse.sessionfs")
        self.assertIn(link, found)
        self.assertEqual(os.path.basename(os.readlink(link)), "mount.fuse3")

    def setup(self, *options):
        build = os.path.join(self.tmp, "build")
        shutil.rmtree(build, ignore_errors=True)
        r = sfs.run(["meson", "setup", build, self.source] + list(options), timeout=300)
        self.assertEqual(r.rc, 0, r)
        return installed(build)

    def test_prefix_holds_everything(self):
        prefix = os.path.join(self.tmp, "prefix")
        files = self.setup("--prefix=" + prefix)
        self.assertIn(os.path.join(prefix, "sbin", "mount.fuse.sessionfs"), files.values())
        for dest in files.values():
            self.assertTrue(self.under(dest, prefix), "%s: outside %s" % (dest, prefix))

    def test_helper_dir_is_explicit(self):
        prefix = os.path.join(self.tmp, "prefix")
        files = self.setup("--prefix=" + prefix, "-Dfstab_helper_dir=/sbin")
        self.assertEqual(files["mount.fuse.sessionfs"], SBIN_HELPER)
        files = self.setup("--prefix=" + prefix, "-Dfstab_helper=false")
        self.assertNotIn("mount.fuse.sessionfs", files)


if __name__ == "__main__":
    sfs.main()
