"""Locked sessions: visible but unreachable; lock beats every cache; remount locks all."""
import os
import re
import stat
import unittest

import sfs


class LockTest(unittest.TestCase):
    def setUp(self):
        self.e = sfs.Env()
        self.addCleanup(self.e.cleanup)
        self.m = self.e.mount()

    def assert_unreachable(self, sid, names=("metadata.json", "events.jsonl")):
        d = self.m.sdir(sid)
        st = os.stat(d)  # stat-able...
        self.assertTrue(stat.S_ISDIR(st.st_mode))
        self.assertIn(sid, os.listdir(self.m.sessions()))  # ...and listed
        with self.assertRaises(PermissionError):
            os.listdir(d)
        for n in names:
            with self.assertRaises(PermissionError, msg=n):
                open(os.path.join(d, n), "rb").close()
            with self.assertRaises(PermissionError, msg=n):
                os.stat(os.path.join(d, n))
        with self.assertRaises(PermissionError):
            open(os.path.join(d, "new-file"), "wb").close()
        with self.assertRaises(PermissionError):
            os.mkdir(os.path.join(d, "new-dir"))

    def test_locked_session_is_unreachable(self):
        sid = self.e.new(self.m)
        sfs.write_file(os.path.join(self.m.sdir(sid), "notes.md"), "secret notes\n")
        os.mkdir(os.path.join(self.m.sdir(sid), "sub"))
        self.e.lock(self.m, sid)
        self.assert_unreachable(sid, ("metadata.json", "events.jsonl", "notes.md", "sub"))
        with self.assertRaises(PermissionError):
            os.listdir(os.path.join(self.m.sdir(sid), "sub"))

    def test_cached_file_unreadable_after_lock(self):
        sid = self.e.new(self.m)
        path = os.path.join(self.m.sdir(sid), "cached.txt")
        sfs.write_file(path, "CACHED-PLAINTEXT\n" * 1000)
        # read it (twice, so the kernel page cache surely holds it)
        for _ in range(2):
            r = sfs.run(["cat", path])
            self.assertEqual(r.rc, 0, r)
        meta = os.path.join(self.m.sdir(sid), "metadata.json")
        self.assertEqual(sfs.run(["cat", meta]).rc, 0)
        self.e.lock(self.m, sid)
        for p in (path, meta):
            r = sfs.run(["cat", p])
            self.assertNotEqual(r.rc, 0, "cat %s after lock: %r" % (p, r))
            self.assertEqual(r.out, "", "plaintext read after lock")
        self.e.unlock(self.m, sid)
        self.assertEqual(sfs.read_file(path), b"CACHED-PLAINTEXT\n" * 1000)

    def test_open_fds_fail_after_lock(self):
        sid = self.e.new(self.m, sid="INC-abcd")
        d = self.m.sdir(sid)
        sfs.write_file(os.path.join(d, "one.txt"), "ONE-PLAINTEXT\n" * 500)
        sfs.write_file(os.path.join(d, "two.txt"), "TWO-PLAINTEXT\n" * 500)
        fd1 = os.open(os.path.join(d, "one.txt"), os.O_RDONLY)
        fd2 = os.open(os.path.join(d, "two.txt"), os.O_RDWR)
        try:
            self.assertEqual(os.pread(fd1, 14, 0), b"ONE-PLAINTEXT\n")
            self.assertEqual(os.pread(fd2, 14, 0), b"TWO-PLAINTEXT\n")
            r = self.e.lock(self.m, sid)
            # "lock says how many were open": 2 files here
            self.assertRegex(r.out + r.err, r"(?<![\w-])2(?![\w-])",
                             "lock did not report 2 open files: %r" % r)
            for fd in (fd1, fd2):
                with self.assertRaises(OSError):
                    os.pread(fd, 14, 0)
                with self.assertRaises(OSError):
                    os.pread(fd, 100, 4000)
            with self.assertRaises(OSError):
                os.pwrite(fd2, b"written after lock", 0)
        finally:
            os.close(fd1)
            os.close(fd2)
        # the write after lock must not have reached the file
        self.e.unlock(self.m, sid)
        self.assertEqual(sfs.read_file(os.path.join(d, "two.txt")), b"TWO-PLAINTEXT\n" * 500)

    def test_lock_reports_zero_open_files(self):
        sid = self.e.new(self.m, sid="INC-abcd")
        r = self.e.lock(self.m, sid)
        self.assertRegex(r.out + r.err, r"(?<![\w-])0(?![\w-])", r)

    def test_open_dir_after_lock(self):
        sid = self.e.new(self.m)
        d = self.m.sdir(sid)
        os.mkdir(os.path.join(d, "sub"))
        sfs.write_file(os.path.join(d, "sub", "f"), "x")
        dfd = os.open(os.path.join(d, "sub"), os.O_RDONLY | os.O_DIRECTORY)
        try:
            self.e.lock(self.m, sid)
            with self.assertRaises(OSError):
                os.listdir(dfd)
        finally:
            os.close(dfd)

    def test_remount_locks_everything(self):
        a = self.e.new(self.m)
        b = self.e.new(self.m)
        sfs.write_file(os.path.join(self.m.sdir(a), "f"), "x")
        self.m = self.e.remount(self.m)
        sessions = self.e.list(self.m)
        self.assertEqual(sorted(s["id"] for s in sessions), sorted([a, b]))
        for s in sessions:
            self.assertIs(s["locked"], True, s)
        self.assert_unreachable(a)
        self.assert_unreachable(b)
        self.e.unlock(self.m, a)
        self.assertEqual(sfs.read_file(os.path.join(self.m.sdir(a), "f")), b"x")
        self.assert_unreachable(b)

    def test_lock_all_reports_and_locks(self):
        a = self.e.new(self.m)
        b = self.e.new(self.m)
        r = self.e.ctl("lock", "--all", self.m.mnt)
        self.assertEqual(r.rc, 0, r)
        self.assertTrue(re.search(r"\d", r.out + r.err), r)
        self.assert_unreachable(a)
        self.assert_unreachable(b)


if __name__ == "__main__":
    sfs.main()
