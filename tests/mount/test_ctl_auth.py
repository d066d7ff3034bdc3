"""sessionctl proves whom it talks to, and guards the passwords it holds.

- Fake targets (issue 12, hole 2): as nobody, a tree that looks like a mount
  (`evil/mnt/sessions/INC-xxxx`) with `evil/mnt/.sessionfs` a 0666 regular
  file, a FIFO, or a symlink to a real mount's control file. Every command
  that talks to the daemon (unlock, new, passwd, lock, lock --all, list,
  delete), run by root with password files, must fail with exit code 5 and
  "not a sessionfs mount", quickly, and not one byte may reach the fake (the
  file stays empty, a reader of the FIFO gets nothing, the real mount behind
  the symlink is untouched).
- Another user's real sessionfs mount (`allow_other`, user_id=65534 in the
  mount table: the daemon runs with real uid nobody) is refused for root the
  same way, with who mounted it; nobody itself still controls it.
- Signals at a password prompt (Ctrl-C, Ctrl-\\, SIGTERM, SIGHUP) leave the
  terminal's echo on; Ctrl-Z stops with echo on and SIGCONT brings the prompt
  back with echo off (sessionctl runs as a job of a small job-control shell).
- sessionctl waiting at a prompt has a core limit of 0 and is not dumpable
  (its /proc files belong to root even when nobody runs it).
- `sessionctl new` says on stderr which Argon2id cost and cipher the session
  got (stdout stays the id alone), and `list --json` shows them for unlocked
  sessions, so a downgrade through the unauthenticated sessionfs.conf shows.
"""
import errno
import fcntl
import json
import os
import re
import resource
import select
import signal
import stat
import subprocess
import tempfile
import termios
import time
import unittest

import sfs

NOBODY = 65534
NOT_A_MOUNT = 5


def as_nobody(fn):
    """Run @fn() in a forked child as uid/gid 65534; re-raise its failure."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        msg = b""
        try:
            os.setgroups([])
            os.setresgid(NOBODY, NOBODY, NOBODY)
            os.setresuid(NOBODY, NOBODY, NOBODY)
            os.umask(0)
            fn()
        except BaseException as e:  # report, never return into the test runner
            msg = repr(e).encode() or b"error"
        os.write(w, msg)
        os._exit(0)
    os.close(w)
    msg = b""
    while True:
        b = os.read(r, 4096)
        if not b:
            break
        msg += b
    os.close(r)
    os.waitpid(pid, 0)
    if msg:
        raise AssertionError("as nobody: " + msg.decode())


def mounted(mnt):
    """Whether @mnt is a mountpoint, by the mount table (root cannot even stat
    another user's FUSE mount without allow_other, so os.path.ismount says no)."""
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == mnt for line in f)


def umount_any(mnt):
    """Unmount @mnt, whoever's it is (fusermount3 -u, then -uz)."""
    for _ in range(20):
        if not mounted(mnt) or sfs.run(["fusermount3", "-u", mnt]).rc == 0:
            return
        time.sleep(0.25)
    sfs.run(["fusermount3", "-uz", mnt])


def drop_to_nobody():
    os.setgroups([])
    os.setresgid(NOBODY, NOBODY, NOBODY)
    os.setresuid(NOBODY, NOBODY, NOBODY)


class FakeTargetTest(unittest.TestCase):
    """Root's sessionctl pointed at a tree that nobody made."""

    def setUp(self):
        self.e = sfs.Env()
        self.addCleanup(self.e.cleanup)
        self.m = self.e.mount()
        self.sid = self.e.new(self.m)
        self.e.lock(self.m, self.sid)
        # The fake tree lives in a directory nobody owns, outside the Env.
        self.top = tempfile.mkdtemp(prefix="sfs-evil-")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", self.top]))
        os.chmod(self.top, 0o755)
        os.chown(self.top, NOBODY, NOBODY)
        self.fake = os.path.join(self.top, "mnt")
        self.ctl = os.path.join(self.fake, ".sessionfs")

        def tree():
            for d in ("sessions", "archive"):
                os.makedirs(os.path.join(self.fake, d, self.sid))
        as_nobody(tree)
        self.pw = self.e.pwfile(sfs.PASSWORD)
        self.pw2 = self.e.pwfile("another password")

    def commands(self):
        """Every sessionctl command that talks to the daemon, aimed at the fake."""
        sdir = os.path.join(self.fake, "sessions", self.sid)
        return [
            ["unlock", "--password-file", self.pw, sdir],
            ["new", "--password-file", self.pw, self.fake],
            ["passwd", "--password-file", self.pw, "--new-password-file", self.pw2, sdir],
            ["lock", sdir],
            ["lock", "--all", self.fake],
            ["list", "--json", self.fake],
            ["delete", "--yes", sdir],
        ]

    def refused(self, args, after=None):
        """Run sessionctl @args (must finish within 10 s): exit 5, a clear
        message; then @after() checks nothing arrived."""
        t0 = time.monotonic()
        r = sfs.run([sfs.SESSIONCTL] + args, timeout=10)
        self.assertEqual(r.rc, NOT_A_MOUNT, r)
        self.assertTrue(r.err.startswith("sessionctl: "), r)
        self.assertIn("not a sessionfs mount", r.err, r)
        self.assertNotIn(sfs.PASSWORD, r.err + r.out)
        self.assertLess(time.monotonic() - t0, 10)
        if after:
            after(args)

    def real_mount_untouched(self):
        self.assertEqual([(s["id"], s["locked"]) for s in self.e.list(self.m)],
                         [(self.sid, True)])

    def test_regular_file(self):
        as_nobody(lambda: os.close(os.open(self.ctl, os.O_CREAT | os.O_WRONLY, 0o666)))
        self.assertEqual(stat.S_IMODE(os.stat(self.ctl).st_mode), 0o666)

        def empty(args):
            self.assertEqual(os.path.getsize(self.ctl), 0, "%r wrote into the fake" % args)
        for args in self.commands():
            self.refused(args, empty)
        self.real_mount_untouched()

    def test_fifo(self):
        as_nobody(lambda: os.mkfifo(self.ctl, 0o666))
        reader = os.open(self.ctl, os.O_RDONLY | os.O_NONBLOCK)
        self.addCleanup(os.close, reader)

        def nothing(args):
            try:
                got = os.read(reader, 1 << 16)
            except BlockingIOError:
                got = b""
            self.assertEqual(got, b"", "%r wrote into the FIFO" % args)
        for args in self.commands():
            self.refused(args, nothing)

    def test_symlink_to_real_control_file(self):
        """The fake's .sessionfs points at a real mount's: followed, it would
        unlock, create, re-key or delete sessions there."""
        target = os.path.join(self.m.mnt, ".sessionfs")
        as_nobody(lambda: os.symlink(target, self.ctl))
        for args in self.commands():
            self.refused(args)
        self.real_mount_untouched()
        self.e.unlock(self.m, self.sid)  # the password was not changed

    def test_symlink_on_the_real_mount_path_works(self):
        """A symlink to a real mountpoint (not to the control file) is fine:
        the mount is resolved, then proven."""
        link = os.path.join(self.e.tmp, "link")
        os.symlink(self.m.mnt, link)
        r = self.e.ctl("list", "--json", link)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual([s["id"] for s in json.loads(r.out)], [self.sid])
        r = self.e.ctl("unlock", os.path.join(link, "sessions", self.sid),
                       password=sfs.PASSWORD)
        self.assertEqual(r.rc, 0, r)

    def test_subdirectory_of_a_mount(self):
        """sessions/ of a real mount is not a mountpoint: refused, nothing sent."""
        r = self.e.ctl("list", self.m.sessions())
        self.assertEqual(r.rc, NOT_A_MOUNT, r)
        self.assertIn("not the root of a mount", r.err)


class OtherUsersMountTest(unittest.TestCase):
    """A real sessionfs mount whose daemon is nobody's (real uid 65534, so the
    mount table says user_id=65534 and the control file is nobody's), with
    allow_other so root can reach it."""

    def setUp(self):
        self.e = sfs.Env()
        self.addCleanup(self.e.cleanup)
        subprocess.run(["chown", "-R", "%d:%d" % (NOBODY, NOBODY), self.e.store], check=True)
        os.chmod(self.e.tmp, 0o755)
        self.mnt = self.e.path("mnt-nobody")
        os.mkdir(self.mnt)
        os.chown(self.mnt, NOBODY, NOBODY)

        def real_uid_nobody():
            os.setresgid(NOBODY, 0, 0)
            os.setresuid(NOBODY, 0, 0)
        r = subprocess.run([sfs.SESSIONFS, "-o", "allow_other", self.e.store, self.mnt],
                           preexec_fn=real_uid_nobody, timeout=sfs.TIMEOUT,
                           capture_output=True)
        self.assertEqual(r.returncode, 0, r)
        self.addCleanup(umount_any, self.mnt)
        with open("/proc/self/mountinfo") as f:
            line = [l for l in f if " %s " % self.mnt in l]
        self.assertEqual(len(line), 1, line)
        self.assertIn(" fuse.sessionfs ", line[0])
        self.assertIn("user_id=%d" % NOBODY, line[0])

    def test_root_refuses_nobodys_mount(self):
        pw = self.e.pwfile(sfs.PASSWORD)
        for args in (["new", "--password-file", pw, self.mnt], ["list", self.mnt],
                     ["lock", "--all", self.mnt]):
            r = sfs.run([sfs.SESSIONCTL] + args, timeout=10)
            self.assertEqual(r.rc, NOT_A_MOUNT, r)
            self.assertIn("not a sessionfs mount: mounted by uid %d" % NOBODY, r.err)
        self.assertEqual(os.listdir(os.path.join(self.e.store, "sessions")), [])

    def test_nobody_controls_its_own_mount(self):
        pw = os.path.join(self.e.tmp, "pw-nobody")
        with open(pw, "w") as f:
            f.write(sfs.PASSWORD + "\n")
        os.chown(pw, NOBODY, NOBODY)
        os.chmod(pw, 0o600)
        r = subprocess.run([sfs.SESSIONCTL, "new", "--password-file", pw, self.mnt],
                           preexec_fn=drop_to_nobody, capture_output=True, text=True,
                           timeout=sfs.TIMEOUT)
        self.assertEqual(r.returncode, 0, r)
        self.assertRegex(r.stdout.strip(), sfs.ID_RE)


def spawn_on_pty(args, preexec=None):
    """Start @args as a session leader with a fresh pty as its controlling
    terminal (stdin, stdout, stderr); (Popen, master fd, slave fd)."""
    master, slave = os.openpty()

    def child():
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        if preexec:
            preexec()
    p = subprocess.Popen([str(a) for a in args], stdin=slave, stdout=slave, stderr=slave,
                         start_new_session=True, preexec_fn=child)
    return p, master, slave


def read_until(fd, pattern, timeout=30, out=b""):
    """Read @fd until @pattern (bytes regex) is in what was read; all of it."""
    deadline = time.monotonic() + timeout
    while not re.search(pattern, out):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("no %r on the pty; got %r" % (pattern, out))
        r, _, _ = select.select([fd], [], [], left)
        if r:
            try:
                b = os.read(fd, 4096)
            except OSError:
                b = b""
            if not b:
                raise AssertionError("EOF before %r; got %r" % (pattern, out))
            out += b
    return out


def echo_on(fd):
    return bool(termios.tcgetattr(fd)[3] & termios.ECHO)


def wait_echo(fd, want, timeout=10):
    deadline = time.monotonic() + timeout
    while echo_on(fd) != want:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


# A tiny job-control shell: session leader of the pty, runs sessionctl as a
# foreground job in its own process group (so its group is not orphaned and
# Ctrl-Z really stops it), reports on fd argv[1] and obeys "cont" on fd argv[2].
JOB_SHELL = r"""
import fcntl, os, signal, sys, termios
signal.signal(signal.SIGTTOU, signal.SIG_IGN)
fcntl.ioctl(0, termios.TIOCSCTTY, 0)
pid = os.fork()
if pid == 0:
    os.setpgid(0, 0)
    os.tcsetpgrp(0, os.getpgrp())
    signal.signal(signal.SIGTTOU, signal.SIG_DFL)
    os.execv(sys.argv[3], sys.argv[3:])
try:
    os.setpgid(pid, pid)  # as the child does: whichever comes first
except OSError:  # EACCES: the child has exec'd already, its own setpgid done
    pass
os.tcsetpgrp(0, pid)
rep = os.fdopen(int(sys.argv[1]), "w", buffering=1)
cmd = os.fdopen(int(sys.argv[2]), "r")
rep.write("pid %d\n" % pid)
while True:
    _, st = os.waitpid(pid, os.WUNTRACED)
    if os.WIFSTOPPED(st):
        rep.write("stopped %d\n" % os.WSTOPSIG(st))
        if cmd.readline().strip() != "cont":
            os.kill(pid, signal.SIGKILL)
            continue
        os.tcsetpgrp(0, pid)
        os.kill(pid, signal.SIGCONT)
        continue
    rep.write("exit %d\n" % os.waitstatus_to_exitcode(st))
    break
"""


def tsan_signal_problem():
    """Why a signal at sessionctl's prompt cannot be tested in this build, or None.
    ThreadSanitizer runs a signal's handler only at the process's next call
    it intercepts; the prompt's handlers are SA_RESTART, so the kernel
    restarts the read() the signal interrupted and the handler never runs
    while the prompt waits (a limit of the sanitizer, not of sessionctl: the
    plain and ASan builds run these tests)."""
    with open(sfs.SESSIONCTL, "rb") as f:
        if b"__tsan_init" in f.read():
            return "a ThreadSanitizer build defers signal handlers past a restarted read()"
    return None


class PromptTest(unittest.TestCase):
    """sessionctl at a password prompt on a pseudo-terminal."""

    def setUp(self):
        self.e = sfs.Env()
        self.addCleanup(self.e.cleanup)
        self.m = self.e.mount()
        self.sid = self.e.new(self.m)
        self.e.lock(self.m, self.sid)
        self.procs = []
        self.addCleanup(self.reap)

    def reap(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()

    def prompt(self, preexec=None):
        p, master, slave = spawn_on_pty([sfs.SESSIONCTL, "unlock", self.m.sdir(self.sid)],
                                        preexec)
        self.procs.append(p)
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        read_until(master, rb"Password for %s: " % self.sid.encode())
        self.assertTrue(wait_echo(slave, False), "echo never went off at the prompt")
        return p, master, slave

    def end_signal(self):
        """What ends a sessionctl at its prompt once a test is done with it."""
        return signal.SIGKILL if tsan_signal_problem() else signal.SIGTERM

    def check_signal(self, sig, key=None):
        if tsan_signal_problem():
            self.skipTest(tsan_signal_problem())
        p, master, slave = self.prompt()
        if key:
            os.write(master, key)
        else:
            os.kill(p.pid, sig)
        self.assertEqual(p.wait(timeout=10), -sig, "sessionctl did not die of %s" % sig)
        self.assertTrue(echo_on(slave), "%s at the prompt left the terminal without echo"
                        % signal.Signals(sig).name)

    def test_ctrl_c(self):
        self.check_signal(signal.SIGINT, b"\x03")

    def test_ctrl_backslash(self):
        self.check_signal(signal.SIGQUIT, b"\x1c")

    def test_sigterm(self):
        self.check_signal(signal.SIGTERM)

    def test_sighup(self):
        self.check_signal(signal.SIGHUP)

    def test_ctrl_z_then_fg(self):
        """Stopped with echo on; continued in the foreground, echo is off
        again and the prompt is repeated; the password then unlocks."""
        if tsan_signal_problem():
            self.skipTest(tsan_signal_problem())
        master, slave = os.openpty()
        rep_r, rep_w = os.pipe()
        cmd_r, cmd_w = os.pipe()
        p = subprocess.Popen(["python3", "-c", JOB_SHELL, str(rep_w), str(cmd_r), sfs.SESSIONCTL,
                              "unlock", self.m.sdir(self.sid)],
                             stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                             pass_fds=(rep_w, cmd_r))
        self.procs.append(p)
        os.close(rep_w)
        os.close(cmd_r)
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        rep = os.fdopen(rep_r, "r")
        self.addCleanup(rep.close)
        cmd = os.fdopen(cmd_w, "w", buffering=1)
        self.addCleanup(cmd.close)
        line = rep.readline()
        self.assertTrue(line.startswith("pid "), "job shell: %r" % line)
        out = read_until(master, rb"Password for %s: " % self.sid.encode())
        self.assertTrue(wait_echo(slave, False), "echo never went off at the prompt")
        os.write(master, b"\x1a")
        self.assertEqual(rep.readline().strip(), "stopped %d" % signal.SIGTSTP)
        self.assertTrue(echo_on(slave), "stopped at the prompt with the terminal's echo off")
        cmd.write("cont\n")
        out = read_until(master, rb"(Password for %s: .*){2}" % self.sid.encode(), out=out)
        self.assertTrue(wait_echo(slave, False), "continued, but echo stayed on")
        os.write(master, (sfs.PASSWORD + "\n").encode())
        self.assertEqual(rep.readline().strip(), "exit 0", out)
        self.assertEqual(p.wait(timeout=10), 0)
        self.assertTrue(echo_on(slave))
        self.assertFalse(self.e.list(self.m)[0]["locked"])

    def test_no_core_dump(self):
        """RLIMIT_CORE 0 from the start, even when the caller allowed cores."""
        def allow_cores():
            resource.setrlimit(resource.RLIMIT_CORE,
                               (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        p, master, slave = self.prompt(allow_cores)
        with open("/proc/%d/limits" % p.pid) as f:
            core = [l.split() for l in f if l.startswith("Max core file size")]
        self.assertEqual(core[0][4:6], ["0", "0"], core)
        os.kill(p.pid, self.end_signal())
        p.wait(timeout=10)

    def test_not_dumpable(self):
        """Run by nobody against nobody's own mount: a dumpable process's
        /proc/PID/ files are its owner's; PR_SET_DUMPABLE 0 makes them root's."""
        store = self.e.path("store-nobody")
        sfs.mkfs(store)
        subprocess.run(["chown", "-R", "%d:%d" % (NOBODY, NOBODY), store], check=True)
        os.chmod(self.e.tmp, 0o755)
        mnt = self.e.path("mnt-nobody")
        os.mkdir(mnt)
        os.chown(mnt, NOBODY, NOBODY)

        def real_uid_nobody():
            os.setresgid(NOBODY, 0, 0)
            os.setresuid(NOBODY, 0, 0)
        r = subprocess.run([sfs.SESSIONFS, store, mnt], preexec_fn=real_uid_nobody,
                           timeout=sfs.TIMEOUT, capture_output=True)
        self.assertEqual(r.returncode, 0, r)
        self.addCleanup(umount_any, mnt)
        p, master, slave = spawn_on_pty([sfs.SESSIONCTL, "new", mnt], drop_to_nobody)
        self.procs.append(p)
        self.addCleanup(os.close, master)
        self.addCleanup(os.close, slave)
        read_until(master, rb"New session password: ")
        # (/proc/PID itself keeps the euid whatever the dumpable flag.)
        self.assertEqual(os.stat("/proc/%d/status" % p.pid).st_uid, 0,
                         "sessionctl (nobody) at a prompt is dumpable")
        os.kill(p.pid, self.end_signal())
        p.wait(timeout=10)


class ProtectionReportTest(unittest.TestCase):
    """`sessionctl new` and `list --json` say how a session's key is kept."""

    def test_new_and_list(self):
        with sfs.Env(cipher="xchacha20poly1305") as e:
            m = e.mount()
            r = e.ctl("new", m.mnt, password=sfs.PASSWORD)
            self.assertEqual(r.rc, 0, r)
            sid = r.out.strip()
            self.assertRegex(sid, sfs.ID_RE)
            self.assertEqual(r.out, sid + "\n", "stdout must stay the id alone")
            self.assertEqual(r.err, "sessionctl: %s: Argon2id interactive (opslimit 2, "
                             "memlimit 64 MiB), XChaCha20-Poly1305\n" % sid)
            other = e.new(m)
            e.lock(m, other)
            got = {s["id"]: s for s in e.list(m)}
            self.assertEqual({k: got[sid].get(k) for k in ("kdf", "opslimit", "memlimit",
                                                           "cipher")},
                             {"kdf": "interactive", "opslimit": 2, "memlimit": 64 << 20,
                              "cipher": "xchacha20poly1305"})
            self.assertNotIn("kdf", got[other])

    def test_downgrade_shows(self):
        """sessionfs.conf is not authenticated: someone who edits it from
        moderate to interactive makes new sessions cheaper to attack; the
        user sees it at `new`."""
        with sfs.Env(kdf="moderate") as e:
            conf = os.path.join(e.store, "sessionfs.conf")
            with open(conf) as f:
                doc = json.load(f)
            doc["kdf"] = "interactive"
            with open(conf, "w") as f:
                json.dump(doc, f)
            m = e.mount()
            r = e.ctl("new", m.mnt, password=sfs.PASSWORD)
            self.assertEqual(r.rc, 0, r)
            self.assertIn(": Argon2id interactive (opslimit 2, memlimit 64 MiB), ", r.err)


if __name__ == "__main__":
    sfs.main()
