"""A tree far larger than the daemon's descriptor limit (issue 19, part 1).

The daemon runs under a hard RLIMIT_NOFILE of LIMIT (prlimit; as root also
without CAP_SYS_RESOURCE, so it cannot raise its own hard limit again), and a
session gets FILES files in one directory plus a nested tree, many times the
limit: created, listed, stat-ed, read back and checked, renamed (files, and a
directory whose children the kernel has cached), hard-linked, unlinked, and one
file unlinked while open and used after thousands of other nodes went through
the cache. The daemon is killed (SIGKILL) in the middle and the store mounted
again under the same limit, and everything is checked once more. Through it
all the daemon's open descriptors stay under the limit (/proc/PID/fd).

Before the descriptor cache (fs/inode_fd.c) every inode the kernel held kept
a descriptor open, and the create of about the LIMIT-th file failed: EMFILE.

FILES is 3000 by default (CI); SFS_FDLIMIT_FILES sets it (README "Development",
test_fdlimit: the long mode runs 1,000,000), and the hang watchdog grows with it.
"""
import errno
import os
import signal
import stat
import subprocess
import sys
import time
import unittest

import sfs

LIMIT = 256
FILES = int(os.environ.get("SFS_FDLIMIT_FILES", "3000"))
DIRS, SUBDIRS, PER_DIR = 8, 8, 6  # the nested tree: 64 leaf directories, 384 files


def content(name):
    """The bytes file @name holds: its name, repeated (a few hundred bytes)."""
    return (name + "\n").encode() * (1 + len(name) % 7)


def limited_wrapper():
    """The daemon's wrapper: a hard descriptor limit of LIMIT that it cannot
    raise (as root, without CAP_SYS_RESOURCE)."""
    w = ["prlimit", "--nofile=%d:%d" % (LIMIT, LIMIT)]
    if os.geteuid() == 0:
        w = ["setpriv", "--bounding-set", "-sys_resource", "--inh-caps", "-sys_resource"] + w
    return sfs.WRAPPER + w


def daemon_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


class FdLimitTest(unittest.TestCase):

    def setUp(self):
        sfs.need_binaries()
        for tool in ("prlimit", "setpriv"):
            if not any(os.access(os.path.join(d, tool), os.X_OK)
                       for d in os.environ.get("PATH", "/usr/bin:/bin").split(":")):
                self.skipTest("%s is not installed" % tool)
        self.e = sfs.Env()
        self.addCleanup(self.e.cleanup)
        self.addCleanup(self.lazy_umount_all)
        self.m = self.mount()

    def lazy_umount_all(self):
        for m in self.e.mounts:
            if m.proc is not None and m.proc.poll() is not None:
                sfs.run(["fusermount3", "-uz", m.mnt])

    def mount(self, mnt=None):
        m = self.e.mount(foreground=True, wrapper=limited_wrapper(), mnt=mnt)
        # the daemon itself (under setpriv and prlimit, which exec it)
        self.pid = m.proc.pid
        with open("/proc/%d/limits" % self.pid) as f:
            line = [l for l in f if l.startswith("Max open files")][0]
        self.assertEqual(line.split()[3:5], [str(LIMIT), str(LIMIT)], line)
        return m

    def check_fds(self, when):
        n = daemon_fds(self.pid)
        self.assertLess(n, LIMIT, "%s: the daemon holds %d descriptors" % (when, n))
        self.max_fds = max(getattr(self, "max_fds", 0), n)

    def kill_and_remount(self):
        os.kill(self.pid, signal.SIGKILL)
        self.m.proc.wait(timeout=30)
        self.assertEqual(self.m.proc.returncode, -signal.SIGKILL)
        r = sfs.run(["fusermount3", "-uz", self.m.mnt])
        self.assertEqual(r.rc, 0, "fusermount3 -uz of the dead mount: %r" % r)
        self.m = self.mount(mnt=self.m.mnt)
        self.e.unlock(self.m, self.sid)

    def verify(self, sdir, expect):
        """Every file of @expect (relative path -> name its content is made
        of) and nothing else under big/ and tree/: listed, stat-ed, read."""
        seen = {}
        for top in ("big", "tree"):
            for root, dirs, files in os.walk(os.path.join(sdir, top)):
                for f in files:
                    seen[os.path.relpath(os.path.join(root, f), sdir)] = True
        self.assertEqual(sorted(seen), sorted(expect))
        for rel, name in expect.items():
            p = os.path.join(sdir, rel)
            st = os.lstat(p)
            self.assertTrue(stat.S_ISREG(st.st_mode), rel)
            want = content(name)
            self.assertEqual(st.st_size, len(want), rel)
            with open(p, "rb") as f:
                self.assertEqual(f.read(), want, rel)
        self.check_fds("after verifying %d files" % len(expect))

    def test_tree_beyond_the_limit(self):
        sid = self.sid = self.e.new(self.m)
        sdir = self.m.sdir(sid)
        big = os.path.join(sdir, "big")
        os.mkdir(big)
        expect = {}

        # create: FILES in one directory, then the nested tree
        for i in range(FILES):
            name = "f%07d" % i
            fd = os.open(os.path.join(big, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, content(name))
            os.close(fd)
            expect[os.path.join("big", name)] = name
            if i % 1000 == 0:
                self.check_fds("creating %d files" % i)
        for a in range(DIRS):
            for b in range(SUBDIRS):
                d = os.path.join(sdir, "tree", "d%d" % a, "e%d" % b)
                os.makedirs(d)
                for c in range(PER_DIR):
                    name = "g%d-%d-%d" % (a, b, c)
                    sfs.write_file(os.path.join(d, name), content(name))
                    expect[os.path.join("tree", "d%d" % a, "e%d" % b, name)] = name
        self.check_fds("after creating")

        # list, stat, read
        self.assertEqual(len(os.listdir(big)), FILES)
        self.verify(sdir, expect)

        # an open file, unlinked: usable after every other node went through the cache
        held = os.path.join(big, "f0000001")
        hfd = os.open(held, os.O_RDWR)
        os.unlink(held)
        del expect[os.path.join("big", "f0000001")]
        # a hard link whose first name goes
        os.link(os.path.join(big, "f0000002"), os.path.join(sdir, "tree", "linked"))
        os.unlink(os.path.join(big, "f0000002"))
        del expect[os.path.join("big", "f0000002")]
        expect[os.path.join("tree", "linked")] = "f0000002"

        # rename: a third of the files (in big/, and into tree/), and a
        # directory whose children the kernel has cached (stat-ed above)
        for i in range(3, FILES, 3):
            name = "f%07d" % i
            if i % 2:
                new = os.path.join("big", "r%07d" % i)
            else:
                new = os.path.join("tree", "d%d" % (i % DIRS), "m%07d" % i)
            os.rename(os.path.join(big, name), os.path.join(sdir, new))
            del expect[os.path.join("big", name)]
            expect[new] = name
        os.rename(os.path.join(sdir, "tree", "d1"), os.path.join(sdir, "tree", "moved"))
        for rel in list(expect):
            parts = rel.split(os.sep)
            if parts[:2] == ["tree", "d1"]:
                expect[os.path.join("tree", "moved", *parts[2:])] = expect.pop(rel)
        # unlink: every fifth of what is left in big/
        for i in range(4, FILES, 5):
            rel = os.path.join("big", "f%07d" % i)
            if rel in expect:
                os.unlink(os.path.join(sdir, rel))
                del expect[rel]
        self.verify(sdir, expect)

        # the unlinked open file: stat, read, write through its descriptor
        st = os.fstat(hfd)
        self.assertEqual(st.st_nlink, 0)
        self.assertEqual(os.pread(hfd, 100, 0), content("f0000001")[:100])
        os.pwrite(hfd, b"still here", 0)
        self.assertEqual(os.pread(hfd, 10, 0), b"still here")
        os.close(hfd)

        # SIGKILL in the middle of the work, and a remount under the same limit
        for i in range(0, FILES, 7):
            rel = os.path.join("big", "f%07d" % i)
            if rel in expect:
                new = os.path.join("big", "k%07d" % i)
                os.rename(os.path.join(sdir, rel), os.path.join(sdir, new))
                expect[new] = expect.pop(rel)
        self.kill_and_remount()
        sdir = self.m.sdir(sid)
        self.assertEqual(len(os.listdir(os.path.join(sdir, "big"))),
                         sum(1 for r in expect if r.startswith("big" + os.sep)))
        self.verify(sdir, expect)

        # and it keeps working: more renames and removals, then all of it goes
        for rel in [r for r in expect if r.startswith(os.path.join("tree", "moved"))]:
            os.unlink(os.path.join(sdir, rel))
            del expect[rel]
        self.verify(sdir, expect)
        r = subprocess.run(["rm", "-rf", os.path.join(sdir, "big"), os.path.join(sdir, "tree")],
                           timeout=max(sfs.TIMEOUT, FILES // 200), stderr=subprocess.PIPE)
        self.assertEqual(r.returncode, 0, "rm -rf: %r" % r.stderr[:2000])
        self.assertEqual(sorted(os.listdir(sdir)), ["events.jsonl", "metadata.json"])
        self.check_fds("after rm -rf")
        print("fdlimit: %d files under a hard limit of %d: at most %d descriptors seen"
              % (FILES, LIMIT, self.max_fds), file=sys.stderr)


if __name__ == "__main__":
    # sfs.main's hang watchdog (280 s by default) grows with the long mode
    os.environ.setdefault("SFS_TEST_WATCHDOG", str(max(280, FILES // 100)))
    sfs.main()
