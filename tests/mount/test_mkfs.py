"""mkfs.sessionfs: makes an empty store, refuses anything else."""
import json
import os
import shutil
import stat
import tempfile
import unittest

import sfs


def assert_store_modes(tc, store):
    """Every file in @store is 0600, every directory 0700. Symlinks (the
    format stores a session's symlinks as symlinks with encrypted targets)
    have no mode of their own on Linux, and are not followed."""
    tc.assertEqual(stat.S_IMODE(os.stat(store).st_mode), 0o700, store)
    for root, dirs, files in os.walk(store):
        for d in dirs:
            p = os.path.join(root, d)
            st = os.lstat(p)
            tc.assertTrue(stat.S_ISDIR(st.st_mode), p)
            tc.assertEqual(stat.S_IMODE(st.st_mode), 0o700, "%s is %o" % (p, st.st_mode))
        for f in files:
            p = os.path.join(root, f)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                continue
            tc.assertTrue(stat.S_ISREG(st.st_mode), "%s is not a regular file" % p)
            tc.assertEqual(stat.S_IMODE(st.st_mode), 0o600, "%s is %o" % (p, st.st_mode))


class MkfsTest(unittest.TestCase):
    def setUp(self):
        sfs.need_binaries(sfs.MKFS)
        self.tmp = tempfile.mkdtemp(prefix="sfs-mkfs-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.store = os.path.join(self.tmp, "store")

    def check_empty_store(self, store):
        self.assertEqual(sorted(os.listdir(store)), ["archive", "sessionfs.conf", "sessions"])
        with open(os.path.join(store, "sessionfs.conf")) as f:
            conf = json.load(f)
        self.assertIsInstance(conf, dict)
        self.assertEqual(conf.get("version"), 1)
        self.assertEqual(conf.get("features"), [])
        self.assertEqual(os.listdir(os.path.join(store, "sessions")), [])
        self.assertEqual(os.listdir(os.path.join(store, "archive")), [])
        assert_store_modes(self, store)

    def test_absent_path(self):
        r = sfs.run([sfs.MKFS, "--kdf=interactive", self.store])
        self.assertEqual(r.rc, 0, r)
        self.check_empty_store(self.store)

    def test_empty_dir(self):
        os.mkdir(self.store, 0o755)
        r = sfs.run([sfs.MKFS, self.store])
        self.assertEqual(r.rc, 0, r)
        self.check_empty_store(self.store)

    def test_every_kdf_level(self):
        for level in ("interactive", "moderate", "sensitive"):
            with self.subTest(level=level):
                p = os.path.join(self.tmp, level)
                r = sfs.run([sfs.MKFS, "--kdf=" + level, p])
                self.assertEqual(r.rc, 0, r)
                self.check_empty_store(p)

    def test_refuses_non_empty_dir(self):
        os.mkdir(self.store)
        sfs.write_file(os.path.join(self.store, "precious.txt"), "keep me")
        r = sfs.run([sfs.MKFS, self.store])
        self.assertEqual(r.rc, 3, r)
        self.assertTrue(r.err.startswith("mkfs.sessionfs: "), r.err)
        self.assertIn("not empty", r.err)
        self.assertEqual(os.listdir(self.store), ["precious.txt"])
        self.assertEqual(sfs.read_file(os.path.join(self.store, "precious.txt")), b"keep me")

    def test_refuses_existing_store(self):
        sfs.mkfs(self.store)
        conf = sfs.read_file(os.path.join(self.store, "sessionfs.conf"))
        r = sfs.run([sfs.MKFS, self.store])
        self.assertEqual(r.rc, 3, r)
        self.assertTrue(r.err.startswith("mkfs.sessionfs: "), r.err)
        self.assertIn("already", r.err)
        self.assertEqual(sfs.read_file(os.path.join(self.store, "sessionfs.conf")), conf)

    def test_refuses_a_file(self):
        sfs.write_file(self.store, "not a dir")
        r = sfs.run([sfs.MKFS, self.store])
        self.assertEqual(r.rc, 3, r)
        self.assertTrue(r.err.startswith("mkfs.sessionfs: "), r.err)
        self.assertEqual(sfs.read_file(self.store), b"not a dir")

    def test_bad_kdf(self):
        r = sfs.run([sfs.MKFS, "--kdf=extreme", self.store])
        self.assertEqual(r.rc, 2, r)
        self.assertTrue(r.err.startswith("mkfs.sessionfs: "), r.err)
        self.assertFalse(os.path.exists(self.store))

    def test_usage(self):
        r = sfs.run([sfs.MKFS])
        self.assertEqual(r.rc, 2, r)
        r = sfs.run([sfs.MKFS, "--no-such-option", self.store])
        self.assertEqual(r.rc, 2, r)
        self.assertFalse(os.path.exists(self.store))
        r = sfs.run([sfs.MKFS, "--help"])
        self.assertEqual(r.rc, 0, r)
        self.assertIn("Usage", r.out)


if __name__ == "__main__":
    sfs.main()
