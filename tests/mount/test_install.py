"""Installed sessionfs works as a mount(8) helper: mount -t fuse.sessionfs and fstab.

This test INSTALLS the build (`meson install -C $SFS_BUILD`) into its
configured prefix and edits /etc/fstab (restored afterwards): run it as root
on a disposable machine (CI). Skipped when not root.
"""
import os
import shutil
import unittest

import sfs

FSTAB = "/etc/fstab"


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
        # and it is a working sessionfs: a session can be made and used
        r = self.e.ctl("new", self.mnt, password=sfs.PASSWORD)
        self.assertEqual(r.rc, 0, r)
        sid = r.out.strip()
        sfs.write_file(os.path.join(self.mnt, "sessions", sid, "x.txt"), "via helper")
        self.assertEqual(sfs.read_file(os.path.join(self.mnt, "sessions", sid, "x.txt")),
                         b"via helper")
        r = sfs.run(["umount", self.mnt])
        self.assertEqual(r.rc, 0, r)
        self.assertFalse(os.path.ismount(self.mnt))

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

    def test_mount_refuses_non_store(self):
        os.mkdir(self.e.path("not-a-store"))
        r = sfs.run(["mount", "-t", "fuse.sessionfs", self.e.path("not-a-store"), self.mnt])
        self.assertNotEqual(r.rc, 0, r)
        self.assertFalse(os.path.ismount(self.mnt))
        self.assertIn("not a sessionfs store", r.err)


if __name__ == "__main__":
    sfs.main()
