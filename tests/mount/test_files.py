"""POSIX behaviour inside an unlocked session, and persistence across remounts."""
import errno
import os
import random
import stat
import threading
import unittest

import sfs


class FilesTest(unittest.TestCase):
    CIPHER = None  # mkfs.sessionfs's default: aes256gcm where the CPU has AES-NI

    def setUp(self):
        self.e = sfs.Env(cipher=self.CIPHER)
        self.addCleanup(self.e.cleanup)
        self.m = self.e.mount()
        self.sid = self.e.new(self.m)
        self.d = self.m.sdir(self.sid)

    def p(self, *parts):
        return os.path.join(self.d, *parts)

    def remount_unlock(self, drop_caches=False):
        """Mount again and unlock; with @drop_caches the page cache goes too
        (as root: elsewhere it stays, and the same code runs, only warm)."""
        self.m = self.e.remount(self.m)
        self.e.unlock(self.m, self.sid)
        self.d = self.m.sdir(self.sid)
        if drop_caches and os.geteuid() == 0:
            os.sync()
            with open("/proc/sys/vm/drop_caches", "w") as f:
                f.write("3\n")

    def test_create_read_write(self):
        sfs.write_file(self.p("a.txt"), "hello\n")
        self.assertEqual(sfs.read_file(self.p("a.txt")), b"hello\n")
        st = os.stat(self.p("a.txt"))
        self.assertTrue(stat.S_ISREG(st.st_mode))
        self.assertEqual(st.st_size, 6)
        with open(self.p("a.txt"), "ab") as f:
            f.write(b"world\n")
        self.assertEqual(sfs.read_file(self.p("a.txt")), b"hello\nworld\n")
        self.assertIn("a.txt", os.listdir(self.d))
        # O_EXCL on an existing name
        with self.assertRaises(FileExistsError):
            os.open(self.p("a.txt"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        with self.assertRaises(FileNotFoundError):
            os.stat(self.p("missing"))

    def test_pwrite_pread_any_offset(self):
        """Random writes and truncates against an in-memory model."""
        rnd = random.Random(1234)
        model = bytearray()
        fd = os.open(self.p("model.bin"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            for i in range(300):
                op = rnd.random()
                if op < 0.8:
                    off = rnd.randrange(0, 40000)
                    n = rnd.choice([1, 7, 100, 4095, 4096, 4097, rnd.randrange(1, 12000)])
                    data = rnd.randbytes(n)
                    self.assertEqual(os.pwrite(fd, data, off), n)
                    if off > len(model):
                        model.extend(b"\0" * (off - len(model)))
                    model[off:off + n] = data
                else:
                    size = rnd.randrange(0, 45000)
                    os.ftruncate(fd, size)
                    if size < len(model):
                        del model[size:]
                    else:
                        model.extend(b"\0" * (size - len(model)))
                if i % 25 == 0:
                    self.assertEqual(os.fstat(fd).st_size, len(model), "step %d" % i)
                    off = rnd.randrange(0, len(model) + 1)
                    n = rnd.randrange(0, 9000)
                    self.assertEqual(os.pread(fd, n, off), bytes(model[off:off + n]),
                                     "step %d pread(%d, %d)" % (i, n, off))
            self.assertEqual(os.fstat(fd).st_size, len(model))
            self.assertEqual(os.pread(fd, len(model) + 10, 0), bytes(model))
        finally:
            os.close(fd)
        self.assertEqual(sfs.read_file(self.p("model.bin")), bytes(model))
        self.remount_unlock()
        self.assertEqual(sfs.read_file(self.p("model.bin")), bytes(model))

    def test_sparse_write_past_end(self):
        fd = os.open(self.p("sparse"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            os.pwrite(fd, b"tail", 1_000_000)
            self.assertEqual(os.fstat(fd).st_size, 1_000_004)
            self.assertEqual(os.pread(fd, 10, 500_000), b"\0" * 10)
            self.assertEqual(os.pread(fd, 10, 999_998), b"\0\0tail")
        finally:
            os.close(fd)

    def test_truncate_up_and_down(self):
        data = bytes(range(256)) * 40  # 10240 bytes, crosses blocks
        sfs.write_file(self.p("t"), data)
        os.truncate(self.p("t"), 5000)
        self.assertEqual(os.stat(self.p("t")).st_size, 5000)
        self.assertEqual(sfs.read_file(self.p("t")), data[:5000])
        os.truncate(self.p("t"), 9000)
        self.assertEqual(sfs.read_file(self.p("t")), data[:5000] + b"\0" * 4000)
        os.truncate(self.p("t"), 0)
        self.assertEqual(sfs.read_file(self.p("t")), b"")

    def test_open_o_trunc(self):
        sfs.write_file(self.p("t"), "abcdef\n")
        fd = os.open(self.p("t"), os.O_WRONLY | os.O_TRUNC)
        os.close(fd)
        self.assertEqual(os.stat(self.p("t")).st_size, 0)
        self.assertEqual(sfs.read_file(self.p("t")), b"")
        sfs.write_file(self.p("t"), "abcdef\n")
        with open(self.p("t"), "wb") as f:  # O_WRONLY|O_CREAT|O_TRUNC
            f.write(b"x")
        self.assertEqual(sfs.read_file(self.p("t")), b"x")
        # what every shell script does
        r = sfs.run(["sh", "-c", "cd \"$1\" && echo abcdef > t && echo x > t", "sh", self.d])
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(sfs.read_file(self.p("t")), b"x\n")

    def test_directories(self):
        os.makedirs(self.p("data", "logs", "deep"))
        sfs.write_file(self.p("data", "logs", "deep", "x.log"), "line\n")
        self.assertTrue(stat.S_ISDIR(os.stat(self.p("data", "logs")).st_mode))
        self.assertEqual(os.listdir(self.p("data", "logs")), ["deep"])
        with self.assertRaises(OSError) as cm:
            os.rmdir(self.p("data", "logs", "deep"))
        self.assertEqual(cm.exception.errno, errno.ENOTEMPTY)
        os.unlink(self.p("data", "logs", "deep", "x.log"))
        os.rmdir(self.p("data", "logs", "deep"))
        self.assertEqual(os.listdir(self.p("data", "logs")), [])
        with self.assertRaises(FileExistsError):
            os.mkdir(self.p("data"))

    def test_symlinks(self):
        sfs.write_file(self.p("target.txt"), "pointed at\n")
        os.symlink("target.txt", self.p("link"))
        os.symlink("../nowhere/at/all", self.p("dangling"))
        self.assertTrue(stat.S_ISLNK(os.lstat(self.p("link")).st_mode))
        self.assertEqual(os.readlink(self.p("link")), "target.txt")
        self.assertEqual(os.readlink(self.p("dangling")), "../nowhere/at/all")
        self.assertEqual(sfs.read_file(self.p("link")), b"pointed at\n")
        long_target = "x/" * 1000 + "end"
        os.symlink(long_target, self.p("long"))
        self.assertEqual(os.readlink(self.p("long")), long_target)
        self.remount_unlock()
        self.assertEqual(os.readlink(self.p("link")), "target.txt")
        self.assertEqual(os.readlink(self.p("long")), long_target)
        self.assertEqual(sfs.read_file(self.p("link")), b"pointed at\n")

    def test_rename(self):
        sfs.write_file(self.p("a"), "AAA")
        os.rename(self.p("a"), self.p("b"))
        self.assertFalse(os.path.exists(self.p("a")))
        self.assertEqual(sfs.read_file(self.p("b")), b"AAA")
        # over an existing file
        sfs.write_file(self.p("c"), "CCCCCC")
        os.rename(self.p("b"), self.p("c"))
        self.assertEqual(sfs.read_file(self.p("c")), b"AAA")
        self.assertEqual(sorted(n for n in os.listdir(self.d) if n in "abc"), ["c"])
        # into and out of a directory, and a directory itself
        os.mkdir(self.p("dir"))
        os.rename(self.p("c"), self.p("dir", "c2"))
        self.assertEqual(sfs.read_file(self.p("dir", "c2")), b"AAA")
        os.rename(self.p("dir"), self.p("dir2"))
        self.assertEqual(sfs.read_file(self.p("dir2", "c2")), b"AAA")
        self.remount_unlock()
        self.assertEqual(sfs.read_file(self.p("dir2", "c2")), b"AAA")
        self.assertFalse(os.path.exists(self.p("dir")))

    def test_rename_and_link_across_sessions_is_exdev(self):
        """A rename or link out of a session, into another session or out to
        the mount's own directories fails with EXDEV, as between file systems
        (mv then copies), and moves nothing."""
        other = self.e.new(self.m)
        od = self.m.sdir(other)
        sfs.write_file(self.p("f"), b"stays")
        os.mkdir(self.p("dir"))
        for src, dst in ((self.p("f"), os.path.join(od, "f")),
                         (self.p("dir"), os.path.join(od, "dir")),
                         (os.path.join(od, "events.jsonl"), self.p("g")),
                         (self.p("f"), os.path.join(self.m.mnt, "sessions", "f"))):
            with self.assertRaises(OSError) as cm:
                os.rename(src, dst)
            self.assertEqual(cm.exception.errno, errno.EXDEV, "%s -> %s" % (src, dst))
        with self.assertRaises(OSError) as cm:
            os.link(self.p("f"), os.path.join(od, "f"))
        self.assertEqual(cm.exception.errno, errno.EXDEV)
        self.assertEqual(sfs.read_file(self.p("f")), b"stays")
        self.assertNotIn("f", os.listdir(od))
        # mv falls back to copy and remove, as across file systems
        r = sfs.run(["mv", self.p("f"), os.path.join(od, "moved")])
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(sfs.read_file(os.path.join(od, "moved")), b"stays")
        self.assertFalse(os.path.exists(self.p("f")))

    def test_unlink(self):
        sfs.write_file(self.p("gone"), "x")
        os.unlink(self.p("gone"))
        self.assertFalse(os.path.exists(self.p("gone")))
        self.assertNotIn("gone", os.listdir(self.d))
        # also while open: the open file stays readable
        sfs.write_file(self.p("open"), "still here")
        fd = os.open(self.p("open"), os.O_RDWR)
        try:
            os.unlink(self.p("open"))
            self.assertFalse(os.path.exists(self.p("open")))
            self.assertEqual(os.pread(fd, 100, 0), b"still here")
            os.pwrite(fd, b"STILL", 0)
            self.assertEqual(os.pread(fd, 100, 0), b"STILL here")
        finally:
            os.close(fd)
        self.assertNotIn("open", os.listdir(self.d))

    def test_chmod(self):
        sfs.write_file(self.p("f"), "x")
        for mode in (0o640, 0o600, 0o755, 0o400):
            os.chmod(self.p("f"), mode)
            self.assertEqual(stat.S_IMODE(os.stat(self.p("f")).st_mode), mode)
        os.mkdir(self.p("d"))
        os.chmod(self.p("d"), 0o750)
        self.assertEqual(stat.S_IMODE(os.stat(self.p("d")).st_mode), 0o750)
        self.remount_unlock()
        self.assertEqual(stat.S_IMODE(os.stat(self.p("f")).st_mode), 0o400)
        self.assertEqual(stat.S_IMODE(os.stat(self.p("d")).st_mode), 0o750)

    def test_utimens(self):
        sfs.write_file(self.p("f"), "x")
        atime, mtime = 1_600_000_000_123_456_789, 1_500_000_000_987_654_321
        os.utime(self.p("f"), ns=(atime, mtime))
        st = os.stat(self.p("f"))
        self.assertEqual(st.st_mtime_ns, mtime)
        self.assertEqual(st.st_atime_ns, atime)
        os.mkdir(self.p("d"))
        os.utime(self.p("d"), ns=(atime, mtime))
        self.assertEqual(os.stat(self.p("d")).st_mtime_ns, mtime)
        self.remount_unlock()
        self.assertEqual(os.stat(self.p("f")).st_mtime_ns, mtime)
        self.assertEqual(os.stat(self.p("d")).st_mtime_ns, mtime)

    def test_mtime_moves_on_write(self):
        sfs.write_file(self.p("f"), "x")
        os.utime(self.p("f"), ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
        with open(self.p("f"), "ab") as f:
            f.write(b"y")
        self.assertGreater(os.stat(self.p("f")).st_mtime_ns, 1_000_000_000_000_000_000)

    def test_fsync_and_statfs(self):
        fd = os.open(self.p("synced"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            os.write(fd, b"durable")
            os.fsync(fd)
            os.fdatasync(fd)
        finally:
            os.close(fd)
        dfd = os.open(self.d, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        for path in (self.m.mnt, self.d):
            sv = os.statvfs(path)
            self.assertGreater(sv.f_bsize, 0)
            self.assertGreater(sv.f_blocks, 0)
            self.assertGreater(sv.f_namemax, 0)

    def test_long_names(self):
        name = "n" * 255
        sfs.write_file(self.p(name), "long")
        self.assertIn(name, os.listdir(self.d))
        self.assertEqual(sfs.read_file(self.p(name)), b"long")
        with self.assertRaises(OSError) as cm:
            sfs.write_file(self.p("n" * 256), "too long")
        self.assertEqual(cm.exception.errno, errno.ENAMETOOLONG)
        self.remount_unlock()
        self.assertEqual(sfs.read_file(self.p(name)), b"long")

    def test_cold_listing_of_a_large_directory(self):
        """A listing right after mount (headers prefetched in windows of 64
        entries, ops_dir.c) shows every entry with its own attributes: more
        entries than one window and one READDIR reply, of every kind, then
        again with the page cache dropped where we may."""
        modes = [0o600, 0o640, 0o755, 0o400]
        want = {}
        os.mkdir(self.p("big"))
        for i in range(300):
            kind = i % 5
            name = "e%03d" % i if i != 150 else "L" * 250
            p = self.p("big", name)
            if kind == 0 or kind == 4:
                sfs.write_file(p, "x" * i, mode=modes[i % 4])
            elif kind == 1:
                os.mkdir(p, 0o700 if i % 2 else 0o750)
                sfs.write_file(os.path.join(p, "inner"), "in")
            elif kind == 2:
                os.symlink("target-%d" % i, p)
            else:
                os.mkfifo(p, 0o620)
        before, _ = sfs.describe_tree(self.p("big"))
        for rel, e in before.items():
            want[rel] = {k: e[k] for k in ("mode", "size", "target") if k in e}
        for drop in (False, True):
            self.remount_unlock(drop_caches=drop)
            r = sfs.run(["ls", "-l", self.p("big")])
            self.assertEqual(r.rc, 0, r)
            self.assertEqual(len(r.out.splitlines()), 301, r.out[-500:])  # "total", 300 entries
            after, _ = sfs.describe_tree(self.p("big"))
            got = {rel: {k: e[k] for k in ("mode", "size", "target") if k in e}
                   for rel, e in after.items()}
            self.assertEqual(got, want)

    def test_cold_listing_of_many_directories(self):
        """ls -l over many directories right after mount, as `ls -l DIR/*`:
        listing the parent asks for the headers of each subdirectory's first
        entries too, and the subdirectory's own first listing then skips
        them where they hold no directory (ops_dir.c, prefetch_subdir).
        Every entry of every kind keeps its own attributes and readdir type,
        in directories smaller and larger than that window, with and without
        subdirectories, and in one changed between the parent's listing and
        its own."""
        parent = self.p("many")
        os.mkdir(parent)
        for i in range(40):
            d = os.path.join(parent, "d%02d" % i)
            os.mkdir(d, 0o750 if i % 2 else 0o700)
            for j in range(30 if i % 3 == 0 else 2):
                p = os.path.join(d, "f%02d" % j)
                kind = (i + j) % 4
                if kind == 0:
                    sfs.write_file(p, "x" * (i * j), mode=0o640 if j % 2 else 0o600)
                elif kind == 1:
                    os.mkfifo(p, 0o620)
                elif kind == 2:
                    os.symlink("t" * (4000 if j % 2 else 5), p)  # long and short
                else:
                    os.mkdir(p)
                    sfs.write_file(os.path.join(p, "inner"), "in")
        subdirs = sorted(os.path.join(parent, n) for n in os.listdir(parent))
        want_types = {d: sfs.d_types(d) for d in subdirs}
        self.assertEqual(want_types[subdirs[1]], {"f00": 1, "f01": 10})  # FIFO, symlink
        want, _ = sfs.describe_tree(parent)
        for drop in (False, True):
            self.remount_unlock(drop_caches=drop)
            # The parent's listing (the glob's) prefetches; then d00 changes.
            self.assertEqual(sorted(os.listdir(parent)), [os.path.basename(d) for d in subdirs])
            late = "late-%d" % drop
            sfs.write_file(os.path.join(subdirs[0], late), "late")
            want_types[subdirs[0]][late] = 8  # DT_REG
            r = sfs.run(["ls", "-l"] + subdirs)
            self.assertEqual(r.rc, 0, r)
            listed = [ln for ln in r.out.splitlines()
                      if ln and not ln.startswith(("total ", parent))]
            self.assertEqual(len(listed), sum(len(t) for t in want_types.values()), r.out)
            # The kernel keeps these listings (cache_readdir): the types READDIRPLUS gave.
            self.assertEqual({d: sfs.d_types(d) for d in subdirs}, want_types)
            got, _ = sfs.describe_tree(parent)
            for name in [n for n in want_types[subdirs[0]] if n.startswith("late-")]:
                self.assertEqual(got.pop(os.path.join("d00", name))["size"], 4)
            self.assertEqual(got, want)

    def test_persistence_big_file_and_tree(self):
        big = os.urandom(3 * 1024 * 1024 + 123)
        src = self.e.path("src-big.bin")
        sfs.write_file(src, big)
        r = sfs.run(["cp", src, self.p("big.bin")])
        self.assertEqual(r.rc, 0, r)
        want = sfs.sha256_file(src)
        self.assertEqual(sfs.sha256_file(self.p("big.bin")), want)

        tree = self.e.path("tree")
        os.makedirs(os.path.join(tree, "logs", "2024"))
        os.makedirs(os.path.join(tree, "empty"))
        sfs.write_file(os.path.join(tree, "notes.md"), "# incident\n", mode=0o644)
        sfs.write_file(os.path.join(tree, "run.sh"), "#!/bin/sh\necho hi\n", mode=0o755)
        sfs.write_file(os.path.join(tree, "logs", "2024", "app.log"), os.urandom(70000),
                       mode=0o600)
        sfs.write_file(os.path.join(tree, "logs", "empty.log"), "", mode=0o640)
        os.symlink("2024/app.log", os.path.join(tree, "logs", "current"))
        os.chmod(os.path.join(tree, "logs"), 0o750)
        os.utime(os.path.join(tree, "notes.md"), ns=(1_400_000_000_000_000_000,) * 2)
        r = sfs.run(["cp", "-a", tree, self.p("tree")])
        self.assertEqual(r.rc, 0, r)

        self.remount_unlock()
        self.assertEqual(sfs.sha256_file(self.p("big.bin")), want)
        r = sfs.run(["diff", "-r", "--no-dereference", tree, self.p("tree")])
        self.assertEqual(r.rc, 0, r)
        self.compare_modes(tree, self.p("tree"))
        self.assertEqual(os.stat(self.p("tree", "notes.md")).st_mtime_ns,
                         1_400_000_000_000_000_000)

    def test_chmod_beside_sparse_changes(self):
        """chmod in a loop on one thread while another makes a file sparse
        (truncate up: a hole) and back (truncate to 0 and write: whole
        blocks). A chmod rewrites the header, whose kind (blocks or sparse)
        the content calls change: it must store the kind of the moment (a
        sparse file stored as "blocks" reads its hole as a block failing
        authentication: EIO). This passes on the code before
        sfs_node_store_attrs stopped writing back a kind read before it took
        the file's io lock: the kernel holds a file's inode lock across its
        setattr and write requests, so that race was not reachable from a
        client; it fails if a chmod stores a kind other than the file's."""
        path = self.p("sparse-chmod.bin")
        head, tail = b"head\n" * 300, b"tail\n" * 100
        size = 256 << 10
        want = head + b"\0" * (size - len(head) - len(tail)) + tail
        rounds = int(os.environ.get("SFS_CHMOD_ROUNDS", "1500"))
        done = threading.Event()
        errors, chmods = [], [0]

        def chmodder():
            while not done.is_set():
                try:
                    os.chmod(path, (0o600, 0o640)[chmods[0] % 2])
                    chmods[0] += 1
                except OSError as e:
                    errors.append("chmod: %r" % e)
                    return

        sfs.write_file(path, b"x")
        t = threading.Thread(target=chmodder)
        t.start()
        try:
            fd = os.open(path, os.O_RDWR)
            try:
                for n in range(rounds):
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, head, 0)  # a new id: whole blocks again
                    os.ftruncate(fd, size - len(tail))  # a hole: sparse
                    os.pwrite(fd, tail, size - len(tail))
                    got = os.pread(fd, size + 1, 0)
                    if got != want:
                        errors.append("round %d: read back %d bytes, not what was written"
                                      % (n, len(got)))
                        break
            except OSError as e:
                errors.append("round %d: %r" % (n, e))
            finally:
                os.close(fd)
        finally:
            done.set()
            t.join()
        self.assertEqual(errors, [])
        self.assertGreater(chmods[0], 0)
        self.remount_unlock()
        self.assertEqual(sfs.read_file(self.p("sparse-chmod.bin")), want)
        self.assertIn(stat.S_IMODE(os.stat(self.p("sparse-chmod.bin")).st_mode),
                      (0o600, 0o640))

    def compare_modes(self, a, b):
        for root, dirs, files in os.walk(a):
            rel = os.path.relpath(root, a)
            for n in dirs + files + [""]:
                pa = os.path.normpath(os.path.join(a, rel, n))
                pb = os.path.normpath(os.path.join(b, rel, n))
                sa, sb = os.lstat(pa), os.lstat(pb)
                self.assertEqual(stat.S_IFMT(sa.st_mode), stat.S_IFMT(sb.st_mode), pb)
                if not stat.S_ISLNK(sa.st_mode):
                    self.assertEqual(oct(stat.S_IMODE(sa.st_mode)),
                                     oct(stat.S_IMODE(sb.st_mode)), pb)
                if stat.S_ISREG(sa.st_mode):
                    self.assertEqual(sa.st_size, sb.st_size, pb)


class FilesXChaChaTest(FilesTest):
    """The same in a store whose sessions use XChaCha20-Poly1305 (version 1 key files)."""
    CIPHER = "xchacha20poly1305"


if __name__ == "__main__":
    sfs.main()
