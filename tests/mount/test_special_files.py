"""Special files inside a session (issue 4), each checked against a native
directory next to the store where ext4 has an answer:

- FIFOs (mkfifo, mknod): a writer and a reader process through one, also as
  another user; UNIX sockets made by bind(), a server and a client talking
  through one; character and block device nodes made by root, with their
  st_rdev, and /dev/null's numbers reading like /dev/null on a mount made
  with -o sfs_allow_dev (sessionfs mounts nodev,nosuid unless told otherwise);
- exact modes (0151 under umask 0, the umask applied otherwise), owners
  (setgid directories), link counts, hard links, rename, chmod, chown,
  utimens of all of them; readdir's d_type;
- symlink targets up to PATH_MAX - 1 = 4095 bytes (the long form, past the
  3000-byte short form), ENAMETOOLONG at 4096, lchown and utimensat with
  AT_SYMLINK_NOFOLLOW (UTIME_NOW, UTIME_OMIT, explicit nanoseconds) of both
  forms;
- the parent directory's mtime and ctime move on mknod and symlink;
- all of it survives a remount and unlock; after lock nothing is readable;
  nothing of it is in the store in plaintext; a tampered long target reads
  as EIO, never as other bytes.

The mount uses -o allow_other,default_permissions, as issue 4's conformance
suites do; tests run as root and switch users with setpriv.
"""
import ctypes
import errno
import os
import socket
import stat
import subprocess
import sys
import time
import unittest

import sfs

OPTS = "allow_other,default_permissions"
HDR, OVERHEAD, NONCE = 80, 40, 24
SHORT_MAX = 3000  # lib/format.h SFS_SYMLINK_MAX
NOBODY = 65534

libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def lchmod(path, mode):
    """fchmodat(AT_FDCWD, path, mode, AT_SYMLINK_NOFOLLOW): EOPNOTSUPP on a
    symlink (Linux has no symlink modes)."""
    if libc.fchmodat(AT_FDCWD, os.fsencode(path), ctypes.c_uint(mode),
                     AT_SYMLINK_NOFOLLOW) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), path)


def lutimens(path, atime, mtime):
    """utimensat(AT_FDCWD, path, {atime, mtime}, AT_SYMLINK_NOFOLLOW); each a
    (sec, nsec) pair, nsec may be UTIME_NOW or UTIME_OMIT."""
    ts = (Timespec * 2)()
    for i, (sec, nsec) in enumerate((atime, mtime)):
        ts[i].tv_sec, ts[i].tv_nsec = sec, nsec
    if libc.utimensat(AT_FDCWD, os.fsencode(path), ts, AT_SYMLINK_NOFOLLOW) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), path)


def err(fn, *args, **kw):
    """The errno name fn raises, or "ok"."""
    try:
        fn(*args, **kw)
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, e.errno)


def fields(st):
    """What must match ext4: type and mode, link count, owner, size, rdev."""
    return (stat.filemode(st.st_mode), oct(stat.S_IMODE(st.st_mode)), st.st_nlink, st.st_uid,
            st.st_gid, st.st_size if not stat.S_ISDIR(st.st_mode) else None,
            (os.major(st.st_rdev), os.minor(st.st_rdev))
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else None)


def as_user(uid, args, **kw):
    """Run @args as @uid:@uid with no supplementary groups."""
    return subprocess.run(["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups",
                           "--"] + list(args), timeout=sfs.TIMEOUT, **kw)


def long_target(n, tail="f"):
    """A target of exactly @n bytes that resolves to @tail in its directory."""
    k = (n - len(tail)) // 2
    return "./" * k + "/" * (n - len(tail) - 2 * k) + tail


class SpecialFilesTest(unittest.TestCase):
    def setUp(self):
        sfs.need_binaries()
        self.e = sfs.Env()
        self.addCleanup(self.e.cleanup)
        self.m = self.e.mount(foreground=True, opts=OPTS)
        self.sid = self.e.new(self.m)
        self.native = self.e.path("native")
        os.mkdir(self.native)
        os.chmod(self.e.tmp, 0o755)  # other users reach the mount and the native dir
        self.old_umask = os.umask(0)
        self.addCleanup(os.umask, self.old_umask)

    @property
    def d(self):
        return self.m.sdir(self.sid)

    def sides(self):
        """(native dir, session dir): run the same steps in both."""
        return (self.native, self.d)

    def remount(self):
        self.e.assert_umount(self.m)
        self.m = self.e.mount(foreground=True, opts=OPTS, mnt=self.m.mnt)
        self.e.unlock(self.m, self.sid)

    def store_bytes(self):
        """Every byte of the store: file contents, names and backing symlink targets."""
        out = []
        for root, dirs, files in os.walk(self.e.store):
            for name in dirs + files:
                p = os.path.join(root, name)
                out.append(name.encode())
                st = os.lstat(p)
                if stat.S_ISLNK(st.st_mode):
                    out.append(os.readlink(p).encode())
                elif stat.S_ISREG(st.st_mode):
                    out.append(sfs.read_file(p))
        return b"\0".join(out)

    def make_all(self, base):
        """One node of every kind in @base (a native or session dir)."""
        os.mkfifo(os.path.join(base, "fifo"), 0o640)
        os.mknod(os.path.join(base, "chr"), stat.S_IFCHR | 0o620, os.makedev(1, 3))
        os.mknod(os.path.join(base, "blk"), stat.S_IFBLK | 0o600, os.makedev(240, 300))
        os.mknod(os.path.join(base, "sockn"), stat.S_IFSOCK | 0o755)
        os.mknod(os.path.join(base, "reg"), stat.S_IFREG | 0o604)
        sfs.write_file(os.path.join(base, "f"), "the file\n")
        os.symlink("f", os.path.join(base, "short"))
        os.symlink(long_target(4095), os.path.join(base, "long"))
        os.symlink(long_target(SHORT_MAX), os.path.join(base, "short3000"))
        os.symlink(long_target(SHORT_MAX + 1), os.path.join(base, "long3001"))
        s = socket.socket(socket.AF_UNIX)
        dfd = os.open(base, os.O_PATH)
        try:
            s.bind("/proc/self/fd/%d/sock" % dfd)
        finally:
            s.close()
            os.close(dfd)

    def snapshot(self, base):
        out = {}
        for name in sorted(os.listdir(base)):
            if name in ("events.jsonl", "metadata.json"):
                continue
            p = os.path.join(base, name)
            st = os.lstat(p)
            out[name] = fields(st) + ((os.readlink(p),) if stat.S_ISLNK(st.st_mode) else ())
        return out

    # ---- FIFOs and sockets ------------------------------------------------

    def test_fifo_writer_and_reader(self):
        fifo = os.path.join(self.d, "pipe")
        os.mkfifo(fifo, 0o666)
        st = os.lstat(fifo)
        self.assertTrue(stat.S_ISFIFO(st.st_mode), stat.filemode(st.st_mode))
        self.assertEqual((stat.S_IMODE(st.st_mode), st.st_size, st.st_nlink), (0o666, 0, 1))
        data = os.urandom(3 << 20)  # more than a pipe holds: the two must take turns
        src = self.e.path("src.bin")
        sfs.write_file(src, data)
        # A reader process and a writer process, each opening the FIFO by path.
        reader = subprocess.Popen(["sh", "-c", 'sha256sum < "$1"', "sh", fifo],
                                  stdout=subprocess.PIPE)
        writer = subprocess.Popen(["sh", "-c", 'cat "$1" > "$2"', "sh", src, fifo])
        self.assertEqual(writer.wait(timeout=sfs.TIMEOUT), 0)
        out, _ = reader.communicate(timeout=sfs.TIMEOUT)
        self.assertEqual(out.split()[0].decode(), sfs.sha256_file(src))
        # The FIFO holds nothing: still size 0, and nothing of the data went to the store.
        self.assertEqual(os.lstat(fifo).st_size, 0)
        self.assertNotIn(data[:64], self.store_bytes())

    def test_fifo_as_another_user(self):
        os.chmod(self.d, 0o755)
        shared = os.path.join(self.d, "shared")
        os.mkdir(shared, 0o1777)
        fifo = os.path.join(shared, "p")
        r = as_user(1000, ["mkfifo", "-m", "0600", fifo])
        self.assertEqual(r.returncode, 0)
        st = os.lstat(fifo)
        self.assertEqual((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)), (1000, 1000, 0o600))
        reader = subprocess.Popen(["setpriv", "--reuid=1000", "--regid=1000", "--clear-groups",
                                   "--", "sh", "-c", 'cat < "$1"', "sh", fifo],
                                  stdout=subprocess.PIPE)
        r = as_user(1000, ["sh", "-c", 'echo "from user 1000" > "$1"', "sh", fifo])
        self.assertEqual(r.returncode, 0)
        out, _ = reader.communicate(timeout=sfs.TIMEOUT)
        self.assertEqual(out, b"from user 1000\n")
        # Another user cannot open it (0600), as on ext4; the owner can chmod it.
        r = as_user(NOBODY, ["sh", "-c", 'exec 3<>"$1"', "sh", fifo], stderr=subprocess.PIPE)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"Permission denied", r.stderr)
        self.assertEqual(as_user(1000, ["chmod", "0666", fifo]).returncode, 0)
        self.assertEqual(stat.S_IMODE(os.lstat(fifo).st_mode), 0o666)
        # ...and the sticky directory keeps others from removing it.
        self.assertNotEqual(as_user(NOBODY, ["rm", "-f", fifo], stderr=subprocess.DEVNULL)
                            .returncode, 0)
        self.assertTrue(os.path.lexists(fifo))

    def test_unix_socket_server_and_client(self):
        server = subprocess.Popen([sys.executable, "-c", """
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind("srv.sock")
s.listen(1)
print("ready", flush=True)
c, _ = s.accept()
data = b""
while not data.endswith(b"\\n"):
    data += c.recv(4096)
c.sendall(b"echo:" + data)
c.close()
"""], cwd=self.d, stdout=subprocess.PIPE)
        self.assertEqual(server.stdout.readline(), b"ready\n")
        st = os.lstat(os.path.join(self.d, "srv.sock"))
        self.assertTrue(stat.S_ISSOCK(st.st_mode), stat.filemode(st.st_mode))
        client = subprocess.run([sys.executable, "-c", """
import socket
c = socket.socket(socket.AF_UNIX)
c.connect("srv.sock")
c.sendall(b"hello through sessionfs\\n")
data = b""
while True:
    b = c.recv(4096)
    if not b:
        break
    data += b
print(data.decode(), end="")
"""], cwd=self.d, stdout=subprocess.PIPE, timeout=sfs.TIMEOUT)
        self.assertEqual(client.stdout, b"echo:hello through sessionfs\n")
        self.assertEqual(server.wait(timeout=sfs.TIMEOUT), 0)
        server.stdout.close()
        # Nobody listens any more: refused, as on ext4; opening a socket: ENXIO.
        for base in self.sides():
            c = socket.socket(socket.AF_UNIX)
            path = os.path.join(base, "srv.sock")
            if base == self.native:
                os.mknod(path, stat.S_IFSOCK | 0o755)
            dfd = os.open(base, os.O_PATH)
            try:
                self.assertEqual(err(c.connect, "/proc/self/fd/%d/srv.sock" % dfd),
                                 "ECONNREFUSED")
            finally:
                c.close()
                os.close(dfd)
            self.assertEqual(err(os.open, path, os.O_RDONLY), "ENXIO")
        self.assertNotIn(b"hello through", self.store_bytes())

    # ---- device nodes -----------------------------------------------------

    def test_device_nodes(self):
        for base in self.sides():
            os.mknod(os.path.join(base, "null"), stat.S_IFCHR | 0o666, os.makedev(1, 3))
            os.mknod(os.path.join(base, "big"), stat.S_IFCHR | 0o600,
                     os.makedev(4095, 1048575))
            os.mknod(os.path.join(base, "blk"), stat.S_IFBLK | 0o640, os.makedev(240, 300))
            # a FIFO made by mknod keeps no device number (ext4 ignores it)
            os.mknod(os.path.join(base, "fifo"), stat.S_IFIFO | 0o644, os.makedev(1, 3))
        self.assertEqual(self.snapshot(self.native), self.snapshot(self.d))
        st = os.lstat(os.path.join(self.d, "null"))
        self.assertEqual((os.major(st.st_rdev), os.minor(st.st_rdev)), (1, 3))
        self.assertEqual(os.lstat(os.path.join(self.d, "fifo")).st_rdev, 0)
        # Only root makes device nodes: the kernel refuses others first.
        os.chmod(self.d, 0o777)
        r = as_user(1000, ["mknod", os.path.join(self.d, "nope"), "c", "1", "3"],
                    stderr=subprocess.PIPE)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"Operation not permitted", r.stderr)
        # sessionfs mounts nodev (as gocryptfs): a device node in a session
        # does not open...
        opts = sfs.run(["findmnt", "-n", "-o", "OPTIONS", self.m.mnt]).out
        self.assertIn("nodev", opts.split(","))
        self.assertIn("nosuid", opts.split(","))
        self.assertEqual(err(os.open, os.path.join(self.d, "null"), os.O_RDWR), "EACCES")
        # ...not even with -o dev, which mount(8) passes by default...
        self.e.assert_umount(self.m)
        self.m = self.e.mount(foreground=True, opts=OPTS + ",dev", mnt=self.m.mnt)
        self.e.unlock(self.m, self.sid)
        opts = sfs.run(["findmnt", "-n", "-o", "OPTIONS", self.m.mnt]).out
        self.assertIn("nodev", opts.split(","))
        self.assertEqual(err(os.open, os.path.join(self.d, "null"), os.O_RDWR), "EACCES")
        # ...unless root mounts with -o sfs_allow_dev: then it is /dev/null.
        self.e.assert_umount(self.m)
        self.m = self.e.mount(foreground=True, opts=OPTS + ",sfs_allow_dev", mnt=self.m.mnt)
        self.e.unlock(self.m, self.sid)
        opts = sfs.run(["findmnt", "-n", "-o", "OPTIONS", self.m.mnt]).out
        self.assertNotIn("nodev", opts.split(","))
        null = os.path.join(self.d, "null")
        self.assertEqual(sfs.run(["sh", "-c", 'echo gone > "$1" && cat "$1"', "sh", null]).out,
                         "")
        with open(null, "r+b", buffering=0) as f:
            self.assertEqual(f.write(b"x" * 100000), 100000)
            self.assertEqual(f.read(10), b"")
        r = sfs.run(["dd", "if=" + null, "of=/dev/null", "bs=1M", "count=1"])
        self.assertEqual(r.rc, 0, r)
        self.assertIn("0 bytes", r.err)
        self.assertEqual(os.lstat(null).st_size, 0)

    # ---- modes, owners, links, rename, attributes -------------------------

    def test_exact_modes(self):
        def make(base, umask):
            old = os.umask(umask)
            try:
                os.mkfifo(os.path.join(base, "fifo%o" % umask), 0o151)
                os.mknod(os.path.join(base, "chr%o" % umask), stat.S_IFCHR | 0o151,
                         os.makedev(1, 3))
                os.mknod(os.path.join(base, "sock%o" % umask), stat.S_IFSOCK | 0o151)
                os.mknod(os.path.join(base, "reg%o" % umask), 0o151)  # type 0: regular
                os.mknod(os.path.join(base, "suid%o" % umask), stat.S_IFIFO | 0o6751)
                os.mknod(os.path.join(base, "sticky%o" % umask), stat.S_IFCHR | 0o1777,
                         os.makedev(240, 1))
                os.mkfifo(os.path.join(base, "all%o" % umask), 0o7777)
            finally:
                os.umask(old)

        for base in self.sides():
            make(base, 0)
            make(base, 0o022)
            make(base, 0o777)
        n, s = self.snapshot(self.native), self.snapshot(self.d)
        self.assertEqual(n, s)
        self.assertEqual(s["fifo0"][1], "0o151")
        self.assertEqual(s["reg0"][0], "---xr-x--x")
        self.assertEqual(s["fifo22"][1], "0o151")
        self.assertEqual(s["all22"][1], "0o7755")

    def test_owner_and_setgid_directory(self):
        for base in self.sides():
            os.chmod(base, 0o755)
            sg = os.path.join(base, "sg")
            os.mkdir(sg)
            os.chown(sg, 0, 4321)
            os.chmod(sg, 0o2777)
            plain = os.path.join(base, "plain")
            os.mkdir(plain, 0o777)
            for d in (sg, plain):
                r = as_user(1000, [sys.executable, "-c", "import os, sys; os.mkfifo(sys.argv[1], "
                                   "0o2775)", os.path.join(d, "fifo")], stderr=subprocess.PIPE)
                self.assertEqual(r.returncode, 0, r.stderr)
                r = as_user(1000, ["ln", "-s", "fifo", os.path.join(d, "link")])
                self.assertEqual(r.returncode, 0)
                r = as_user(1000, ["ln", "-s", long_target(3500, "fifo"),
                                   os.path.join(d, "longlink")])
                self.assertEqual(r.returncode, 0)
                os.mknod(os.path.join(d, "chr"), stat.S_IFCHR | 0o2755, os.makedev(1, 3))
        n, s = ({d: self.snapshot(os.path.join(b, d)) for d in ("sg", "plain")}
                for b in self.sides())
        self.assertEqual(n, s)
        self.assertEqual(s["sg"]["fifo"][3:5], (1000, 4321))
        self.assertEqual(s["sg"]["longlink"][3:5], (1000, 4321))
        self.assertEqual(s["plain"]["fifo"][3:5], (1000, 1000))

    def test_links_rename_chmod_chown_utimens(self):
        t = 1_234_567_890_123_456_789

        def steps(base):
            self.make_all(base)
            p = lambda *n: os.path.join(base, *n)
            out = []
            for name in ("fifo", "chr", "blk", "sock", "sockn", "long", "short"):
                os.link(p(name), p(name + ".2"), follow_symlinks=False)
            os.mkdir(p("sub"))
            os.rename(p("fifo.2"), p("sub", "fifo.moved"))
            os.rename(p("f"), p("chr.2"))          # a file over a device node
            os.rename(p("blk.2"), p("reg"))        # a device node over a file
            os.rename(p("long.2"), p("sub", "long.moved"))
            out.append(err(os.rename, p("sub"), p("fifo")))  # a directory over a FIFO: ENOTDIR
            out.append(err(os.rename, p("fifo"), p("sub")))  # a FIFO over a directory: EISDIR
            os.unlink(p("sock.2"))
            for name in ("fifo", "chr", "blk", "sock"):
                os.chmod(p(name), 0o4751)
                os.chown(p(name), 1000, 2000)
                os.utime(p(name), ns=(t, t + 1))
            for name in ("short", "long", "short3000", "long3001"):
                os.chown(p(name), 3000, 4000, follow_symlinks=False)
                out.append(err(lchmod, p(name), 0o600))
                lutimens(p(name), (5, 6), (7, 8))
            out.append(err(os.truncate, p("fifo"), 0))  # only a file has a size to set
            out.append(err(os.link, p("sub"), p("dirlink")))
            return out

        self.assertEqual(steps(self.native), steps(self.d))
        for sub in ("", "sub"):
            n, s = (self.snapshot(os.path.join(b, sub)) for b in self.sides())
            self.assertEqual(n, s)
        st = os.lstat(os.path.join(self.d, "fifo"))
        self.assertEqual((st.st_nlink, st.st_mtime_ns), (2, t + 1))
        self.assertEqual(os.lstat(os.path.join(self.d, "long")).st_mtime_ns, 7_000_000_008)
        # Hard links share an inode number, as on ext4.
        self.assertEqual(os.lstat(os.path.join(self.d, "fifo")).st_ino,
                         os.lstat(os.path.join(self.d, "sub", "fifo.moved")).st_ino)
        self.remount()
        n, s = (self.snapshot(os.path.join(b, "sub")) for b in self.sides())
        self.assertEqual(n, s)
        self.assertEqual(os.lstat(os.path.join(self.d, "long")).st_mtime_ns, 7_000_000_008)

    def test_utimensat_nofollow_on_symlinks(self):
        sfs.write_file(os.path.join(self.d, "f"), "x")
        for name, target in (("short", "f"), ("long", long_target(4000))):
            link = os.path.join(self.d, name)
            os.symlink(target, link)
            f_before = os.stat(os.path.join(self.d, "f")).st_mtime_ns
            lutimens(link, (1, 2), (3, 999_999_999))
            st = os.lstat(link)
            self.assertEqual((st.st_atime_ns, st.st_mtime_ns), (1_000_000_002, 3_999_999_999))
            lutimens(link, (0, UTIME_OMIT), (100, 5))
            st = os.lstat(link)
            self.assertEqual((st.st_atime_ns, st.st_mtime_ns), (1_000_000_002, 100_000_000_005))
            before = time.time_ns()
            lutimens(link, (0, UTIME_NOW), (0, UTIME_OMIT))
            st = os.lstat(link)
            self.assertGreaterEqual(st.st_atime_ns, before - 50_000_000)
            self.assertEqual(st.st_mtime_ns, 100_000_000_005)
            lutimens(link, (0, UTIME_OMIT), (0, UTIME_NOW))
            self.assertGreaterEqual(os.lstat(link).st_mtime_ns, before - 50_000_000)
            # the target was not touched
            self.assertEqual(os.stat(os.path.join(self.d, "f")).st_mtime_ns, f_before)
            self.assertEqual(sfs.read_file(link), b"x")

    def test_parent_times_move(self):
        old = 1_000_000_000_000_000_000
        makers = {
            "mkfifo": lambda p: os.mkfifo(p),
            "mknod chr": lambda p: os.mknod(p, stat.S_IFCHR | 0o600, os.makedev(1, 3)),
            "mknod reg": lambda p: os.mknod(p, 0o600),
            "symlink": lambda p: os.symlink("t", p),
            "long symlink": lambda p: os.symlink(long_target(4095), p),
            "bind": self.bind,
            "unlink": os.unlink,
        }
        for base in self.sides():
            for i, (what, make) in enumerate(makers.items()):
                d = os.path.join(base, "d%d" % i)
                os.mkdir(d)
                if what == "unlink":
                    os.mkfifo(os.path.join(d, "n"))
                os.utime(d, ns=(old, old))
                before = os.stat(d)
                time.sleep(0.02)
                make(os.path.join(d, "n"))
                after = os.stat(d)
                self.assertNotEqual(after.st_mtime_ns, old, "%s: %s: mtime" % (base, what))
                self.assertGreater(after.st_ctime_ns, before.st_ctime_ns,
                                   "%s: %s: ctime" % (base, what))
                self.assertEqual(after.st_mtime_ns, after.st_ctime_ns, "%s: %s" % (base, what))
                if what != "unlink":
                    st = os.lstat(os.path.join(d, "n"))
                    self.assertGreater(st.st_ctime_ns, before.st_ctime_ns)
                    self.assertLessEqual(st.st_mtime_ns, after.st_mtime_ns)

    def test_chmod_chown_move_ctime(self):
        """pjdfstest chmod/00.t and chown/00.t: chmod and chown move ctime and
        leave mtime, for every kind of node, directories too, as ext4 does
        (a chmod to the same mode included). chown(-1, -1) is left out: POSIX
        lets it leave the times, and FUSE sends no change for it."""
        self.maxDiff = None
        old = 1_000_000_000_000_000_000
        ops = {
            "chmod": lambda p: os.chmod(p, 0o751, follow_symlinks=False),
            "chmod same": lambda p: os.chmod(p, 0o751, follow_symlinks=False),
            "chown": lambda p: os.chown(p, 4242, 4343, follow_symlinks=False),
            "chgrp": lambda p: os.chown(p, -1, 4444, follow_symlinks=False),
        }
        seen = []
        for base in self.sides():
            self.make_all(base)
            os.mkdir(os.path.join(base, "dir"))
            got = {}
            for name in ("dir", "fifo", "chr", "blk", "sockn", "sock", "reg", "f", "short",
                         "long"):
                p = os.path.join(base, name)
                for what, op in ops.items():
                    if what.startswith("chmod") and os.path.islink(p):
                        continue  # a symlink's mode cannot be changed (EOPNOTSUPP)
                    os.utime(p, ns=(old, old), follow_symlinks=False)
                    before = os.lstat(p)
                    time.sleep(0.02)
                    op(p)
                    after = os.lstat(p)
                    got[(name, what)] = (after.st_ctime_ns > before.st_ctime_ns,
                                         after.st_mtime_ns == old)
            seen.append(got)
        native, session = seen
        diff = {k: (native[k], v) for k, v in session.items() if v != native[k]}
        self.assertEqual(diff, {}, "(native, session) where they differ")
        # ext4 moves ctime on each, mtime on none
        self.assertTrue(all(v == (True, True) for v in native.values()), native)
        # the session's own directory too
        before = os.stat(self.d)
        time.sleep(0.02)
        os.chmod(self.d, 0o750)
        self.assertGreater(os.stat(self.d).st_ctime_ns, before.st_ctime_ns)
        self.assertEqual(os.stat(self.d).st_mtime_ns, before.st_mtime_ns)

    def bind(self, path):
        s = socket.socket(socket.AF_UNIX)
        dfd = os.open(os.path.dirname(path), os.O_PATH)
        try:
            s.bind("/proc/self/fd/%d/%s" % (dfd, os.path.basename(path)))
        finally:
            s.close()
            os.close(dfd)

    def test_d_type(self):
        for base in self.sides():
            self.make_all(base)
            os.mkdir(os.path.join(base, "dir"))
        n, s = (sfs.d_types(b) for b in self.sides())
        s.pop("events.jsonl")
        s.pop("metadata.json")
        self.assertEqual(n, s)
        self.assertEqual(s["fifo"], 1)    # DT_FIFO
        self.assertEqual(s["long"], 10)   # DT_LNK
        self.assertEqual(s["sock"], 12)   # DT_SOCK
        r = sfs.run(["find", self.d, "-type", "p"])
        self.assertEqual(r.out.split(), [os.path.join(self.d, "fifo")])

    # ---- long symlink targets ---------------------------------------------

    def test_long_targets(self):
        sfs.write_file(os.path.join(self.d, "f"), "reached\n")
        for n in (1, 2999, SHORT_MAX, SHORT_MAX + 1, 3031, 3032, 4000, 4095):
            link = os.path.join(self.d, "l%d" % n)
            target = long_target(n) if n > 1 else "f"
            os.symlink(target, link)
            self.assertEqual(os.readlink(link), target)
            st = os.lstat(link)
            self.assertEqual((stat.filemode(st.st_mode), st.st_size, st.st_nlink),
                             ("lrwxrwxrwx", n, 1))
            self.assertEqual(sfs.read_file(link), b"reached\n", "through %d bytes" % n)
        # Past PATH_MAX - 1: ENAMETOOLONG, as ext4.
        for base in self.sides():
            self.assertEqual(err(os.symlink, long_target(4096), os.path.join(base, "x")),
                             "ENAMETOOLONG")
            self.assertEqual(err(os.symlink, "y" * 5000, os.path.join(base, "x")),
                             "ENAMETOOLONG")
        self.assertFalse(os.path.lexists(os.path.join(self.d, "x")))
        # Unicode, and a target that is all one character.
        for name, target in (("u", "\u00e9" * 2047 + "z"), ("y", "y" * 4095)):
            os.symlink(target, os.path.join(self.d, name))
            self.assertEqual(os.readlink(os.path.join(self.d, name)), target)
            self.assertEqual(os.lstat(os.path.join(self.d, name)).st_size,
                             len(target.encode()))
        # readlink(1), ls -l, cp -a, tar see a symlink.
        self.assertEqual(sfs.run(["readlink", os.path.join(self.d, "y")]).out.strip(), "y" * 4095)
        self.assertTrue(sfs.run(["ls", "-l", os.path.join(self.d, "y")]).out.startswith("l"))
        r = sfs.run(["cp", "-a", os.path.join(self.d, "y"), self.e.path("y.copy")])
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(os.readlink(self.e.path("y.copy")), "y" * 4095)
        # Opening the link itself is ELOOP (O_NOFOLLOW); a long link to a FIFO is followed.
        self.assertEqual(err(os.open, os.path.join(self.d, "y"), os.O_RDONLY | os.O_NOFOLLOW),
                         "ELOOP")

    def test_survives_remount_lock_and_leaves_no_plaintext(self):
        marker = "sfs-secret-target-%s-" % os.urandom(6).hex()
        for base in self.sides():
            self.make_all(base)
            os.symlink((marker * 200)[:4095], os.path.join(base, "secret"))
            os.mkfifo(os.path.join(base, marker[:40]))
        before = self.snapshot(self.d)
        self.assertEqual(before, self.snapshot(self.native))
        self.remount()
        self.assertEqual(self.snapshot(self.d), before)
        self.assertEqual(os.readlink(os.path.join(self.d, "secret")), (marker * 200)[:4095])
        # Locked: nothing of it is reachable.
        self.e.lock(self.m, self.sid)
        for name in ("secret", "long", "fifo", "chr"):
            self.assertEqual(err(os.readlink if name in ("secret", "long") else os.lstat,
                                 os.path.join(self.d, name)), "EACCES")
        self.assertEqual(err(os.listdir, self.d), "EACCES")
        # The store holds none of it in plaintext: names and targets are sealed.
        blob = self.store_bytes()
        self.assertNotIn(marker.encode(), blob)
        self.assertNotIn(marker[:20].encode(), blob)
        self.assertNotIn(b"./././././././././", blob)
        # Every store file is 0600, every directory 0700: nothing special in the store.
        for root, dirs, files in os.walk(os.path.join(self.e.store, "sessions")):
            for f in files:
                st = os.lstat(os.path.join(root, f))
                if stat.S_ISLNK(st.st_mode):
                    continue
                self.assertEqual(stat.filemode(st.st_mode), "-rw-------", f)
        self.e.unlock(self.m, self.sid)
        self.assertEqual(self.snapshot(self.d), before)

    def test_tampered_long_target(self):
        n = 3777  # a size no other file in the session has
        target = long_target(n)
        link = os.path.join(self.d, "victim")
        os.symlink(target, link)
        os.mkfifo(os.path.join(self.d, "fifo"))
        root = os.path.join(self.e.store, "sessions", self.sid, "root")
        want = HDR + n + OVERHEAD
        hits = [os.path.join(root, b) for b in os.listdir(root)
                if os.path.isfile(os.path.join(root, b))
                and os.path.getsize(os.path.join(root, b)) == want]
        self.assertEqual(len(hits), 1, hits)
        backing = hits[0]
        self.assertEqual(stat.S_IMODE(os.lstat(backing).st_mode), 0o600)

        def flip(offset):
            self.e.lock(self.m, self.sid)
            with open(backing, "r+b") as f:
                f.seek(offset)
                b = f.read(1)
                f.seek(offset)
                f.write(bytes([b[0] ^ 0x20]))
            self.e.unlock(self.m, self.sid)

        # A byte of the sealed target: EIO, and the daemon says which file.
        log_before = len(self.m.read_log())
        flip(HDR + NONCE + 1234)
        self.assertEqual(err(os.readlink, link), "EIO")
        self.assertEqual(err(os.stat, link), "EIO")
        self.assertEqual(os.lstat(link).st_size, n)  # the size is not secret, nor the type
        log = self.m.read_log()[log_before:]
        self.assertIn("symlink target", log)
        self.assertIn(os.path.basename(backing), log)
        flip(HDR + NONCE + 1234)  # flipped back: whole again
        self.assertEqual(os.readlink(link), target)
        # Its header (the sealed mode that makes it a symlink): never a wrong
        # target; it shows as a damaged file that reads EIO.
        flip(HDR - 20)
        self.assertNotEqual(err(os.readlink, link), "ok")
        self.assertEqual(err(sfs.read_file, link), "EIO")
        flip(HDR - 20)
        self.assertEqual(os.readlink(link), target)
        # Cut short: EIO, never a shorter target.
        self.e.lock(self.m, self.sid)
        os.truncate(backing, want - 100)
        self.e.unlock(self.m, self.sid)
        self.assertEqual(err(os.readlink, link), "EIO")
        # The rest of the session is unaffected.
        self.assertTrue(stat.S_ISFIFO(os.lstat(os.path.join(self.d, "fifo")).st_mode))

    def test_session_files_keep_their_type(self):
        meta = os.path.join(self.d, "metadata.json")
        doc = sfs.read_file(meta)
        # events.jsonl and metadata.json exist: EEXIST from the kernel.
        self.assertEqual(err(os.mkfifo, os.path.join(self.d, "events.jsonl")), "EEXIST")
        # No FIFO, device or symlink replaces metadata.json by rename (EPERM, as
        # every rename refused over it: EINVAL would read "into a subdirectory").
        os.mkfifo(os.path.join(self.d, "fifo"))
        self.assertEqual(err(os.rename, os.path.join(self.d, "fifo"), meta), "EPERM")
        self.assertEqual(sfs.read_file(meta), doc)
        os.symlink(long_target(3500, "metadata.json"), os.path.join(self.d, "ln"))
        self.assertEqual(err(os.rename, os.path.join(self.d, "ln"), meta), "EPERM")
        self.assertEqual(sfs.read_file(meta), doc)
        # Deeper in the tree the names are ordinary.
        os.mkdir(os.path.join(self.d, "sub"))
        os.mkfifo(os.path.join(self.d, "sub", "metadata.json"))
        os.mkfifo(os.path.join(self.d, "sub", "events.jsonl"))
        self.assertTrue(stat.S_ISFIFO(os.lstat(os.path.join(self.d, "sub", "events.jsonl"))
                                      .st_mode))


if __name__ == "__main__":
    sfs.main()
