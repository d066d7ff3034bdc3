"""Two mounts of one store: a session unlocked in one is busy in the other."""
import os
import unittest

import sfs


class TwoMountsTest(unittest.TestCase):
    def setUp(self):
        self.e = sfs.Env()
        self.addCleanup(self.e.cleanup)
        self.a = self.e.mount()
        self.b = self.e.mount()

    def test_busy_in_other_mount(self):
        sid = self.e.new(self.a)
        sfs.write_file(os.path.join(self.a.sdir(sid), "f.txt"), "written in A\n")
        # B sees the session (it is in the store) but locked
        self.assertIn(sid, os.listdir(self.b.sessions()))
        [entry] = [s for s in self.e.list(self.b) if s["id"] == sid]
        self.assertIs(entry["locked"], True)
        r = self.e.ctl("unlock", self.b.sdir(sid), password=sfs.PASSWORD)
        self.assertEqual(r.rc, 6, r)
        self.assertTrue(r.err.startswith("sessionctl: "), r.err)
        with self.assertRaises(PermissionError):
            os.listdir(self.b.sdir(sid))
        # A is unaffected
        self.assertEqual(sfs.read_file(os.path.join(self.a.sdir(sid), "f.txt")),
                         b"written in A\n")
        # once A locks it, B may unlock it and sees A's data
        self.e.lock(self.a, sid)
        self.e.unlock(self.b, sid)
        self.assertEqual(sfs.read_file(os.path.join(self.b.sdir(sid), "f.txt")),
                         b"written in A\n")
        # ...and now A is the one that gets busy
        r = self.e.ctl("unlock", self.a.sdir(sid), password=sfs.PASSWORD)
        self.assertEqual(r.rc, 6, r)

    def test_busy_is_checked_before_password(self):
        # busy must not be masked by (or leak) a password check: a wrong password
        # for a session busy elsewhere is still either busy or wrong password.
        sid = self.e.new(self.a)
        r = self.e.ctl("unlock", self.b.sdir(sid), password="wrong")
        self.assertIn(r.rc, (3, 6), r)

    def test_unmount_releases(self):
        sid = self.e.new(self.a)
        self.e.assert_umount(self.a)
        self.e.unlock(self.b, sid)
        os.listdir(self.b.sdir(sid))

    def test_different_sessions_in_each(self):
        s1 = self.e.new(self.a)
        s2 = self.e.new(self.b)
        sfs.write_file(os.path.join(self.a.sdir(s1), "a"), "A")
        sfs.write_file(os.path.join(self.b.sdir(s2), "b"), "B")
        self.assertEqual(sorted(os.listdir(self.a.sessions())), sorted([s1, s2]))
        self.assertEqual(sorted(os.listdir(self.b.sessions())), sorted([s1, s2]))
        self.e.lock(self.a, s1)
        self.e.lock(self.b, s2)
        self.e.unlock(self.a, s2)
        self.assertEqual(sfs.read_file(os.path.join(self.a.sdir(s2), "b")), b"B")


if __name__ == "__main__":
    sfs.main()
