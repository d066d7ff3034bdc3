"""Multi-process stress test (issue 4).

PROCS processes (SFS_STRESS_PROCS, default 6, at least 4; every third one
runs as another user, uid 4242 or 65534) hammer one unlocked session of a
mount made with -o allow_other,default_permissions for SECONDS
(SFS_STRESS_SECONDS, default 60; tests/run sets 20 for the asan and tsan builds).
SFS_STRESS_SEED picks the workers' seeds (printed, to reproduce a run).

Each process works on
- a shared tree, stress/shared/, where all processes race on the same names
  (13 directory paths up to two levels deep, names f0-f5, l0-l2, d0-d2):
  create (O_EXCL, O_TRUNC), pwrite at offsets (past EOF too: holes), append
  (O_APPEND, and at the size from fstat), read, truncate/ftruncate up and
  down, rename (over files and empty directories, across directories,
  directories too), link, unlink (also of open files, used and closed
  later), mkdir, rmdir, symlink, readlink, chmod/fchmod, utimens/futimens,
  fsync/fdatasync (files and directories), lstat, readdir;
- a private tree, stress/pN/ (a/ and b/), where it alone works, so that it
  keeps an exact model: writes at any byte offset, appends, truncates,
  O_TRUNC, renames (over existing names, across a/ and b/), hard links,
  unlinks while open, symlinks, chmod; open descriptors are read back
  exactly, also after their name is gone;
- the session's events.jsonl: lines {"type":"stress","w":W,"n":N,...}, one
  to three per write, sometimes a line split over two writes, through
  fresh or long-lived O_APPEND descriptors, sometimes fsynced; and reads.

Errors a race explains (ENOENT, EEXIST, ENOTEMPTY, ENOTDIR, EISDIR, EINVAL
for a directory renamed into itself, ELOOP for O_NOFOLLOW on a symlink,
EPERM for link of a directory; ELOOP and ENAMETOOLONG for paths through
symlinks renamed to a directory's name; EACCES/EPERM for the other users'
processes, since modes and owners change under them) are counted, per operation. Any
other error (EIO, EBADMSG, ENOTCONN, ...), any error at all in the private
tree or on events.jsonl, a worker that dies or hangs (no return GRACE
seconds after the end), or a dead daemon fails the test.

What the content check proves. Every write to the shared tree writes whole
64-byte records at 64-byte aligned offsets; a record holds the writer, a
sequence number unique to that write, its index in the write and the file
offset it was written at, plus a BLAKE2b digest over those fields. Sizes
change only by whole records, so every file size stays a multiple of 64 and
every 64-byte slot of every file must be either
  - a record with a correct digest, that its writer really issued (the
    worker's log of writes has that sequence number, covering that index)
    and, unless written with O_APPEND, at exactly this offset; or
  - 64 zero bytes: a hole (a write past EOF or a truncate up, the only ways
    this workload makes zeros; ext4 returns zeros there).
Which of the two a slot should hold is not checked for the shared tree (the
interleaving is not recorded): that is what the private trees are for, where
every byte, size, mode and link count must equal the model. Symlink targets
are either short relative names or self-checking strings (digest).
During the run, reads check the same per-slot rule; a slot with a bad digest
then is only counted ("torn in flight": a read may race a write's copy into
the page cache, as on ext4), a record at a wrong offset fails at once.

After the run: a walk lstats and reads every entry (readlink for symlinks)
and must meet no error at all; shared content and private trees checked as
above; events.jsonl is valid JSON lines, ends with a newline, and holds
every acknowledged line exactly once and no other stress line. Then the
store is remounted and unlocked: the walk must give the same state (every
path, type, mode, owner, size, link count, mtime, content digest, target)
and the same events. Then `rm -rf` of the tree succeeds, a second remount
shows it gone, events intact and the session's backing directory holding
exactly what it held before the run (nothing leaked). The daemon's log must
never say "corrupt" or "torn". Counts of operations per type and errors per
errno are printed.
"""
import collections
import errno
import hashlib
import json
import multiprocessing
import os
import random
import re
import select
import stat
import struct
import sys
import time
import traceback
import unittest

import sfs

SECONDS = float(os.environ.get("SFS_STRESS_SECONDS", "60"))
PROCS = max(4, int(os.environ.get("SFS_STRESS_PROCS", "6")))
SEED = int(os.environ.get("SFS_STRESS_SEED", str(random.SystemRandom().randrange(1 << 30))))
GRACE = float(os.environ.get("SFS_STRESS_GRACE", "90"))  # seconds a worker may overrun
OTHER_UIDS = (4242, 65534)
MOUNT_OPTS = "allow_other,default_permissions"

R = 64                                   # record size and alignment
HDR = struct.Struct("<4sHHQQI")          # magic, wid, flags, seq, off, idx: 28 bytes
MAGIC = b"SFSR"
F_APPEND = 1
ZERO = bytes(R)

LEVEL1 = ["d0", "d1", "d2"]
DIRS = [""] + LEVEL1 + [a + "/" + b for a in LEVEL1 for b in LEVEL1]
FILES = ["f%d" % i for i in range(6)]
LINKS = ["l%d" % i for i in range(3)]
SHORT_TARGET = re.compile(r"^(\.\./)?[dfl]\d$")
LINK_RE = re.compile(r"^sfslink-(\d+)-(\d+)-(x*)-([0-9a-f]{16})$")

E = errno
# Errors a race (or, for other users, a mode or owner changed by someone
# else) explains, per operation. Anything else is a failure.
EXPECT = {
    "create": {E.ENOENT, E.EEXIST, E.ENOTDIR, E.EISDIR, E.ELOOP},
    "open": {E.ENOENT, E.ENOTDIR, E.EISDIR, E.ELOOP},
    "truncate": {E.ENOENT, E.ENOTDIR, E.EISDIR},
    "rename": {E.ENOENT, E.EEXIST, E.ENOTEMPTY, E.ENOTDIR, E.EISDIR, E.EINVAL},
    "link": {E.ENOENT, E.EEXIST, E.ENOTDIR, E.EPERM},
    "unlink": {E.ENOENT, E.EISDIR, E.ENOTDIR},
    "mkdir": {E.ENOENT, E.EEXIST, E.ENOTDIR},
    "rmdir": {E.ENOENT, E.ENOTEMPTY, E.ENOTDIR},
    "symlink": {E.ENOENT, E.EEXIST, E.ENOTDIR},
    "readlink": {E.ENOENT, E.ENOTDIR, E.EINVAL},
    "chmod": {E.ENOENT, E.ENOTDIR},
    "utimens": {E.ENOENT, E.ENOTDIR},
    "fsync": {E.ENOENT, E.ENOTDIR, E.ELOOP},
    "stat": {E.ENOENT, E.ENOTDIR},
    "readdir": {E.ENOENT, E.ENOTDIR},
}
# A path may go through a symlink renamed to a directory's name, so any of
# them can also loop (ELOOP) or meet a symlink whose target is one 2900-byte
# name (ENAMETOOLONG).
for _ops in EXPECT.values():
    _ops |= {E.ELOOP, E.ENAMETOOLONG}
EXPECT_OTHER_USER = {E.EACCES, E.EPERM}


def record(wid, flags, seq, off, idx):
    h = HDR.pack(MAGIC, wid, flags, seq, off, idx)
    return h + hashlib.blake2b(h, digest_size=R - HDR.size).digest()


def records(wid, flags, seq, off, n):
    return b"".join(record(wid, flags, seq, 0 if flags & F_APPEND else off + i * R, i)
                    for i in range(n))


def check_slot(slot, pos, writes, all_writers=True):
    """None if the 64 bytes @slot at file offset @pos are zeros or a valid
    record; else why not. "torn: ..." when the digest is wrong (in flight
    during the run), anything else is wrong whatever the timing. @writes:
    {wid: {seq: (start or -1 for append, nrec)}}, the writes issued; with
    @all_writers false, records of writers not in it are checked only by
    digest and offset."""
    if slot == ZERO:
        return None
    if slot[:4] != MAGIC or slot[HDR.size:] != hashlib.blake2b(
            slot[:HDR.size], digest_size=R - HDR.size).digest():
        return "torn: neither zeros nor a valid record: %r" % slot
    _, wid, flags, seq, off, idx = HDR.unpack(slot[:HDR.size])
    if not flags & F_APPEND and off != pos:
        return "record w%d seq %d idx %d written at %d found at %d" % (wid, seq, idx, off, pos)
    if all_writers or wid in writes:
        w = writes.get(wid, {}).get(seq)
        if w is None:
            return "record w%d seq %d idx %d at %d: no such write issued" % (wid, seq, idx, pos)
        start, nrec = w
        if idx >= nrec or (start < 0) != bool(flags & F_APPEND) or (
                start >= 0 and start + idx * R != off):
            return ("record w%d seq %d idx %d at %d does not match the write issued "
                    "(start %d, %d records)" % (wid, seq, idx, pos, start, nrec))
    return None


def check_content(data, writes, all_writers=True):
    """Problems of a shared file's @data: a list of strings."""
    if len(data) % R:
        return ["size %d is not a multiple of %d" % (len(data), R)]
    out = []
    for pos in range(0, len(data), R):
        why = check_slot(data[pos:pos + R], pos, writes, all_writers)
        if why:
            out.append("at %d: %s" % (pos, why))
    return out


def link_target(wid, seq, n):
    body = "sfslink-%d-%d-%s" % (wid, seq, "x" * n)
    return body + "-" + hashlib.blake2b(body.encode(), digest_size=8).hexdigest()


def check_target(t):
    if SHORT_TARGET.match(t):
        return None
    m = LINK_RE.match(t)
    if not m or t != link_target(int(m.group(1)), int(m.group(2)), len(m.group(3))):
        return "bad symlink target %r" % t
    return None


def read_fd(fd):
    chunks, off = [], 0
    while True:
        b = os.pread(fd, 1 << 20, off)
        if not b:
            return b"".join(chunks)
        chunks.append(b)
        off += len(b)


class PFile:
    """A private file in the model: its bytes and mode, shared by its links."""

    def __init__(self, mode):
        self.data = bytearray()
        self.mode = mode


class Worker:
    """One stress process. run() returns a dict for the parent."""

    def __init__(self, wid, top, events, uid, seed, end, status):
        self.wid, self.uid, self.end, self.status = wid, uid, end, status
        self.rnd = random.Random(seed)
        self.shared = os.path.join(top, "shared")
        self.priv = os.path.join(top, "p%d" % wid)
        self.events = events
        self.ok = collections.Counter()
        self.errs = collections.Counter()        # "op ERRNO" -> count
        self.unexpected = []                     # the first 50 errors no race explains
        self.nunexpected = 0
        self.bad = []                            # content and model mismatches
        self.torn = 0
        self.seq = 0
        self.writes = {}                         # seq -> (start or -1, nrec)
        self.fds = []                            # shared: open descriptors
        self.pfds = []                           # private: (fd, PFile)
        self.model = {}                          # private relpath -> PFile or str (symlink)
        self.acked = []                          # events lines whose write returned
        self.ev_fd = -1
        self.ev_pending = None                   # (n, second half) of a split line

    # -- bookkeeping -----------------------------------------------------

    def say(self, what):
        self.status.value = what.encode()[:250]

    def attempt(self, op, desc, fn, expect=None):
        """Run fn(); count; True if it worked. An error outside the op's
        expected set (None: no error expected) is recorded as unexpected."""
        self.say(desc)
        try:
            fn()
        except OSError as e:
            name = errno.errorcode.get(e.errno, str(e.errno))
            self.errs["%s %s" % (op, name)] += 1
            allowed = set(expect or ())
            if allowed and self.uid:
                allowed |= EXPECT_OTHER_USER
            if e.errno not in allowed:
                self.nunexpected += 1
                if len(self.unexpected) < 50:
                    self.unexpected.append("w%d %s: %s" % (self.wid, desc, e))
            return False
        self.ok[op] += 1
        return True

    def next_seq(self):
        self.seq += 1
        return self.seq

    # -- the shared tree -------------------------------------------------

    def sdir(self):
        return os.path.join(self.shared, self.rnd.choice(DIRS))

    def sfile(self):
        return os.path.join(self.sdir(), self.rnd.choice(FILES))

    def sany(self):
        names = FILES * 2 + LINKS + LEVEL1
        return os.path.join(self.sdir(), self.rnd.choice(names))

    def snonroot_dir(self):
        return os.path.join(self.shared, self.rnd.choice(DIRS[1:]))

    def nrec(self):
        x = self.rnd.random()
        return self.rnd.randint(1, 8) if x < 0.6 else (
            self.rnd.randint(9, 128) if x < 0.95 else self.rnd.randint(129, 2048))

    def slot(self):
        x = self.rnd.random()
        return self.rnd.randrange(1024) if x < 0.9 else self.rnd.randrange(8192)

    def pwrite_records(self, fd, slot, n):
        seq = self.next_seq()
        self.writes[seq] = (slot * R, n)
        data = records(self.wid, 0, seq, slot * R, n)
        if os.pwrite(fd, data, slot * R) != len(data):
            raise OSError(0, "short write")

    def append_records(self, fd, n):
        """@fd has O_APPEND."""
        seq = self.next_seq()
        self.writes[seq] = (-1, n)
        data = records(self.wid, F_APPEND, seq, 0, n)
        if os.write(fd, data) != len(data):
            raise OSError(0, "short write")

    def verify_fd(self, fd, where):
        """Read it all; our own records are checked against our log, others'
        by digest and offset (their logs are in other processes)."""
        for p in check_content(read_fd(fd), {self.wid: self.writes}, all_writers=False):
            if ": torn:" in p:
                self.torn += 1
            else:
                self.bad.append("w%d read %s: %s" % (self.wid, where, p))

    def op_create(self):
        path = self.sfile()
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | self.rnd.choice(
            [os.O_EXCL, os.O_TRUNC, 0])
        n = self.nrec()
        slot = 0 if self.rnd.random() < 0.7 else self.slot()

        def fn():
            fd = os.open(path, flags, self.rnd.choice([0o666, 0o666, 0o644, 0o600]))
            try:
                self.pwrite_records(fd, slot, n)
            except BaseException:
                os.close(fd)
                raise
            if len(self.fds) < 4 and self.rnd.random() < 0.3:
                self.fds.append((fd, path))
            else:
                os.close(fd)
        self.attempt("create", "create %s %o" % (path, flags), fn, EXPECT["create"])

    def with_open(self, path, flags, use):
        fd = os.open(path, flags | os.O_NOFOLLOW)
        try:
            use(fd)
        finally:
            os.close(fd)

    def op_pwrite(self):
        path, slot, n = self.sfile(), self.slot(), self.nrec()
        self.attempt("pwrite", "pwrite %s slot %d n %d" % (path, slot, n),
                     lambda: self.with_open(path, os.O_WRONLY,
                                            lambda fd: self.pwrite_records(fd, slot, n)),
                     EXPECT["open"])

    def op_append(self):
        path, n = self.sfile(), self.nrec()
        self.attempt("append", "append %s n %d" % (path, n),
                     lambda: self.with_open(path, os.O_WRONLY | os.O_APPEND,
                                            lambda fd: self.append_records(fd, n)),
                     EXPECT["open"])

    def op_read(self):
        path = self.sfile()
        self.attempt("read", "read %s" % path,
                     lambda: self.with_open(path, os.O_RDONLY,
                                            lambda fd: self.verify_fd(fd, path)),
                     EXPECT["open"])

    def op_truncate(self):
        path = self.sfile() if self.rnd.random() < 0.9 else self.sany()
        size = self.slot() * R if self.rnd.random() < 0.7 else 0
        self.attempt("truncate", "truncate %s %d" % (path, size),
                     lambda: os.truncate(path, size), EXPECT["truncate"])

    def op_rename(self):
        x = self.rnd.random()
        if x < 0.6:
            src, dst = self.sfile(), self.sfile()
        elif x < 0.8:
            src, dst = self.sany(), self.sany()
        else:
            src, dst = self.snonroot_dir(), self.snonroot_dir()
        self.attempt("rename", "rename %s %s" % (src, dst), lambda: os.rename(src, dst),
                     EXPECT["rename"])

    def op_link(self):
        src = self.sfile() if self.rnd.random() < 0.8 else self.sany()
        dst = self.sfile()
        follow = self.rnd.random() < 0.5
        self.attempt("link", "link %s %s" % (src, dst),
                     lambda: os.link(src, dst, follow_symlinks=follow), EXPECT["link"])

    def op_unlink(self):
        path = self.sfile() if self.rnd.random() < 0.8 else self.sany()
        self.attempt("unlink", "unlink %s" % path, lambda: os.unlink(path), EXPECT["unlink"])

    def op_unlink_open(self):
        """Open a file, unlink it, use it through the descriptor, keep it."""
        path = self.sfile()
        n = self.nrec()

        def fn():
            fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
            try:
                os.unlink(path)
                self.pwrite_records(fd, self.slot(), n)
                self.verify_fd(fd, path + " (unlinked)")
            except BaseException:
                os.close(fd)
                raise
            if len(self.fds) < 4:
                self.fds.append((fd, path + " (unlinked)"))
            else:
                os.close(fd)
        self.attempt("unlink_open", "unlink open %s" % path, fn, EXPECT["open"] | EXPECT["unlink"])

    def op_mkdir(self):
        path = self.snonroot_dir()
        self.attempt("mkdir", "mkdir %s" % path, lambda: os.mkdir(path, 0o777), EXPECT["mkdir"])

    def op_rmdir(self):
        path = self.snonroot_dir() if self.rnd.random() < 0.8 else self.sany()
        self.attempt("rmdir", "rmdir %s" % path, lambda: os.rmdir(path), EXPECT["rmdir"])

    def op_symlink(self):
        path = os.path.join(self.sdir(), self.rnd.choice(LINKS))
        if self.rnd.random() < 0.5:
            target = self.rnd.choice(["", "../"]) + self.rnd.choice(FILES + LEVEL1 + LINKS)
        else:
            target = link_target(self.wid, self.next_seq(),
                                 self.rnd.choice([0, 10, 100, 1000, 2900]))
        self.attempt("symlink", "symlink %s" % path, lambda: os.symlink(target, path),
                     EXPECT["symlink"])

    def op_readlink(self):
        path = os.path.join(self.sdir(), self.rnd.choice(LINKS))

        def fn():
            why = check_target(os.readlink(path))
            if why:
                self.bad.append("w%d readlink %s: %s" % (self.wid, path, why))
        self.attempt("readlink", "readlink %s" % path, fn, EXPECT["readlink"])

    def op_chmod(self):
        if self.rnd.random() < 0.7:
            path = self.sany()
            mode = self.rnd.choice([0o666, 0o666, 0o777, 0o777, 0o644, 0o755, 0o600, 0o700])
        else:  # mostly open to all, or the other users' processes see little
            path = self.snonroot_dir()
            mode = self.rnd.choice([0o777] * 8 + [0o755, 0o700])
        self.attempt("chmod", "chmod %s %o" % (path, mode), lambda: os.chmod(path, mode),
                     EXPECT["chmod"])

    def op_utimens(self):
        path = self.sany()
        if self.rnd.random() < 0.5:
            t = self.rnd.randrange(1 << 31) * 10**9 + self.rnd.randrange(10**9)
            fn = lambda: os.utime(path, ns=(t, t), follow_symlinks=False)
        else:
            fn = lambda: os.utime(path)
        self.attempt("utimens", "utimens %s" % path, fn, EXPECT["utimens"])

    def op_fsync(self):
        if self.rnd.random() < 0.3:
            path = self.sdir()
            flags = os.O_RDONLY | os.O_DIRECTORY
        else:
            path = self.sfile()
            flags = os.O_WRONLY
        sync = self.rnd.choice([os.fsync, os.fdatasync])
        self.attempt("fsync", "fsync %s" % path,
                     lambda: self.with_open(path, flags, sync), EXPECT["fsync"] | EXPECT["open"])

    def op_stat(self):
        path = self.sany()
        self.attempt("stat", "lstat %s" % path, lambda: os.lstat(path), EXPECT["stat"])

    def op_readdir(self):
        path = self.sdir()
        self.attempt("readdir", "readdir %s" % path, lambda: os.listdir(path),
                     EXPECT["readdir"])

    def op_fd(self):
        """Something through a descriptor kept open (its name may be gone)."""
        if not self.fds:
            return self.op_unlink_open() if self.rnd.random() < 0.3 else self.op_create()
        i = self.rnd.randrange(len(self.fds))
        fd, path = self.fds[i]
        x = self.rnd.random()
        if x < 0.25:
            slot, n = self.slot(), self.nrec()
            self.attempt("fd_pwrite", "fd pwrite %s" % path,
                         lambda: self.pwrite_records(fd, slot, n))
        elif x < 0.4:
            def at_end():
                size = os.fstat(fd).st_size
                if size % R:
                    self.bad.append("w%d fstat %s: size %d" % (self.wid, path, size))
                    return
                self.pwrite_records(fd, size // R, self.nrec())
            self.attempt("fd_append", "fd append %s" % path, at_end)
        elif x < 0.6:
            self.attempt("fd_read", "fd read %s" % path, lambda: self.verify_fd(fd, path))
        elif x < 0.7:
            size = self.slot() * R
            self.attempt("fd_truncate", "ftruncate %s %d" % (path, size),
                         lambda: os.ftruncate(fd, size))
        elif x < 0.75:
            self.attempt("fd_fsync", "fsync fd %s" % path, lambda: os.fsync(fd))
        elif x < 0.8:
            self.attempt("fd_stat", "fstat %s" % path, lambda: os.fstat(fd))
        elif x < 0.85:
            mode = self.rnd.choice([0o666, 0o644, 0o600])
            self.attempt("fd_chmod", "fchmod %s" % path, lambda: os.fchmod(fd, mode),
                         EXPECT_OTHER_USER if self.uid else None)
        elif x < 0.9:
            self.attempt("fd_utimens", "futimens %s" % path, lambda: os.utime(fd),
                         EXPECT_OTHER_USER if self.uid else None)
        else:
            del self.fds[i]
            self.attempt("close", "close %s" % path, lambda: os.close(fd))

    # -- events.jsonl ----------------------------------------------------

    def ev_line(self, n):
        pad = "x" * self.rnd.choice([0, 1, 30, 200, 1000])
        extra = self.rnd.choice(["", "caf\u00e9 \u2603", "tab\tquote\"back\\slash"])
        return (json.dumps({"type": "stress", "w": self.wid, "n": n, "pad": pad,
                            "text": extra}) + "\n").encode()

    def op_events(self):
        x = self.rnd.random()
        if x < 0.15:
            self.attempt("events_read", "read events.jsonl", self.ev_read)
            return
        if self.ev_pending is not None:
            n, rest = self.ev_pending

            def finish():
                if os.write(self.ev_fd, rest) != len(rest):
                    raise OSError(0, "short write")
                self.ev_pending = None
                self.acked.append(n)
            self.attempt("events_append", "events.jsonl: rest of line %d" % n, finish)
            return
        k = self.rnd.choice([1, 1, 1, 2, 3])
        ns = [self.next_seq() for _ in range(k)]
        data = b"".join(self.ev_line(n) for n in ns)
        fresh = self.rnd.random() < 0.3
        split = k == 1 and not fresh and self.rnd.random() < 0.1
        sync = self.rnd.random() < 0.05

        def fn():
            if fresh:
                fd = os.open(self.events, os.O_WRONLY | os.O_APPEND)
            else:
                if self.ev_fd < 0:
                    self.ev_fd = os.open(self.events, os.O_WRONLY | os.O_APPEND)
                fd = self.ev_fd
            try:
                part = data[:len(data) // 2] if split else data
                if os.write(fd, part) != len(part):
                    raise OSError(0, "short write")
                if split:
                    self.ev_pending = (ns[0], data[len(data) // 2:])
                    return
                if sync:
                    os.fsync(fd)
                self.acked.extend(ns)
            finally:
                if fresh:
                    os.close(fd)
        self.attempt("events_append", "events.jsonl append %s" % ns, fn)

    def ev_read(self):
        fd = os.open(self.events, os.O_RDONLY)
        try:
            data = read_fd(fd)
        finally:
            os.close(fd)
        lines = data.split(b"\n")
        if lines[-1]:
            self.bad.append("w%d events.jsonl read ends inside a line: %r" % (self.wid, lines[-1][-80:]))
        for ln in lines[:-1]:
            try:
                if not isinstance(json.loads(ln), dict):
                    raise ValueError("not an object")
            except ValueError as e:
                self.bad.append("w%d events.jsonl line %r: %s" % (self.wid, ln[:80], e))
                return

    # -- the private tree (exact model) ----------------------------------

    PNAMES = ["a/p%d" % i for i in range(4)] + ["b/p%d" % i for i in range(4)]

    def ppath(self, rel):
        return os.path.join(self.priv, rel)

    def pfiles(self):
        return [k for k, v in self.model.items() if isinstance(v, PFile)]

    def pcheck(self, data, obj, where):
        if data != bytes(obj.data):
            i = next((j for j in range(min(len(data), len(obj.data)))
                      if data[j] != obj.data[j]), min(len(data), len(obj.data)))
            self.bad.append("w%d private %s: %d bytes read, %d expected, first difference "
                            "at %d" % (self.wid, where, len(data), len(obj.data), i))

    def p_write(self):
        rel = self.rnd.choice(self.PNAMES)
        obj = self.model.get(rel)
        if isinstance(obj, str):
            return
        off = self.rnd.randrange(20000) if self.rnd.random() < 0.8 else self.rnd.randrange(200000)
        data = self.rnd.randbytes(self.rnd.choice([1, 7, 100, 4096, 5000, 30000]))

        def fn():
            if obj is None:
                mode = self.rnd.choice([0o600, 0o644, 0o666])
                fd = os.open(self.ppath(rel), os.O_RDWR | os.O_CREAT | os.O_EXCL, mode)
                new = PFile(mode)
                self.model[rel] = new
            else:
                fd = os.open(self.ppath(rel), os.O_RDWR)
                new = obj
            try:
                if os.pwrite(fd, data, off) != len(data):
                    raise OSError(0, "short write")
            finally:
                os.close(fd)
            if len(new.data) < off:
                new.data.extend(bytes(off - len(new.data)))
            new.data[off:off + len(data)] = data
        self.attempt("p_write", "private write %s at %d" % (rel, off), fn)

    def p_append(self):
        files = self.pfiles()
        if not files:
            return self.p_write()
        rel = self.rnd.choice(files)
        obj = self.model[rel]
        data = self.rnd.randbytes(self.rnd.choice([1, 50, 4096, 9000]))

        def fn():
            fd = os.open(self.ppath(rel), os.O_WRONLY | os.O_APPEND)
            try:
                if os.write(fd, data) != len(data):
                    raise OSError(0, "short write")
            finally:
                os.close(fd)
            obj.data.extend(data)
        self.attempt("p_append", "private append %s" % rel, fn)

    def p_truncate(self):
        files = self.pfiles()
        if not files:
            return self.p_write()
        rel = self.rnd.choice(files)
        obj = self.model[rel]
        size = self.rnd.choice([0, self.rnd.randrange(40000), len(obj.data) + 1,
                                max(0, len(obj.data) - 1), self.rnd.randrange(300000)])
        otrunc = self.rnd.random() < 0.2

        def fn():
            if otrunc:
                os.close(os.open(self.ppath(rel), os.O_WRONLY | os.O_TRUNC))
                del obj.data[:]
            else:
                os.truncate(self.ppath(rel), size)
                if size < len(obj.data):
                    del obj.data[size:]
                else:
                    obj.data.extend(bytes(size - len(obj.data)))
        self.attempt("p_truncate", "private truncate %s %s" % (rel, "O_TRUNC" if otrunc else size),
                     fn)

    def p_rename(self):
        if not self.model:
            return self.p_write()
        src = self.rnd.choice(list(self.model))
        dst = self.rnd.choice(self.PNAMES)

        def fn():
            os.rename(self.ppath(src), self.ppath(dst))
            if src != dst and self.model.get(dst) is not self.model[src]:
                self.model[dst] = self.model.pop(src)
            # a rename between two links of one file does nothing
        self.attempt("p_rename", "private rename %s %s" % (src, dst), fn)

    def p_link(self):
        files = self.pfiles()
        free = [n for n in self.PNAMES if n not in self.model]
        if not files or not free:
            return self.p_unlink()
        src, dst = self.rnd.choice(files), self.rnd.choice(free)

        def fn():
            os.link(self.ppath(src), self.ppath(dst))
            self.model[dst] = self.model[src]
        self.attempt("p_link", "private link %s %s" % (src, dst), fn)

    def p_unlink(self):
        if not self.model:
            return self.p_write()
        rel = self.rnd.choice(list(self.model))
        obj = self.model[rel]
        keep = isinstance(obj, PFile) and len(self.pfds) < 4 and self.rnd.random() < 0.4

        def fn():
            if keep:
                fd = os.open(self.ppath(rel), os.O_RDWR)
                self.pfds.append((fd, obj))
            os.unlink(self.ppath(rel))
            del self.model[rel]
        self.attempt("p_unlink", "private unlink %s%s" % (rel, " (kept open)" if keep else ""),
                     fn)

    def p_symlink(self):
        free = [n for n in self.PNAMES if n not in self.model]
        if not free:
            return self.p_unlink()
        rel = self.rnd.choice(free)
        target = "nowhere/" + "t" * self.rnd.choice([1, 50, 500])

        def fn():
            os.symlink(target, self.ppath(rel))
            self.model[rel] = target
        self.attempt("p_symlink", "private symlink %s" % rel, fn)

    def p_chmod(self):
        files = self.pfiles()
        if not files:
            return self.p_write()
        rel = self.rnd.choice(files)
        mode = self.rnd.choice([0o600, 0o640, 0o644, 0o664, 0o666, 0o700, 0o755])

        def fn():
            os.chmod(self.ppath(rel), mode)
            self.model[rel].mode = mode
        self.attempt("p_chmod", "private chmod %s %o" % (rel, mode), fn)

    def p_open(self):
        files = self.pfiles()
        if not files or len(self.pfds) >= 4:
            return self.p_fd()
        rel = self.rnd.choice(files)

        def fn():
            self.pfds.append((os.open(self.ppath(rel), os.O_RDWR), self.model[rel]))
        self.attempt("p_open", "private open %s" % rel, fn)

    def p_fd(self):
        if not self.pfds:
            return self.p_open() if self.pfiles() else self.p_write()
        i = self.rnd.randrange(len(self.pfds))
        fd, obj = self.pfds[i]
        x = self.rnd.random()
        if x < 0.4:
            off = self.rnd.randrange(30000)
            data = self.rnd.randbytes(self.rnd.choice([1, 333, 4096, 10000]))

            def fn():
                if os.pwrite(fd, data, off) != len(data):
                    raise OSError(0, "short write")
                if len(obj.data) < off:
                    obj.data.extend(bytes(off - len(obj.data)))
                obj.data[off:off + len(data)] = data
            self.attempt("p_fd_write", "private fd write at %d" % off, fn)
        elif x < 0.8:
            self.attempt("p_fd_read", "private fd read",
                         lambda: self.pcheck(read_fd(fd), obj, "fd %d" % fd))
        elif x < 0.9:
            size = self.rnd.randrange(30000)

            def fn():
                os.ftruncate(fd, size)
                if size < len(obj.data):
                    del obj.data[size:]
                else:
                    obj.data.extend(bytes(size - len(obj.data)))
            self.attempt("p_fd_truncate", "private ftruncate %d" % size, fn)
        else:
            del self.pfds[i]
            self.attempt("p_close", "private close", lambda: os.close(fd))

    def p_verify(self):
        if not self.model:
            return self.p_write()
        self.p_verify_one(self.rnd.choice(list(self.model)))

    def p_verify_one(self, rel):
        obj = self.model[rel]

        def fn():
            if isinstance(obj, str):
                if os.readlink(self.ppath(rel)) != obj:
                    self.bad.append("w%d private %s: readlink differs" % (self.wid, rel))
                return
            fd = os.open(self.ppath(rel), os.O_RDONLY | os.O_NOFOLLOW)
            try:
                st = os.fstat(fd)
                self.pcheck(read_fd(fd), obj, rel)
            finally:
                os.close(fd)
            links = sum(1 for v in self.model.values() if v is obj)
            if (st.st_size, stat.S_IMODE(st.st_mode), st.st_nlink) != (
                    len(obj.data), obj.mode, links):
                self.bad.append("w%d private %s: size/mode/nlink %d/%o/%d, expected %d/%o/%d"
                                % (self.wid, rel, st.st_size, stat.S_IMODE(st.st_mode),
                                   st.st_nlink, len(obj.data), obj.mode, links))
        self.attempt("p_verify", "private verify %s" % rel, fn)

    def p_verify_all(self):
        def fn():
            names = set()
            for d in ("a", "b"):
                names |= {d + "/" + n for n in os.listdir(self.ppath(d))}
            if names != set(self.model):
                self.bad.append("w%d private listing %s, expected %s"
                                % (self.wid, sorted(names), sorted(self.model)))
        self.attempt("p_listdir", "private listdir", fn)

    def p_dump(self):
        """The model, as the parent compares it with the walk's results."""
        out = {}
        for rel, v in self.model.items():
            if isinstance(v, str):
                out[rel] = ["l", v]
            else:
                links = sum(1 for x in self.model.values() if x is v)
                out[rel] = ["f", hashlib.sha256(bytes(v.data)).hexdigest(), len(v.data),
                            v.mode, links]
        return out

    # -- the loop --------------------------------------------------------

    SHARED_OPS = [("op_create", 8), ("op_pwrite", 12), ("op_append", 8), ("op_read", 10),
                  ("op_truncate", 5), ("op_rename", 10), ("op_link", 5), ("op_unlink", 6),
                  ("op_unlink_open", 2), ("op_mkdir", 5), ("op_rmdir", 4), ("op_symlink", 4),
                  ("op_readlink", 3), ("op_chmod", 4), ("op_utimens", 4), ("op_fsync", 3),
                  ("op_stat", 4), ("op_readdir", 4), ("op_fd", 8), ("op_events", 12)]
    PRIVATE_OPS = [("p_write", 10), ("p_append", 4), ("p_truncate", 4), ("p_rename", 5),
                   ("p_link", 3), ("p_unlink", 4), ("p_symlink", 2), ("p_chmod", 2),
                   ("p_open", 2), ("p_fd", 6), ("p_verify", 5), ("p_verify_all", 1)]

    def run(self):
        os.mkdir(self.priv, 0o755)
        for d in ("a", "b"):
            os.mkdir(self.ppath(d), 0o755)
        ops = [(getattr(self, n), w) for n, w in self.SHARED_OPS]
        pops = [(getattr(self, n), w) for n, w in self.PRIVATE_OPS]
        fns = [f for f, _ in ops] + [f for f, _ in pops]
        weights = [w for _, w in ops] + [w for _, w in pops]
        while time.monotonic() < self.end:
            self.rnd.choices(fns, weights)[0]()
        self.say("finishing")
        for _ in range(200):  # the rest of a split line (op_events may read instead)
            if self.ev_pending is None:
                break
            self.op_events()
        for fd, path in self.fds:
            self.attempt("close", "close %s" % path, lambda: os.close(fd))
        for fd, obj in self.pfds:
            self.attempt("p_fd_read", "private fd read at end",
                         lambda: self.pcheck(read_fd(fd), obj, "fd at end"))
            self.attempt("p_close", "private close", lambda: os.close(fd))
        if self.ev_fd >= 0:
            self.attempt("events_close", "close events.jsonl", lambda: os.close(self.ev_fd))
        for rel in list(self.model):
            self.p_verify_one(rel)
        self.p_verify_all()
        self.say("done")
        return {"wid": self.wid, "uid": self.uid, "ok": dict(self.ok), "errs": dict(self.errs),
                "unexpected": self.unexpected, "nunexpected": self.nunexpected, "bad": self.bad[:50], "nbad": len(self.bad),
                "torn": self.torn, "writes": {str(k): v for k, v in self.writes.items()},
                "acked": self.acked, "model": self.p_dump()}


def worker_main(wid, top, events, uid, seed, end, status, out_fd):
    """In a forked process: become @uid, run, write the result JSON to @out_fd."""
    code = 1
    try:
        os.umask(0)
        if uid:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
        res = Worker(wid, top, events, uid, seed, end, status).run()
        code = 0
    except BaseException:
        res = {"wid": wid, "crash": traceback.format_exc()}
    data = json.dumps(res).encode()
    while data:
        data = data[os.write(out_fd, data):]
    os.close(out_fd)
    os._exit(code)


class StressTest(unittest.TestCase):

    def setUp(self):
        sfs.need_binaries()
        self.e = sfs.Env()
        self.addCleanup(self.e.cleanup)
        os.chmod(self.e.tmp, 0o755)  # other users reach the mountpoint
        self.m = self.e.mount(foreground=True, opts=MOUNT_OPTS)
        self.sid = self.e.new(self.m)

    def daemon_ok(self, when):
        if self.m.proc.poll() is not None:
            self.fail("the daemon died (%s) with %d; log:\n%s"
                      % (when, self.m.proc.returncode, self.m.read_log()[-5000:]))
        log = self.m.read_log()
        for word in ("corrupt", "torn"):
            self.assertNotIn(word, log.lower(), "the daemon's log says %r (%s):\n%s"
                             % (word, when, log[-5000:]))

    def backing(self):
        """Relative paths of everything in the session's backing directory."""
        base = os.path.join(self.e.store, "sessions", self.sid)
        out = set()
        for d, dirs, files in os.walk(base):
            for n in dirs + files:
                out.add(os.path.relpath(os.path.join(d, n), base))
        return out

    def walk(self, top, writes, models):
        """lstat and read everything under @top; check contents; the state."""
        state, problems = {}, []

        def visit(path):
            rel = os.path.relpath(path, top)
            try:
                st = os.lstat(path)
            except OSError as e:
                problems.append("lstat %s: %s" % (rel, e))
                return
            key = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                   st.st_nlink, st.st_mtime_ns)
            if stat.S_ISDIR(st.st_mode):
                try:
                    names = sorted(os.listdir(path))
                except OSError as e:
                    problems.append("listdir %s: %s" % (rel, e))
                    return
                state[rel] = key + (tuple(names),)
                for n in names:
                    visit(os.path.join(path, n))
            elif stat.S_ISLNK(st.st_mode):
                try:
                    t = os.readlink(path)
                except OSError as e:
                    problems.append("readlink %s: %s" % (rel, e))
                    return
                state[rel] = key + (st.st_size, t)
                if rel.startswith("shared"):
                    why = check_target(t)
                    if why:
                        problems.append("%s: %s" % (rel, why))
            elif stat.S_ISREG(st.st_mode):
                try:
                    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
                    try:
                        data = read_fd(fd)
                    finally:
                        os.close(fd)
                except OSError as e:
                    problems.append("read %s: %s" % (rel, e))
                    return
                if len(data) != st.st_size:
                    problems.append("%s: read %d bytes, size %d" % (rel, len(data), st.st_size))
                state[rel] = key + (st.st_size, hashlib.sha256(data).hexdigest())
                if rel.startswith("shared"):
                    problems.extend("%s: %s" % (rel, p) for p in check_content(data, writes)[:5])
            else:
                problems.append("%s: unexpected type %o" % (rel, st.st_mode))

        visit(top)
        # the private trees against the workers' models
        for wid, model in models.items():
            for rel, want in model.items():
                got = state.get(os.path.join("p%d" % wid, rel))
                if want[0] == "l":
                    ok = got is not None and stat.S_ISLNK(got[0]) and got[-1] == want[1]
                else:
                    ok = (got is not None and stat.S_ISREG(got[0]) and got[-1] == want[1]
                          and got[-2] == want[2] and got[1] == want[3] and got[4] == want[4])
                if not ok:
                    problems.append("p%d/%s: %r, model %r" % (wid, rel, got, want))
            for d in ("a", "b"):
                st = state.get(os.path.join("p%d" % wid, d))
                names = {d + "/" + n for n in (st[-1] if st else ())}
                extra = names - set(model)
                if st is None or extra:
                    problems.append("p%d/%s: not in the model: %s" % (wid, d, sorted(extra)))
        return state, problems

    def events(self, acked):
        """Check events.jsonl; its stress lines as a sorted list."""
        with open(os.path.join(self.m.sdir(self.sid), "events.jsonl"), "rb") as f:
            data = f.read()
        self.assertTrue(data == b"" or data.endswith(b"\n"), "events.jsonl ends inside a line")
        seen = collections.Counter()
        for i, ln in enumerate(data.split(b"\n")[:-1]):
            try:
                obj = json.loads(ln)
            except ValueError as e:
                self.fail("events.jsonl line %d is not JSON (%s): %r" % (i + 1, e, ln[:200]))
            self.assertIsInstance(obj, dict, "events.jsonl line %d: %r" % (i + 1, ln[:200]))
            if obj.get("type") == "stress":
                seen[(obj["w"], obj["n"])] += 1
        dup = [k for k, c in seen.items() if c > 1]
        self.assertEqual(dup, [], "events.jsonl lines stored more than once")
        want = {(w, n) for w, ns in acked.items() for n in ns}
        missing = sorted(want - set(seen))
        extra = sorted(set(seen) - want)
        self.assertEqual(missing, [], "acknowledged events lines missing (%d)" % len(missing))
        self.assertEqual(extra, [], "events lines nobody acknowledged (%d)" % len(extra))
        return sorted(seen)

    def test_stress(self):
        sdir = self.m.sdir(self.sid)
        os.chmod(sdir, 0o755)
        os.chmod(os.path.join(sdir, "events.jsonl"), 0o666)
        top = os.path.join(sdir, "stress")
        os.mkdir(top)
        os.chmod(top, 0o777)
        os.mkdir(os.path.join(top, "shared"))
        os.chmod(os.path.join(top, "shared"), 0o777)
        before = self.backing()

        ctx = multiprocessing.get_context("fork")
        print("stress: %d processes for %gs, seed %d (SFS_STRESS_SEED)" % (PROCS, SECONDS, SEED),
              file=sys.stderr)
        end = time.monotonic() + SECONDS
        procs = []
        for wid in range(PROCS):
            uid = OTHER_UIDS[(wid // 3) % len(OTHER_UIDS)] if wid % 3 == 2 else 0
            status = ctx.Array("c", 256)
            rfd, wfd = os.pipe()
            p = ctx.Process(target=worker_main,
                            args=(wid, top, os.path.join(sdir, "events.jsonl"), uid,
                                  SEED * 1000 + wid, end, status, wfd))
            p.start()
            os.close(wfd)
            procs.append((p, rfd, status, uid))

        results, chunks = {}, {wid: [] for wid in range(PROCS)}
        hard_end = end + GRACE
        open_fds = {rfd: wid for wid, (_, rfd, _, _) in enumerate(procs)}
        while open_fds and time.monotonic() < hard_end:
            ready, _, _ = select.select(list(open_fds), [], [], 1.0)
            for rfd in ready:
                b = os.read(rfd, 1 << 20)
                if b:
                    chunks[open_fds[rfd]].append(b)
                else:
                    os.close(rfd)
                    del open_fds[rfd]
        hung = []
        for wid, (p, rfd, status, uid) in enumerate(procs):
            p.join(timeout=1 if open_fds else 30)
            if p.is_alive():
                try:
                    with open("/proc/%d/stack" % p.pid) as f:
                        kstack = f.read()
                except OSError:
                    kstack = "?"
                hung.append("worker %d (pid %d) still in: %s\nkernel stack:\n%s"
                            % (wid, p.pid, status.value.decode(errors="replace"), kstack))
        for rfd in open_fds:
            os.close(rfd)
        if hung:
            # A process waiting for an answer to a request the daemon has
            # read cannot be killed: kill the daemon (that aborts the
            # connection), then the workers.
            alive = self.m.proc.poll() is None
            self.m.proc.kill()
            for p, _, _, _ in procs:
                p.kill()
            for p, _, _, _ in procs:
                p.join(30)
            sfs.run(["fusermount3", "-uz", self.m.mnt])
            self.fail("workers hung %gs after the end (the daemon was %s; killed now):\n%s\n"
                      "daemon log:\n%s" % (GRACE, "alive" if alive else "dead", "\n".join(hung),
                                            self.m.read_log()[-3000:]))
        for wid, (p, _, _, _) in enumerate(procs):
            try:
                results[wid] = json.loads(b"".join(chunks[wid]))
            except ValueError:
                self.fail("worker %d exited %s without a result" % (wid, p.exitcode))
            if "crash" in results[wid]:
                self.fail("worker %d crashed:\n%s" % (wid, results[wid]["crash"]))
            self.assertEqual(p.exitcode, 0, "worker %d" % wid)
        self.daemon_ok("after the run")

        # counts
        ok, errs = collections.Counter(), collections.Counter()
        for r in results.values():
            ok.update(r["ok"])
            errs.update(r["errs"])
        per_op = collections.defaultdict(list)
        for k, c in sorted(errs.items()):
            op, name = k.split(" ")
            per_op[op].append("%s %d" % (name, c))
        lines = ["%-16s %8d   %s" % (op, ok[op], ", ".join(per_op.get(op, [])))
                 for op in sorted(set(ok) | set(per_op))]
        torn = sum(r["torn"] for r in results.values())
        print("stress: operations that worked, and errors by errno:\n  "
              + "\n  ".join(lines) + "\nstress: total %d done, %d failed as races allow; "
              "%d reads saw a record torn in flight" % (sum(ok.values()), sum(errs.values()), torn),
              file=sys.stderr)

        unexpected = [u for r in results.values() for u in r["unexpected"]]
        self.assertEqual(unexpected, [], "%d errors no race explains (the first ones listed)"
                         % sum(r["nunexpected"] for r in results.values()))
        bad = [b for r in results.values() for b in r["bad"]]
        self.assertEqual(bad, [], "wrong content or model mismatch during the run")
        # every kind of operation happened and worked at least once
        for name, _ in Worker.SHARED_OPS + Worker.PRIVATE_OPS:
            op = name[3:] if name.startswith("op_") else name
            if name in ("op_fd", "op_events", "p_fd", "p_open", "p_verify_all"):
                continue
            self.assertGreater(ok[op], 0, "no %s worked" % op)
        for op in ("fd_pwrite", "fd_read", "events_append", "events_read", "p_fd_write",
                   "p_fd_read", "p_listdir"):
            self.assertGreater(ok[op], 0, "no %s worked" % op)

        writes = {r["wid"]: {int(k): tuple(v) for k, v in r["writes"].items()}
                  for r in results.values()}
        models = {r["wid"]: r["model"] for r in results.values()}
        acked = {r["wid"]: r["acked"] for r in results.values()}

        state, problems = self.walk(top, writes, models)
        self.assertEqual(problems, [], "the walk after the run")
        ev = self.events(acked)
        nfiles = sum(1 for v in state.values() if stat.S_ISREG(v[0]))
        print("stress: after the run %d entries (%d files, %d bytes), %d events lines"
              % (len(state), nfiles, sum(v[-2] for v in state.values() if stat.S_ISREG(v[0])),
                 len(ev)), file=sys.stderr)
        self.daemon_ok("after the walk")

        # the same after a remount
        self.m = self.e.remount(self.m)
        self.e.unlock(self.m, self.sid)
        state2, problems = self.walk(top, writes, models)
        self.assertEqual(problems, [], "the walk after a remount")
        if state2 != state:
            diff = sorted(k for k in set(state) | set(state2) if state.get(k) != state2.get(k))
            self.fail("remount changed %d entries, e.g. %s"
                      % (len(diff), ["%s: %r -> %r" % (k, state.get(k), state2.get(k))
                                     for k in diff[:5]]))
        self.assertEqual(self.events(acked), ev)
        self.daemon_ok("after the remount")

        # rm -rf, and remount again: gone, events kept, nothing leaked
        r = sfs.run(["rm", "-rf", top], timeout=300)
        self.assertEqual(r.rc, 0, "rm -rf of the tree: %r" % r)
        self.assertFalse(os.path.lexists(top))
        self.m = self.e.remount(self.m)
        self.e.unlock(self.m, self.sid)
        self.assertFalse(os.path.lexists(top), "the tree came back after a remount")
        self.assertEqual(self.events(acked), ev)
        self.daemon_ok("after rm -rf and a remount")
        self.e.assert_umount(self.m)
        after = self.backing()
        self.assertEqual(sorted(after - before), [], "left behind in the store")


if __name__ == "__main__":
    sfs.main()
