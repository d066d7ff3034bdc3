"""
test_rekey.py - sessionctl rekey (issue 18 item 3; doc/format.md "Re-keying",
sessionctl(1) rekey) through real mounts:

- after a rekey every file, directory, symlink (short and long), hard link,
  FIFO, sparse file, long name, extended attribute, event line, metadata,
  redaction rule and slot label reads back as it was; every slot (two
  passwords and a recovery key) still opens, and the key file and every
  backing name changed;
- the key file copied before, with the old password, no longer opens the
  data: fsck.sessionfs --session --password-file on the store with the old
  key file put back finds every node failing, and with today's it is clean;
- refusals, nothing changed: a wrong password (3), a wrong secret for
  another slot (3, the slot named), a slot without a secret (12, unless
  --drop-slot: that slot then no longer opens), bad arguments (2), the
  session unlocked by another mount (6);
- locked here: rekey unlocks it with the password first;
- --json, the audit record `rekey` (no secret), the progress line only on
  a terminal;
- open across a rekey: events.jsonl handles and `tail -f` keep working
  (read, append, fsync, fstat, extended attributes; a chmod, chown or
  utimes through them fails with EIO, a truncate with EPERM as on any
  events.jsonl); a regular file or metadata.json
  handle opened before fails with EIO, with no damage logged; opened again
  it works;
- kill -9 of the daemon at each step, in turn, of a rekey (strace holds
  each directory-changing call: test_crash.StepBase): after a remount the
  session opens with its password, reads whole and identical, and a second
  rekey finishes; fsck -n is clean after.
"""
import errno
import json
import os
import re
import shutil
import subprocess
import time

import sfs
import test_crash

PW1 = sfs.PASSWORD
PW2 = "second password for the laptop"
WRONG_PASSWORD_EXIT = 3
BUSY_EXIT = 6
SLOT_EXIT = 12
FSCK = os.path.join(sfs.BUILD, "cli", "fsck.sessionfs")


def fill(d):
    """Every kind of node a session holds, in directory @d."""
    sfs.write_file(os.path.join(d, "notes.md"), "db restarted at 02:14\n")
    os.mkdir(os.path.join(d, "logs"))
    sfs.write_file(os.path.join(d, "logs", "big.bin"), os.urandom(3 * 1048576 + 123))
    sfs.write_file(os.path.join(d, "logs", "n" * 250), "a long name\n")
    os.symlink("notes.md", os.path.join(d, "short-link"))
    os.symlink("t" * 3500, os.path.join(d, "long-link"))
    os.link(os.path.join(d, "notes.md"), os.path.join(d, "hard"))
    os.mkfifo(os.path.join(d, "fifo"))
    with open(os.path.join(d, "sparse"), "wb") as f:
        f.seek(5 << 20)
        f.write(b"end")
    with open(os.path.join(d, "events.jsonl"), "a") as f:
        for i in range(500):
            f.write('{"n":%d,"msg":"event %d"}\n' % (i, i))
    os.chmod(os.path.join(d, "notes.md"), 0o640)


def backing_names(e, sid):
    out = set()
    for r, dirs, files in os.walk(os.path.join(e.store, "sessions", sid, "root")):
        out.update(dirs)
        out.update(files)
    return out


def key_bytes(e, sid):
    with open(os.path.join(e.store, "sessions", sid, "key"), "rb") as f:
        return f.read()


def audit(e, where):
    r = e.ctl("audit", "--json", where)
    if r.rc != 0:
        raise AssertionError("sessionctl audit failed: %r" % r)
    return json.loads(r.out)


def fsck(e, sid, pw, *extra):
    return sfs.run([FSCK, "-n", "--json", *extra, "--session", sid, "--password-file",
                    e.pwfile(pw), e.store])


class RekeyBase(sfs.ForegroundMountTest):

    def setUp(self):
        super().setUp()
        self.sid = self.e.new(self.m)
        self.sdir = self.m.sdir(self.sid)

    def tearDown(self):
        # The daemons must exit cleanly, and say nothing of a sanitizer (build-asan/).
        if self.m.mounted:
            self.e.assert_umount(self.m)
        self.e.assert_daemons_quiet()

    def rekey(self, *args, password=PW1, secrets=None, expect=0, sdir=None):
        a = []
        for n, s in (secrets or {}).items():
            a += ["--secret-file", "%d=%s" % (n, self.e.pwfile(s))]
        r = self.e.ctl("rekey", *a, *args, sdir or self.sdir, password=password)
        self.assertEqual(r.rc, expect, r)
        return r

    def opens(self, secret):
        """Does @secret unlock the session (locked first)?"""
        self.e.lock(self.m, self.sid)
        r = self.e.ctl("unlock", self.sdir, password=secret)
        if r.rc == 0:
            return True
        self.assertEqual(r.rc, WRONG_PASSWORD_EXIT, r)
        return False

    def snapshot(self):
        """What the session shows, after a lock and unlock (so that "updated"
        is written first)."""
        self.e.lock(self.m, self.sid)
        self.e.unlock(self.m, self.sid)
        return sfs.describe_tree(self.sdir)


class RekeyTest(RekeyBase):

    def setUp(self):
        sfs.ForegroundMountTest.setUp(self)
        # extended attributes need -o xattr
        self.e.assert_umount(self.m)
        self.m = self.e.mount(foreground=True, opts="xattr", mnt=self.m.mnt)
        self.sid = self.e.new(self.m)
        self.sdir = self.m.sdir(self.sid)

    def slots(self):
        r = self.e.ctl("passwd", "--add", "--label", "laptop", self.sdir, password=PW1,
                       new_password=PW2)
        self.assertEqual(r.rc, 0, r)
        r = self.e.ctl("passwd", "--add-recovery-key", "--label", "safe", self.sdir,
                       password=PW1)
        self.assertEqual(r.rc, 0, r)
        return r.out.strip()

    def keys(self):
        r = self.e.ctl("keys", "--json", self.sdir)
        self.assertEqual(r.rc, 0, r)
        return json.loads(r.out)

    def test_everything_reads_back_and_the_old_key_file_opens_nothing(self):
        fill(self.sdir)
        os.setxattr(os.path.join(self.sdir, "notes.md"), "user.owner", b"oncall")
        os.setxattr(os.path.join(self.sdir, "logs"), "user.kind", b"\x00\x01binary")
        r = self.e.ctl("redact", "--rule", "pw=hunter[0-9]", self.sdir)
        self.assertEqual(r.rc, 0, r)
        rk = self.slots()
        before = self.snapshot()
        keys_before = self.keys()
        rules_before = self.e.ctl("redact", "--list-rules", "--json", self.sdir).out
        old_key = key_bytes(self.e, self.sid)
        old_names = backing_names(self.e, self.sid)
        self.e.lock(self.m, self.sid)  # fsck checks no session a mount holds
        self.assertEqual(fsck(self.e, self.sid, PW1).rc, 0)
        self.e.unlock(self.m, self.sid)

        r = self.rekey("--json", secrets={1: PW2, 2: rk})
        out = json.loads(r.out)
        self.assertEqual(out["id"], self.sid)
        self.assertEqual((out["kept"], out["dropped"], out["unlocked"]), ([0, 1, 2], [], False))
        self.assertGreaterEqual(out["nodes"], 10)
        self.assertGreaterEqual(out["bytes"], 3 * 1048576 + 500 * 20)
        self.assertEqual(r.err, "")

        # everything reads back as it was, through the mount
        self.assertEqual(self.snapshot(), before)
        k = self.keys()
        self.assertEqual(k["format"], keys_before["format"])
        self.assertEqual(k["slots"], keys_before["slots"], "index, kind, cost, added, label")
        self.assertEqual(self.e.ctl("redact", "--list-rules", "--json", self.sdir).out,
                         rules_before)
        with open(os.path.join(self.sdir, "events.jsonl"), "a") as f:
            f.write('{"pw":"hunter7"}\n')
        with open(os.path.join(self.sdir, "events.jsonl")) as f:
            self.assertEqual(f.read().splitlines()[-1], '{"pw":"[REDACTED]"}')
        # every slot opens, nothing else does
        for secret in (PW1, PW2, rk):
            self.assertTrue(self.opens(secret), secret)
        self.assertFalse(self.opens("not any of them"))
        # sealed anew: the key file and every encrypted name changed (node ids
        # stay: the blobs of .sfsx/ and .sfstail/ keep their names)
        self.assertNotEqual(key_bytes(self.e, self.sid), old_key)
        self.assertEqual({n for n in backing_names(self.e, self.sid) & old_names
                          if not n.startswith(".") and not re.match(r"^[0-9a-f]{32}$", n)},
                         set())
        self.assertEqual([n for n in os.listdir(os.path.join(self.e.store, "sessions"))],
                         [self.sid], "nothing left beside")
        # the audit trail: one rekey record, no secret
        recs = [x for x in audit(self.e, self.m.mnt) if x["event"] == "rekey"]
        self.assertEqual(len(recs), 1, recs)
        self.assertEqual((recs[0]["ok"], recs[0]["kept"], recs[0]["dropped"]),
                         (True, [0, 1, 2], []))
        for s in (PW1, PW2, rk):
            self.assertNotIn(s, json.dumps(recs))

        # offline: today's key file opens everything, the old one nothing
        self.e.assert_umount(self.m)
        r = fsck(self.e, self.sid, PW1)
        self.assertEqual(r.rc, 0, r)
        key = os.path.join(self.e.store, "sessions", self.sid, "key")
        shutil.copy(key, self.e.path("today-key"))
        with open(key, "wb") as f:
            f.write(old_key)
        r = fsck(self.e, self.sid, PW1)
        self.assertNotEqual(r.rc, 0, "the old key file still opens the data: %r" % r)
        self.assertNotEqual([f for f in json.loads(r.out)["findings"] if f["state"] != "note"],
                            [])
        # ...and mounted: it unlocks (it is a key file), but no file reads
        self.m = self.e.mount(foreground=True, opts="xattr", mnt=self.m.mnt)
        r = self.e.ctl("unlock", self.sdir, password=PW2)
        readable = []
        if r.rc == 0:
            for n in ("notes.md", "logs/big.bin", "events.jsonl"):
                try:
                    sfs.read_file(os.path.join(self.sdir, n))
                    readable.append(n)
                except OSError:
                    pass
        self.assertEqual(readable, [], "old key file + old password read today's data")
        self.e.assert_umount(self.m)
        shutil.copy(self.e.path("today-key"), key)
        self.assertEqual(fsck(self.e, self.sid, PW2).rc, 0)

    def test_open_across_a_rekey(self):
        """What is open across a rekey (doc/format.md "Re-keying", step 4):
        events.jsonl keeps working through handles opened before, reads and
        appends alike, and a `tail -f` started before shows the lines
        appended after; a regular file or metadata.json open before fails
        with EIO at read, write, fallocate, lseek(SEEK_DATA), fsync, fstat,
        ftruncate and fchmod, its content and mode untouched, so does a
        directory held open (listing, openat in it), and the daemon
        logs no damage (nothing is damaged). Before, such a read or ftruncate
        was logged as a corrupt file, lseek and fchmod worked on the old
        container's file (the mode change lost); opened again by path, it
        reads and writes."""
        f = os.path.join(self.sdir, "notes.md")
        ev = os.path.join(self.sdir, "events.jsonl")
        sfs.write_file(f, "db restarted\n", 0o640)
        with open(ev, "a") as x:
            x.write('{"n":1}\n')
        out = self.e.path("tail.out")
        with open(out, "wb") as o:
            tail = subprocess.Popen(["tail", "-n", "+1", "-f", ev], stdout=o,
                                    stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        try:
            self.across(f, ev, out)
        finally:
            tail.kill()
            tail.wait()

    def across(self, f, ev, out):
        r = os.open(f, os.O_RDONLY)
        w = os.open(f, os.O_WRONLY)
        m = os.open(os.path.join(self.sdir, "metadata.json"), os.O_RDONLY)
        er = os.open(ev, os.O_RDONLY)
        ew = os.open(ev, os.O_WRONLY | os.O_APPEND)
        os.mkdir(os.path.join(self.sdir, "sub"))
        sfs.write_file(os.path.join(self.sdir, "sub", "y"), "y\n")
        d = os.open(os.path.join(self.sdir, "sub"), os.O_RDONLY | os.O_DIRECTORY)
        # the session's root held open, as a shell's working directory holds it
        root = os.open(self.sdir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            self.assertEqual(os.read(er, 100), b'{"n":1}\n')
            self.wait_for(out, b'{"n":1}\n')
            log_before = len(self.m.read_log())
            self.rekey()
            with open(ev, "a") as x:
                x.write('{"n":2}\n')
            os.write(ew, b'{"n":3}\n')
            self.assertEqual(os.read(er, 100), b'{"n":2}\n{"n":3}\n')
            self.assertEqual(os.fstat(er).st_size, 24)
            self.wait_for(out, b'{"n":1}\n{"n":2}\n{"n":3}\n')
            for what, call in (("read", lambda: os.pread(r, 100, 0)),
                               ("write", lambda: os.pwrite(w, b"lost?", 0)),
                               ("fallocate", lambda: os.posix_fallocate(w, 0, 8192)),
                               ("SEEK_DATA", lambda: os.lseek(r, 0, os.SEEK_DATA)),
                               ("fsync", lambda: os.fsync(w)),
                               ("fstat", lambda: os.fstat(r)),
                               ("ftruncate", lambda: os.ftruncate(w, 2)),
                               ("fchmod", lambda: os.fchmod(w, 0o600)),
                               ("metadata.json read", lambda: os.pread(m, 100, 0)),
                               ("directory list", lambda: os.listdir(d)),
                               ("openat in a directory", lambda: os.open("y", os.O_RDONLY,
                                                                         dir_fd=d)),
                               ("session root list", lambda: os.listdir(root)),
                               ("create in the session root",
                                lambda: os.open("after.txt", os.O_WRONLY | os.O_CREAT, 0o600,
                                                dir_fd=root)),
                               ("mkdir in the session root",
                                lambda: os.mkdir("afterdir", dir_fd=root))):
                with self.assertRaises(OSError, msg=what) as cm:
                    call()
                self.assertEqual(cm.exception.errno, errno.EIO, what)
        finally:
            for fd in (r, w, m, er, ew, d, root):
                os.close(fd)
        self.assertEqual(sfs.read_file(f), b"db restarted\n")
        self.assertEqual(os.stat(f).st_mode & 0o7777, 0o640)
        with open(f, "r+b") as x:
            x.write(b"DB")
            x.flush()
            os.fsync(x.fileno())
        self.assertEqual(sfs.read_file(f), b"DB restarted\n")
        self.assertEqual(sfs.read_file(ev), b'{"n":1}\n{"n":2}\n{"n":3}\n')
        self.assertEqual(os.listdir(os.path.join(self.sdir, "sub")), ["y"])
        # nothing was made through the old root, and by path the root works
        self.assertEqual(sorted(os.listdir(self.sdir)),
                         ["events.jsonl", "metadata.json", "notes.md", "sub"])
        sfs.write_file(os.path.join(self.sdir, "after.txt"), "after\n")
        self.assertEqual(sfs.read_file(os.path.join(self.sdir, "after.txt")), b"after\n")
        log = self.m.read_log()[log_before:]
        self.assertNotIn("corrupt", log.lower())
        self.assertEqual([x.get("damaged") for x in self.e.list(self.m)], [None])

    def test_events_handle_changes_nothing_across_a_rekey(self):
        """An events.jsonl descriptor opened before a rekey keeps reading,
        appending, fsyncing and fstat-ing (test_open_across_a_rekey), and
        its extended attribute calls reach the session's (stored by node
        id), but a change of the file's own attributes through it (fchmod,
        fchown, futimens) fails with EIO (doc/format.md "Re-keying",
        step 4): its inode is the old container's node; an ftruncate fails
        with EPERM, as on any events.jsonl (append-only).
        Before, fchmod, fchown and futimens through it returned 0 and the
        change went to the old container, lost: by path the file was as
        before."""
        ev = os.path.join(self.sdir, "events.jsonl")
        with open(ev, "a") as x:
            x.write('{"n":1}\n')
        os.setxattr(ev, "user.k", b"before")
        mode = os.stat(ev).st_mode & 0o7777
        ew = os.open(ev, os.O_WRONLY | os.O_APPEND)
        try:
            self.rekey()
            for what, call in (("fchmod", lambda: os.fchmod(ew, 0o600)),
                               ("fchown", lambda: os.fchown(ew, 1234, 1234)),
                               ("futimens", lambda: os.utime(ew, ns=(10**9, 10**9)))):
                with self.assertRaises(OSError, msg=what) as cm:
                    call()
                self.assertEqual(cm.exception.errno, errno.EIO, what)
            # a truncate, refused as on any events.jsonl: append-only
            with self.assertRaises(OSError) as cm:
                os.ftruncate(ew, 0)
            self.assertEqual(cm.exception.errno, errno.EPERM)
            # what keeps working through it still does, and reaches the session's file
            os.write(ew, b'{"n":2}\n')
            os.fsync(ew)
            self.assertEqual(os.fstat(ew).st_size, 16)
            self.assertEqual(os.getxattr(ew, "user.k"), b"before")
            os.setxattr(ew, "user.k", b"through")
            os.setxattr(ew, "user.j", b"new")
            os.removexattr(ew, "user.j")
            self.assertEqual(os.listxattr(ew), ["user.k"])
            self.assertEqual(os.getxattr(ev, "user.k"), b"through")
        finally:
            os.close(ew)
        st = os.stat(ev)
        self.assertEqual(st.st_mode & 0o7777, mode)
        self.assertEqual((st.st_uid, st.st_gid), (0, 0))
        self.assertNotEqual(st.st_mtime_ns, 10**9)
        self.assertEqual(sfs.read_file(ev), b'{"n":1}\n{"n":2}\n')
        # by path, the change applies
        os.chmod(ev, 0o600)
        self.assertEqual(os.stat(ev).st_mode & 0o7777, 0o600)

    def test_closing_an_old_descriptor_keeps_the_attributes(self):
        """The last close of a descriptor opened before a rekey (of
        events.jsonl, of a regular file) leaves the session's file as it
        is: its extended attributes stay. Before, the close saw its inode's
        backing file unlinked (the old container is removed) and dropped
        the attributes stored under its node id, which the re-keyed file
        keeps: the session's file lost them."""
        ev = os.path.join(self.sdir, "events.jsonl")
        f = os.path.join(self.sdir, "notes.md")
        with open(ev, "a") as x:
            x.write('{"n":1}\n')
        sfs.write_file(f, "db restarted\n")
        os.setxattr(ev, "user.k", b"events")
        os.setxattr(f, "user.k", b"notes")
        fds = [os.open(ev, os.O_WRONLY | os.O_APPEND), os.open(ev, os.O_RDONLY),
               os.open(f, os.O_RDONLY)]
        try:
            self.rekey()
            os.write(fds[0], b'{"n":2}\n')
        finally:
            for fd in fds:
                os.close(fd)
        self.assertEqual(os.getxattr(ev, "user.k"), b"events")
        self.assertEqual(os.getxattr(f, "user.k"), b"notes")
        # and after a remount (nothing kept only in the daemon)
        self.e.assert_umount(self.m)
        self.m = self.e.mount(foreground=True, opts="xattr", mnt=self.m.mnt)
        self.e.unlock(self.m, self.sid)
        self.assertEqual(os.getxattr(ev, "user.k"), b"events")
        self.assertEqual(os.getxattr(f, "user.k"), b"notes")
        self.assertEqual(sfs.read_file(ev), b'{"n":1}\n{"n":2}\n')

    def test_a_file_unlinked_while_open_leaves_no_attributes(self):
        """A file removed while open keeps its attribute blob until its last
        close. A rekey meanwhile re-keys only the nodes it walks: the removed
        file's blob stays with the old container, and the last close, which
        leaves the new container alone, has nothing to drop. Before, the
        rekey copied every blob of .sfsx/, and the new container kept the
        removed file's for good: fsck -n reported an orphan blob."""
        f = os.path.join(self.sdir, "gone.md")
        sfs.write_file(f, "removed while open\n")
        os.setxattr(f, "user.k", b"gone")
        fd = os.open(f, os.O_RDONLY)
        try:
            os.unlink(f)
            self.assertEqual(os.getxattr(fd, "user.k"), b"gone")
            self.rekey()
        finally:
            os.close(fd)
        self.e.lock(self.m, self.sid)  # fsck checks no session a mount holds
        r = fsck(self.e, self.sid, PW1)
        self.assertEqual(r.rc, 0, r)

    def wait_for(self, path, want):
        """Poll (a hang guard, no timing check) until file @path holds @want."""
        end = time.monotonic() + sfs.TIMEOUT
        while time.monotonic() < end:
            with open(path, "rb") as x:
                if x.read() == want:
                    return
            time.sleep(0.05)
        with open(path, "rb") as x:
            self.assertEqual(x.read(), want)

    def test_cipher_kept(self):
        """A session of today's ciphers keeps its cipher (a legacy cipher-2
        one would move to derived keys: tests/unit/test_keyslots.c)."""
        sfs.write_file(os.path.join(self.sdir, "a"), "a\n")
        r = json.loads(self.rekey("--json").out)
        self.assertIn(r["cipher"], ("aes256gcm", "xchacha20poly1305"))
        self.assertEqual(r["cipher"], r["cipher_before"])


class RefusalTest(RekeyBase):

    def setUp(self):
        super().setUp()
        sfs.write_file(os.path.join(self.sdir, "notes.md"), "db restarted\n")
        r = self.e.ctl("passwd", "--add", self.sdir, password=PW1, new_password=PW2)
        self.assertEqual(r.rc, 0, r)
        # the write's metadata.json refresh (a .sfs-meta-* renamed over it a
        # second later) must not land between two lists of the backing names
        self.e.settle(self.m, self.sid, password=PW1)

    def unchanged(self, key, names):
        self.assertEqual(key_bytes(self.e, self.sid), key)
        self.assertEqual(backing_names(self.e, self.sid), names)
        self.assertEqual(os.listdir(os.path.join(self.e.store, "sessions")), [self.sid])
        self.assertEqual(sfs.read_file(os.path.join(self.sdir, "notes.md")), b"db restarted\n")

    def test_refusals_change_nothing(self):
        key, names = key_bytes(self.e, self.sid), backing_names(self.e, self.sid)
        r = self.rekey(password="wrong", secrets={1: PW2}, expect=WRONG_PASSWORD_EXIT)
        self.assertIn("wrong password", r.err)
        self.unchanged(key, names)
        r = self.rekey(secrets={1: "not slot 1's"}, expect=WRONG_PASSWORD_EXIT)
        self.assertIn("key slot 1", r.err)
        self.unchanged(key, names)
        # no secret for slot 1, no terminal to ask on
        r = self.rekey(expect=SLOT_EXIT)
        self.assertIn("key slot 1", r.err)
        self.assertIn("--drop-slot 1", r.err)
        self.unchanged(key, names)
        # a slot that does not exist; every slot dropped
        r = self.rekey("--drop-slot", "5", secrets={1: PW2}, expect=SLOT_EXIT)
        self.unchanged(key, names)
        r = self.rekey("--drop-slot", "0", "--drop-slot", "1", expect=SLOT_EXIT)
        self.assertIn("last key slot", r.err)
        self.unchanged(key, names)
        # usage
        for a in (["--secret-file", "1"], ["--secret-file", "8=/x"], ["--secret-file", "=/x"],
                  ["--drop-slot", "x"], ["--drop-slot", "-1"],
                  ["--drop-slot", "1", "--secret-file", "1=/x"], ["--password=pw"]):
            r = self.e.ctl("rekey", *a, self.sdir, password=PW1)
            self.assertEqual(r.rc, 2, (a, r))
        self.unchanged(key, names)
        recs = [x for x in audit(self.e, self.m.mnt) if x["event"] == "rekey"]
        self.assertEqual([x["ok"] for x in recs], [False] * 5)
        self.assertEqual([x.get("slot") for x in recs], [None, 1, 1, 5, None])

    def test_drop_slot(self):
        r = self.rekey("--drop-slot", "1")
        self.assertIn("dropped: 1", r.err)
        self.assertFalse(self.opens(PW2))
        self.assertTrue(self.opens(PW1))
        self.assertEqual(sfs.read_file(os.path.join(self.sdir, "notes.md")), b"db restarted\n")

    def test_proof_of_another_slot(self):
        """The proof may be any slot's; the others' secrets re-wrap theirs."""
        r = self.rekey(password=PW2, secrets={0: PW1})
        self.assertIn("key slots kept: 0 1", r.err)
        self.assertTrue(self.opens(PW1))
        self.assertTrue(self.opens(PW2))

    def test_locked_here_unlocked_first(self):
        self.e.lock(self.m, self.sid)
        r = json.loads(self.rekey("--json", secrets={1: PW2}).out)
        self.assertTrue(r["unlocked"])
        self.assertEqual(sfs.read_file(os.path.join(self.sdir, "notes.md")), b"db restarted\n")
        self.e.lock(self.m, self.sid)
        self.rekey(password="wrong", secrets={1: PW2}, expect=WRONG_PASSWORD_EXIT)
        r = self.e.ctl("status", self.sdir)
        self.assertEqual(r.rc, 7, "a wrong password does not unlock it: %r" % r)

    def test_busy_in_another_mount(self):
        m2 = self.e.mount(foreground=True)
        self.e.lock(self.m, self.sid)
        self.e.unlock(m2, self.sid)
        key, names = key_bytes(self.e, self.sid), backing_names(self.e, self.sid)
        r = self.rekey(secrets={1: PW2}, expect=BUSY_EXIT)
        self.assertIn("another mount", r.err)
        r = self.rekey(secrets={1: PW2}, sdir=m2.sdir(self.sid))
        self.assertEqual(key_bytes(self.e, self.sid) != key, True)
        self.assertNotEqual(backing_names(self.e, self.sid), names)
        self.assertEqual(sfs.read_file(os.path.join(m2.sdir(self.sid), "notes.md")),
                         b"db restarted\n")
        self.e.assert_umount(m2)

    def test_leftover_swept_by_unlock_and_fsck(self):
        """What a crash leaves beside (.rekey-ID-<12 hex>) goes at the next
        unlock of the session, and fsck -y removes it too (fsck -n names it)."""
        top = os.path.join(self.e.store, "sessions")
        left = os.path.join(top, ".rekey-%s-0123456789ab" % self.sid)
        self.e.lock(self.m, self.sid)
        os.mkdir(left, 0o700)
        sfs.write_file(os.path.join(left, "key"), "old")
        self.e.unlock(self.m, self.sid)
        self.assertFalse(os.path.exists(left))
        self.e.assert_umount(self.m)
        os.mkdir(left, 0o700)
        r = sfs.run([FSCK, "-n", "--json", self.e.store])
        self.assertEqual(r.rc, 4, r)
        found = [f for f in json.loads(r.out)["findings"] if ".rekey-" in f.get("path", "")]
        self.assertEqual(len(found), 1, r.out)
        self.assertIn("rekey", json.dumps(found))
        r = sfs.run([FSCK, "-y", self.e.store])
        self.assertEqual(r.rc, 1, r)
        self.assertFalse(os.path.exists(left))
        self.remount()

    def test_progress_only_on_a_terminal(self):
        r = self.rekey(secrets={1: PW2})
        self.assertNotIn("re-keying", r.err)
        rc, _, err = sfs.run_stderr_on_tty([sfs.SESSIONCTL, "rekey", "--password-file",
                                            self.e.pwfile(PW1), "--secret-file",
                                            "1=" + self.e.pwfile(PW2), self.sdir])
        self.assertEqual(rc, 0, err)
        self.assertRegex(err.decode(), r"re-keying: \d+ files, [0-9.]+ MiB")


class RekeyAndSlotChangeTest(test_crash.StepBase):
    """A passwd --add of the same session sent while a rekey runs (strace
    holds the rekey at its first mkdirat, the new container, before the
    exchange) waits for it (the control file takes one request at a time)
    and is made on the re-keyed key file: both passwords open after."""

    def test_passwd_waiting_on_a_rekey(self):
        sid = self.e.new(self.m)
        d = self.m.sdir(sid)
        sfs.write_file(os.path.join(d, "x"), "x\n")
        log = self.e.path("strace-mkdirat.log")
        st = subprocess.Popen(["strace", "-f", "-p", str(self.m.proc.pid), "-o", log,
                               "-e", "trace=mkdirat",
                               "-e", "inject=mkdirat:delay_exit=3000ms:when=1"],
                              stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.assertIn("attached", st.stderr.readline())
        rk = subprocess.Popen([sfs.SESSIONCTL, "rekey", "--password-file", self.e.pwfile(PW1), d],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
        while self.held(log) < 1 and rk.poll() is None:
            time.sleep(0.01)
        self.assertIsNone(rk.poll(), "the rekey was not held")
        r = self.e.ctl("passwd", "--add", d, password=PW1, new_password=PW2)
        out, err = rk.communicate(timeout=sfs.TIMEOUT)
        st.terminate()
        st.wait()
        st.stderr.close()
        self.assertEqual(rk.returncode, 0, err)
        self.assertEqual(r.rc, 0, r)
        for pw in (PW1, PW2):
            self.e.lock(self.m, sid)
            self.e.unlock(self.m, sid, password=pw)
            self.assertEqual(sfs.read_file(os.path.join(d, "x")), b"x\n")


class RekeyCrashTest(test_crash.StepBase):
    """kill -9 of the daemon after each step, in turn, of a rekey: the
    session opens with its password after every crash and reads whole and
    the same, the old or the new key file in place; a second rekey finishes;
    nothing is left beside; fsck -n is clean."""

    CALLS = "mkdirat,renameat,renameat2,unlinkat,linkat,symlinkat"

    def session(self, k):
        sid = self.e.new(self.m)
        d = self.m.sdir(sid)
        sfs.write_file(os.path.join(d, "x"), "x of %s\n" % sid)
        os.mkdir(os.path.join(d, "sub"))
        sfs.write_file(os.path.join(d, "sub", "y"), os.urandom(70000))
        os.symlink("../x", os.path.join(d, "sub", "ln"))
        os.link(os.path.join(d, "x"), os.path.join(d, "sub", "hard"))
        with open(os.path.join(d, "events.jsonl"), "a") as f:
            f.write('{"k":%d}\n' % k)
        r = self.e.ctl("passwd", "--add", d, password=PW1, new_password=PW2)
        self.assertEqual(r.rc, 0, r)
        self.e.lock(self.m, sid)
        self.e.unlock(self.m, sid)
        return sid, sfs.describe_tree(d), key_bytes(self.e, sid)

    def test_kill_each_step(self):
        def argv(ctx):
            return [sfs.SESSIONCTL, "rekey", "--password-file", self.e.pwfile(PW1),
                    "--secret-file", "1=" + self.e.pwfile(PW2), self.m.sdir(ctx[0])]

        def same(ctx, what):
            sid, tree, _ = ctx
            self.e.unlock(self.m, sid)
            self.check_session(sid, what)
            self.assertEqual(sfs.describe_tree(self.m.sdir(sid)), tree, what)

        def after_crash(ctx, what):
            sid, tree, key = ctx
            new = key_bytes(self.e, sid) != key
            for pw in (PW1, PW2):
                r = self.e.ctl("unlock", self.m.sdir(sid), password=pw)
                self.assertEqual(r.rc, 0, "%s: %s does not open: %r" % (what, pw, r))
                self.e.lock(self.m, sid)
            same(ctx, what)
            # nothing beside once it is unlocked again (the unlock swept it)
            left = [n for n in os.listdir(os.path.join(self.e.store, "sessions"))
                    if n.startswith(".rekey-")]
            self.assertEqual(left, [], what)
            # a second rekey finishes
            r = sfs.run(argv(ctx))
            self.assertEqual(r.rc, 0, "%s: the second rekey: %r" % (what, r))
            self.e.lock(self.m, sid)
            same(ctx, what + ", rekeyed again")
            self.e.lock(self.m, sid)
            return "new key" if new else "old key"

        def after_done(ctx):
            sid = ctx[0]
            self.assertNotEqual(key_bytes(self.e, sid), ctx[2])
            self.e.lock(self.m, sid)
            same(ctx, "rekey")

        self.kill_each_step("rekey", self.session, argv, after_crash, after_done, self.CALLS)
        self.e.assert_umount(self.m)
        r = sfs.run([FSCK, "-n", self.e.store])
        self.assertEqual(r.rc, 0, r)


if __name__ == "__main__":
    sfs.main()
