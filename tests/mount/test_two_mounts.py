"""Two mounts of one store: a session unlocked in one is busy in the other."""
import errno
import os
import subprocess
import time
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

    def test_list_says_unlocked_elsewhere(self):
        sid = self.e.new(self.a)
        other = self.e.new(self.a)
        self.e.lock(self.a, other)
        by_id = {s["id"]: s for s in self.e.list(self.b)}
        # locked here (nothing of it is reachable in B), unlocked in A
        self.assertIs(by_id[sid]["locked"], True)
        self.assertIs(by_id[sid].get("unlocked_elsewhere"), True, by_id[sid])
        self.assertNotIn("unlocked_elsewhere", by_id[other])
        # A, which has it unlocked itself, says unlocked, not elsewhere
        by_id_a = {s["id"]: s for s in self.e.list(self.a)}
        self.assertIs(by_id_a[sid]["locked"], False)
        self.assertNotIn("unlocked_elsewhere", by_id_a[sid])
        r = self.e.ctl("list", self.b.mnt)
        self.assertEqual(r.rc, 0, r)
        [line] = [ln for ln in r.out.splitlines() if sid in ln]
        self.assertIn("unlocked elsewhere", line)
        [line] = [ln for ln in r.out.splitlines() if other in ln]
        self.assertRegex(line, r"\blocked\b")
        self.assertNotIn("elsewhere", line)
        # once A locks it, B lists it as plainly locked
        self.e.lock(self.a, sid)
        by_id = {s["id"]: s for s in self.e.list(self.b)}
        self.assertNotIn("unlocked_elsewhere", by_id[sid])

    def test_no_archive_while_unlocked_elsewhere(self):
        sid = self.e.new(self.a)
        sfs.write_file(os.path.join(self.a.sdir(sid), "f.txt"), "in A\n")
        arch = os.path.join(self.b.mnt, "archive", sid)
        with self.assertRaises(OSError) as cm:
            os.rename(self.b.sdir(sid), arch)
        self.assertEqual(cm.exception.errno, errno.EBUSY)
        r = sfs.run(["mv", self.b.sdir(sid), os.path.join(self.b.mnt, "archive")])
        self.assertNotEqual(r.rc, 0, r)
        self.assertIn("busy", r.err)
        self.assertEqual(os.listdir(os.path.join(self.b.mnt, "archive")), [])
        self.assertEqual(sfs.read_file(os.path.join(self.a.sdir(sid), "f.txt")), b"in A\n")
        # A itself may archive it, unlocked or not, and B may once A has locked it
        os.rename(self.a.sdir(sid), os.path.join(self.a.mnt, "archive", sid))
        self.assertEqual(sfs.read_file(os.path.join(self.a.mnt, "archive", sid, "f.txt")),
                         b"in A\n")
        os.rename(os.path.join(self.a.mnt, "archive", sid), self.a.sdir(sid))
        self.e.lock(self.a, sid)
        os.rename(self.b.sdir(sid), arch)
        self.assertEqual(os.listdir(os.path.join(self.b.mnt, "archive")), [sid])
        # ...and, archived, it unlocks in A from its new place
        r = self.e.ctl("unlock", os.path.join(self.a.mnt, "archive", sid),
                       password=sfs.PASSWORD)
        self.assertEqual(r.rc, 0, r)
        with self.assertRaises(OSError) as cm:
            os.rename(arch, self.b.sdir(sid))
        self.assertEqual(cm.exception.errno, errno.EBUSY)


    def test_unlock_waiting_for_a_delete_finds_the_session_gone(self):
        # B's unlock waits (up to 2 s) for the busy lock A holds; A deletes the
        # session, which renames the container out of sight under that lock,
        # lets go of it, then removes the files (its first unlinkat held 3 s by
        # strace here). B, taking the lock then, must not unlock the session
        # being removed: "no such session", nothing registered as unlocked.
        if subprocess.run(["strace", "-V"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode != 0:
            self.skipTest("strace is not installed (.ci/deps installs it)")
        sid = self.e.new(self.a)
        st = subprocess.Popen(["strace", "-f", "-p", str(self.a.daemon_pids[0]), "-o", "/dev/null",
                               "-e", "trace=unlinkat",
                               "-e", "inject=unlinkat:delay_enter=3000000:when=1"],
                              stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.addCleanup(st.stderr.close)
        self.addCleanup(st.wait)
        self.addCleanup(st.kill)
        line = st.stderr.readline()
        self.assertIn("attached", line)
        b = subprocess.Popen([sfs.SESSIONCTL, "unlock", "--password-file",
                              self.e.pwfile(sfs.PASSWORD), self.b.sdir(sid)],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        time.sleep(0.5)  # B is waiting for the busy lock
        r = self.e.ctl("delete", "--yes", self.a.sdir(sid))
        self.assertEqual(r.rc, 0, r)
        out, err = b.communicate(timeout=60)
        self.assertEqual(b.returncode, 4, (out, err))
        self.assertNotIn(sid, os.listdir(self.b.sessions()))
        self.assertNotIn(sid, [s["id"] for s in self.e.list(self.b)])


class StackedMountTest(unittest.TestCase):
    def test_second_mount_on_a_mountpoint_refused(self):
        e = sfs.Env()
        self.addCleanup(e.cleanup)
        m = e.mount()
        # (before the fix a second mount stacked: undo every one, last first)
        self.addCleanup(lambda: [sfs.umount(m.mnt) for _ in range(4)])
        sid = e.new(m)
        for mnt in (m.mnt, m.mnt + "/", m.mnt + "/sessions/.."):
            r = sfs.run([sfs.SESSIONFS, e.store, mnt])
            self.assertEqual(r.rc, 6, r)
            self.assertTrue(r.err.startswith("sessionfs: "), r.err)
            self.assertIn("mounted there already", r.err)
        # another store on the same place: refused all the same
        other = e.path("store2")
        sfs.mkfs(other)
        r = sfs.run([sfs.SESSIONFS, other, m.mnt])
        self.assertEqual(r.rc, 6, r)
        with open("/proc/self/mountinfo") as f:
            tops = [ln for ln in f if ln.split()[4] == m.mnt]
        self.assertEqual(len(tops), 1, tops)
        # so lock --all reaches the one mount there is
        r = e.ctl("lock", "--all", m.mnt)
        self.assertEqual(r.rc, 0, r)
        self.assertIn("locked 1 sessions", r.out)
        with self.assertRaises(PermissionError):
            os.listdir(m.sdir(sid))
        # a mountpoint with a space in its name is found too
        spaced = e.path("mount point")
        os.mkdir(spaced)
        m2 = e.mount(mnt=spaced)
        r = sfs.run([sfs.SESSIONFS, e.store, spaced])
        self.assertEqual(r.rc, 6, r)
        e.assert_umount(m2)


if __name__ == "__main__":
    sfs.main()
