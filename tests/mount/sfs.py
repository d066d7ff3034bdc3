"""
sfs.py - shared helpers for the sessionfs mount tests.

Each test makes its own store and mountpoint under a fresh temp directory
(Env), mounts it with the real daemon, drives it with the real sessionctl and
ordinary file system calls, and unmounts and removes everything afterwards,
failure or not.

Binaries come from the build directory named by $SFS_BUILD (default
/work/main/build): fs/sessionfs, cli/sessionctl, cli/mkfs.sessionfs.
Every subprocess runs with a timeout so that a hung mount fails the test
instead of hanging CI; a watchdog dumps the stacks and exits if a whole test
file hangs inside a file system call.
"""
import ctypes
import faulthandler
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

BUILD = os.environ.get("SFS_BUILD", "/work/main/build")
SESSIONFS = os.path.join(BUILD, "fs", "sessionfs")
SESSIONCTL = os.path.join(BUILD, "cli", "sessionctl")
MKFS = os.path.join(BUILD, "cli", "mkfs.sessionfs")

# Extra sessionfs arguments for every mount, for debugging (e.g. "-s" to run
# the daemon single-threaded). Empty by default: the tests test the default.
EXTRA_ARGS = os.environ.get("SFS_EXTRA_ARGS", "").split()

# A command the daemon runs under (tests/valgrind: "valgrind --leak-check=full
# --error-exitcode=99 --log-file=..."): every mount starts WRAPPER sessionfs ...
# Empty by default: the daemon runs as it is. A slow wrapper wants longer waits:
# SFS_TIMEOUT and SFS_MOUNT_WAIT.
WRAPPER = shlex.split(os.environ.get("SFS_DAEMON_WRAPPER", ""))

TIMEOUT = int(os.environ.get("SFS_TIMEOUT", "60"))         # seconds, every subprocess

# The step-by-step kill tests (test_crash's StepBase and its users, test_fsck's)
# kill at steps KILL_FIRST, KILL_FIRST + KILL_STRIDE, ...: every step by
# default. tests/run splits them between its builds: the plain build the odd
# steps, ASan the even ones, so one run still kills at every step.
KILL_STRIDE = max(1, int(os.environ.get("SFS_KILL_STRIDE", "1")))
KILL_FIRST = max(1, int(os.environ.get("SFS_KILL_FIRST", "1")))
MOUNT_WAIT = int(os.environ.get("SFS_MOUNT_WAIT", "30"))   # seconds, for a foreground mount
ID_RE = re.compile(r"^INC-[0-9a-f]{4,16}$")
ISO_Z_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")

PASSWORD = "correct horse battery staple"


def traced_env():
    """The environment for a program of ours run under strace: LeakSanitizer
    cannot work under ptrace and, in an ASan build, ends such a program at exit
    with "LeakSanitizer has encountered a fatal error" and status 1, whatever
    the program did. The leak check is left to the untraced runs."""
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = ":".join(x for x in (env.get("ASAN_OPTIONS"), "detect_leaks=0") if x)
    return env


class Result:
    """What a finished command did: rc, out, err (str)."""

    def __init__(self, args, rc, out, err):
        self.args, self.rc, self.out, self.err = args, rc, out, err

    def __repr__(self):
        return "Result(rc=%r, args=%r, out=%r, err=%r)" % (self.rc, self.args, self.out,
                                                            self.err)


def run(args, input=None, timeout=TIMEOUT, env=None):
    """Run @args to completion (stdin from @input or /dev/null); a Result.
    Output goes through temp files, not pipes, so a daemon that forks and
    keeps them open cannot make us wait for EOF."""
    args = [str(a) for a in args]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            p = subprocess.run(args, input=(input or "").encode(), stdout=out, stderr=err,
                               timeout=timeout, env=env)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            rc = None
        texts = []
        for f in (out, err):
            f.seek(0)
            texts.append(f.read().decode("utf-8", "replace"))
    if rc is None:
        raise AssertionError("timed out after %ss: %r (out=%r err=%r)"
                             % (timeout, args, texts[0], texts[1]))
    return Result(args, rc, texts[0], texts[1])



def run_stderr_on_tty(args):
    """Run @args with stderr on a pseudo-terminal (progress shows only on a
    terminal), stdout a pipe, stdin /dev/null: (returncode, stdout bytes,
    what the terminal got, bytes)."""
    import pty
    master, slave = pty.openpty()
    try:
        p = subprocess.run([str(a) for a in args], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=slave, timeout=TIMEOUT)
        os.close(slave)
        slave = -1
        err = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the other side is closed
                break
            if not chunk:
                break
            err += chunk
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    return p.returncode, p.stdout, err

def need_binaries(*paths):
    """Fail loudly (not skip) when a binary under test is missing."""
    for p in paths or (SESSIONFS, SESSIONCTL, MKFS):
        if not os.access(p, os.X_OK):
            raise AssertionError("%s is missing: build first (SFS_BUILD=%s)" % (p, BUILD))


def mkfs(store, kdf="interactive", cipher=None):
    """Make a store (@cipher: mkfs --cipher, None for its default); asserts success."""
    r = run([MKFS, "--kdf=" + kdf] + (["--cipher=" + cipher] if cipher else []) + [store])
    if r.rc != 0:
        raise AssertionError("mkfs failed: %r" % r)
    return r


def umount(mnt, proc=None):
    """Unmount @mnt with fusermount3 -u (retrying while busy), then -uz as a
    last resort. Returns True if the clean unmount worked."""
    ok = False
    for _ in range(20):
        if not os.path.ismount(mnt):
            ok = True
            break
        r = run(["fusermount3", "-u", mnt])
        if r.rc == 0:
            ok = True
            break
        time.sleep(0.25)
    if not ok and os.path.ismount(mnt):
        run(["fusermount3", "-uz", mnt])
    if proc is not None:
        try:
            proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return ok


def daemon_pids(store, mnt):
    """The pids of processes whose arguments end in STORE MNT: the daemon
    sessionfs forked (under any wrapper)."""
    want = [os.fsencode(store), os.fsencode(mnt)]
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                args = f.read().split(b"\0")[:-1]
        except OSError:
            continue
        if args[-2:] == want:
            pids.append(int(d))
    return pids


def wait_gone(pids, limit=TIMEOUT):
    """Wait (a hang guard of @limit seconds, no timing check) until no pid of
    @pids runs any more (a zombie counts as gone)."""
    end = time.monotonic() + limit
    for pid in pids:
        while time.monotonic() < end:
            try:
                with open("/proc/%d/stat" % pid) as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                        break
            except OSError:
                break
            time.sleep(0.02)


class Mount:
    """One mount of a store. daemon mode (sessionfs returns when ready) or
    foreground (-f, stderr to self.log)."""

    def __init__(self, store, mnt, foreground=False, opts=None, logdir=None, wrapper=None):
        self.store, self.mnt, self.foreground, self.opts = store, mnt, foreground, opts
        self.wrapper = WRAPPER if wrapper is None else wrapper
        self.proc = None
        self.log = None
        self.logdir = logdir or os.path.dirname(mnt)
        self.result = None  # daemon mode: the Result of sessionfs

    def args(self):
        a = self.wrapper + [SESSIONFS] + EXTRA_ARGS
        if self.foreground:
            a.append("-f")
        if self.opts:
            a += ["-o", self.opts]
        return a + [self.store, self.mnt]

    def start(self):
        os.makedirs(self.mnt, exist_ok=True)
        if not self.foreground:
            self.result = run(self.args())
            if self.result.rc != 0:
                raise AssertionError("sessionfs failed: %r" % self.result)
            if not os.path.ismount(self.mnt):
                raise AssertionError("sessionfs returned 0 but %s is not a mount point"
                                     % self.mnt)
            self.daemon_pids = daemon_pids(self.store, self.mnt)
            return self
        self.log = os.path.join(self.logdir, "sessionfs-%s.log" % os.path.basename(self.mnt))
        with open(self.log, "ab") as logf:
            self.proc = subprocess.Popen(self.args(), stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=logf)
        deadline = time.monotonic() + MOUNT_WAIT
        while not os.path.ismount(self.mnt):
            if self.proc.poll() is not None:
                raise AssertionError("sessionfs -f exited with %d before mounting; log:\n%s"
                                     % (self.proc.returncode, self.read_log()))
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("sessionfs -f did not mount within %ds; log:\n%s"
                                     % (MOUNT_WAIT, self.read_log()))
            time.sleep(0.05)
        return self

    def read_log(self):
        if not self.log or not os.path.exists(self.log):
            return ""
        with open(self.log, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        """Unmount; True if the unmount was clean. For -f, also waits for the
        daemon and records its exit status in self.proc.returncode; for a
        daemon, waits until it has exited (it appends the audit trail's
        unmount records after the kernel lets go of the mount, doc/format.md
        "Audit trail": a test that reads the store next must see it settled)."""
        ok = umount(self.mnt, self.proc)
        if ok and not self.foreground:
            wait_gone(getattr(self, "daemon_pids", []))
        return ok

    @property
    def mounted(self):
        return os.path.ismount(self.mnt)

    def sessions(self):
        return os.path.join(self.mnt, "sessions")

    def sdir(self, sid):
        return os.path.join(self.mnt, "sessions", sid)


class Env:
    """A temp dir with a store (made with --kdf=interactive unless
    make_store=False) and any number of mounts of it; cleans everything up.

        with Env() as env:
            m = env.mount()
            sid = env.new(m)
    """

    def __init__(self, make_store=True, kdf="interactive", cipher=None):
        need_binaries()
        self.tmp = tempfile.mkdtemp(prefix="sfs-test-")
        self.store = os.path.join(self.tmp, "store")
        self.mounts = []
        self._n = 0
        if make_store:
            mkfs(self.store, kdf, cipher)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()
        return False

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def mount(self, foreground=False, opts=None, mnt=None, store=None, wrapper=None):
        """Mount the store (or @store) at a new mountpoint (or @mnt); the
        daemon runs under @wrapper (argv list) if given, else WRAPPER."""
        if mnt is None:
            self._n += 1
            mnt = self.path("mnt%d" % self._n)
        m = Mount(store or self.store, mnt, foreground, opts, logdir=self.tmp, wrapper=wrapper)
        self.mounts.append(m)
        return m.start()

    def remount(self, m):
        """Unmount @m and mount the same store at the same place, same mode."""
        self.assert_umount(m)
        return self.mount(foreground=m.foreground, opts=m.opts, mnt=m.mnt, store=m.store)

    def assert_umount(self, m):
        if not m.stop():
            raise AssertionError("fusermount3 -u %s failed (busy?)" % m.mnt)
        if m.proc is not None and m.proc.returncode != 0:
            raise AssertionError("sessionfs -f exited %d after unmount; log:\n%s"
                                 % (m.proc.returncode, m.read_log()))

    def pwfile(self, password):
        """A 0600 file holding @password and a newline; its path."""
        fd, p = tempfile.mkstemp(prefix="pw-", dir=self.tmp)
        os.fchmod(fd, 0o600)
        os.write(fd, (password + "\n").encode())
        os.close(fd)
        return p

    def ctl(self, cmd, *args, password=None, new_password=None, input=None):
        """sessionctl CMD [--password-file F] [--new-password-file F] ARGS...
        -> Result."""
        a = [SESSIONCTL, cmd]
        if password is not None:
            a += ["--password-file", self.pwfile(password)]
        if new_password is not None:
            a += ["--new-password-file", self.pwfile(new_password)]
        return run(a + list(args), input=input)

    def new(self, m, password=PASSWORD, name=None, sid=None):
        """sessionctl new; asserts success; the new id."""
        a = []
        if name is not None:
            a += ["--name", name]
        if sid is not None:
            a += ["--id", sid]
        r = self.ctl("new", *a, m.mnt, password=password)
        if r.rc != 0:
            raise AssertionError("sessionctl new failed: %r" % r)
        out = r.out.strip()
        if not ID_RE.match(out):
            raise AssertionError("sessionctl new printed %r, not one id" % r.out)
        return out

    def unlock(self, m, sid, password=PASSWORD):
        r = self.ctl("unlock", m.sdir(sid), password=password)
        if r.rc != 0:
            raise AssertionError("sessionctl unlock failed: %r" % r)
        return r

    def lock(self, m, *sids):
        r = self.ctl("lock", *[m.sdir(s) for s in sids])
        if r.rc != 0:
            raise AssertionError("sessionctl lock failed: %r" % r)
        return r

    def settle(self, m, sid, password=PASSWORD):
        """Lock and unlock @sid in @m. A change in a session (a write, an
        append) makes the daemon's timed work rewrite metadata.json's
        "updated" a second or so later (fs/notify.c); a lock writes it at once.
        Tests that compare the store's bytes, or count the daemon's writes,
        settle first so that this rewrite does not land in the middle."""
        self.lock(m, sid)
        return self.unlock(m, sid, password=password)

    def list(self, m):
        r = self.ctl("list", "--json", m.mnt)
        if r.rc != 0:
            raise AssertionError("sessionctl list --json failed: %r" % r)
        return json.loads(r.out)

    def assert_daemons_quiet(self):
        """Every daemon's log says nothing of a sanitizer (build-asan/)."""
        for m in self.mounts:
            log = m.read_log()
            if "Sanitizer" in log or "runtime error" in log:
                raise AssertionError("the daemon at %s reported:\n%s" % (m.mnt, log))

    def cleanup(self):
        for m in reversed(self.mounts):
            try:
                m.stop()
            except Exception as e:  # keep cleaning up
                print("cleanup: unmount %s: %s" % (m.mnt, e), file=sys.stderr)
        if any(os.path.ismount(m.mnt) for m in self.mounts):
            print("cleanup: leaving %s, still mounted" % self.tmp, file=sys.stderr)
            return
        shutil.rmtree(self.tmp, ignore_errors=True)


class ForegroundMountTest(unittest.TestCase):
    """A test with one foreground mount, self.m, that it may kill: dead
    mounts are detached (fusermount3 -uz) before the Env is cleaned up."""

    def setUp(self):
        need_binaries()
        self.e = Env()
        self.addCleanup(self.e.cleanup)
        # runs before e.cleanup: a killed daemon leaves a dead mount behind
        self.addCleanup(self.lazy_umount_all)
        self.m = self.e.mount(foreground=True)

    def lazy_umount_all(self):
        for m in self.e.mounts:
            if m.proc is not None and m.proc.poll() is not None:
                run(["fusermount3", "-uz", m.mnt])

    def remount(self):
        """Mount the store again at self.m's place (after a crash or unmount)."""
        self.m = self.e.mount(foreground=True, mnt=self.m.mnt)
        return self.m


def backing_of(store, sid, path):
    """The backing file, in session SID's root in STORE, of the node at PATH in the
    mount (the mount shows backing inode numbers); asserts there is exactly one."""
    ino = os.stat(path).st_ino
    root = os.path.join(store, "sessions", sid, "root")
    hits = [os.path.join(root, n) for n in os.listdir(root)
            if os.lstat(os.path.join(root, n)).st_ino == ino]
    if len(hits) != 1:
        raise AssertionError("backing files of inode %d in %s: %r" % (ino, root, hits))
    return hits[0]


def sha256_file(path):
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_file(path, data, mode=None):
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    if mode is not None:
        os.chmod(path, mode)


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


class _Dirent(ctypes.Structure):
    _fields_ = [("d_ino", ctypes.c_uint64), ("d_off", ctypes.c_int64),
                ("d_reclen", ctypes.c_ushort), ("d_type", ctypes.c_ubyte),
                ("d_name", ctypes.c_char * 256)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.opendir.restype = ctypes.c_void_p
_libc.readdir.restype = ctypes.POINTER(_Dirent)
_libc.readdir.argtypes = [ctypes.c_void_p]
_libc.closedir.argtypes = [ctypes.c_void_p]


def d_types(path):
    """{name: d_type} as readdir(3) reports them (no stat), "." and ".." left out."""
    d = _libc.opendir(os.fsencode(path))
    if not d:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), path)
    out = {}
    try:
        while True:
            ent = _libc.readdir(d)
            if not ent:
                break
            name = ent.contents.d_name.decode()
            if name not in (".", ".."):
                out[name] = ent.contents.d_type
    finally:
        _libc.closedir(d)
    return out


def describe_tree(root):
    """What a reader sees below @root, for comparing stores across versions:
    ({relative path: attributes}, [sorted groups of hard-linked paths]).
    Times: mtime of files and symlinks (directories' move as the walk goes)."""
    import stat
    out, inodes = {}, {}
    for dirpath, dnames, fnames in os.walk(root):
        dnames.sort()
        for name in sorted(dnames + fnames):
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            e = {"mode": "%o" % st.st_mode, "uid": st.st_uid, "gid": st.st_gid,
                 "nlink": st.st_nlink}
            if not stat.S_ISDIR(st.st_mode):
                e["size"] = st.st_size
            if stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
                e["mtime_ns"] = st.st_mtime_ns
            if stat.S_ISREG(st.st_mode):
                e["sha256"] = sha256_file(p)
                if st.st_nlink > 1:
                    inodes.setdefault(st.st_ino, []).append(rel)
            elif stat.S_ISLNK(st.st_mode):
                e["target"] = os.readlink(p)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                e["rdev"] = [os.major(st.st_rdev), os.minor(st.st_rdev)]
            if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
                try:
                    names = sorted(os.listxattr(p))
                except OSError:
                    names = []
                xa = {k: os.getxattr(p, k).hex() for k in names}
                if xa:
                    e["xattrs"] = xa
            out[rel] = e
    return out, sorted(sorted(v) for v in inodes.values())


def mount_options(mnt):
    """The per-mount options of @mnt (a set), from /proc/self/mountinfo."""
    with open("/proc/self/mountinfo") as f:
        rows = [ln.split() for ln in f]
    opts = [r[5] for r in rows if r[4] == mnt]
    if len(opts) != 1:
        raise AssertionError("%s: %d mountinfo lines" % (mnt, len(opts)))
    return set(opts[0].split(","))


NOBODY = 65534


def setid_outcome(sdir):
    """Plant, as root, a set-user-ID-root copy of id(1) and a character device
    with /dev/zero's numbers (1, 5) in @sdir (a directory of an unlocked
    session on a mount that lets nobody in: allow_other), then run the copy
    as nobody and open the device. Returns (the euid the copy ran with, what
    the device read: 4 bytes, or the errno name of the open). On a nosuid,
    nodev mount: (65534, "EACCES"); on a suid, dev one: (0, b"\\0\\0\\0\\0")."""
    import errno
    import stat
    os.chmod(sdir, 0o755)
    prog = os.path.join(sdir, "setuid-id")
    shutil.copyfile(shutil.which("id"), prog)
    os.chown(prog, 0, 0)
    os.chmod(prog, 0o4755)
    if os.stat(prog).st_mode & 0o7777 != 0o4755:
        raise AssertionError("%s: mode %o, not 4755" % (prog, os.stat(prog).st_mode))
    r = run(["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups",
             prog, "-u"])
    if r.rc != 0:
        raise AssertionError("%s as nobody: %r" % (prog, r))
    zero = os.path.join(sdir, "zero")
    os.mknod(zero, stat.S_IFCHR | 0o666, os.makedev(1, 5))
    try:
        fd = os.open(zero, os.O_RDONLY)
    except OSError as e:
        return int(r.out), errno.errorcode[e.errno]
    try:
        return int(r.out), os.read(fd, 4)
    finally:
        os.close(fd)


class _WatchdogResult(unittest.TextTestResult):
    """Arms the watchdog afresh at the start of every test: each test (not
    the whole file) gets SFS_TEST_WATCHDOG seconds, so a file of many long
    tests on a slow machine is not killed for its length, and a hung call
    is still caught within one test's time."""

    def startTest(self, test):
        faulthandler.dump_traceback_later(int(os.environ.get("SFS_TEST_WATCHDOG", "280")),
                                          exit=True)
        super().startTest(test)


def main():
    """Run the calling test file's tests; exit non-zero on failure. A
    watchdog (per test) dumps every thread's stack and ends the run if a file
    system call hangs."""
    faulthandler.dump_traceback_later(int(os.environ.get("SFS_TEST_WATCHDOG", "280")),
                                      exit=True)
    unittest.main(module="__main__", testRunner=unittest.TextTestRunner(
        resultclass=_WatchdogResult, verbosity=2))
