"""Locked sessions: visible but unreachable; lock beats every cache; remount locks all;
the automatic locks (idle_lock with files open, idle_waits_for_close, max_unlock).

sessionfs lets the kernel keep pages, listings, names and attributes inside
unlocked sessions (keep_cache, cache_readdir, 10 s timeouts): the tests at
the end check that a lock drops every one of them, and that what the daemon
changes behind the kernel's back does not show stale attributes.
"""
import json
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
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

    def test_cached_pages_unreadable_through_old_fd(self):
        sid = self.e.new(self.m)
        path = os.path.join(self.m.sdir(sid), "kept.txt")
        data = b"KEPT-PLAINTEXT\n" * 3000
        sfs.write_file(path, data)
        # pages kept across opens (keep_cache): read it through several opens
        for _ in range(3):
            self.assertEqual(sfs.read_file(path), data)
        fd = os.open(path, os.O_RDONLY)
        try:
            self.assertEqual(os.pread(fd, 15, 0), b"KEPT-PLAINTEXT\n")
            self.e.lock(self.m, sid)
            for off in (0, 4096, len(data) - 15):
                with self.assertRaises(OSError, msg="pread at %d after lock" % off):
                    os.pread(fd, 15, off)
        finally:
            os.close(fd)

    def test_mmap_unreadable_after_lock(self):
        sid = self.e.new(self.m)
        path = os.path.join(self.m.sdir(sid), "mapped.bin")
        sfs.write_file(path, b"MAPPED-PLAINTEXT" * 1024)
        # a child maps the file, reads it, waits for the lock, then reads it again
        child = r"""
import mmap, sys
with open(sys.argv[1], "rb") as f:
    m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
print("before", m[:16].decode(), flush=True)
sys.stdin.readline()
print("after", m[:16].decode(), m[8192:8208].decode(), flush=True)
"""
        p = subprocess.Popen([sys.executable, "-c", child, path], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            self.assertEqual(p.stdout.readline(), b"before MAPPED-PLAINTEXT\n")
            self.e.lock(self.m, sid)
            out, err = p.communicate(b"go\n", timeout=sfs.TIMEOUT)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertNotIn(b"PLAINTEXT", out, "plaintext read through a mapping after lock")
        self.assertEqual(p.returncode, -signal.SIGBUS, (out, err))

    def test_cached_listing_unreadable_after_lock(self):
        sid = self.e.new(self.m)
        sub = os.path.join(self.m.sdir(sid), "sub")
        os.mkdir(sub)
        for n in ("secret-name-1", "secret-name-2"):
            sfs.write_file(os.path.join(sub, n), "x")
        dfd = os.open(sub, os.O_RDONLY | os.O_DIRECTORY)
        try:
            # listed to the end twice: the kernel holds the listing (cache_readdir)
            for _ in range(2):
                self.assertEqual(sorted(os.listdir(dfd)), ["secret-name-1", "secret-name-2"])
                self.assertEqual(sorted(os.listdir(sub)), ["secret-name-1", "secret-name-2"])
            self.e.lock(self.m, sid)
            with self.assertRaises(OSError):
                os.listdir(dfd)
        finally:
            os.close(dfd)
        with self.assertRaises(PermissionError):
            os.listdir(sub)
        self.e.unlock(self.m, sid)
        self.assertEqual(sorted(os.listdir(sub)), ["secret-name-1", "secret-name-2"])

    def test_cached_names_gone_after_lock(self):
        sid = self.e.new(self.m)
        d = self.m.sdir(sid)
        os.makedirs(os.path.join(d, "a", "b"))
        sfs.write_file(os.path.join(d, "a", "b", "f"), "x")
        os.stat(os.path.join(d, "a", "b", "f"))  # names and attributes now cached
        self.e.lock(self.m, sid)
        for p in (os.path.join(d, "a"), os.path.join(d, "a", "b"), os.path.join(d, "a", "b", "f")):
            with self.assertRaises(PermissionError, msg=p):
                os.stat(p)

    def test_first_unlock_shows_the_roots_attributes(self):
        # a session root seen while locked (never unlocked in this mount)
        # shows placeholder attributes; its unlock must not leave them cached
        sid = self.e.new(self.m)
        os.chmod(self.m.sdir(sid), 0o750)
        self.m = self.e.remount(self.m)
        self.assertEqual(stat.S_IMODE(os.stat(self.m.sdir(sid)).st_mode), 0o700)
        self.e.unlock(self.m, sid)
        self.assertEqual(stat.S_IMODE(os.stat(self.m.sdir(sid)).st_mode), 0o750)

    def test_attributes_follow_other_paths(self):
        sid = self.e.new(self.m)
        d = self.m.sdir(sid)
        os.mkdir(os.path.join(d, "sub"))
        a, b = os.path.join(d, "a"), os.path.join(d, "sub", "b")
        sfs.write_file(a, "1234")
        os.link(a, b)
        os.stat(a), os.stat(b)  # both cached
        os.chmod(b, 0o640)
        self.assertEqual(stat.S_IMODE(os.stat(a).st_mode), 0o640)
        with open(b, "ab") as f:
            f.write(b"5678")
        self.assertEqual(os.stat(a).st_size, 8)
        os.unlink(b)
        self.assertEqual(os.stat(a).st_nlink, 1)

    def test_root_attributes_follow_the_daemons_metadata_refresh(self):
        # the daemon replaces metadata.json itself ("updated"), which moves the
        # session root's mtime behind the kernel's back: no stale mtime shown.
        # metadata.json is not looked at through the mount here, so that the
        # kernel holds no name of it whose invalidation would help.
        sid = self.e.new(self.m)
        d = self.m.sdir(sid)
        os.mkdir(os.path.join(d, "sub"))
        backing_root = os.path.join(self.e.store, "sessions", sid, "root")
        time.sleep(1.1)  # any refresh for the mkdir is done; mtimes move visibly
        deadline = time.monotonic() + sfs.TIMEOUT
        while os.stat(d).st_mtime_ns != os.stat(backing_root).st_mtime_ns:
            self.assertLess(time.monotonic(), deadline, "root never settled")
            time.sleep(0.2)
        cached = os.stat(d).st_mtime_ns  # cached by the kernel from here
        sfs.write_file(os.path.join(d, "sub", "f"), "a change below the root")
        while os.stat(backing_root).st_mtime_ns == cached:
            self.assertLess(time.monotonic(), deadline, "metadata.json was never refreshed")
            time.sleep(0.1)
        time.sleep(0.3)  # the daemon notifies right after its rename and fsync
        self.assertEqual(os.stat(d).st_mtime_ns, os.stat(backing_root).st_mtime_ns)


# The daemon checks idle_lock and max_unlock once a second: a session due at T
# is locked by T + 1 s, later on a loaded machine (or under ASan).
LATE = 6


class AutoLockTest(unittest.TestCase):
    """-o idle_lock, idle_waits_for_close and max_unlock, with small durations.

    Lower bounds are exact: a time taken before an operation (or an unlock)
    is at most the daemon's, so no lock can be seen earlier than that plus
    the duration. Upper bounds allow LATE."""

    def setUp(self):
        self.e = sfs.Env()
        self.addCleanup(self.e.cleanup)

    def is_locked(self, m, sid):
        """Asked through the control file: sessionctl list would also read
        each unlocked session's metadata.json, an operation on it."""
        fd = os.open(os.path.join(m.mnt, ".sessionfs"), os.O_RDWR)
        try:
            os.write(fd, b'{"op": "list"}')
            resp = json.loads(os.pread(fd, 1 << 20, 0))
        finally:
            os.close(fd)
        self.assertIs(resp["ok"], True, resp)
        return [s["locked"] for s in resp["sessions"] if s["id"] == sid] == [True]

    def wait_locked(self, m, sid, deadline, what):
        """Poll sessionctl list until @sid is locked; the time it was seen so."""
        while True:
            locked = self.is_locked(m, sid)
            now = time.monotonic()
            if locked:
                return now
            self.assertLess(now, deadline, "%s: %s still unlocked" % (what, sid))
            time.sleep(0.2)

    def assert_read_refused(self, fd):
        """A read on @fd fails with EACCES, as after sessionctl lock. The
        daemon drops the kernel's pages right after the lock, so a read
        may be served from them for a moment: retried until refused."""
        deadline = time.monotonic() + LATE
        while True:
            try:
                os.pread(fd, 16, 0)
            except PermissionError:
                return
            self.assertLess(time.monotonic(), deadline, "read on the open fd still served")
            time.sleep(0.05)

    def session_with_file(self, m):
        sid = self.e.new(m)
        path = os.path.join(m.sdir(sid), "notes.txt")
        sfs.write_file(path, "SECRET-PLAINTEXT\n" * 100)
        return sid, path

    def test_idle_lock_with_an_open_file_doing_nothing(self):
        # a forgotten less: open, read once, then nothing. It used to keep the
        # session unlocked for good.
        m = self.e.mount(foreground=True, opts="idle_lock=2s")
        sid, path = self.session_with_file(m)
        t0 = time.monotonic()  # before the last operation (the open, or the read)
        fd = os.open(path, os.O_RDONLY)
        try:
            self.assertEqual(os.pread(fd, 16, 0), b"SECRET-PLAINTEXT")
            seen = self.wait_locked(m, sid, t0 + 2 + LATE, "idle_lock=2s, a file open")
            self.assertGreaterEqual(seen, t0 + 1.99, "locked before 2 s without an operation")
            self.assert_read_refused(fd)
        finally:
            os.close(fd)
        self.assertRegex(m.read_log(), r"%s: locked after 2 s without an operation "
                         r"\(1 open files?\)" % sid)

    def test_looking_at_a_session_from_outside_is_no_use_of_it(self):
        # ls -l sessions/ (lookup and stat of each session directory) by a
        # monitoring loop: the sessions listed still go idle
        m = self.e.mount(opts="idle_lock=2s")
        t0 = time.monotonic()  # before the unlock
        sid = self.e.new(m)
        deadline = t0 + 2 + LATE
        while True:
            self.assertIn(sid, os.listdir(m.sessions()))
            os.stat(m.sdir(sid))
            if self.is_locked(m, sid):
                break
            self.assertLess(time.monotonic(), deadline, "kept unlocked by stat from outside")
            time.sleep(0.2)
        self.assertGreaterEqual(time.monotonic(), t0 + 1.99)

    def test_sessionctl_list_is_no_use_of_a_session(self):
        # watch sessionctl list: a status bar polling the list still lets the
        # sessions go idle, and shows their status and name while unlocked
        m = self.e.mount(opts="idle_lock=2s")
        t0 = time.monotonic()  # before the unlock
        sid = self.e.new(m, name="watched")
        deadline = t0 + 2 + LATE
        seen_unlocked = False
        while True:
            r = self.e.ctl("list", "--json", m.mnt)
            self.assertEqual(r.rc, 0, r)
            row = [s for s in json.loads(r.out) if s["id"] == sid][0]
            if row["locked"]:
                break
            seen_unlocked = True
            self.assertEqual((row["status"], row["name"]), ("active", "watched"), row)
            self.assertLess(time.monotonic(), deadline, "kept unlocked by sessionctl list")
            time.sleep(0.2)
        self.assertTrue(seen_unlocked)
        self.assertGreaterEqual(time.monotonic(), t0 + 1.99)

    def test_max_unlock_locks_a_busy_reader(self):
        # tail -f: a read and a stat every 0.3 s is no idle session, but
        # max_unlock locks it all the same, and the reader's next read fails
        m = self.e.mount(foreground=True, opts="max_unlock=3s,idle_lock=0")
        t0 = time.monotonic()  # before the unlock
        sid, path = self.session_with_file(m)
        child = r"""
import errno, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
ok, end = 0, float(sys.argv[2])
while time.monotonic() < end:
    try:
        os.pread(fd, 16, 0)
        os.fstat(fd)
        ok += 1
    except OSError as e:
        print("failed", errno.errorcode.get(e.errno), time.monotonic(), ok, flush=True)
        sys.exit(0)
    time.sleep(0.3)
print("never failed", ok, flush=True)
"""
        end = time.monotonic() + 3 + LATE
        p = subprocess.run([sys.executable, "-c", child, path, str(end)], capture_output=True,
                           timeout=sfs.TIMEOUT, text=True)
        words = p.stdout.split()
        self.assertEqual(words[:2], ["failed", "EACCES"], (p.stdout, p.stderr))
        failed_at, reads = float(words[2]), int(words[3])
        self.assertGreaterEqual(failed_at, t0 + 2.99, "locked before max_unlock")
        self.assertGreaterEqual(reads, 2, "the reader never read")
        self.assertTrue(self.is_locked(m, sid))
        self.assertRegex(m.read_log(), r"%s: locked after 3 s unlocked \(max_unlock; "
                         r"1 open files?\)" % sid)

    def test_idle_waits_for_close_keeps_an_open_file_unlocked(self):
        m = self.e.mount(opts="idle_lock=2s,idle_waits_for_close")
        sid, path = self.session_with_file(m)
        fd = os.open(path, os.O_RDONLY)
        try:
            self.assertEqual(os.pread(fd, 16, 0), b"SECRET-PLAINTEXT")
            # twice idle_lock and the check's second: still unlocked
            end = time.monotonic() + 2 * 2 + 1
            while time.monotonic() < end:
                self.assertFalse(self.is_locked(m, sid), "locked with a file open")
                time.sleep(0.25)
            self.assertEqual(os.pread(fd, 16, 0), b"SECRET-PLAINTEXT")
        finally:
            os.close(fd)
        # idle since the read: locked soon after the close
        self.wait_locked(m, sid, time.monotonic() + 2 + LATE, "after close")

    def test_unlock_again_restarts_max_unlock(self):
        # sessionctl unlock of an unlocked session checks the password, which
        # proves what a lock and unlock would: the time starts over
        m = self.e.mount(opts="max_unlock=3s,idle_lock=0")
        t0 = time.monotonic()
        sid = self.e.new(m)
        time.sleep(max(0.0, t0 + 2 - time.monotonic()))
        t1 = time.monotonic()  # before the new unlock
        self.e.unlock(m, sid)
        # unlocked until t1 + 3 at least, past the first unlock's max_unlock
        # (due at t0 + 3 and a little, locked by about t0 + 4)
        while True:
            locked = self.is_locked(m, sid)
            if time.monotonic() >= t1 + 2.95:
                break  # the observation may come after the new limit
            self.assertFalse(locked, "locked %.1f s after the re-unlock" %
                             (time.monotonic() - t1))
            time.sleep(0.2)
        seen = self.wait_locked(m, sid, t1 + 3 + LATE, "max_unlock=3s after a re-unlock")
        self.assertGreaterEqual(seen, t1 + 2.99)

class RegistryStallTest(unittest.TestCase):
    """The session registry's mutex (sess_mu) guards the registry only: while
    sessionctl lock --all writes one session's metadata.json "updated" (a
    new file and its directory, each fsync held here by strace for DELAY s),
    another session is looked up, listed and read at once. Before, lock
    --all held the registry's mutex across each session's whole lock, and
    every lookup of any other session waited for those fsyncs. (Not through
    sessionctl: the kernel serialises writes to the control file.)"""

    DELAY = 5  # seconds strace holds each fsync of the daemon

    def setUp(self):
        if subprocess.run(["strace", "-V"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode != 0:
            self.skipTest("strace is not installed (.ci/deps installs it)")
        self.e = sfs.Env()
        self.addCleanup(self.e.cleanup)
        self.m = self.e.mount(foreground=True)

    def test_lock_all_does_not_hold_up_another_session(self):
        other = self.e.new(self.m)
        sfs.write_file(os.path.join(self.m.sdir(other), "other.txt"), "other\n")
        busy = self.e.new(self.m)
        notes = os.path.join(self.m.sdir(busy), "notes.md")
        sfs.write_file(notes, "before\n")
        # The notifier writes what these left pending into "updated", and the
        # kernel's names of the sessions (1 s) expire: the next is a lookup.
        time.sleep(2.5)
        log = self.e.path("strace-stall.log")
        st = subprocess.Popen(["strace", "-f", "-p", str(self.m.proc.pid), "-o", log,
                               "-e", "trace=fsync",
                               "-e", "inject=fsync:delay_exit=%dms" % (self.DELAY * 1000)],
                              stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        line = st.stderr.readline()
        lock_all = None
        try:
            self.assertIn("attached", line, "strace did not attach")
            # A change "updated" does not have yet (no fsync on the way), then lock --all.
            with open(notes, "r+") as f:
                f.write("after\n")
            lock_all = subprocess.Popen([sfs.SESSIONCTL, "lock", "--all", self.m.mnt],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 30
            while True:
                with open(log) as f:
                    if "(DELAYED)" in f.read():
                        break
                self.assertIsNone(lock_all.poll(), "lock --all ended without an fsync")
                self.assertLess(time.monotonic(), deadline, "no fsync of lock --all was held")
                time.sleep(0.01)
            t0 = time.monotonic()
            self.assertTrue(stat.S_ISDIR(os.stat(self.m.sdir(other)).st_mode))
            self.assertIsNone(lock_all.poll(), "another session's lookup waited for lock "
                              "--all (%.1f s)" % (time.monotonic() - t0))
            self.assertIn("other.txt", os.listdir(self.m.sdir(other)))
            self.assertEqual(sfs.read_file(os.path.join(self.m.sdir(other), "other.txt")),
                             b"other\n")
            took = time.monotonic() - t0
            self.assertIsNone(lock_all.poll(),
                              "another session's reads waited for lock --all (%.1f s)" % took)
            self.assertLess(took, self.DELAY)
        finally:
            st.terminate()
            st.wait()
            st.stderr.close()
            if lock_all is not None:
                self.assertEqual(lock_all.wait(timeout=60), 0)


class IdleLockStallTest(unittest.TestCase):
    """The notifier's max_unlock/idle_lock check walks the registry holding
    none of it: while it locks one session, whose metadata.json "updated"
    refresh is fsynced (each fsync of the daemon held DELAY s here by
    strace), another session is looked up, listed and read. Before, the
    check held the registry's mutex (sess_mu) across each due session's
    whole lock: the lookup waited for those fsyncs, and returned only after
    the lock had been logged. The fsync waited for is the lock's own
    (strace -k: sfs_session_expire on its stack), not the notifier's
    ordinary refresh of "updated", which never held sess_mu."""

    DELAY = 5  # seconds strace holds each fsync of the daemon

    def setUp(self):
        if subprocess.run(["strace", "-V"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode != 0:
            self.skipTest("strace is not installed (.ci/deps installs it)")
        if subprocess.run(["strace", "-k", "-o", "/dev/null", "true"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode != 0:
            self.skipTest("this strace has no stack traces (-k)")
        self.e = sfs.Env()
        self.addCleanup(self.e.cleanup)
        self.m = self.e.mount(foreground=True, opts="max_unlock=6s,idle_lock=0")

    def test_max_unlock_does_not_hold_up_another_session(self):
        busy = self.e.new(self.m)  # due 6 s from now
        notes = os.path.join(self.m.sdir(busy), "notes.md")
        sfs.write_file(notes, "before\n")
        time.sleep(1.5)
        other = self.e.new(self.m)  # due 1.5 s after busy: the check is busy with busy then
        sfs.write_file(os.path.join(self.m.sdir(other), "other.txt"), "other\n")
        # The notifier writes other's change into "updated", and the kernel's
        # names of the sessions (1 s) expire: the next stat is a lookup.
        time.sleep(2.5)
        log = self.e.path("strace-idle.log")
        st = subprocess.Popen(["strace", "-f", "-k", "-p", str(self.m.proc.pid), "-o", log,
                               "-e", "trace=fsync",
                               "-e", "inject=fsync:delay_exit=%dms" % (self.DELAY * 1000)],
                              stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        line = st.stderr.readline()
        stop = threading.Event()

        def writer():
            # Changes until the lock: its refresh of "updated" has one to write.
            fd = os.open(notes, os.O_WRONLY)
            try:
                while not stop.is_set():
                    os.pwrite(fd, b"after\n", 0)
                    time.sleep(0.02)
            except OSError:
                pass  # locked
            finally:
                os.close(fd)

        w = threading.Thread(target=writer)
        try:
            self.assertIn("attached", line, "strace did not attach")
            w.start()
            deadline = time.monotonic() + 60
            while True:
                with open(log) as f:
                    if "sfs_session_expire" in f.read():
                        break
                self.assertLess(time.monotonic(), deadline, "no fsync of the lock was held")
                time.sleep(0.01)
            locked = r"%s: locked after 6 s unlocked \(max_unlock" % busy
            self.assertNotRegex(self.m.read_log(), locked, "locked before its fsync was held")
            self.assertTrue(stat.S_ISDIR(os.stat(self.m.sdir(other)).st_mode))
            self.assertNotRegex(self.m.read_log(), locked,
                                "another session's lookup waited for the lock of a due one")
            self.assertIn("other.txt", os.listdir(self.m.sdir(other)))
            self.assertEqual(sfs.read_file(os.path.join(self.m.sdir(other), "other.txt")),
                             b"other\n")
            self.assertNotRegex(self.m.read_log(), locked,
                                "another session's reads waited for the lock of a due one")
            while not re.search(locked, self.m.read_log()):
                self.assertLess(time.monotonic(), deadline, "the due session never locked")
                time.sleep(0.1)
        finally:
            stop.set()
            if w.is_alive():
                w.join()
            st.terminate()
            st.wait()
            st.stderr.close()


if __name__ == "__main__":
    sfs.main()
