"""Sparse files, fallocate, files over 4 GiB, mmap, statfs and O_TMPFILE
inside an unlocked session, compared with a native directory where the
answer is ext4's.

- truncate up by gigabytes and writes far past EOF make holes: the store
  grows by what was written, not by the hole (st_blocks of the backing file);
- a file over 4 GiB: bytes at and across the 4 GiB boundary read back, also
  after a remount;
- fallocate(1): allocate (-l), keep size (-n), punch a hole (-p), zero a
  range (-z) give the same bytes and sizes as on the native side, a punched
  range frees store space, and collapse/insert say "not supported";
- mmap: MAP_SHARED writes reach the file (read back by read(2) and after a
  remount), a mapping reads what write(2) wrote;
- statfs: df works and its figures are the store's file system's;
- lseek SEEK_DATA/SEEK_HOLE: holes of whole blocks are found (edges may
  count one block as data, as lseek allows), a file without holes is data
  to its end, ENXIO at EOF, and cp copies a sparse file sparse;
- O_TMPFILE: refused with EOPNOTSUPP (libfuse 3.14 has no tmpfile op), as
  on file systems without it, and nothing is left behind.
"""
import errno
import mmap
import os
import subprocess
import tempfile
import unittest

import sfs

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30


def run_ok(test, args):
    r = sfs.run(args)
    test.assertEqual(r.rc, 0, "%s: %r" % (" ".join(args), r))
    return r


class SparseTest(sfs.ForegroundMountTest):
    def setUp(self):
        super().setUp()
        self.sid = self.e.new(self.m)
        self.d = self.m.sdir(self.sid)
        self.native = tempfile.mkdtemp(prefix="sfs-native-", dir="/var/tmp")
        self.addCleanup(subprocess.run, ["rm", "-rf", self.native])

    def p(self, *names):
        return os.path.join(self.d, *names)

    def backing(self):
        """Bytes allocated (st_blocks) to the largest file of the store."""
        best = (0, 0, None)
        for root, _, files in os.walk(self.m.store):
            for f in files:
                st = os.lstat(os.path.join(root, f))
                if st.st_size > best[0]:
                    best = (st.st_size, st.st_blocks * 512, os.path.join(root, f))
        return best

    def test_truncate_up_makes_a_hole(self):
        f = self.p("big")
        sfs.write_file(f, b"start")
        os.truncate(f, 10 * GiB)
        self.assertEqual(os.stat(f).st_size, 10 * GiB)
        with open(f, "rb") as fh:
            fh.seek(7 * GiB)
            self.assertEqual(fh.read(8192), bytes(8192))
            fh.seek(0)
            self.assertEqual(fh.read(10), b"start" + bytes(5))
        size, allocated, _ = self.backing()
        self.assertGreater(size, 10 * GiB)      # the stored length covers it...
        self.assertLess(allocated, 1 * MiB)     # ...without storing the hole
        os.truncate(f, 3)
        self.assertEqual(sfs.read_file(f), b"sta")

    def test_over_4_gib(self):
        f = self.p("over4g")
        marks = {0: b"first", 4 * GiB - 3: b"across-the-4GiB-line", 5 * GiB + 12345: b"last"}
        fd = os.open(f, os.O_RDWR | os.O_CREAT, 0o644)
        for off, data in marks.items():
            self.assertEqual(os.pwrite(fd, data, off), len(data))
        os.close(fd)
        end = 5 * GiB + 12345 + 4
        self.assertEqual(os.stat(f).st_size, end)

        def check():
            fd = os.open(f, os.O_RDONLY)
            try:
                for off, data in marks.items():
                    self.assertEqual(os.pread(fd, len(data), off), data)
                    if off:  # the hole before it reads as zeros
                        self.assertEqual(os.pread(fd, 4096, off - 4096), bytes(4096))
                # a range straddling 4 GiB, read in one call
                got = os.pread(fd, 64, 4 * GiB - 32)
                self.assertEqual(got[29:], b"across-the-4GiB-line" + bytes(15))
                self.assertEqual(os.pread(fd, 10, end - 4), b"last")
            finally:
                os.close(fd)
        check()
        self.assertLess(self.backing()[1], 4 * MiB)
        self.e.assert_umount(self.m)
        self.remount()
        self.e.unlock(self.m, self.sid)
        check()

    def test_fallocate_like_native(self):
        """The same fallocate(1) calls on both sides give the same bytes."""
        pattern = bytes((i * 7 + i // 4096) % 251 for i in range(40 * 4096 + 77))
        steps = [
            ["-l", "1M"],                        # allocate past EOF: grows
            ["-n", "-o", "2M", "-l", "1M"],      # keep size
            ["-p", "-o", "5000", "-l", "70000"],  # punch inside data
            ["-p", "-o", "0", "-l", "4096"],     # punch a whole first block
            ["-z", "-o", "100000", "-l", "9999"],  # zero a range
            ["-z", "-o", "1040000", "-l", "50000"],  # zero across EOF: grows
            ["-p", "-o", "1000000", "-l", "200000"],  # punch to past EOF
        ]
        sides = (self.p("fa"), os.path.join(self.native, "fa"))
        for s in sides:
            sfs.write_file(s, pattern)
        for st in steps:
            for s in sides:
                run_ok(self, ["fallocate"] + st + [s])
            got = [sfs.read_file(s) for s in sides]
            self.assertEqual(len(got[0]), len(got[1]), "size after fallocate %s" % st)
            self.assertTrue(got[0] == got[1], "bytes after fallocate %s" % st)
        for mode in (["-c"], ["-i"]):  # collapse, insert: the kernel knows them, we do not
            r = sfs.run(["fallocate"] + mode + ["-o", "0", "-l", "4096", sides[0]])
            self.assertNotEqual(r.rc, 0)
            self.assertIn("not supported", r.err)
        self.assertEqual(sfs.read_file(sides[0]), sfs.read_file(sides[1]))

    def test_punch_frees_store_space(self):
        f = self.p("punch")
        sfs.write_file(f, os.urandom(8 * MiB))
        before = self.backing()[1]
        run_ok(self, ["fallocate", "-p", "-o", "1M", "-l", "6M", f])
        after = self.backing()[1]
        self.assertLessEqual(after, before - 5 * MiB)
        data = sfs.read_file(f)
        self.assertEqual(len(data), 8 * MiB)
        self.assertEqual(data[MiB:7 * MiB], bytes(6 * MiB))

    def test_fallocate_reserves(self):
        f = self.p("reserve")
        run_ok(self, ["fallocate", "-l", "16M", f])
        self.assertEqual(os.stat(f).st_size, 16 * MiB)
        self.assertGreaterEqual(self.backing()[1], 16 * MiB)
        self.assertEqual(sfs.read_file(f), bytes(16 * MiB))
        # events.jsonl only grows by appends; metadata.json is replaced whole.
        # (fallocate(2) itself: posix_fallocate would emulate on EOPNOTSUPP.)
        for name, err in (("events.jsonl", "Operation not permitted"),
                          ("metadata.json", "Operation not supported")):
            before = sfs.read_file(self.p(name))
            r = sfs.run(["fallocate", "-l", "4096", self.p(name)])
            self.assertNotEqual(r.rc, 0)
            self.assertIn(err, r.err, name)
            self.assertEqual(sfs.read_file(self.p(name)), before)

    def test_mmap(self):
        f = self.p("mapped")
        sfs.write_file(f, b"a" * 10000)
        with open(f, "r+b") as fh:
            m = mmap.mmap(fh.fileno(), 0)
            self.assertEqual(m[:3], b"aaa")
            m[4090:4110] = b"B" * 20          # across a block boundary
            m[9990:] = b"0123456789"
            m.flush()
            m.close()
        want = b"a" * 4090 + b"B" * 20 + b"a" * (9990 - 4110) + b"0123456789"
        self.assertEqual(sfs.read_file(f), want)
        # a mapping sees what write(2) wrote
        with open(f, "r+b") as fh:
            os.pwrite(fh.fileno(), b"written", 100)
            m = mmap.mmap(fh.fileno(), 0, prot=mmap.PROT_READ)
            self.assertEqual(m[100:107], b"written")
            m.close()
        self.e.assert_umount(self.m)
        self.remount()
        self.e.unlock(self.m, self.sid)
        self.assertEqual(sfs.read_file(f)[:4110], want[:100] + b"written" + want[107:4110])

    def test_statfs(self):
        mine, store = os.statvfs(self.d), os.statvfs(self.m.store)
        self.assertEqual(mine.f_namemax, 255)
        self.assertEqual(mine.f_bsize, store.f_bsize)
        self.assertEqual(mine.f_blocks, store.f_blocks)
        # free space moves as others write: close, not equal
        self.assertLess(abs(mine.f_bavail - store.f_bavail), mine.f_blocks // 100 + 256)
        r = run_ok(self, ["df", "-P", self.d])
        line = r.out.strip().splitlines()[-1].split()
        self.assertEqual(line[-1], self.m.mnt)
        self.assertEqual(int(line[1]), store.f_blocks * store.f_frsize // 1024)

    def test_seek_data_hole(self):
        f = self.p("holey")
        with open(f, "wb") as fh:
            fh.write(b"a" * MiB)          # data [0, 1 MiB)
            fh.seek(11 * MiB)
            fh.write(b"b" * MiB)          # hole [1, 11 MiB), data [11, 12 MiB)
            fh.truncate(20 * MiB)         # hole [12, 20 MiB) to EOF
        fd = os.open(f, os.O_RDONLY)
        self.addCleanup(os.close, fd)
        blk = 4 * KiB
        hole = os.lseek(fd, 0, os.SEEK_HOLE)
        self.assertTrue(MiB <= hole <= MiB + 2 * blk, hole)
        data = os.lseek(fd, hole, os.SEEK_DATA)
        self.assertTrue(11 * MiB - 2 * blk <= data <= 11 * MiB, data)
        self.assertEqual(os.lseek(fd, 5 * MiB, os.SEEK_HOLE), 5 * MiB)  # inside a hole
        self.assertEqual(os.lseek(fd, 100, os.SEEK_DATA), 100)          # inside data
        tail = os.lseek(fd, 11 * MiB + 10, os.SEEK_HOLE)
        self.assertTrue(12 * MiB <= tail <= 12 * MiB + 2 * blk, tail)
        with self.assertRaises(OSError) as cm:
            os.lseek(fd, 13 * MiB, os.SEEK_DATA)                        # only a hole after
        self.assertEqual(cm.exception.errno, errno.ENXIO)
        with self.assertRaises(OSError) as cm:
            os.lseek(fd, 20 * MiB, os.SEEK_HOLE)                        # at EOF
        self.assertEqual(cm.exception.errno, errno.ENXIO)
        # a reported hole reads as zeros; data may begin with an edge block of zeros
        with open(f, "rb") as fh:
            fh.seek(data)
            self.assertEqual(fh.read(11 * MiB - data + 4), bytes(11 * MiB - data) + b"bbbb")
            fh.seek(hole)
            self.assertEqual(fh.read(data - hole), bytes(data - hole))
        # a file without holes is data up to its end
        g = self.p("dense")
        sfs.write_file(g, os.urandom(3 * MiB + 5))
        gd = os.open(g, os.O_RDONLY)
        self.addCleanup(os.close, gd)
        self.assertEqual(os.lseek(gd, 0, os.SEEK_HOLE), 3 * MiB + 5)
        self.assertEqual(os.lseek(gd, 7, os.SEEK_DATA), 7)
        # cp finds the holes: the copy is sparse and the same bytes
        out = os.path.join(self.native, "copy")
        run_ok(self, ["cp", "--sparse=auto", f, out])
        self.assertEqual(sfs.sha256_file(out), sfs.sha256_file(f))
        self.assertLess(os.stat(out).st_blocks * 512, 4 * MiB)

    def test_o_tmpfile_refused(self):
        before = sorted(os.listdir(self.d))
        with self.assertRaises(OSError) as cm:
            os.open(self.d, os.O_TMPFILE | os.O_RDWR, 0o600)
        self.assertEqual(cm.exception.errno, errno.EOPNOTSUPP)
        self.assertEqual(sorted(os.listdir(self.d)), before)


if __name__ == "__main__":
    sfs.main()
