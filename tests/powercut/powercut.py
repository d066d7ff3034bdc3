#!/usr/bin/env python3
"""powercut.py - the power-cut harness: snapshots of a live sessionfs store
taken at random moments, each checked as the state a power cut would leave.

Setup (as root; cleaned up on every exit path, also on SIGTERM/SIGINT):
  an XFS file system with reflinks (mkfs.xfs -m reflink=1) on a loop image in
  /var/tmp; inside it an ext4 image attached with `losetup --direct-io=on` and
  mounted; a sessionfs store on that ext4 (mkfs.sessionfs), mounted with the
  daemon in the foreground, and one unlocked session in which writers run.

A "power cut" is `cp --reflink=always` of the ext4 image while the writers
run. With direct I/O nothing of the image sits in a page cache below ext4, and
the clone waits for in-flight I/O, so the clone holds exactly what had reached
the device at one instant; what was only in ext4's page cache (or the daemon's
memory) is lost, as in a real cut. Each clone is attached on its own loop
device, repaired with `e2fsck -fy` (journal replay), mounted, its store
mounted with a second sessionfs, the session unlocked with its password, and
checked against what every writer had acknowledged before the clone began.

Writers (threads; one directory each under the session, made and synced
before they start): acknowledgements are kept in this process (outside the
image) with the monotonic time at which the call returned; an operation
counts as done for a snapshot if it was acknowledged before the `cp` began,
and as not done if it started after the `cp` returned. In between it may be
either.
  files    new files written and fsynced (name, size and content durable)
  append   one file grown by appends of odd sizes, fsync after some of them
  events   lines appended to events.jsonl, fsync after each
  newdir   a new directory, files in it, fsync of each file, of the new
           directory and of its parent
  longname files with 176..255-byte names, fsync of file and directory
  rename   create+fsync, rename + fsync of the directory, unlink + fsync of
           the directory; and a long-named file replaced again and again by
           rename of a fsynced temporary, fsync of the directory
  meta     metadata.json replaced the README's way: read it, write t, mv t
           metadata.json, no fsync (as `jq ... > t && mv t metadata.json`)

Checks (names for --checks / SFS_POWERCUT_CHECKS; all on by default):
  files     every acknowledged file of `files` there, exact size and content
  append    the bytes of `append` up to the last fsync read back exactly
  events    every acknowledged events.jsonl line there exactly once, every
            line valid JSON
  newdir    each new directory lists, its acknowledged files read back
  longname  each acknowledged long name is listed and reads back
  rename    each rename/unlink item is in a state allowed by its acks
  renamelong the long-named file replaced by rename is listed and holds a
            version at least as new as the last acknowledged one
  meta      metadata.json is a valid document of the session holding one of
            the generations written; after the checks, writing it in place
            works
  race      (no crash) while the meta writer runs, each read of
            metadata.json shows the generation its last rename put there:
            the daemon's `updated` refresh never reverts a rename
  list      every directory of the session lists and every name in it
            lstat()s and opens (no EIO anywhere)
  rmrf      `rm -rf` of every writer directory succeeds and leaves it gone
  unread    (stricter than the promise, off unless named) every file,
            acknowledged or not, reads whole without EIO
The snapshot must also repair (e2fsck exit 0 or 1), mount and unlock; if it
does not, that is reported under the check "mount" and is always enforced.

Each failure is printed with its snapshot number and what was expected; the
summary counts failing snapshots per check. Exit status: 0 if no enforced
check failed, 1 if one did, 77 if the machine cannot run the harness (not
root, no free loop device, no mkfs.xfs or no reflink), 2 on usage errors.

Usage (tests/powercut/run is this script):
  tests/powercut/run [--snapshots N] [--checks a,b|all] [--seed S]
                     [--first SECONDS] [--gap MIN,MAX] [--rate OPS] [--native]
`--native` is the control: the same writers and checks in a plain directory of
the ext4, without sessionfs; every check must pass there (they ask nothing
ext4 does not give), which shows the harness itself finds no false failures.
CI runs a short version through tests/mount/test_powercut.py (3 snapshots);
the long mode is `tests/powercut/run --snapshots 50` (about 5 minutes).
Binaries come from $SFS_BUILD (default: build/ of this checkout).
"""
import argparse
import json
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
os.environ.setdefault("SFS_BUILD", os.path.join(ROOT, "build"))
sys.path.insert(0, os.path.join(ROOT, "tests", "mount"))
import sfs  # noqa: E402

ALL_CHECKS = ["files", "append", "events", "newdir", "longname", "rename", "renamelong",
              "meta", "race", "list", "rmrf", "unread"]
DEFAULT_CHECKS = [c for c in ALL_CHECKS if c != "unread"]
WRITER_DIRS = ["files", "append", "newdir", "longname", "rename"]
SKIP = 77

XFS_SIZE = 3 << 30
EXT4_SIZE = 1 << 30


class Skip(Exception):
    """The machine cannot run the harness (why in the message)."""


def sh(args, timeout=120, check=True):
    """Run a command; a CompletedProcess with text output. @check: raise on rc!=0."""
    p = subprocess.run([str(a) for a in args], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    if check and p.returncode != 0:
        raise RuntimeError("%s: exit %d: %s%s" % (" ".join(map(str, args)), p.returncode,
                                                  out, err))
    return subprocess.CompletedProcess(args, p.returncode, out, err)


class Cleanup:
    """A stack of undo steps, run last-in first-out, each at most once, every
    one tried even when an earlier one fails."""

    def __init__(self):
        self.steps = []

    def push(self, what, fn):
        self.steps.append((what, fn))
        return len(self.steps) - 1

    def run_from(self, mark=0):
        while len(self.steps) > mark:
            what, fn = self.steps.pop()
            try:
                fn()
            except BaseException as e:  # keep cleaning up, whatever happens
                print("powercut: cleanup: %s: %r" % (what, e), file=sys.stderr)


def losetup(path, direct=False):
    args = ["losetup", "-f", "--show"] + (["--direct-io=on"] if direct else []) + [path]
    return sh(args).stdout.strip()


def detach(dev):
    for _ in range(20):
        if sh(["losetup", "-d", dev], check=False).returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError("losetup -d %s keeps failing" % dev)


def unmount(path):
    """umount @path, retrying while busy; lazily as a last resort (a busy loop
    device is then detached by the kernel once the last user lets go:
    `losetup -d` of a busy device sets its autoclear flag)."""
    for _ in range(20):
        if not os.path.ismount(path):
            return
        if sh(["umount", path], check=False).returncode == 0:
            return
        time.sleep(0.25)
    sh(["umount", "-l", path], check=False)
    raise RuntimeError("%s was busy: unmounted lazily" % path)


def fsync_path(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY if os.path.isdir(path) else os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def content(tag, size):
    """Deterministic bytes for @tag (a str), @size long: each file its own."""
    seed = tag.encode() + b"|"
    unit = (seed * (64 // len(seed) + 1))[:64]
    n = size // 64 + 1
    return (unit * n)[:size]


def write_new(path, data, dirfsync=None):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    if dirfsync:
        fsync_path(dirfsync)


def long_name(prefix, i, rnd):
    """A name of 176..255 bytes, unique by @prefix and @i."""
    base = "%s%06d-" % (prefix, i)
    return base + "n" * (rnd.randint(176, 255) - len(base))


class Op:
    """One step of a writer: started at ts, acknowledged at ta (None: not yet)."""
    __slots__ = ("ts", "ta")

    def __init__(self):
        self.ts, self.ta = time.monotonic(), None

    def ack(self):
        self.ta = time.monotonic()


def kmin_kmax(ops, t0, t1):
    """How many of the sequential @ops are certainly done in a snapshot taken
    between t0 and t1 (acknowledged before t0), and how many may be (started
    before t1)."""
    kmin = sum(1 for o in ops if o.ta is not None and o.ta < t0)
    kmax = sum(1 for o in ops if o.ts < t1)
    return kmin, kmax


class Writers:
    """The writer threads and what they acknowledged (all in this process)."""

    def __init__(self, sdir, seed, rate):
        self.sdir = sdir
        self.seed = seed
        self.rate = rate          # operations a second of each namespace writer
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.errors = []          # (time, writer, text): a writer's call failed
        self.race = []            # (time, text): metadata.json reverted, no crash
        self.files = []           # (name, size, Op)
        self.append_ops = []      # ((file number, size at the fsync), Op)
        self.append_pattern = os.urandom(1 << 20)
        self.append_file = "app-%d.dat"
        self.events = []          # (n, Op)
        self.newdirs = []         # (dir, [(name, size)], Op) ack after all fsyncs
        self.longs = []           # (name, size, Op)
        self.renames = []         # (i, unlink?, [Op create, Op rename, Op unlink])
        self.versions = []        # (v, size, Op) of the long-named rename target
        self.metas = []           # (gen, Op)
        self.threads = []
        self.rt_name = "T" * 230  # the long-named file the rename writer replaces

    def d(self, *p):
        return os.path.join(self.sdir, *p)

    def prepare(self):
        for w in WRITER_DIRS:
            os.mkdir(self.d(w))
        write_new(self.d("rename", self.rt_name), content("rt0", 3000))
        self.versions.append((0, 3000, _done_op()))
        with open(self.d("metadata.json")) as f:
            doc = json.load(f)
        doc["pc_gen"] = 0
        with open(self.d("metadata.json"), "w") as f:
            json.dump(doc, f)
        self.metas.append((0, _done_op()))

    def start(self):
        for name in ["files", "append", "events", "newdir", "longname", "rename", "meta"]:
            t = threading.Thread(target=self._run, args=(name,), name=name, daemon=True)
            t.start()
            self.threads.append(t)

    def halt(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)

    def _run(self, name):
        rnd = random.Random("%s-%s" % (self.seed, name))
        fn = getattr(self, "w_" + name)
        try:
            fn(rnd)
        except Exception as e:
            if not self.stop.is_set():
                with self.lock:
                    self.errors.append((time.monotonic(), name, repr(e)))

    def _nap(self, rnd, fast=False):
        """Pause so that the writer averages self.rate operations a second
        (five times that for appends, events and metadata.json, which add no
        nodes): the session must stay far below the daemon's descriptor
        limit (one per node the kernel caches; 20000 on some machines)."""
        time.sleep(rnd.uniform(0, 2.0 / (self.rate * (5 if fast else 1))))

    def w_files(self, rnd):
        i = 0
        while not self.stop.is_set():
            name, size = "f%06d" % i, rnd.randint(1, 9000)
            op = Op()
            write_new(self.d("files", name), content("files/" + name, size))
            op.ack()
            self.files.append((name, size, op))
            i += 1
            self._nap(rnd)

    def w_append(self, rnd):
        k, size = 0, 0
        fd = os.open(self.d("append", self.append_file % k), os.O_WRONLY | os.O_CREAT, 0o644)
        fsync_path(self.d("append"))
        self.append_ops.append(((k, 0), _done_op()))
        try:
            while not self.stop.is_set():
                n = rnd.randint(1, 3000)
                if size + n > len(self.append_pattern):
                    os.close(fd)
                    k, size = k + 1, 0
                    fd = os.open(self.d("append", self.append_file % k),
                                 os.O_WRONLY | os.O_CREAT, 0o644)
                    fsync_path(self.d("append"))
                os.write(fd, self.append_pattern[size:size + n])
                size += n
                if rnd.random() < 0.4:
                    op = Op()
                    os.fsync(fd)
                    op.ack()
                    self.append_ops.append(((k, size), op))
                self._nap(rnd, fast=True)
        finally:
            os.close(fd)

    def w_events(self, rnd):
        fd = os.open(self.d("events.jsonl"), os.O_WRONLY | os.O_APPEND)
        n = 0
        try:
            while not self.stop.is_set():
                line = json.dumps({"type": "powercut", "pc_ev": n,
                                   "pad": "e" * rnd.randint(0, 300)}) + "\n"
                op = Op()
                os.write(fd, line.encode())
                os.fsync(fd)
                op.ack()
                self.events.append((n, op))
                n += 1
                self._nap(rnd, fast=True)
        finally:
            os.close(fd)

    def w_newdir(self, rnd):
        i = 0
        while not self.stop.is_set():
            dname = "d%05d" % i
            op = Op()
            dpath = self.d("newdir", dname)
            os.mkdir(dpath)
            files = []
            for j in range(rnd.randint(1, 3)):
                fname, size = "g%d" % j, rnd.randint(1, 6000)
                write_new(os.path.join(dpath, fname), content("newdir/%s/%s" % (dname, fname),
                                                             size))
                files.append((fname, size))
            fsync_path(dpath)
            fsync_path(self.d("newdir"))
            op.ack()
            self.newdirs.append((dname, files, op))
            i += 1
            self._nap(rnd)

    def w_longname(self, rnd):
        i = 0
        while not self.stop.is_set():
            name, size = long_name("L", i, rnd), rnd.randint(1, 5000)
            op = Op()
            write_new(self.d("longname", name), content("longname/%d" % i, size),
                      dirfsync=self.d("longname"))
            op.ack()
            self.longs.append((name, size, op))
            i += 1
            self._nap(rnd)

    def w_rename(self, rnd):
        i, v = 0, 0
        d = self.d("rename")
        while not self.stop.is_set():
            if rnd.random() < 0.35:
                # replace the long-named file by rename of a fsynced temporary
                v += 1
                size = rnd.randint(1, 5000)
                self.versions.append((v, size, Op()))
                op = self.versions[-1][2]
                write_new(os.path.join(d, "rt.tmp"), content("rt%d" % v, size))
                os.rename(os.path.join(d, "rt.tmp"), os.path.join(d, self.rt_name))
                fsync_path(d)
                op.ack()
            else:
                unlink = i % 2 == 0
                ops = []
                item = (i, unlink, ops)
                self.renames.append(item)
                size = 1 + (i * 977) % 7000
                ops.append(Op())
                write_new(os.path.join(d, "r%06d" % i), content("rename/%d" % i, size),
                          dirfsync=d)
                ops[-1].ack()
                ops.append(Op())
                os.rename(os.path.join(d, "r%06d" % i), os.path.join(d, "m%06d" % i))
                fsync_path(d)
                ops[-1].ack()
                if unlink:
                    ops.append(Op())
                    os.unlink(os.path.join(d, "m%06d" % i))
                    fsync_path(d)
                    ops[-1].ack()
                i += 1
            self._nap(rnd)

    def w_meta(self, rnd):
        g = 0
        while not self.stop.is_set():
            with open(self.d("metadata.json")) as f:
                doc = json.load(f)
            if doc.get("pc_gen") != g:
                with self.lock:
                    self.race.append((time.monotonic(),
                                      "metadata.json holds generation %r after the rename of "
                                      "generation %d returned" % (doc.get("pc_gen"), g)))
            g += 1
            doc["pc_gen"] = g
            doc["status"] = rnd.choice(["open", "investigating", "closed"])
            op = Op()
            with open(self.d("meta.tmp"), "w") as f:
                json.dump(doc, f, indent=2)
                f.write("\n")
            os.rename(self.d("meta.tmp"), self.d("metadata.json"))
            op.ack()
            self.metas.append((g, op))
            self._nap(rnd, fast=True)


def _done_op():
    o = Op()
    o.ts = o.ta = 0.0
    return o


def snapshot_items(lst, t0):
    """The entries of an append-only list of (…, Op) acknowledged before t0."""
    return [x for x in list(lst) if x[-1].ta is not None and x[-1].ta < t0]


class Harness:
    def __init__(self, args):
        self.args = args
        self.checks = args.checks
        self.rnd = random.Random(args.seed)
        self.cl = Cleanup()
        self.tmp = None
        self.failures = []        # (snapshot, check, text)
        self.snap_results = []    # (snapshot, {check: nfail}, seconds)
        self.pwfile = None

    def log(self, *a):
        print("powercut:", *a, flush=True)

    # --- setup -------------------------------------------------------------
    def preflight(self):
        if os.geteuid() != 0:
            raise Skip("needs root (loop devices, mounts)")
        for tool in ["losetup", "mkfs.xfs", "mkfs.ext4", "e2fsck", "fusermount3"]:
            if shutil.which(tool) is None:
                raise Skip("%s is not installed" % tool)
        if not os.path.exists("/dev/fuse"):
            raise Skip("no /dev/fuse")
        sfs.need_binaries()
        r = sh(["losetup", "-f"], check=False)
        if r.returncode != 0 or not r.stdout.strip():
            raise Skip("no free loop device (losetup -f: %s)" % r.stderr.strip())

    def setup(self):
        self.tmp = tempfile.mkdtemp(prefix="sfs-powercut-", dir="/var/tmp")
        self.cl.push("rm -rf " + self.tmp, lambda: shutil.rmtree(self.tmp, ignore_errors=True))
        xfs_img = os.path.join(self.tmp, "xfs.img")
        with open(xfs_img, "wb") as f:
            f.truncate(XFS_SIZE)
        r = sh(["mkfs.xfs", "-q", "-m", "reflink=1", xfs_img], check=False)
        if r.returncode != 0:
            raise Skip("mkfs.xfs -m reflink=1 failed: %s" % r.stderr.strip())
        try:
            xdev = losetup(xfs_img)
        except RuntimeError as e:
            raise Skip("losetup: %s" % e)
        self.cl.push("losetup -d " + xdev, lambda: detach(xdev))
        self.xfs = os.path.join(self.tmp, "xfs")
        os.mkdir(self.xfs)
        r = sh(["mount", "-t", "xfs", xdev, self.xfs], check=False)
        if r.returncode != 0:
            raise Skip("cannot mount XFS: %s" % r.stderr.strip())
        self.cl.push("umount " + self.xfs, lambda: unmount(self.xfs))
        self.img = os.path.join(self.xfs, "ext4.img")
        with open(self.img, "wb") as f:
            f.truncate(EXT4_SIZE)
        probe = os.path.join(self.xfs, "probe")
        r = sh(["cp", "--reflink=always", self.img, probe], check=False)
        if r.returncode != 0:
            raise Skip("cp --reflink=always does not work on XFS here: %s" % r.stderr.strip())
        os.unlink(probe)
        sh(["mkfs.ext4", "-q", "-F", self.img])
        try:
            edev = losetup(self.img, direct=True)
        except RuntimeError as e:
            raise Skip("losetup --direct-io=on: %s" % e)
        self.cl.push("losetup -d " + edev, lambda: detach(edev))
        self.ext4 = os.path.join(self.tmp, "ext4")
        os.mkdir(self.ext4)
        sh(["mount", "-t", "ext4", edev, self.ext4])
        self.cl.push("umount " + self.ext4, lambda: unmount(self.ext4))
        if self.args.native:
            # the control: the same writers and checks on ext4 itself
            self.sid = "INC-0000"
            wdir = os.path.join(self.ext4, "native")
            os.mkdir(wdir)
            with open(os.path.join(wdir, "metadata.json"), "w") as f:
                json.dump({"id": self.sid}, f)
            open(os.path.join(wdir, "events.jsonl"), "w").close()
        else:
            store = os.path.join(self.ext4, "store")
            sfs.mkfs(store)
            self.pwfile = os.path.join(self.tmp, "pw")
            fd = os.open(self.pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, (sfs.PASSWORD + "\n").encode())
            os.close(fd)
            self.live = sfs.Mount(store, os.path.join(self.tmp, "live"), foreground=True,
                                  logdir=self.tmp)
            self.cl.push("unmount the live store", lambda: self.stop_mount(self.live))
            self.live.start()
            r = sfs.run([sfs.SESSIONCTL, "new", "--password-file", self.pwfile, self.live.mnt])
            if r.rc != 0:
                raise RuntimeError("sessionctl new: %r" % r)
            self.sid = r.out.strip()
            wdir = self.live.sdir(self.sid)
        self.writers = Writers(wdir, self.args.seed, self.args.rate)
        self.writers.prepare()
        sh(["sync", "-f", self.ext4])   # the base state is durable; writers do the rest
        self.cl.push("stop the writers", self.writers.halt)
        self.writers.start()

    def stop_mount(self, m):
        """Unmount a sessionfs (lazily if busy) and make sure its daemon is gone."""
        if m.mounted or (m.proc is not None and m.proc.poll() is None):
            clean = m.stop()
            if m.proc is not None and m.proc.poll() is None:
                m.proc.kill()
                m.proc.wait()
            if not clean:
                raise RuntimeError("fusermount3 -u %s failed: unmounted lazily" % m.mnt)

    # --- one snapshot ------------------------------------------------------
    def snapshot(self, k):
        clone = os.path.join(self.xfs, "snap-%d.img" % k)
        t0 = time.monotonic()
        r = sh(["cp", "--reflink=always", self.img, clone], check=False)
        t1 = time.monotonic()
        mark = len(self.cl.steps)
        self.cl.push("rm " + clone, lambda: os.path.exists(clone) and os.unlink(clone))
        started = time.monotonic()
        fails = []
        try:
            if r.returncode != 0:
                raise RuntimeError("cp --reflink=always: %s" % r.stderr.strip())
            self.check_clone(k, clone, t0, t1, fails)
        except Exception as e:
            fails.append(("mount", "snapshot could not be checked: %s" % e))
        finally:
            self.cl.run_from(mark)
        counts = {}
        for check, text in fails:
            counts[check] = counts.get(check, 0) + 1
            self.failures.append((k, check, text))
            if counts[check] > self.args.verbose:
                continue
            if check == "mount" or check in self.checks:
                self.log("snapshot %d: FAIL %s: %s" % (k, check, text))
            else:
                self.log("snapshot %d: (not enforced) %s: %s" % (k, check, text))
        for check, n in sorted(counts.items()):
            if n > self.args.verbose:
                self.log("snapshot %d: %s: %d more like these" % (k, check,
                                                                   n - self.args.verbose))
        self.snap_results.append((k, counts, time.monotonic() - started))
        self.log("snapshot %d: cp took %.3f s, check %.1f s, %s" % (
            k, t1 - t0, time.monotonic() - started,
            "failed: " + ", ".join("%s x%d" % kv for kv in sorted(counts.items()))
            if counts else "all checks passed"))

    def check_clone(self, k, clone, t0, t1, fails):
        dev = losetup(clone)
        self.cl.push("losetup -d " + dev, lambda: detach(dev))
        r = sh(["e2fsck", "-fy", dev], check=False, timeout=300)
        if r.returncode not in (0, 1):
            fails.append(("mount", "e2fsck -fy exited %d: %s" % (r.returncode,
                                                               r.stdout[-2000:])))
            return
        emnt = os.path.join(self.tmp, "snap-ext4")
        os.makedirs(emnt, exist_ok=True)
        sh(["mount", "-t", "ext4", dev, emnt])
        self.cl.push("umount " + emnt, lambda: unmount(emnt))
        if self.args.native:
            Checker(self.writers, os.path.join(emnt, "native"), self.sid, t0, t1, fails,
                    "unread" in self.checks).run()
            return
        m = sfs.Mount(os.path.join(emnt, "store"), os.path.join(self.tmp, "snap-mnt"),
                      foreground=True, logdir=self.tmp)
        self.cl.push("unmount the snapshot store", lambda: self.stop_mount(m))
        m.start()
        r = sfs.run([sfs.SESSIONCTL, "unlock", "--password-file", self.pwfile,
                     m.sdir(self.sid)])
        if r.rc != 0:
            fails.append(("mount", "sessionctl unlock: exit %d: %s" % (r.rc, r.err.strip())))
            return
        Checker(self.writers, m.sdir(self.sid), self.sid, t0, t1, fails,
                "unread" in self.checks).run()

    # --- the run -----------------------------------------------------------
    def main(self):
        self.preflight()
        self.setup()
        self.log("%s on ext4 (direct I/O) on XFS in %s; session %s; writers running"
                 % ("native directory (--native)" if self.args.native else "store",
                    self.tmp, self.sid))
        time.sleep(self.args.first)
        for k in range(1, self.args.snapshots + 1):
            if k > 1:
                time.sleep(self.rnd.uniform(*self.args.gap))
            self.snapshot(k)
        self.writers.halt()
        w = self.writers
        for t, name, text in w.errors:
            self.failures.append((0, "mount", "writer %s failed on the live mount: %s"
                                  % (name, text)))
            self.log("FAIL writer %s on the live mount: %s" % (name, text))
        for t, text in w.race:
            self.failures.append((0, "race", text))
            self.log("%s race (live, no crash): %s" % (
                "FAIL" if "race" in self.checks else "(not enforced)", text))
        self.log("writers acknowledged: %d files, %d append fsyncs, %d events, %d new "
                 "directories, %d long names, %d rename items, %d replacements of the "
                 "long-named file, %d metadata.json renames" % (
                     len(w.files), len(w.append_ops), len(w.events), len(w.newdirs),
                     len(w.longs), len(w.renames), len(w.versions) - 1, len(w.metas) - 1))
        return self.summary()

    def summary(self):
        n = len(self.snap_results)
        per = {}
        for k, counts, _ in self.snap_results:
            for c in counts:
                per[c] = per.get(c, 0) + 1
        race = sum(1 for k, c, _ in self.failures if k == 0 and c == "race")
        self.log("summary: %d snapshots" % n)
        for c in ["mount"] + ALL_CHECKS:
            if c == "race":
                line = "%d reverts seen (live, no crash)" % race
            elif c == "unread" and c not in self.checks:
                line = "not run (name it in --checks)"
            else:
                line = "failed in %d of %d snapshots" % (per.get(c, 0), n)
            enforced = c == "mount" or c in self.checks
            self.log("  %-9s %s%s" % (c, line, "" if enforced else "  (not enforced)"))
        bad = [f for f in self.failures if f[1] == "mount" or f[1] in self.checks]
        return 1 if bad else 0

    def cleanup(self):
        self.cl.run_from(0)


class Checker:
    """The checks of one snapshot, mounted and unlocked at @sdir."""

    def __init__(self, w, sdir, sid, t0, t1, fails, unread):
        self.w, self.sdir, self.sid, self.t0, self.t1 = w, sdir, sid, t0, t1
        self.fails, self.unread = fails, unread

    def fail(self, check, text):
        self.fails.append((check, text))

    def p(self, *parts):
        return os.path.join(self.sdir, *parts)

    def read(self, path):
        with open(path, "rb") as f:
            return f.read()

    def expect_file(self, check, rel, data):
        """The file @rel must hold @data; a failure names what was expected."""
        try:
            got = self.read(self.p(rel))
        except OSError as e:
            self.fail(check, "%s (fsynced, %d bytes): %s" % (_short(rel), len(data),
                                                              os.strerror(e.errno)))
            return
        if got != data:
            self.fail(check, "%s (fsynced, %d bytes): holds %d other bytes" % (
                _short(rel), len(data), len(got)))

    def listing(self, check, rel):
        try:
            return set(os.listdir(self.p(rel)))
        except OSError as e:
            self.fail(check, "listing %s/: %s" % (rel, os.strerror(e.errno)))
            return None

    def run(self):
        for fn in [self.c_files, self.c_append, self.c_events, self.c_newdir, self.c_longname,
                   self.c_rename, self.c_renamelong, self.c_meta, self.c_list, self.c_rmrf]:
            fn()

    def c_files(self):
        acked = snapshot_items(self.w.files, self.t0)
        names = self.listing("files", "files")
        for name, size, _ in acked:
            if names is not None and name not in names:
                self.fail("files", "files/%s (fsynced, %d bytes): missing from the listing"
                          % (name, size))
            self.expect_file("files", "files/" + name, content("files/" + name, size))

    def c_append(self):
        acked = snapshot_items(self.w.append_ops, self.t0)
        last = {}
        for (k, size), _ in acked:
            last[k] = size
        for k, size in sorted(last.items()):
            rel = "append/" + self.w.append_file % k
            try:
                with open(self.p(rel), "rb") as f:
                    st = os.fstat(f.fileno())
                    if st.st_size < size:
                        self.fail("append", "%s: size %d, below the %d bytes fsynced"
                                  % (rel, st.st_size, size))
                        continue
                    got = f.read(size)
            except OSError as e:
                self.fail("append", "%s: the first %d bytes (fsynced): %s%s" % (
                    rel, size, os.strerror(e.errno), self._first_bad(rel, size)))
                continue
            if got != self.w.append_pattern[:size]:
                bad = next(i for i in range(len(got)) if got[i] != self.w.append_pattern[i]) \
                    if len(got) == size else len(got)
                self.fail("append", "%s: the first %d bytes (fsynced) differ at byte %d"
                          % (rel, size, bad))

    def _first_bad(self, rel, size):
        """Where reading the first @size bytes of @rel fails, block by block."""
        try:
            fd = os.open(self.p(rel), os.O_RDONLY)
        except OSError:
            return ""
        try:
            for off in range(0, size, 4096):
                try:
                    os.pread(fd, 4096, off)
                except OSError as e:
                    return " at byte %d (block %d of %d fsynced)" % (
                        off, off // 4096, (size + 4095) // 4096)
        finally:
            os.close(fd)
        return ""

    def c_events(self):
        acked = {n for n, _ in snapshot_items(self.w.events, self.t0)}
        try:
            data = self.read(self.p("events.jsonl"))
        except OSError as e:
            self.fail("events", "events.jsonl (%d lines fsynced): %s" % (
                len(acked), os.strerror(e.errno)))
            return
        seen = {}
        for i, line in enumerate(data.split(b"\n")[:-1]):
            try:
                obj = json.loads(line)
            except ValueError:
                self.fail("events", "events.jsonl line %d is not JSON: %r" % (i + 1, line[:80]))
                continue
            if isinstance(obj, dict) and "pc_ev" in obj:
                seen[obj["pc_ev"]] = seen.get(obj["pc_ev"], 0) + 1
        missing = sorted(acked - set(seen))
        if missing:
            self.fail("events", "events.jsonl: %d fsynced lines missing (first: %d)"
                      % (len(missing), missing[0]))
        dup = sorted(n for n, c in seen.items() if c > 1)
        if dup:
            self.fail("events", "events.jsonl: %d lines twice (first: %d)" % (len(dup), dup[0]))

    def c_newdir(self):
        for dname, files, _ in snapshot_items(self.w.newdirs, self.t0):
            names = self.listing("newdir", "newdir/" + dname)
            for fname, size in files:
                rel = "newdir/%s/%s" % (dname, fname)
                if names is not None and fname not in names:
                    self.fail("newdir", "%s (fsynced with its new directory): missing from "
                              "the listing" % rel)
                self.expect_file("newdir", rel, content(rel, size))

    def c_longname(self):
        names = self.listing("longname", "longname")
        for i, (name, size, op) in enumerate(list(self.w.longs)):
            if not _acked(op, self.t0):
                continue
            rel = "longname/" + name
            if names is not None and name not in names:
                self.fail("longname", "%s (fsynced with its directory, %d-byte name): "
                          "missing from the listing" % (_short(rel), len(name)))
            self.expect_file("longname", rel, content("longname/%d" % i, size))

    def c_rename(self):
        d = "rename"
        names = self.listing("rename", d)
        if names is None:
            return
        for i, unlink, ops in list(self.w.renames):
            kmin, kmax = kmin_kmax(list(ops), self.t0, self.t1)
            if kmax == 0:
                continue
            r, m = "r%06d" % i, "m%06d" % i
            data = content("rename/%d" % i, 1 + (i * 977) % 7000)
            states = []
            for st in self._rename_state(names, d, r, m, data):
                states.append(st)
            allowed = set(range(kmin, kmax + 1))
            # 0.5: the create had started, r there with any content
            ok = any(s in allowed or (s == 0.5 and kmin == 0 and kmax >= 1) for s in states)
            if not ok:
                want = {0: "neither", 1: r + " (fsynced)", 2: m + " (renamed, dir fsynced)",
                        3: "neither (unlinked, dir fsynced)"}
                self.fail("rename", "item %d: found %s; expected one of: %s" % (
                    i, self._describe(names, d, r, m, data),
                    "; ".join(want[s] for s in sorted(allowed))))

    def c_renamelong(self):
        """The long-named file replaced by rename again and again."""
        d = "rename"
        names = self.listing("renamelong", d)
        if names is None:
            return
        versions = list(self.w.versions)
        vmin, vmax = kmin_kmax([op for _, _, op in versions], self.t0, self.t1)
        rt = self.w.rt_name
        if rt not in names:
            self.fail("renamelong", "rename/%s (long name, replaced by rename; version %d "
                      "acknowledged): missing from the listing" % (_short(rt), vmin - 1))
        try:
            got = self.read(self.p(d, rt))
        except OSError as e:
            self.fail("renamelong", "rename/%s (version %d acknowledged): %s" % (
                _short(rt), vmin - 1, os.strerror(e.errno)))
            return
        vs = [v for v, size, _ in versions[max(vmin - 1, 0):vmax]
              if content("rt%d" % v, size) == got]
        if not vs:
            self.fail("renamelong", "rename/%s: holds none of versions %d..%d (%d bytes)" % (
                _short(rt), max(vmin - 1, 0), vmax - 1, len(got)))

    def _rename_state(self, names, d, r, m, data):
        def holds(n):
            try:
                return self.read(self.p(d, n)) == data
            except OSError:
                return False
        hr, hm = r in names, m in names
        if not hr and not hm:
            return [0, 3]
        if hr and not hm:
            return [1] if holds(r) else [0.5]
        if hm and not hr:
            return [2] if holds(m) else []
        return []

    def _describe(self, names, d, r, m, data):
        out = []
        for n in (r, m):
            if n not in names:
                continue
            try:
                ok = self.read(self.p(d, n)) == data
                out.append("%s (%s)" % (n, "its content" if ok else "other content"))
            except OSError as e:
                out.append("%s (%s)" % (n, os.strerror(e.errno)))
        return " and ".join(out) or "neither"

    def c_meta(self):
        gmax = max(g for g, op in list(self.w.metas) if op.ts < self.t1)
        gmin = max(g for g, op in list(self.w.metas) if op.ta is not None and op.ta < self.t0)
        path = self.p("metadata.json")
        try:
            data = self.read(path)
        except OSError as e:
            self.fail("meta", "metadata.json (generation %d..%d expected): %s" % (
                0, gmax, os.strerror(e.errno)))
            data = None
        if data is not None:
            try:
                doc = json.loads(data)
                if not isinstance(doc, dict) or doc.get("id") != self.sid:
                    raise ValueError("not this session's document")
                g = doc.get("pc_gen")
                if not isinstance(g, int) or not 0 <= g <= gmax:
                    raise ValueError("generation %r" % (g,))
            except ValueError as e:
                self.fail("meta", "metadata.json is neither an old nor the new document "
                          "(generations 0..%d written, %d renamed before the cut; %d bytes%s):"
                          " %s" % (gmax, gmin, len(data),
                                   ", all zeros" if data and not data.strip(b"\0") else "", e))
        # writing it in place must work afterwards
        doc = {"id": self.sid, "created": "2025-01-01T00:00:00Z", "pc_gen": -1}
        try:
            with open(path) as f:
                old = json.load(f)
            doc = dict(old, pc_gen=-1)
        except (OSError, ValueError):
            pass
        try:
            with open(path, "w") as f:
                json.dump(doc, f)
            with open(path) as f:
                if json.load(f).get("pc_gen") != -1:
                    raise ValueError("the write did not stick")
        except (OSError, ValueError) as e:
            self.fail("meta", "writing metadata.json in place after the cut: %s" % (
                os.strerror(e.errno) if isinstance(e, OSError) and e.errno else e))

    def c_list(self):
        for dirpath, dnames, fnames in os.walk(self.sdir, onerror=self._walk_error):
            for n in dnames + fnames:
                path = os.path.join(dirpath, n)
                rel = os.path.relpath(path, self.sdir)
                try:
                    st = os.lstat(path)
                    if stat.S_ISREG(st.st_mode):
                        os.close(os.open(path, os.O_RDONLY))
                        if self.unread:
                            self.read(path)
                except OSError as e:
                    check = "list"
                    if e.errno == 5 and self.unread and stat.S_ISREG(st.st_mode):
                        check = "unread"
                    self.fail(check, "%s: %s" % (_short(rel), os.strerror(e.errno)))

    def _walk_error(self, e):
        self.fail("list", "listing %s: %s" % (_short(os.path.relpath(e.filename, self.sdir)),
                                               os.strerror(e.errno)))

    def c_rmrf(self):
        for w in WRITER_DIRS:
            r = sh(["rm", "-rf", self.p(w)], check=False)
            if r.returncode != 0 or os.path.lexists(self.p(w)):
                err = r.stderr.strip().splitlines()
                self.fail("rmrf", "rm -rf %s/: exit %d%s" % (
                    w, r.returncode, ": " + err[0] + (" (+%d more)" % (len(err) - 1)
                                                      if len(err) > 1 else "")
                    if err else ", still there"))


def _acked(op, t0):
    return op.ta is not None and op.ta < t0


def _short(rel):
    parts = rel.split("/")
    return "/".join(p if len(p) <= 40 else "%s...(%d bytes)" % (p[:12], len(p)) for p in parts)


def parse_checks(text):
    if text is None or text.strip() in ("", "all"):
        return list(DEFAULT_CHECKS) if text is None or text.strip() == "" else list(ALL_CHECKS)
    out = [c.strip() for c in text.split(",") if c.strip()]
    for c in out:
        if c not in ALL_CHECKS and c != "none":
            raise argparse.ArgumentTypeError("unknown check %r (known: %s)"
                                             % (c, ", ".join(ALL_CHECKS)))
    return [c for c in out if c != "none"]


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="tests/powercut/run",
                                 description="power-cut harness for sessionfs (see the "
                                 "docstring of tests/powercut/powercut.py)")
    ap.add_argument("--snapshots", type=int, default=50)
    ap.add_argument("--checks", type=parse_checks,
                    default=parse_checks(os.environ.get("SFS_POWERCUT_CHECKS")),
                    help="comma-separated checks to enforce (default: $SFS_POWERCUT_CHECKS, "
                    "else all but 'unread'; 'all' adds it; 'none' enforces none)")
    ap.add_argument("--seed", default=os.environ.get("SFS_POWERCUT_SEED", "20261204"))
    ap.add_argument("--rate", type=float, default=4.0,
                    help="operations a second of each namespace writer (appends, events "
                    "and metadata.json: five times that); the nodes they make must stay "
                    "well below the daemon's descriptor limit over the whole run")
    ap.add_argument("--native", action="store_true",
                    help="the control run: writers and checks in a plain directory of "
                    "the ext4, no sessionfs (every check must pass: they ask only what "
                    "ext4 gives)")
    ap.add_argument("--verbose", type=int, default=4, metavar="N",
                    help="failures printed per check and snapshot (the rest are counted)")
    ap.add_argument("--first", type=float, default=4.0,
                    help="seconds the writers run before the first snapshot")
    ap.add_argument("--gap", type=lambda s: tuple(float(x) for x in s.split(",")),
                    default=(1.0, 6.0), help="MIN,MAX seconds between snapshots")
    return ap.parse_args(argv)


def run(argv):
    """Run the harness; its exit status (0, 1 or SKIP). Cleans up whatever
    happens, also on SIGTERM."""
    args = parse_args(argv)
    h = Harness(args)

    def on_signal(signum, frame):
        raise SystemExit(128 + signum)
    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        return h.main()
    except Skip as e:
        print("powercut: skipped: %s" % e, flush=True)
        return SKIP
    finally:
        # no second signal interrupts the cleanup: loop devices, mounts and
        # images would be left behind
        signal.pthread_sigmask(signal.SIG_BLOCK, list(old) + [signal.SIGINT])
        try:
            h.cleanup()
        finally:
            for s, fn in old.items():
                signal.signal(s, fn)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, list(old) + [signal.SIGINT])


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
