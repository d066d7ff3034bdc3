"""Crash safety, by crashing: SIGKILL the daemon while files, sessions and
directories are being written, then remount the same store and check what
survived.

What must hold after every crash (PRODUCT.md, doc/format.md "Crash behaviour"):
- the session unlocks with its password; files written and fsynced before the
  crash (A, B) read back byte-identical;
- a file C that a writer was overwriting and extending with known, per-position
  content reads, at every byte that reads at all, the content of one of the
  generations written there, never older than the last fsynced one covering
  that position, never garbage and never bytes of another position; a read may
  fail only with EIO, and only in blocks the unacknowledged generation touched;
- the store keeps files 0600 and directories 0700; C can be written again;
- a daemon killed during `sessionctl new`, or during mkdir/rename storms,
  leaves a store that remounts, unlocks and lists; no half-made `.new-*`
  session is visible in MNT/sessions; a rename over an existing file is atomic;
- a daemon killed after each step, in turn, of mkdir, rmdir, create, link,
  unlink and rename (CrashStepTest, which holds the daemon's namespace calls
  with strace) leaves the operation's directory before or after it, or in the
  one documented middle state, and every name with its header, and it can be
  removed with rm -rf; of `sessionctl new`, `passwd` and `delete`, a session
  that is whole under exactly one password, or absent; of a metadata.json
  rewrite or a `mv t metadata.json`, the old or the new document; of an
  events.jsonl append, the line whole or not at all;
- every path that replaces metadata.json (mv over it, cp, a write in place,
  the refresh of "updated") fsyncs the new document before the rename and
  the session root after it (MetadataSyncOrderTest, from strace -y of the
  daemon), so a power cut too leaves the old or the new document.

The kill moments are random but seeded (SFS_CRASH_SEED, default 20240611);
SFS_CRASH_ROUNDS raises the number of rounds of the file-writer test (10; the
other two tests do half as many, at least 5 and 4).
"""
import errno
import json
import os
import random
import re
import signal
import stat
import subprocess
import sys
import time
from array import array

import sfs

BLOCK = 4096
MAGIC = 0x5AF5
SEED = int(os.environ.get("SFS_CRASH_SEED", "20240611"))
ROUNDS = int(os.environ.get("SFS_CRASH_ROUNDS", "10"))
# Write sizes of the writer: all multiples of 8 (one pattern word), several not
# multiples of the block size, so that partial blocks are read, merged, resealed.
CHUNKS = [BLOCK, 3 * BLOCK, 5000, 8 * BLOCK + 808, 16 * BLOCK, 1000]


def nblocks(gen):
    """How many blocks generation @gen writes: 24..64, going up and down."""
    return 24 + (gen * 37) % 41


def truncate_to(gen):
    """Every third generation first cuts the file inside a block (a multiple of
    8 bytes, 4..16 blocks), then grows it again; -1: no truncate."""
    return (4 + gen % 13) * BLOCK + 1000 if gen % 3 == 0 else -1


def block_content(gen, i):
    """Block @i of generation @gen: 512 words of u16 (MAGIC, gen, i, word)."""
    a = array("H", [MAGIC, gen & 0xFFFF, i, 0] * (BLOCK // 8))
    a[3::4] = array("H", range(BLOCK // 8))
    return a.tobytes()


def gen_content(gen, n):
    return b"".join(block_content(gen, i) for i in range(n))


def writer_main(path, side, gen, seed):
    """The writer process: overwrite/extend @path with generation after
    generation until the mount dies. @side (outside the mount) gets
    'start GEN NBLOCKS TRUNC' before a generation's first change and
    'ack GEN SIZE' once its writes and fsync returned."""
    rnd = random.Random(seed)
    sfd = os.open(side, os.O_WRONLY | os.O_APPEND)

    def log(s):
        os.write(sfd, (s + "\n").encode())

    try:
        fd = os.open(path, os.O_RDWR)
        log("ready")
        while True:
            n = nblocks(gen)
            data = gen_content(gen, n)
            t = truncate_to(gen)
            log("start %d %d %d" % (gen, n, t))
            if t >= 0:
                os.ftruncate(fd, t)
            off = 0
            while off < len(data):
                c = rnd.choice(CHUNKS)
                off += os.pwrite(fd, data[off:off + c], off)
            os.fsync(fd)
            log("ack %d %d" % (gen, os.fstat(fd).st_size))
            gen += 1
    except OSError as e:
        log("error %d" % e.errno)


def storm_main(d, side, k, seed):
    """The storm process: mkdir, create, write, rename (directories, long
    names, a file renamed over stable.txt) in session directory @d until the
    mount dies. @side gets 'stable K' before tmp-K is renamed over stable.txt."""
    rnd = random.Random(seed)
    sfd = os.open(side, os.O_WRONLY | os.O_APPEND)

    def log(s):
        os.write(sfd, (s + "\n").encode())

    try:
        log("ready")
        while True:
            k += 1
            dk = os.path.join(d, "d%d" % k)
            os.mkdir(dk)
            sfs.write_file(os.path.join(dk, "f"), storm_content(k))
            os.rename(dk, os.path.join(d, "e%d" % k))
            if k % 3 == 0:
                lng = os.path.join(d, ("L%d-" % k) + "x" * 190)
                os.mkdir(lng)
                sfs.write_file(os.path.join(lng, "g"), storm_content(k))
                os.rename(lng, os.path.join(d, ("M%d-" % k) + "y" * 190))
            tmp = os.path.join(d, "tmp-%d" % k)
            with open(tmp, "wb") as f:
                f.write(stable_content(k))
                f.flush()
                os.fsync(f.fileno())
            log("stable %d" % k)
            os.rename(tmp, os.path.join(d, "stable.txt"))
            if k > 5 and rnd.random() < 0.5:
                j = k - 5
                for name in ("e%d" % j,):
                    p = os.path.join(d, name)
                    if os.path.isdir(p):
                        os.unlink(os.path.join(p, "f"))
                        os.rmdir(p)
    except OSError as e:
        log("error %d" % e.errno)


def storm_content(k):
    return ("file of step %d\n" % k).encode() * 3


def stable_content(k):
    return ("stable version %d\n" % k).encode()


def store_mode_problems(store):
    """Paths under @store whose mode is not 0700 (dirs) / 0600 (files)."""
    bad = []
    for root, dirs, files in os.walk(store):
        for n in dirs + files:
            p = os.path.join(root, n)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                continue
            want = 0o700 if stat.S_ISDIR(st.st_mode) else 0o600
            if stat.S_IMODE(st.st_mode) != want:
                bad.append("%s %o" % (os.path.relpath(p, store), stat.S_IMODE(st.st_mode)))
    return bad


def read_side(side):
    """(started {gen: (nblocks, trunc)}, acked [(gen, size)...], errors [errno...])."""
    started, acked, errors = {}, [], []
    with open(side) as f:
        for line in f:
            w = line.split()
            if not w:
                continue
            if w[0] == "start":
                started[int(w[1])] = (int(w[2]), int(w[3]))
            elif w[0] == "ack":
                acked.append((int(w[1]), int(w[2])))
            elif w[0] == "error":
                errors.append(int(w[1]))
    return started, acked, errors


class CrashBase(sfs.ForegroundMountTest):

    def crash(self, *children):
        """SIGKILL the daemon of self.m, let @children (Popen) run into the
        dead mount and exit, detach the dead mount."""
        pid = self.m.proc.pid
        os.kill(pid, signal.SIGKILL)
        self.m.proc.wait(timeout=30)
        self.assertEqual(self.m.proc.returncode, -signal.SIGKILL)
        for c in children:
            try:
                c.wait(timeout=30)
            except subprocess.TimeoutExpired:
                c.kill()
                c.wait()
                self.fail("a child process hung in the dead mount")
        r = sfs.run(["fusermount3", "-uz", self.m.mnt])
        self.assertEqual(r.rc, 0, "fusermount3 -uz of the dead mount: %r" % r)
        self.assertFalse(os.path.ismount(self.m.mnt))

    def child(self, mode, *args):
        return subprocess.Popen([sys.executable, os.path.abspath(__file__), mode]
                                + [str(a) for a in args],
                                stdin=subprocess.DEVNULL, env=dict(os.environ,
                                                                   PYTHONDONTWRITEBYTECODE="1"))

    def wait_ready(self, side, proc):
        deadline = time.monotonic() + 30
        while True:
            with open(side) as f:
                if "ready" in f.read():
                    return
            if proc.poll() is not None:
                self.fail("child exited %d before it was ready: %s"
                          % (proc.returncode, open(side).read()))
            if time.monotonic() > deadline:
                self.fail("child not ready within 30 s")
            time.sleep(0.01)

    def check_modes(self):
        bad = store_mode_problems(self.e.store)
        self.assertEqual(bad, [], "store entries without mode 0600/0700 after a crash")

    def check_no_visible_new(self):
        names = os.listdir(self.m.sessions())
        self.assertEqual([n for n in names if n.startswith(".new-")], [],
                         "a half-made session is visible in MNT/sessions")
        for n in names:
            self.assertRegex(n, sfs.ID_RE, "MNT/sessions lists a name that is not an id")
        return names

    def backing_dirs(self, sid):
        """Backing directories of session @sid below its root, with what they hold."""
        root = os.path.join(self.e.store, "sessions", sid, "root")
        return ["%s: %r" % (os.path.relpath(r, root), sorted(files + dirs))
                for r, dirs, files in os.walk(root) if r != root]

    def leftovers(self):
        return sorted(n for n in os.listdir(os.path.join(self.e.store, "sessions"))
                      if n.startswith(".new-"))


class CrashWriterTest(CrashBase):
    """SIGKILL while a file is overwritten and extended."""

    def verify_c(self, path, side, rnd_round):
        started, acked, errors = read_side(side)
        self.assertTrue(acked, "no generation acknowledged at all")
        # the generation in flight when the daemon died (earlier rounds' ones
        # are history: they may still be on disk, but nothing is torn there)
        last = max(started)
        last_ack, ack_size = acked[-1]
        acked_gens = [g for g, _ in acked]
        if last != last_ack:
            inflight, trunc = started[last]
        else:
            inflight, trunc = 0, -1
        # a truncate cuts at the block boundary below first, then reseals
        min_size = trunc // BLOCK * BLOCK if trunc >= 0 else ack_size
        max_size = max(ack_size, inflight * BLOCK)
        fd = os.open(path, os.O_RDONLY)
        eio = []
        try:
            size = os.fstat(fd).st_size
            self.assertGreaterEqual(size, min_size, "C shrank below its fsynced size (or the "
                                    "truncate in flight)")
            self.assertLessEqual(size, max_size, "C grew beyond anything written")
            nblk = (size + BLOCK - 1) // BLOCK
            for i in range(nblk):
                # oldest generation that may be at block i: the newest acked one covering it
                floor = max([g for g in acked_gens if started[g][0] > i], default=0)
                try:
                    d = os.pread(fd, BLOCK, i * BLOCK)
                except OSError as ex:
                    self.assertEqual(ex.errno, errno.EIO, "read of block %d of C" % i)
                    self.assertLess(i, inflight,
                                    "block %d of C reads EIO but the unacknowledged generation "
                                    "(%d blocks) never wrote it" % (i, inflight))
                    eio.append(i)
                    continue
                self.assertEqual(len(d), min(BLOCK, size - i * BLOCK),
                                 "short read of block %d of C" % i)
                self.check_block(d, i, started, floor)
        finally:
            os.close(fd)
        return size, eio

    def check_block(self, d, i, started, floor):
        full = len(d) // 8 * 8
        a = array("H")
        a.frombytes(d[:full])
        words = full // 8
        for w in range(words):
            magic, g, bi, wi = a[4 * w:4 * w + 4]
            if magic != MAGIC or bi != i or wi != w or g not in started or g < floor:
                self.fail("C: block %d word %d (offset %d) reads %r: %s" % (
                    i, w, i * BLOCK + 8 * w, d[8 * w:8 * w + 8],
                    "garbage" if magic != MAGIC else
                    "bytes of another position (block %d word %d)" % (bi, wi)
                    if (bi, wi) != (i, w) else
                    "generation %d was never written" % g if g not in started else
                    "generation %d is older than the fsynced generation %d" % (g, floor)))
        if full < len(d):
            tail = d[full:]
            self.assertTrue(any(block_content(g, i)[full:len(d)] == tail for g in started
                                if g >= floor),
                            "C: the last bytes of block %d read %r, no generation's" % (i, tail))

    def test_kill_while_writing(self):
        rnd = random.Random(SEED)
        sid = self.e.new(self.m)
        d = self.m.sdir(sid)
        a_data = random.Random(SEED + 1).randbytes(1 << 20)
        b_data = b"small file B\n" * 7
        for name, data in (("A.bin", a_data), ("B.txt", b_data)):
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        side = self.e.path("side-c.log")
        open(side, "w").close()
        c = os.path.join(d, "C.bin")
        # generation 1, fsynced, before any crash
        with open(c, "wb") as f:
            f.write(gen_content(1, nblocks(1)))
            f.flush()
            os.fsync(f.fileno())
        with open(side, "a") as f:
            f.write("start 1 %d -1\nack 1 %d\n" % (nblocks(1), nblocks(1) * BLOCK))
        gen = 2
        report = []
        for r in range(ROUNDS):
            w = self.child("--writer", c, side, gen, SEED + 100 + r)
            self.wait_ready(side, w)
            delay = rnd.uniform(0.0, 0.6)
            time.sleep(delay)
            self.crash(w)
            started, acked, errors = read_side(side)
            self.remount()
            self.e.unlock(self.m, sid)
            d = self.m.sdir(sid)
            c = os.path.join(d, "C.bin")
            self.assertEqual(sfs.read_file(os.path.join(d, "A.bin")), a_data,
                             "round %d: A changed" % r)
            self.assertEqual(sfs.read_file(os.path.join(d, "B.txt")), b_data,
                             "round %d: B changed" % r)
            size, eio = self.verify_c(c, side, r)
            self.check_modes()
            # C can be written again: a new generation over all of it
            gen = max(started) + 1
            n = max((size + BLOCK - 1) // BLOCK, 1)
            with open(side, "a") as f:
                f.write("start %d %d -1\n" % (gen, n))
            fd = os.open(c, os.O_RDWR)
            try:
                data = gen_content(gen, n)
                self.assertEqual(os.pwrite(fd, data, 0), len(data))
                os.fsync(fd)
            finally:
                os.close(fd)
            with open(side, "a") as f:
                f.write("ack %d %d\n" % (gen, n * BLOCK))
            self.assertEqual(sfs.read_file(c), gen_content(gen, n),
                             "round %d: C after a full rewrite" % r)
            report.append("round %d: killed after %.2fs, gens %d..%d (%d acked), C %d bytes, "
                          "EIO blocks %r, writer errno %r"
                          % (r, delay, min(started), max(started), len(acked), size, eio,
                             errors[-1:]))
            gen += 1
        print("\n".join(report), file=sys.stderr)
        self.assertEqual(sorted(os.listdir(d)),
                         ["A.bin", "B.txt", "C.bin", "events.jsonl", "metadata.json"])


class CrashNamespaceTest(CrashBase):
    """SIGKILL during `sessionctl new` and during mkdir/rename storms."""

    def test_kill_during_new(self):
        rnd = random.Random(SEED + 7)
        t0 = time.monotonic()
        first = self.e.new(self.m)
        dt = time.monotonic() - t0
        known = {first}
        found = []
        for r in range(max(5, ROUNDS // 2)):
            pw = self.e.pwfile(sfs.PASSWORD)
            p = subprocess.Popen([sfs.SESSIONCTL, "new", "--password-file", pw, self.m.mnt],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
            # most of `new` is the KDF inside the half-made container
            delay = rnd.uniform(0.0, dt * 1.1)
            time.sleep(delay)
            self.crash(p)
            out, err = p.stdout.read().decode(), p.stderr.read().decode()
            p.stdout.close()
            p.stderr.close()
            self.remount()
            names = self.check_no_visible_new()
            listed = {s["id"] for s in self.e.list(self.m)}
            self.assertEqual(listed, set(names))
            if p.returncode == 0:
                self.assertIn(out.strip(), listed, "sessionctl new said it made a session")
            else:
                self.assertTrue(err.startswith("sessionctl:"), "stderr: %r" % err)
            self.assertTrue(known <= listed, "a session vanished: %r -> %r" % (known, listed))
            # every session that appeared is whole: it unlocks and has its files
            for sid in sorted(listed):
                self.e.unlock(self.m, sid)
                self.assertIn("metadata.json", os.listdir(self.m.sdir(sid)))
                self.e.lock(self.m, sid)
            known = listed
            self.check_modes()
            found.append("round %d: killed after %.3fs of ~%.3fs, sessionctl rc %d (%s), "
                         "sessions %d, .new-* left in STORE/sessions: %r"
                         % (r, delay, dt, p.returncode, err.strip(), len(listed),
                            self.leftovers()))
        print("\n".join(found), file=sys.stderr)
        # the store is still usable: a new session works
        sid = self.e.new(self.m)
        sfs.write_file(os.path.join(self.m.sdir(sid), "x"), "x\n")

    def test_kill_during_mkdir_rename_storm(self):
        rnd = random.Random(SEED + 11)
        sid = self.e.new(self.m)
        side = self.e.path("side-storm.log")
        report = []
        for r in range(max(4, ROUNDS // 2)):
            open(side, "w").close()
            d = self.m.sdir(sid)
            sfs.write_file(os.path.join(d, "stable.txt"), stable_content(0))
            s = self.child("--storm", d, side, 1000 * r, SEED + 200 + r)
            self.wait_ready(side, s)
            delay = rnd.uniform(0.05, 0.7)
            time.sleep(delay)
            self.crash(s)
            with open(side) as f:
                lines = f.read().split("\n")
            stables = {0} | {int(x.split()[1]) for x in lines if x.startswith("stable ")}
            self.remount()
            self.check_no_visible_new()
            self.assertEqual([x["id"] for x in self.e.list(self.m)], [sid])
            self.e.unlock(self.m, sid)
            d = self.m.sdir(sid)
            # the rename over stable.txt was atomic: it is there, whole
            got = sfs.read_file(os.path.join(d, "stable.txt"))
            self.assertIn(got, [stable_content(k) for k in stables],
                          "round %d: stable.txt after a crash" % r)
            # the whole tree lists and reads; files are empty (crash between
            # create and write) or whole
            nfiles = nempty = 0
            walk_errors, read_errors = [], []
            for root, dirs, files in os.walk(d, onerror=lambda ex: walk_errors.append(str(ex))):
                for n in files:
                    p = os.path.join(root, n)
                    os.lstat(p)
                    try:
                        data = sfs.read_file(p)
                    except OSError as ex:
                        read_errors.append(str(ex))
                        continue
                    if n in ("f", "g"):
                        k = int(os.path.basename(root)[1:].split("-")[0])
                        self.assertIn(data, (b"", storm_content(k)), p)
                        nfiles += 1
                        nempty += data == b""
                    elif n.startswith("tmp-"):
                        k = int(n[4:])
                        self.assertIn(data, (b"", stable_content(k)), p)
            self.assertEqual(walk_errors, [], "round %d (killed after %.2fs at step %d): the "
                             "session does not list after a crash: %r; backing directories "
                             "without a valid header: %r" % (r, delay, max(stables), walk_errors,
                                                            self.headerless_dirs(sid)))
            self.assertEqual(read_errors, [], "round %d (killed after %.2fs at step %d): files "
                             "do not read after a crash: %r; suspect backing files: %r; "
                             "daemon log: %s" % (
                                 r, delay, max(stables), read_errors, self.damaged_files(sid),
                                 self.m.read_log()[-1500:]))
            self.check_modes()
            # and the namespace works again
            os.mkdir(os.path.join(d, "after-%d" % r))
            os.rename(os.path.join(d, "after-%d" % r), os.path.join(d, "moved-%d" % r))
            sfs.write_file(os.path.join(d, "moved-%d" % r, "z"), "z\n")
            self.assertEqual(sfs.read_file(os.path.join(d, "moved-%d" % r, "z")), b"z\n")
            report.append("round %d: killed after %.2fs at step %d, %d files (%d empty), "
                          "stable.txt = %r" % (r, delay, max(stables), nfiles, nempty, got))
        print("\n".join(report), file=sys.stderr)

    def damaged_files(self, sid):
        """Backing files of session @sid (not .sfsdir) that are empty, of a size
        no valid file has (doc/format.md, Sizes), or not starting "SFSF"."""
        root = os.path.join(self.e.store, "sessions", sid, "root")
        bad = []
        for r, dirs, files in os.walk(root):
            for n in files:
                if n == ".sfsdir" or n.endswith(".n"):
                    continue
                q = os.path.join(r, n)
                b = os.path.getsize(q)
                with open(q, "rb") as f:
                    magic = f.read(4)
                rest = (b - 80) % (BLOCK + 40) if b >= 80 else None
                if b == 0:
                    bad.append("%s: 0 bytes (created, no header yet: doc/format.md says it "
                               "reads as empty)" % os.path.relpath(q, root))
                elif (b < 80) or (0 < rest <= 40) or magic != b"SFSF":
                    bad.append("%s: %d bytes, magic %r" % (os.path.relpath(q, root), b, magic))
        return bad

    def headerless_dirs(self, sid):
        """Backing directories of session @sid whose .sfsdir is missing or not
        80 bytes, with what they hold."""
        root = os.path.join(self.e.store, "sessions", sid, "root")
        bad = []
        for r, dirs, files in os.walk(root):
            h = os.path.join(r, ".sfsdir")
            size = os.path.getsize(h) if os.path.exists(h) else None
            if size != 80:
                bad.append("%s: .sfsdir %s, entries %r" % (
                    os.path.relpath(r, root), "missing" if size is None else "%d bytes" % size,
                    sorted(files + dirs)))
        return bad


LONG_A = "L" + "a" * 199   # over the short-name limit: a sidecar holds it
LONG_B = "M" + "b" * 199
# The daemon's calls that change the store's namespace or write bytes.
STEP_CALLS = "mkdirat,unlinkat,renameat,renameat2,linkat,symlinkat,pwrite64"
STEP_DELAY = 0.15   # seconds each traced call is held after it returns


def reraise(ex):
    raise ex


def tree_of(d):
    """{relative path: file bytes, or None for a directory} under @d; a
    listing error raises."""
    out = {}
    for root, dirs, files in os.walk(d, onerror=reraise):
        for n in dirs:
            out[os.path.relpath(os.path.join(root, n), d)] = None
        for n in files:
            out[os.path.relpath(os.path.join(root, n), d)] = sfs.read_file(os.path.join(root, n))
    return out


def py(code, *args):
    return [sys.executable, "-c", "import os, sys; " + code] + list(args)


# name: (set-up in work directory w, the operation's argv, the states w may be
# in after a crash at any step: before, after, and any documented middle).
STEP_OPS = {
    "rmdir": (
        lambda w: os.mkdir(os.path.join(w, "a")),
        lambda w: ["rmdir", os.path.join(w, "a")],
        [{"a": None}, {}]),
    "rmdir-long": (
        lambda w: os.mkdir(os.path.join(w, LONG_A)),
        lambda w: ["rmdir", os.path.join(w, LONG_A)],
        [{LONG_A: None}, {}]),
    "mkdir-long": (
        lambda w: None,
        lambda w: ["mkdir", os.path.join(w, LONG_A)],
        [{}, {LONG_A: None}]),
    # rename(2) over an empty directory: doc/format.md, Crash behaviour, says
    # a crash may leave the empty target removed and the source not yet moved
    "rename-dir-over-empty-dir": (
        lambda w: (os.mkdir(os.path.join(w, "src")), os.mkdir(os.path.join(w, "dst")),
                   sfs.write_file(os.path.join(w, "src", "f"), "F\n")),
        lambda w: py("os.rename(sys.argv[1], sys.argv[2])", os.path.join(w, "src"),
                     os.path.join(w, "dst")),
        [{"src": None, "src/f": b"F\n", "dst": None}, {"dst": None, "dst/f": b"F\n"},
         {"src": None, "src/f": b"F\n"}]),
    "rename-long-dir": (
        lambda w: (os.mkdir(os.path.join(w, LONG_A)),
                   sfs.write_file(os.path.join(w, LONG_A, "g"), "G\n")),
        lambda w: py("os.rename(sys.argv[1], sys.argv[2])", os.path.join(w, LONG_A),
                     os.path.join(w, LONG_B)),
        [{LONG_A: None, LONG_A + "/g": b"G\n"}, {LONG_B: None, LONG_B + "/g": b"G\n"}]),
    "rename-file-over-file": (
        lambda w: (sfs.write_file(os.path.join(w, "a"), "A\n"),
                   sfs.write_file(os.path.join(w, "b"), "B\n")),
        lambda w: py("os.rename(sys.argv[1], sys.argv[2])", os.path.join(w, "a"),
                     os.path.join(w, "b")),
        [{"a": b"A\n", "b": b"B\n"}, {"b": b"A\n"}]),
    "create-long": (
        lambda w: None,
        lambda w: py("open(sys.argv[1], 'w').write('C\\n')", os.path.join(w, LONG_A)),
        [{}, {LONG_A: b"C\n"}, {LONG_A: b""}]),
    "unlink-long": (
        lambda w: sfs.write_file(os.path.join(w, LONG_A), "A\n"),
        lambda w: ["rm", os.path.join(w, LONG_A)],
        [{LONG_A: b"A\n"}, {}]),
    "link-long": (
        lambda w: sfs.write_file(os.path.join(w, "a"), "A\n"),
        lambda w: ["ln", os.path.join(w, "a"), os.path.join(w, LONG_B)],
        [{"a": b"A\n"}, {"a": b"A\n", LONG_B: b"A\n"}]),
    # rename(2) onto an existing long-named entry: its sidecar must never be
    # rewritten in place (issue 14: reopened with O_TRUNC, a kill before the
    # write emptied it and hid the target); openat is held too (STEP_EXTRA)
    "rename-over-long": (
        lambda w: (sfs.write_file(os.path.join(w, LONG_A), "A\n"),
                   sfs.write_file(os.path.join(w, "b"), "B\n")),
        lambda w: py("os.rename(sys.argv[1], sys.argv[2])", os.path.join(w, "b"),
                     os.path.join(w, LONG_A)),
        [{LONG_A: b"A\n", "b": b"B\n"}, {LONG_A: b"B\n"}]),
}
# Operations whose steps include opens of the store's files: openat is held too.
STEP_EXTRA = {"rename-over-long": ",openat"}


class StepBase(CrashBase):
    """The step-by-step killer (kill_each_step), for CrashStepTest here and
    for other files' crash tests (test_keys.py): needs strace."""

    def setUp(self):
        if subprocess.run(["strace", "-V"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode != 0:
            self.skipTest("strace is not installed (.ci/deps installs it)")
        super().setUp()

    def trace(self, log, calls=STEP_CALLS):
        """Attach strace to the daemon, holding @calls; return once every
        thread is held."""
        st = subprocess.Popen(["strace", "-f", "-p", str(self.m.proc.pid),
                               "-o", log, "-e", "trace=" + calls,
                               "-e", "inject=%s:delay_exit=%dms" % (calls,
                                                                     STEP_DELAY * 1000)],
                              stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        line = st.stderr.readline()
        if "attached" not in line:
            st.kill()
            st.wait()
            st.stderr.close()
            self.fail("strace did not attach: %r" % line)
        return st

    def held(self, log):
        with open(log) as f:
            return f.read().count("(DELAYED)")

    def check_session(self, sid, what):
        """The whole of session @sid lists, and every file in it reads."""
        d = self.m.sdir(sid)
        errors = []
        for root, dirs, files in os.walk(d, onerror=lambda ex: errors.append(str(ex))):
            for n in files:
                try:
                    sfs.read_file(os.path.join(root, n))
                except OSError as ex:
                    errors.append(str(ex))
        self.assertEqual(errors, [], "%s: the session does not list and read whole" % what)
        self.check_modes()

    def kill_each_step(self, name, prepare, argv, after_crash, after_done, calls=STEP_CALLS):
        """The loop: for k = 1, 2, ...: @prepare(k) -> ctx (before strace
        attaches), run @argv(ctx), kill the daemon while its k-th traced call
        is held, remount, and @after_crash(ctx, what) checks the store and
        returns which allowed state it found; until the operation completes
        with fewer than k calls, when @after_done(ctx) checks the result."""
        log = self.e.path("strace-%s.log" % name)
        report = []
        k = sfs.KILL_FIRST - sfs.KILL_STRIDE
        while True:
            k += sfs.KILL_STRIDE
            self.assertLess(k, 40, "%s: the operation never completed" % name)
            ctx = prepare(k)
            st = self.trace(log, calls)
            op = subprocess.Popen(argv(ctx), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE)
            while self.held(log) < k and op.poll() is None:
                time.sleep(0.002)
            if op.poll() is not None and self.held(log) < k:
                # fewer than k steps: the operation completed, unkilled
                st.terminate()
                st.wait()
                st.stderr.close()
                self.assertEqual(op.returncode, 0, "%s: %s" % (name, op.stderr.read()))
                op.stderr.close()
                after_done(ctx)
                break
            self.crash(op)
            op.stderr.close()
            st.wait(timeout=30)
            st.stderr.close()
            with open(log) as f:
                step = [x for x in f.read().split("\n") if "(DELAYED)" in x][k - 1]
            call = step.split("(", 1)[0].split(None, 1)[-1]
            self.remount()
            what = "%s, killed after step %d (%s)" % (name, k, step)
            report.append("%s, killed after step %d, %s: %s" % (name, k, call,
                                                                after_crash(ctx, what)))
        print("\n".join(report), file=sys.stderr)
        self.assertGreater(k, 1, "%s: no step was traced" % name)


class CrashStepTest(StepBase):
    """SIGKILL after each step, in turn, of one namespace operation: strace
    holds each of the daemon's namespace-changing calls (STEP_CALLS) for
    STEP_DELAY after it returns, and the daemon is killed while the k-th is
    held, for k = 1, 2, ... until the operation completes unkilled. After
    every crash the session must unlock and list and read whole, and the
    operation's directory must be in one of its allowed states. This finds
    what random kill moments reach only by luck."""

    def setUp(self):
        super().setUp()
        self.sid = self.e.new(self.m)

    def run_steps(self, name):
        """An operation of STEP_OPS, in its own directory of one session."""
        setup, argv, states = STEP_OPS[name]

        def prepare(k):
            w = os.path.join(self.m.sdir(self.sid), "%s-%d" % (name, k))
            os.mkdir(w)
            setup(w)
            self.assertEqual(tree_of(w), states[0], "%s: set-up" % name)
            return w

        def after_crash(w, what):
            self.e.unlock(self.m, self.sid)
            self.check_session(self.sid, what)
            got = tree_of(w)
            self.assertIn(got, states, "%s: the operation's directory" % what)
            # what a crash leaves behind never keeps a directory from going
            r = sfs.run(["rm", "-rf", w])
            self.assertEqual(r.rc, 0, "%s: rm -rf of the operation's directory: %s; backing "
                             "directories: %r" % (what, r.err, self.backing_dirs(self.sid)))
            self.assertFalse(os.path.lexists(w), what)
            return "state %d" % states.index(got)

        def after_done(w):
            self.assertEqual(tree_of(w), states[1], "%s: after the operation" % name)
            self.check_session(self.sid, name)

        self.kill_each_step(name, prepare, argv, after_crash, after_done,
                            STEP_CALLS + STEP_EXTRA.get(name, ""))

    def session_with_file(self):
        sid = self.e.new(self.m)
        sfs.write_file(os.path.join(self.m.sdir(sid), "x"), "x of %s\n" % sid)
        return sid

    def check_whole(self, sid, what):
        """Session @sid is listed, unlocked, lists and reads whole, has its x."""
        self.check_session(sid, what)
        self.assertEqual(sfs.read_file(os.path.join(self.m.sdir(sid), "x")),
                         ("x of %s\n" % sid).encode(), what)

    def listed(self):
        self.check_no_visible_new()
        return {x["id"] for x in self.e.list(self.m)}

    def test_session_passwd(self):
        def argv(sid):
            return [sfs.SESSIONCTL, "passwd", "--password-file", self.e.pwfile(sfs.PASSWORD),
                    "--new-password-file", self.e.pwfile("another password"), self.m.sdir(sid)]

        def after_crash(sid, what):
            # exactly one of the two passwords opens it, and its files are whole
            old = self.e.ctl("unlock", self.m.sdir(sid), password=sfs.PASSWORD)
            if old.rc != 0:
                self.assertIn("wrong password", old.err, what)
                self.e.unlock(self.m, sid, password="another password")
            self.check_whole(sid, what)
            return "old password" if old.rc == 0 else "new password"

        def after_done(sid):
            self.e.lock(self.m, sid)
            r = self.e.ctl("unlock", self.m.sdir(sid), password=sfs.PASSWORD)
            self.assertNotEqual(r.rc, 0, "the old password still opens it")
            self.e.unlock(self.m, sid, password="another password")
            self.check_whole(sid, "passwd")

        self.kill_each_step("passwd", lambda k: self.session_with_file(), argv, after_crash,
                            after_done)

    def test_session_delete(self):
        def after_crash(sid, what):
            if sid not in self.listed():
                return "gone"
            self.e.unlock(self.m, sid)
            self.check_whole(sid, what)
            return "kept, whole"

        def after_done(sid):
            self.assertNotIn(sid, self.listed(), "a deleted session is listed")

        self.kill_each_step("delete", lambda k: self.session_with_file(),
                            lambda sid: [sfs.SESSIONCTL, "delete", "--yes", self.m.sdir(sid)],
                            after_crash, after_done)

    def test_metadata_rewrite(self):
        """`cat > metadata.json`: readers and a crash see the old or the new document."""
        def prepare(k):
            sid = self.session_with_file()
            path = os.path.join(self.m.sdir(sid), "metadata.json")
            doc = json.loads(sfs.read_file(path))
            return sid, doc["name"], json.dumps(dict(doc, name="renamed %d" % k, step=k)) + "\n"

        def argv(ctx):
            sid, _, new = ctx
            return py("open(sys.argv[1], 'w').write(sys.argv[2])",
                      os.path.join(self.m.sdir(sid), "metadata.json"), new)

        def name_of(sid):
            return json.loads(sfs.read_file(os.path.join(self.m.sdir(sid), "metadata.json")))["name"]

        def after_crash(ctx, what):
            sid, old, new = ctx
            self.e.unlock(self.m, sid)
            self.check_whole(sid, what)
            got = name_of(sid)
            self.assertIn(got, (old, json.loads(new)["name"]), what)
            return "old document" if got == old else "new document"

        def after_done(ctx):
            self.assertEqual(name_of(ctx[0]), json.loads(ctx[2])["name"])

        self.kill_each_step("metadata", prepare, argv, after_crash, after_done)

    def test_metadata_mv(self):
        """`jq ... > t && mv t metadata.json`: a crash at any step of the
        rename leaves the old document (t still there) or the new one."""
        def prepare(k):
            sid = self.session_with_file()
            d = self.m.sdir(sid)
            doc = json.loads(sfs.read_file(os.path.join(d, "metadata.json")))
            sfs.write_file(os.path.join(d, "t"), json.dumps(dict(doc, name="moved %d" % k)))
            return sid, doc["name"], "moved %d" % k

        def name_of(sid):
            return json.loads(sfs.read_file(os.path.join(self.m.sdir(sid), "metadata.json")))["name"]

        def after_crash(ctx, what):
            sid, old, new = ctx
            self.e.unlock(self.m, sid)
            self.check_whole(sid, what)
            got = name_of(sid)
            self.assertIn(got, (old, new), what)
            self.assertEqual(os.path.exists(os.path.join(self.m.sdir(sid), "t")), got == old,
                             what)
            return "old document" if got == old else "new document"

        def after_done(ctx):
            self.assertEqual(name_of(ctx[0]), ctx[2])

        self.kill_each_step("metadata-mv", prepare,
                            lambda ctx: ["mv", os.path.join(self.m.sdir(ctx[0]), "t"),
                                         os.path.join(self.m.sdir(ctx[0]), "metadata.json")],
                            after_crash, after_done)

    def test_events_append(self):
        """`echo LINE >> events.jsonl`: the line is there whole, or not at all."""
        line = '{"type":"note","text":"step"}\n'

        def events(sid):
            return sfs.read_file(os.path.join(self.m.sdir(sid), "events.jsonl")).decode()

        def prepare(k):
            sid = self.session_with_file()
            return sid, events(sid)

        def argv(ctx):
            return py("fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND); "
                      "os.write(fd, sys.argv[2].encode())",
                      os.path.join(self.m.sdir(ctx[0]), "events.jsonl"), line)

        def after_crash(ctx, what):
            sid, before = ctx
            self.e.unlock(self.m, sid)
            self.check_whole(sid, what)
            got = events(sid)
            self.assertIn(got, (before, before + line), what)
            return "appended" if got != before else "not appended"

        def after_done(ctx):
            self.assertEqual(events(ctx[0]), ctx[1] + line)

        self.kill_each_step("events", prepare, argv, after_crash, after_done)

    def test_session_new(self):
        def argv(sid):
            return [sfs.SESSIONCTL, "new", "--id", sid, "--password-file",
                    self.e.pwfile(sfs.PASSWORD), self.m.mnt]

        def after_crash(sid, what):
            if sid not in self.listed():
                return "absent"
            self.e.unlock(self.m, sid)
            self.check_session(sid, what)
            self.assertIn("metadata.json", os.listdir(self.m.sdir(sid)), what)
            return "made, whole"

        def after_done(sid):
            self.assertIn(sid, self.listed())
            self.check_session(sid, "new")

        self.kill_each_step("new", lambda k: "INC-%04x" % (0xa000 + k), argv, after_crash,
                            after_done)

    def test_rmdir(self):
        self.run_steps("rmdir")

    def test_rmdir_long(self):
        self.run_steps("rmdir-long")

    def test_mkdir_long(self):
        self.run_steps("mkdir-long")

    def test_rename_dir_over_empty_dir(self):
        self.run_steps("rename-dir-over-empty-dir")

    def test_rename_long_dir(self):
        self.run_steps("rename-long-dir")

    def test_rename_file_over_file(self):
        self.run_steps("rename-file-over-file")

    def test_create_long(self):
        self.run_steps("create-long")

    def test_unlink_long(self):
        self.run_steps("unlink-long")

    def test_link_long(self):
        self.run_steps("link-long")

    def test_rename_over_long(self):
        self.run_steps("rename-over-long")


class SyncTraceBase(sfs.ForegroundMountTest):
    """A mounted store with one session, and its daemon's fsyncs and renames
    traced with strace -y."""

    def setUp(self):
        if subprocess.run(["strace", "-V"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode != 0:
            self.skipTest("strace is not installed (.ci/deps installs it)")
        super().setUp()
        self.sid = self.e.new(self.m)
        self.d = self.m.sdir(self.sid)
        self.root = os.path.realpath(os.path.join(self.e.store, "sessions", self.sid, "root"))

    def traced(self, name, action):
        """Run @action with the daemon's fsyncs, renames and xattr sets traced:
        the calls, per thread, as ("fsync", path), ("rename", from path, to
        path) and ("xattr", path, name)."""
        log = self.e.path("strace-%s.log" % name)
        st = subprocess.Popen(["strace", "-f", "-y", "-p", str(self.m.proc.pid), "-o", log,
                               "-e", "trace=fsync,fdatasync,rename,renameat,renameat2,fsetxattr"],
                              stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        line = st.stderr.readline()
        if "attached" not in line:
            st.kill()
            st.wait()
            st.stderr.close()
            self.fail("strace did not attach: %r" % line)
        try:
            action()
        finally:
            st.terminate()
            st.wait(timeout=30)
            st.stderr.close()
        calls = {}
        fsync_re = re.compile(r'^(\d+) +f(?:data)?sync\(\d+<([^>]*)>')
        xattr_re = re.compile(r'^(\d+) +fsetxattr\(\d+<([^>]*)>, "([^"]*)".* = 0$')
        rename_re = re.compile(r'^(\d+) +renameat2?\(\d+<([^>]*)>, "([^"]*)", \d+<([^>]*)>, '
                               r'"([^"]*)"')
        with open(log) as f:
            for x in f:
                m = fsync_re.match(x)
                if m:
                    calls.setdefault(m.group(1), []).append(("fsync", m.group(2)))
                    continue
                m = xattr_re.match(x)
                if m:
                    calls.setdefault(m.group(1), []).append(("xattr", m.group(2), m.group(3)))
                    continue
                m = rename_re.match(x)
                if m:
                    calls.setdefault(m.group(1), []).append(
                        ("rename", os.path.join(m.group(2), m.group(3)),
                         os.path.join(m.group(4), m.group(5))))
        return calls


class NamespaceSyncOrderTest(SyncTraceBase):
    """A name is published only once what it needs is durable, and an fsync
    makes a new name durable, as on ext4 (doc/format.md "Crash behaviour";
    issue 14: a new directory's header and a long name's sidecar were lost
    by a power cut). Checked on the daemon's own calls, traced with strace -y
    (a power cut itself is the harness's to show): mkdir sets the copy of
    the new directory's header in its xattr user.sfsdir, which the backing
    journal commits no later than the rename that publishes it, before that
    rename, and fsyncs nothing (an fsync per mkdir doubled the time of an
    untar); a long name's sidecar is fsynced, renamed into place and its
    directory fsynced before the node is published; the first fsync of a new
    file fsyncs its backing directory, later ones do not; an fsync of a
    directory fsyncs its header and the backing directory."""

    def publishes(self, calls):
        """The renames that publish a node built under an internal name: (thread, index)."""
        return [(pid, i) for pid, seq in calls.items() for i, c in enumerate(seq)
                if c[0] == "rename" and os.path.basename(c[1]).startswith(".sfs-new-")
                and not c[2].endswith(".n")]

    def test_mkdir(self):
        calls = self.traced("mkdir", lambda: os.mkdir(os.path.join(self.d, "new")))
        pubs = self.publishes(calls)
        self.assertEqual(len(pubs), 1, calls)
        pid, i = pubs[0]
        tmp = calls[pid][i][1]
        self.assertIn(("xattr", tmp, "user.sfsdir"), calls[pid][:i], calls)
        self.assertEqual([c for s in calls.values() for c in s if c[0] == "fsync"], [], calls)

    def check_sidecar_first(self, calls, what):
        pubs = self.publishes(calls)
        self.assertEqual(len(pubs), 1, "%s: %r" % (what, calls))
        pid, i = pubs[0]
        seq = calls[pid][:i]
        side = [j for j, c in enumerate(seq) if c[0] == "rename" and c[2].endswith(".n")]
        self.assertEqual(len(side), 1, "%s: no sidecar renamed into place: %r" % (what, calls))
        j = side[0]
        self.assertIn(("fsync", seq[j][1]), seq[:j], "%s: sidecar unsynced: %r" % (what, calls))
        self.assertIn(("fsync", os.path.dirname(seq[j][2])), seq[j + 1:],
                      "%s: sidecar's rename unsynced: %r" % (what, calls))

    def test_long_names(self):
        calls = self.traced("create-long", lambda: sfs.write_file(
            os.path.join(self.d, LONG_A), "A\n"))
        self.check_sidecar_first(calls, "create")
        calls = self.traced("mkdir-long", lambda: os.mkdir(os.path.join(self.d, LONG_B)))
        self.check_sidecar_first(calls, "mkdir")
        self.assertEqual(sorted(os.listdir(self.d)),
                         sorted(["events.jsonl", "metadata.json", LONG_A, LONG_B]))

    def test_rename_onto_long_rewrites_no_sidecar(self):
        sfs.write_file(os.path.join(self.d, LONG_A), "A\n")
        sfs.write_file(os.path.join(self.d, "b"), "B\n")
        calls = self.traced("rename-long", lambda: os.rename(os.path.join(self.d, "b"),
                                                             os.path.join(self.d, LONG_A)))
        renames = [c for seq in calls.values() for c in seq if c[0] == "rename"]
        self.assertEqual(len(renames), 1, calls)  # the node's own, no sidecar's
        self.assertEqual(sfs.read_file(os.path.join(self.d, LONG_A)), b"B\n")
        self.assertIn(LONG_A, os.listdir(self.d))

    def test_fsync_of_new_file(self):
        sub = os.path.join(self.d, "sub")
        os.mkdir(sub)

        def create_and_fsync():
            fd = os.open(os.path.join(sub, "f"), os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.write(fd, b"data\n")
                os.fsync(fd)
                os.fsync(fd)
            finally:
                os.close(fd)

        calls = self.traced("fsync-new", create_and_fsync)
        seq = [c for s in calls.values() for c in s if c[0] == "fsync"]
        files = [c[1] for c in seq if os.path.basename(os.path.dirname(c[1])) != "root"
                 and not os.path.basename(c[1]).startswith(".sfs")
                 and os.path.dirname(c[1]).startswith(self.root + "/")
                 and not os.path.isdir(c[1])]
        self.assertEqual(len(set(files)), 1, calls)
        f = files[0]
        self.assertEqual(files.count(f), 2, calls)  # two fsyncs of the file
        syncs = [c[1] for c in seq]
        i = syncs.index(f)
        self.assertEqual(syncs[i + 1], os.path.dirname(f), "the new name unsynced: %r" % calls)
        self.assertEqual(syncs.count(os.path.dirname(f)), 1, "synced twice: %r" % calls)
        # a renamed file's new name is durable with its next fsync
        fd = os.open(os.path.join(sub, "f"), os.O_WRONLY)
        try:
            os.rename(os.path.join(sub, "f"), os.path.join(self.d, "g"))
            calls = self.traced("fsync-renamed", lambda: os.fsync(fd))
        finally:
            os.close(fd)
        syncs = [c[1] for s in calls.values() for c in s if c[0] == "fsync"]
        self.assertIn(self.root, syncs, calls)

    def test_fsyncdir(self):
        # not in the session root, whose fsyncs the refresh of "updated" adds
        sub = os.path.join(self.d, "top", "sub")
        os.makedirs(sub)
        os.chmod(sub, 0o750)  # a header rewritten in place

        def fsyncdir():
            fd = os.open(sub, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)
                os.fsync(fd)
            finally:
                os.close(fd)

        calls = self.traced("fsyncdir", fsyncdir)
        syncs = [c[1] for s in calls.values() for c in s if c[0] == "fsync"]
        hdrs = [x for x in syncs if x.endswith("/.sfsdir")]
        self.assertEqual(len(hdrs), 2, calls)
        d = os.path.dirname(hdrs[0])
        self.assertEqual(syncs.count(d), 2, calls)
        self.assertLess(syncs.index(hdrs[0]), syncs.index(d), calls)
        self.assertEqual(syncs.count(os.path.dirname(d)), 1,
                         "the new directory's name: %r" % calls)


class MetadataSyncOrderTest(SyncTraceBase):
    """Every path that replaces metadata.json makes the new document durable
    before the name points at it, and the name after (doc/format.md "Crash
    behaviour"), so a power cut leaves the old or the new document whatever
    the user's tool synced: `jq ... > t && mv t metadata.json` (the daemon
    fsyncs t's backing file before the rename: t was never synced by the
    user), `cp t metadata.json` and a write in place (commit: new file,
    fsync, rename), and the daemon's refresh of "updated". Checked on the
    daemon's own calls, traced with strace -y: in each thread, every rename
    onto metadata.json's backing name follows an fsync of the renamed file
    and is followed by an fsync of the session root. (A power cut itself is
    the harness's to show.)"""

    def setUp(self):
        super().setUp()
        self.md = os.path.join(self.d, "metadata.json")

    def check_order(self, calls, what):
        """Every rename onto a name in the session root is the document's
        (nothing else renames there in these tests): fsync of its source
        before, of the root after. The number of such renames."""
        n = 0
        for pid, seq in calls.items():
            for i, c in enumerate(seq):
                if c[0] != "rename" or os.path.dirname(c[2]) != self.root:
                    continue
                n += 1
                before = [x for x in seq[:i] if x[0] == "rename"]
                start = seq.index(before[-1]) + 1 if before else 0
                self.assertIn(("fsync", c[1]), seq[start:i],
                              "%s: the document %s was renamed over metadata.json "
                              "unsynced; thread %s: %r" % (what, c[1], pid, seq))
                after = [x for x in seq[i + 1:] if x[0] == "rename"]
                end = seq.index(after[0], i + 1) if after else len(seq)
                self.assertIn(("fsync", self.root), seq[i + 1:end],
                              "%s: the session root was not synced after the rename; "
                              "thread %s: %r" % (what, pid, seq))
        return n

    def doc(self, **kw):
        return json.dumps(dict(json.loads(sfs.read_file(self.md)), **kw)) + "\n"

    def test_mv_over_metadata(self):
        t = os.path.join(self.d, "t")
        sfs.write_file(t, self.doc(status="paused"))  # no fsync, as jq > t
        calls = self.traced("mv", lambda: self.assertEqual(
            sfs.run(["mv", t, self.md]).rc, 0))
        self.assertEqual(self.check_order(calls, "mv t metadata.json"), 1, calls)
        self.assertEqual(json.loads(sfs.read_file(self.md))["status"], "paused")

    def test_mv_from_subdirectory(self):
        os.mkdir(os.path.join(self.d, "sub"))
        t = os.path.join(self.d, "sub", "t")
        sfs.write_file(t, self.doc(status="completed"))
        calls = self.traced("mv-sub", lambda: os.rename(t, self.md))
        self.assertEqual(self.check_order(calls, "mv sub/t metadata.json"), 1, calls)
        self.assertEqual(json.loads(sfs.read_file(self.md))["status"], "completed")

    def test_cp_and_write_in_place(self):
        t = self.e.path("t.json")  # outside the mount
        with open(t, "w") as f:
            f.write(self.doc(status="failed"))
        calls = self.traced("cp", lambda: self.assertEqual(
            sfs.run(["cp", t, self.md]).rc, 0))
        self.assertGreaterEqual(self.check_order(calls, "cp t metadata.json"), 1, calls)
        new = self.doc(status="active", note="in place")
        calls = self.traced("write", lambda: sfs.write_file(self.md, new))
        self.assertGreaterEqual(self.check_order(calls, "a write in place"), 1, calls)
        self.assertEqual(json.loads(sfs.read_file(self.md)).get("note"), "in place")

    def test_updated_refresh(self):
        def updated():
            return json.loads(sfs.read_file(self.md))["updated"]

        def change_and_wait(what):
            before = updated()
            time.sleep(1.1)  # a later second for "updated" to take
            sfs.write_file(os.path.join(self.d, "x"), what)
            deadline = time.monotonic() + 15
            while updated() == before:
                self.assertLess(time.monotonic(), deadline, "updated not refreshed")
                time.sleep(0.1)

        change_and_wait("a change\n")  # the session's creation settled too
        calls = self.traced("refresh", lambda: change_and_wait("another change\n"))
        self.assertGreaterEqual(self.check_order(calls, "the refresh of updated"), 1, calls)

if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--writer":
        writer_main(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif len(sys.argv) > 1 and sys.argv[1] == "--storm":
        storm_main(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        sfs.main()
