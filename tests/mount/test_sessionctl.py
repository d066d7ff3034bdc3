"""sessionctl: new, unlock, lock, list, passwd, delete; exit codes and messages."""
import json
import os
import pty
import re
import select
import signal
import termios
import time
import unittest

import sfs


def iso_z(tc, value, what):
    tc.assertIsInstance(value, str, what)
    tc.assertRegex(value, sfs.ISO_Z_RE, what)


class PtySession:
    """sessionctl running on a fresh pseudo-terminal (its controlling tty)."""

    def __init__(self, args):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            try:
                os.execv(args[0], [str(a) for a in args])
            finally:
                os._exit(127)
        self.out = b""

    def expect(self, pattern, timeout=30):
        """Read until @pattern (a bytes regex) shows up in everything read so far
        after the last match; fail with the output on timeout or EOF."""
        rx = re.compile(pattern, re.I)
        deadline = time.monotonic() + timeout
        start = getattr(self, "_pos", 0)
        while True:
            mt = rx.search(self.out, start)
            if mt:
                self._pos = mt.end()
                return mt
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %r in pty output %r" % (pattern, self.out))
            r, _, _ = select.select([self.fd], [], [], left)
            if not r:
                continue
            try:
                b = os.read(self.fd, 4096)
            except OSError:  # EIO: the child closed the tty
                b = b""
            if not b:
                raise AssertionError("EOF before %r; pty output %r" % (pattern, self.out))
            self.out += b

    def echo_off(self, timeout=5):
        """Wait until the terminal's ECHO flag is off; False if it never is."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not termios.tcgetattr(self.fd)[3] & termios.ECHO:
                return True
            time.sleep(0.02)
        return False

    def send(self, line):
        os.write(self.fd, (line + "\n").encode())

    def wait(self, timeout=30):
        """Drain the output; the exit status."""
        deadline = time.monotonic() + timeout
        while True:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            r, _, _ = select.select([self.fd], [], [], 0.05)
            if r:
                try:
                    b = os.read(self.fd, 4096)
                except OSError:
                    b = b""
                self.out += b
            if pid:
                while True:  # whatever is left
                    r, _, _ = select.select([self.fd], [], [], 0.1)
                    if not r:
                        break
                    try:
                        b = os.read(self.fd, 4096)
                    except OSError:
                        break
                    if not b:
                        break
                    self.out += b
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
                os.close(self.fd)
                raise AssertionError("sessionctl on a pty did not finish; output %r" % self.out)


class CtlTest(unittest.TestCase):
    def setUp(self):
        self.e = sfs.Env()
        self.addCleanup(self.e.cleanup)
        self.m = self.e.mount()

    def assert_error(self, r, rc, *words):
        self.assertEqual(r.rc, rc, r)
        self.assertTrue(r.err.startswith("sessionctl: "), "stderr: %r" % r.err)
        for w in words:
            self.assertIn(w, r.err)

    # --- new -------------------------------------------------------------

    def test_new_prints_id_and_leaves_it_unlocked(self):
        r = self.e.ctl("new", "--name", "db outage", self.m.mnt, password=sfs.PASSWORD)
        self.assertEqual(r.rc, 0, r)
        lines = r.out.splitlines()
        self.assertEqual(len(lines), 1, r.out)
        sid = lines[0]
        self.assertRegex(sid, sfs.ID_RE)
        d = self.m.sdir(sid)
        self.assertIn(sid, os.listdir(self.m.sessions()))
        self.assertEqual(sorted(os.listdir(d)), ["events.jsonl", "metadata.json"])
        with open(os.path.join(d, "metadata.json")) as f:
            meta = json.load(f)
        self.assertEqual(meta["id"], sid)
        self.assertEqual(meta["name"], "db outage")
        self.assertEqual(meta["status"], "active")
        self.assertEqual(meta["tags"], [])
        iso_z(self, meta["created"], "created")
        iso_z(self, meta["updated"], "updated")
        self.assertEqual(os.path.getsize(os.path.join(d, "events.jsonl")), 0)
        self.assertEqual(sfs.read_file(os.path.join(d, "events.jsonl")), b"")
        # In the store: a directory named after the id, nothing else new.
        self.assertEqual(os.listdir(os.path.join(self.e.store, "sessions")), [sid])

    def test_new_ids_differ(self):
        ids = {self.e.new(self.m) for _ in range(3)}
        self.assertEqual(len(ids), 3)
        self.assertEqual(sorted(os.listdir(self.m.sessions())), sorted(ids))

    def test_new_with_id(self):
        self.assertEqual(self.e.new(self.m, sid="INC-beef"), "INC-beef")
        self.assertIn("INC-beef", os.listdir(self.m.sessions()))
        with open(os.path.join(self.m.sdir("INC-beef"), "metadata.json")) as f:
            self.assertEqual(json.load(f)["id"], "INC-beef")

    def test_new_taken_id(self):
        self.e.new(self.m, sid="INC-beef")
        r = self.e.ctl("new", "--id", "INC-beef", self.m.mnt, password="other")
        self.assert_error(r, 8)
        self.assertEqual(os.listdir(self.m.sessions()), ["INC-beef"])

    def test_new_malformed_id(self):
        for bad in ("INC-XYZ", "INC-12", "foo", "INC-BEEF", "INC-", "inc-beef", "INC-beef/x"):
            with self.subTest(id=bad):
                r = self.e.ctl("new", "--id", bad, self.m.mnt, password=sfs.PASSWORD)
                self.assert_error(r, 2)
        self.assertEqual(os.listdir(self.m.sessions()), [])

    def test_new_password_from_stdin(self):
        r = sfs.run([sfs.SESSIONCTL, "new", "--password-file", "-", self.m.mnt],
                    input="from-stdin\nsecond line is not the password\n")
        self.assertEqual(r.rc, 0, r)
        sid = r.out.strip()
        self.assertRegex(sid, sfs.ID_RE)
        self.e.lock(self.m, sid)
        r = self.e.ctl("unlock", self.m.sdir(sid), password="second line is not the password")
        self.assert_error(r, 3)
        r = sfs.run([sfs.SESSIONCTL, "unlock", "--password-file", "-", self.m.sdir(sid)],
                    input="from-stdin\n")
        self.assertEqual(r.rc, 0, r)
        os.listdir(self.m.sdir(sid))

    def test_new_empty_password_refused(self):
        r = self.e.ctl("new", self.m.mnt, password="")
        self.assert_error(r, 10)
        self.assertEqual(os.listdir(self.m.sessions()), [])

    def test_new_prompts_twice_without_echo(self):
        p = PtySession([sfs.SESSIONCTL, "new", "--name", "pty", self.m.mnt])
        for _ in range(2):
            p.expect(rb"password[^\n]*:")
            self.assertTrue(p.echo_off(), "terminal echo left on at the password prompt")
            p.send("pty-secret-93e1")
        rc = p.wait()
        self.assertEqual(rc, 0, p.out)
        self.assertNotIn(b"pty-secret-93e1", p.out)
        # One line that is the id alone (stdout); stderr's line on the same
        # pty names it too, with the session's cost and cipher.
        ids = re.findall(rb"^(INC-[0-9a-f]{4,16})\r?$", p.out, re.M)
        self.assertEqual(len(ids), 1, p.out)
        self.assertEqual(set(re.findall(rb"INC-[0-9a-f]{4,16}", p.out)), {ids[0]}, p.out)
        sid = ids[0].decode()
        # The terminal is restored afterwards is not observable here (the pty
        # is gone); check the password took.
        self.e.lock(self.m, sid)
        self.e.unlock(self.m, sid, "pty-secret-93e1")

    def test_new_prompt_mismatch(self):
        p = PtySession([sfs.SESSIONCTL, "new", self.m.mnt])
        p.expect(rb"password[^\n]*:")
        p.send("first-entry")
        p.expect(rb"password[^\n]*:")
        p.send("second-entry")
        rc = p.wait()
        self.assertEqual(rc, 10, p.out)
        self.assertIn(b"sessionctl: ", p.out)
        self.assertEqual(os.listdir(self.m.sessions()), [])

    def test_unlock_prompts_once(self):
        sid = self.e.new(self.m, password="typed-in")
        self.e.lock(self.m, sid)
        p = PtySession([sfs.SESSIONCTL, "unlock", self.m.sdir(sid)])
        p.expect(rb"password[^\n]*:")
        self.assertTrue(p.echo_off(), "terminal echo left on at the password prompt")
        p.send("typed-in")
        self.assertEqual(p.wait(), 0, p.out)
        self.assertNotIn(b"typed-in", p.out)
        os.listdir(self.m.sdir(sid))

    def test_no_terminal_no_password_file(self):
        # stdin is /dev/null and there is no controlling tty: exit 10, no prompt hang.
        r = sfs.run(["setsid", "-w", sfs.SESSIONCTL, "new", self.m.mnt])
        self.assert_error(r, 10)

    # --- unlock / lock -----------------------------------------------------

    def key_bytes(self, sid):
        return sfs.read_file(os.path.join(self.e.store, "sessions", sid, "key"))

    def test_lock_unlock_cycle(self):
        sid = self.e.new(self.m)
        sfs.write_file(os.path.join(self.m.sdir(sid), "notes.md"), "# notes\n")
        self.e.lock(self.m, sid)
        with self.assertRaises(PermissionError):
            os.listdir(self.m.sdir(sid))
        self.e.unlock(self.m, sid)
        self.assertEqual(sfs.read_file(os.path.join(self.m.sdir(sid), "notes.md")), b"# notes\n")

    def test_wrong_password_changes_nothing(self):
        sid = self.e.new(self.m)
        self.e.lock(self.m, sid)
        before = self.key_bytes(sid)
        store_listing = sorted(os.listdir(os.path.join(self.e.store, "sessions", sid)))
        r = self.e.ctl("unlock", self.m.sdir(sid), password="not the password")
        self.assert_error(r, 3, "wrong password")
        self.assertEqual(self.key_bytes(sid), before)
        self.assertEqual(sorted(os.listdir(os.path.join(self.e.store, "sessions", sid))),
                         store_listing)
        with self.assertRaises(PermissionError):
            os.listdir(self.m.sdir(sid))
        [entry] = [s for s in self.e.list(self.m) if s["id"] == sid]
        self.assertIs(entry["locked"], True)
        self.e.unlock(self.m, sid)  # the right one still works

    def test_unlock_already_unlocked(self):
        sid = self.e.new(self.m)
        sfs.write_file(os.path.join(self.m.sdir(sid), "f"), "x")
        r = self.e.ctl("unlock", self.m.sdir(sid), password=sfs.PASSWORD)
        self.assertEqual(r.rc, 0, r)  # sessionctl(1): "already unlocked here succeeds"
        self.assertEqual(sfs.read_file(os.path.join(self.m.sdir(sid), "f")), b"x")

    def test_lock_already_locked(self):
        sid = self.e.new(self.m)
        self.e.lock(self.m, sid)
        r = self.e.ctl("lock", self.m.sdir(sid))
        self.assertEqual(r.rc, 0, r)  # sessionctl(1): "Locking a locked session succeeds"

    def test_lock_several_and_all(self):
        a, b, c = (self.e.new(self.m, sid=s) for s in ("INC-aaaa", "INC-bbbb", "INC-cccc"))
        self.e.lock(self.m, a, b)
        locked = {s["id"]: s["locked"] for s in self.e.list(self.m)}
        self.assertEqual(locked, {a: True, b: True, c: False})
        self.e.unlock(self.m, a)
        r = self.e.ctl("lock", "--all", self.m.mnt)
        self.assertEqual(r.rc, 0, r)
        locked = {s["id"]: s["locked"] for s in self.e.list(self.m)}
        self.assertEqual(locked, {a: True, b: True, c: True})
        for s in (a, b, c):
            with self.assertRaises(PermissionError):
                os.listdir(self.m.sdir(s))

    # --- list ---------------------------------------------------------------

    def test_list_json(self):
        a = self.e.new(self.m, name="alpha", sid="INC-aaaa")
        b = self.e.new(self.m, name="bravo", sid="INC-bbbb")
        self.e.lock(self.m, b)
        sessions = self.e.list(self.m)
        self.assertIsInstance(sessions, list)
        by_id = {s["id"]: s for s in sessions}
        self.assertEqual(sorted(by_id), [a, b])
        self.assertIs(by_id[a]["locked"], False)
        self.assertIs(by_id[b]["locked"], True)
        self.assertEqual(by_id[a]["status"], "active")
        self.assertEqual(by_id[a]["name"], "alpha")
        iso_z(self, by_id[a]["updated"], "updated")
        # A locked session's name is secret: list must not leak it.
        self.assertNotIn("bravo", json.dumps(by_id[b]))

    def test_list_text(self):
        a = self.e.new(self.m, name="alpha", sid="INC-aaaa")
        b = self.e.new(self.m, name="bravo", sid="INC-bbbb")
        self.e.lock(self.m, b)
        r = self.e.ctl("list", self.m.mnt)
        self.assertEqual(r.rc, 0, r)
        line_a = [ln for ln in r.out.splitlines() if a in ln]
        line_b = [ln for ln in r.out.splitlines() if b in ln]
        self.assertEqual(len(line_a), 1, r.out)
        self.assertEqual(len(line_b), 1, r.out)
        self.assertIn("alpha", line_a[0])
        self.assertIn("unlocked", line_a[0])
        self.assertRegex(line_b[0], r"\blocked\b")
        self.assertNotIn("bravo", r.out)

    def test_list_empty(self):
        self.assertEqual(self.e.list(self.m), [])

    # --- passwd ----------------------------------------------------------

    def check_passwd(self, lock_first):
        sid = self.e.new(self.m, password="old-pw")
        sfs.write_file(os.path.join(self.m.sdir(sid), "data.txt"), "kept across passwd\n")
        if lock_first:
            self.e.lock(self.m, sid)
        r = self.e.ctl("passwd", self.m.sdir(sid), password="old-pw", new_password="new-pw")
        self.assertEqual(r.rc, 0, r)
        if not lock_first:
            self.e.lock(self.m, sid)
        r = self.e.ctl("unlock", self.m.sdir(sid), password="old-pw")
        self.assert_error(r, 3, "wrong password")
        self.e.unlock(self.m, sid, "new-pw")
        self.assertEqual(sfs.read_file(os.path.join(self.m.sdir(sid), "data.txt")),
                         b"kept across passwd\n")

    def test_passwd_locked(self):
        self.check_passwd(lock_first=True)

    def test_passwd_unlocked(self):
        self.check_passwd(lock_first=False)

    def test_passwd_wrong_old(self):
        sid = self.e.new(self.m, password="old-pw")
        self.e.lock(self.m, sid)
        before = self.key_bytes(sid)
        r = self.e.ctl("passwd", self.m.sdir(sid), password="nope", new_password="new-pw")
        self.assert_error(r, 3, "wrong password")
        self.assertEqual(self.key_bytes(sid), before)
        self.e.unlock(self.m, sid, "old-pw")

    # --- delete ------------------------------------------------------------

    def test_delete(self):
        sid = self.e.new(self.m)
        keep = self.e.new(self.m)
        sfs.write_file(os.path.join(self.m.sdir(sid), "big.bin"), os.urandom(100000))
        os.mkdir(os.path.join(self.m.sdir(sid), "sub"))
        r = self.e.ctl("delete", "--yes", self.m.sdir(sid))
        self.assertEqual(r.rc, 0, r)
        self.assertNotIn(sid, os.listdir(self.m.sessions()))
        self.assertFalse(os.path.exists(self.m.sdir(sid)))
        self.assertNotIn(sid, os.listdir(os.path.join(self.e.store, "sessions")))
        self.assertEqual([s["id"] for s in self.e.list(self.m)], [keep])
        self.assertEqual(os.listdir(os.path.join(self.e.store, "sessions")), [keep])

    def test_delete_locked_refused(self):
        sid = self.e.new(self.m)
        self.e.lock(self.m, sid)
        r = self.e.ctl("delete", "--yes", self.m.sdir(sid))
        self.assert_error(r, 7)
        self.assertIn(sid, os.listdir(self.m.sessions()))
        self.assertIn(sid, os.listdir(os.path.join(self.e.store, "sessions")))
        self.e.unlock(self.m, sid)

    def test_delete_not_confirmed(self):
        sid = self.e.new(self.m)
        p = PtySession([sfs.SESSIONCTL, "delete", self.m.sdir(sid)])
        p.expect(rb"\?")
        p.send("n")
        self.assertEqual(p.wait(), 11, p.out)
        self.assertIn(sid, os.listdir(self.m.sessions()))
        os.listdir(self.m.sdir(sid))

    def test_delete_without_terminal_needs_yes(self):
        sid = self.e.new(self.m)
        r = sfs.run(["setsid", "-w", sfs.SESSIONCTL, "delete", self.m.sdir(sid)])
        self.assertNotEqual(r.rc, 0, r)
        self.assertTrue(r.err.startswith("sessionctl: "), r.err)
        self.assertIn(sid, os.listdir(self.m.sessions()))
        os.listdir(self.m.sdir(sid))

    def test_delete_confirmed_on_tty(self):
        sid = self.e.new(self.m)
        p = PtySession([sfs.SESSIONCTL, "delete", self.m.sdir(sid)])
        p.expect(rb"\?")
        p.send("y")
        self.assertEqual(p.wait(), 0, p.out)
        self.assertNotIn(sid, os.listdir(self.m.sessions()))

    # --- the control file (doc/control.md) ---------------------------------

    def test_control_file_protocol(self):
        """One write, then reads from the start give exactly one JSON answer,
        however large the read buffer (a big read is split by the kernel
        into several FUSE reads, which may run in parallel)."""
        ctl = os.path.join(self.m.mnt, ".sessionfs")
        for i in range(40):
            fd = os.open(ctl, os.O_RDWR)
            try:
                os.write(fd, b'{"op":"hello"}')
                data = b""
                while True:
                    b = os.read(fd, 16 << 20)
                    if not b:
                        break
                    data += b
            finally:
                os.close(fd)
            try:
                resp = json.loads(data)
            except ValueError:
                self.fail("round %d: not one JSON document: %r" % (i, data))
            self.assertIs(resp.get("ok"), True, resp)
            self.assertEqual(os.path.realpath(resp.get("store")), os.path.realpath(self.e.store))

    def test_many_requests(self):
        bad = []
        for i in range(40):
            r = self.e.ctl("list", "--json", self.m.mnt)
            if r.rc != 0:
                bad.append(r)
        self.assertEqual(bad, [], "%d of 40 `sessionctl list` failed" % len(bad))

    # --- errors -------------------------------------------------------------

    def test_no_such_session(self):
        ghost = self.m.sdir("INC-dead")
        self.assert_error(self.e.ctl("unlock", ghost, password=sfs.PASSWORD), 4)
        self.assert_error(self.e.ctl("lock", ghost), 4)
        self.assert_error(self.e.ctl("delete", "--yes", ghost), 4)
        self.assert_error(self.e.ctl("passwd", ghost, password="a", new_password="b"), 4)

    def test_not_a_mount(self):
        d = self.e.path("plain-dir")
        os.makedirs(os.path.join(d, "sessions", "INC-abcd"))
        self.assert_error(self.e.ctl("list", "--json", d), 5)
        self.assert_error(self.e.ctl("list", "/tmp"), 5)
        self.assert_error(self.e.ctl("new", d, password=sfs.PASSWORD), 5)
        self.assert_error(self.e.ctl("lock", "--all", d), 5)
        self.assert_error(self.e.ctl("unlock", os.path.join(d, "sessions", "INC-abcd"),
                                     password=sfs.PASSWORD), 5)
        self.assert_error(self.e.ctl("lock", os.path.join(d, "sessions", "INC-abcd")), 5)

    def test_usage_errors(self):
        self.assertEqual(sfs.run([sfs.SESSIONCTL]).rc, 2)
        self.assert_error(self.e.ctl("frobnicate", self.m.mnt), 2)
        self.assert_error(self.e.ctl("new", "--no-such-option", self.m.mnt,
                                     password=sfs.PASSWORD), 2)
        self.assert_error(self.e.ctl("lock"), 2)
        r = sfs.run([sfs.SESSIONCTL, "--help"])
        self.assertEqual(r.rc, 0, r)
        self.assertIn("unlock", r.out)

    def test_password_not_in_argv(self):
        # sessionctl must not take a password on the command line. (getopt
        # takes --password as short for --password-file, so this fails as an
        # unreadable file rather than as a usage error: either way, refused.)
        r = sfs.run([sfs.SESSIONCTL, "new", "--password", "argv-pw", self.m.mnt])
        self.assertNotEqual(r.rc, 0, r)
        self.assertTrue(r.err.startswith("sessionctl: "), r.err)
        self.assertEqual(os.listdir(self.m.sessions()), [])


if __name__ == "__main__":
    sfs.main()
