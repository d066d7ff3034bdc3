"""Edges of the command line (issue 13): usage errors and their exit codes,
messages that say what is wrong, SESSIONDIR given as any path inside a
session, and where the daemon's messages go without syslog."""
import os
import subprocess
import unittest

import sfs


class CliTest(unittest.TestCase):
    def setUp(self):
        self.e = sfs.Env()
        self.addCleanup(self.e.cleanup)

    def one_line_error(self, r, prog, code):
        self.assertEqual(r.rc, code, r)
        lines = r.err.splitlines()
        self.assertEqual(len(lines), 1, r)
        self.assertTrue(lines[0].startswith(prog + ": "), r)
        self.assertNotIn(sfs.BUILD, r.err)
        return lines[0]

    # --- sessionfs ----------------------------------------------------------

    def test_sessionfs_bad_option_is_usage(self):
        mnt = self.e.path("mnt")
        os.mkdir(mnt)
        for opt in ("bogus", "idle_lock=5m,bogus", "max_read=abc"):
            r = sfs.run([sfs.SESSIONFS, "-o", opt, self.e.store, mnt])
            self.assertEqual(r.rc, 2, r)
            self.assertIn("sessionfs: ", r.err)
            self.assertFalse(os.path.ismount(mnt))
        r = sfs.run([sfs.SESSIONFS, "--bogus", self.e.store, mnt])
        self.assertEqual(r.rc, 2, r)
        self.assertFalse(os.path.ismount(mnt))

    def test_sessionfs_bad_duration_is_usage(self):
        """idle_lock and max_unlock take the one duration grammar of every
        command (lib/util.c sfs_parse_duration): refused with the option named."""
        mnt = self.e.path("mnt")
        os.mkdir(mnt)
        for opt in ("idle_lock=1.5h", "idle_lock=-1", "idle_lock=5y", "max_unlock=8 h",
                    "max_unlock=", "idle_lock=15m,max_unlock=h"):
            r = sfs.run([sfs.SESSIONFS, "-o", opt, self.e.store, mnt])
            name = opt.split(",")[-1].split("=")[0]
            line = self.one_line_error(r, "sessionfs", 2)
            self.assertIn("bad %s" % name, line)
            self.assertFalse(os.path.ismount(mnt))
        m = self.e.mount(mnt=mnt, opts="idle_lock=1d,max_unlock=2w")
        self.assertTrue(m.mounted)
        self.assertTrue(m.stop())

    def test_sessionfs_extra_argument_is_usage(self):
        mnt = self.e.path("mnt")
        os.mkdir(mnt)
        r = sfs.run([sfs.SESSIONFS, self.e.store, mnt, "extra"])
        line = self.one_line_error(r, "sessionfs", 2)
        self.assertIn("too many arguments", line)
        self.assertIn("extra", line)
        self.assertFalse(os.path.ismount(mnt))

    # --- mkfs.sessionfs -----------------------------------------------------

    def test_mkfs_usage_is_short(self):
        a, b = self.e.path("a"), self.e.path("b")
        for args in ([a, b], [], ["--no-such-option", a], ["--kdf"]):
            line = self.one_line_error(sfs.run([sfs.MKFS] + args), "mkfs.sessionfs", 2)
            self.assertIn("mkfs.sessionfs --help", line)
        self.assertFalse(os.path.exists(a) or os.path.exists(b))

    # --- sessionctl ---------------------------------------------------------

    def test_sessionctl_without_arguments(self):
        line = self.one_line_error(sfs.run([sfs.SESSIONCTL]), "sessionctl", 2)
        self.assertIn("sessionctl --help", line)

    def test_list_of_a_store_or_a_plain_directory(self):
        r = self.e.ctl("list", self.e.store)
        line = self.one_line_error(r, "sessionctl", 5)
        self.assertIn("store, not a mount", line)
        self.assertNotIn("No such file", line)
        plain = self.e.path("plain")
        os.mkdir(plain)
        for cmd in (["list"], ["lock", "--all"]):
            line = self.one_line_error(self.e.ctl(*cmd, plain), "sessionctl", 5)
            self.assertIn("not a sessionfs mount", line)
            self.assertNotIn("No such file", line)
        # a path that does not exist is said so
        line = self.one_line_error(self.e.ctl("list", self.e.path("nothing")), "sessionctl", 5)
        self.assertIn("No such file", line)

    def test_passwd_both_passwords_from_stdin_is_usage(self):
        m = self.e.mount()
        sid = self.e.new(m)
        r = sfs.run([sfs.SESSIONCTL, "passwd", "--password-file", "-", "--new-password-file",
                     "-", m.sdir(sid)], input=sfs.PASSWORD + "\nnew\n")
        line = self.one_line_error(r, "sessionctl", 2)
        self.assertIn("standard input", line)
        # nothing changed: the old password still opens it
        self.e.lock(m, sid)
        self.e.unlock(m, sid)

    def ctl_in(self, cwd, *args, password=None):
        a = [sfs.SESSIONCTL] + list(args)
        if password is not None:
            a[2:2] = ["--password-file", self.e.pwfile(password)]
        p = subprocess.run(a, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=sfs.TIMEOUT)
        return sfs.Result(a, p.returncode, p.stdout, p.stderr)

    def test_sessiondir_is_any_path_in_a_session(self):
        m = self.e.mount()
        sid = self.e.new(m)
        other = self.e.new(m)
        d = m.sdir(sid)
        os.makedirs(os.path.join(d, "sub", "deeper"))
        sfs.write_file(os.path.join(d, "sub", "notes.md"), "x\n")
        # lock . from inside, from a subdirectory, by a file's path
        r = self.ctl_in(d, "lock", ".")
        self.assertEqual(r.rc, 0, r)
        self.assertIn(sid + ": locked", r.out)
        self.e.unlock(m, sid)
        r = self.ctl_in(os.path.join(d, "sub", "deeper"), "lock", ".")
        self.assertEqual(r.rc, 0, r)
        self.assertIn(sid + ": locked", r.out)
        # unlock by a path inside the (now locked) session, relative and absolute
        r = self.ctl_in(m.sessions(), "unlock", sid + "/sub/notes.md", password=sfs.PASSWORD)
        self.assertEqual(r.rc, 0, r)
        r = self.e.ctl("lock", os.path.join(d, "sub", "notes.md"), m.sdir(other) + "/")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(sorted(ln.split(":")[0] for ln in r.out.splitlines()),
                         sorted([sid, other]))
        # a symlink to a session, outside the mount
        link = self.e.path("current")
        os.symlink(d, link)
        r = self.e.ctl("unlock", link, password=sfs.PASSWORD)
        self.assertEqual(r.rc, 0, r)
        # archive/ too, and passwd and delete take such paths as well
        os.rename(d, os.path.join(m.mnt, "archive", sid))
        ad = os.path.join(m.mnt, "archive", sid)
        r = self.ctl_in(os.path.join(ad, "sub"), "passwd", ".", password=sfs.PASSWORD)
        self.assertEqual(r.rc, 10, r)  # found the session; no terminal for the new password
        r = sfs.run([sfs.SESSIONCTL, "passwd", "--password-file", self.e.pwfile(sfs.PASSWORD),
                     "--new-password-file", self.e.pwfile("second"), ad + "/sub/notes.md"])
        self.assertEqual(r.rc, 0, r)
        r = self.ctl_in(os.path.join(ad, "sub"), "lock", ".")
        self.assertEqual(r.rc, 0, r)
        self.e.ctl("unlock", ad, password="second")
        r = self.ctl_in(ad, "delete", "--yes", "sub/deeper")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(os.listdir(os.path.join(m.mnt, "archive")), [])

    def test_sessiondir_errors(self):
        m = self.e.mount()
        sid = self.e.new(m)
        # the mount itself, sessions/: in a mount, but in no session
        for path in (m.mnt, m.sessions(), os.path.join(m.mnt, "archive")):
            line = self.one_line_error(self.e.ctl("lock", path), "sessionctl", 4)
            self.assertIn("not in a session", line)
        line = self.one_line_error(self.ctl_in(m.mnt, "lock", "."), "sessionctl", 4)
        self.assertIn("not in a session", line)
        # a session that does not exist, an id that cannot be one
        self.one_line_error(self.e.ctl("lock", m.sdir("INC-dead")), "sessionctl", 4)
        self.one_line_error(self.e.ctl("lock", m.sdir("nope")), "sessionctl", 4)
        # outside any mount: a plain directory laid out like one
        fake = self.e.path("fake", "sessions", sid)
        os.makedirs(os.path.join(fake, "sub"))
        for path in (fake, os.path.join(fake, "sub"), self.e.path("none", "sessions", sid)):
            line = self.one_line_error(self.e.ctl("lock", path), "sessionctl", 5)
            self.assertIn("not in a sessionfs mount", line)
        # a file named like the control file inside a session makes no mount of it
        sfs.write_file(os.path.join(m.sdir(sid), ".sessionfs"), "decoy\n")
        os.makedirs(os.path.join(m.sdir(sid), "sessions", "INC-beef"))
        r = self.e.ctl("lock", os.path.join(m.sdir(sid), "sessions", "INC-beef"))
        self.assertEqual(r.rc, 0, r)
        self.assertIn(sid + ": locked", r.out)


class DaemonLogTest(unittest.TestCase):
    """Without a syslog daemon (a container without /dev/log), the daemon's
    messages go to a file, and sessionfs says which at mount time."""

    def setUp(self):
        import socket
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            s = socket.socket(socket.AF_UNIX, kind)
            try:
                s.connect("/dev/log")
                self.skipTest("a syslog daemon listens on /dev/log here: messages go there")
            except OSError:
                pass
            finally:
                s.close()
        self.e = sfs.Env()
        self.addCleanup(self.e.cleanup)

    def test_messages_go_to_a_file(self):
        run_dir = self.e.path("run")
        os.mkdir(run_dir, 0o700)
        env = dict(os.environ, XDG_RUNTIME_DIR=run_dir)
        mnt = self.e.path("mnt")
        os.mkdir(mnt)
        r = sfs.run([sfs.SESSIONFS, self.e.store, mnt], env=env)
        self.addCleanup(sfs.umount, mnt)
        self.assertEqual(r.rc, 0, r)
        log = os.path.join(run_dir, "sessionfs.log")
        self.assertIn("messages go to %s" % log, r.err)
        r = self.e.ctl("new", "--name", "secret-name", mnt, password=sfs.PASSWORD)
        self.assertEqual(r.rc, 0, r)
        sid = r.out.strip()
        r = self.e.ctl("unlock", os.path.join(mnt, "sessions", sid), password="Wr0ng-pw-4711")
        self.assertEqual(r.rc, 3, r)
        self.assertTrue(sfs.umount(mnt))
        self.assertEqual(os.stat(log).st_mode & 0o777, 0o600)
        text = sfs.read_file(log).decode()
        lines = text.splitlines()
        self.assertRegex(lines[0], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ sessionfs\[\d+\]: mounted ")
        self.assertIn(sid + ": created", text)
        self.assertIn(sid + ": unlock refused: wrong password", text)
        for secret in (sfs.PASSWORD, "Wr0ng-pw-4711", "secret-name"):
            self.assertNotIn(secret, text)


if __name__ == "__main__":
    sfs.main()
