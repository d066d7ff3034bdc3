"""A full disk: the store on an 8 MiB tmpfs, filled up through the mount.

- filling a file fails with ENOSPC (at write or fsync), not EIO, never silently;
- what was acknowledged before stays readable: the file that hit the full
  disk keeps its acknowledged prefix, an older file F reads identically;
- overwriting part of F on the full disk succeeds or fails with ENOSPC, and F
  then reads as the old or the new content, never EIO, never garbage;
- `sessionctl new` on the full store fails with a clear message and leaves no
  visible half-made session;
- once space is freed, writing works again, and after a remount everything
  still reads back.
"""
import errno
import hashlib
import os
import random
import sys
import tempfile
import unittest

import sfs

MiB = 1 << 20


class EnospcTest(unittest.TestCase):
    def setUp(self):
        sfs.need_binaries()
        self.e = sfs.Env(make_store=False)
        # the tmpfs lives outside the Env's dir: cleanups run last-in first-out,
        # so the sessionfs mounts go first, then the tmpfs, then its directory
        self.disk = tempfile.mkdtemp(prefix="sfs-enospc-")
        self.addCleanup(os.rmdir, self.disk)
        r = sfs.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", self.disk])
        self.assertEqual(r.rc, 0, "mount tmpfs: %r" % r)
        self.addCleanup(self.umount_disk)
        self.addCleanup(self.e.cleanup)
        self.store = os.path.join(self.disk, "store")
        sfs.mkfs(self.store)
        self.m = self.e.mount(foreground=True, store=self.store)
        self.sid = self.e.new(self.m)
        self.d = self.m.sdir(self.sid)

    def umount_disk(self):
        r = sfs.run(["umount", self.disk])
        if r.rc != 0:
            sfs.run(["umount", "-l", self.disk])
            raise AssertionError("umount %s: %r" % (self.disk, r))

    def p(self, name):
        return os.path.join(self.d, name)

    def fill(self, path):
        """Append to @path until the disk is full: every write or fsync that
        fails must fail with ENOSPC. Returns the bytes acknowledged (written
        and fsynced) and the errors seen."""
        rnd = random.Random(7)
        acked = bytearray()
        errors = []
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            # big block-aligned writes, then smaller and unaligned ones, so
            # the last, partial block is resealed on a full disk
            for size in (256 * 1024, 64 * 1024, 4096, 1000, 100, 1):
                fails = 0
                while fails < 3:
                    self.assertLess(len(acked), 64 * MiB,
                                    "wrote 64 MiB to an 8 MiB disk without an error")
                    chunk = rnd.randbytes(size)
                    try:
                        n = os.write(fd, chunk)
                        self.assertEqual(n, size, "short write on a full disk")
                        os.fsync(fd)
                    except OSError as ex:
                        errors.append((size, ex.errno))
                        self.assertEqual(ex.errno, errno.ENOSPC,
                                         "filling the disk with %d-byte writes after %d bytes: "
                                         "%s" % (size, len(acked), ex))
                        fails += 1
                        # the failed write may have grown the file or not: go
                        # on from what was acknowledged
                        os.lseek(fd, len(acked), os.SEEK_SET)
                        continue
                    acked += chunk
        finally:
            os.close(fd)
        return bytes(acked), errors

    def test_full_disk(self):
        f_data = random.Random(1).randbytes(MiB)
        with open(self.p("F.bin"), "wb") as f:
            f.write(f_data)
            f.flush()
            os.fsync(f.fileno())
        f_sha = hashlib.sha256(f_data).hexdigest()

        g_acked, errors = self.fill(self.p("G.bin"))
        self.assertTrue(errors, "the disk never filled")
        st = os.statvfs(self.disk)
        free = st.f_bavail * st.f_frsize
        sys.stderr.write("filled: G acknowledged %d bytes, %d ENOSPC errors, %d bytes left on "
                         "the tmpfs\n" % (len(g_acked), len(errors), free))
        # acknowledged data survives the failed writes after it
        g_size = os.stat(self.p("G.bin")).st_size
        self.assertGreaterEqual(g_size, len(g_acked))
        with open(self.p("G.bin"), "rb") as f:
            self.assertEqual(f.read(len(g_acked)), g_acked,
                             "G's acknowledged bytes changed after ENOSPC")
        self.assertEqual(sfs.sha256_file(self.p("F.bin")), f_sha)

        # a partial overwrite on the full disk: success or ENOSPC, then old or new
        patch = b"P" * 100
        off = MiB // 2 + 1234
        new_data = f_data[:off] + patch + f_data[off + 100:]
        fd = os.open(self.p("F.bin"), os.O_RDWR)
        try:
            try:
                self.assertEqual(os.pwrite(fd, patch, off), 100)
                os.fsync(fd)
                patched = True
            except OSError as ex:
                self.assertEqual(ex.errno, errno.ENOSPC, "pwrite into F on a full disk: %s" % ex)
                patched = False
        finally:
            os.close(fd)
        got = sfs.read_file(self.p("F.bin"))  # EIO here fails the test
        if patched:
            self.assertEqual(got, new_data, "F after an acknowledged pwrite on a full disk")
        else:
            self.assertIn(got, (f_data, new_data), "F after a failed pwrite: neither old nor new")
        sys.stderr.write("pwrite of 100 bytes into F on the full disk: %s\n"
                         % ("ok" if patched else "ENOSPC"))

        # sessionctl new on the full store: a clear failure, nothing half-made visible
        before = sorted(os.listdir(self.m.sessions()))
        r = self.e.ctl("new", self.m.mnt, password=sfs.PASSWORD)
        if r.rc == 0:
            # tmpfs may still hold a few bytes; only a real success is acceptable then
            sid2 = r.out.strip()
            self.assertRegex(sid2, sfs.ID_RE)
            sys.stderr.write("sessionctl new on the full disk succeeded: %r (%d bytes free)\n"
                             % (sid2, free))
        else:
            self.assertTrue(r.err.startswith("sessionctl:"), "stderr: %r" % r.err)
            self.assertEqual(sorted(os.listdir(self.m.sessions())), before)
            sys.stderr.write("sessionctl new on the full disk: rc %d, %s" % (r.rc, r.err))
        self.assertEqual([n for n in os.listdir(self.m.sessions()) if n.startswith(".new-")], [])
        leftovers = [n for n in os.listdir(os.path.join(self.store, "sessions"))
                     if n.startswith(".new-")]
        sys.stderr.write(".new-* left in STORE/sessions after the failed new: %r\n" % leftovers)

        # free the space: writing works again
        os.unlink(self.p("G.bin"))
        h_data = random.Random(2).randbytes(3 * MiB + 123)
        with open(self.p("H.bin"), "wb") as f:
            f.write(h_data)
            f.flush()
            os.fsync(f.fileno())
        self.assertEqual(sfs.read_file(self.p("H.bin")), h_data)
        self.e.new(self.m)  # and a new session too

        # remount: F and H are there
        self.m = self.e.remount(self.m)
        self.e.unlock(self.m, self.sid)
        got = sfs.read_file(self.p("F.bin"))
        if patched:
            self.assertEqual(got, new_data)
        else:
            self.assertIn(got, (f_data, new_data))
        self.assertEqual(sfs.read_file(self.p("H.bin")), h_data)
        self.assertEqual(sorted(os.listdir(self.d)),
                         ["F.bin", "H.bin", "events.jsonl", "metadata.json"])

    def test_holes_and_fallocate_on_small_disk(self):
        """A 1 GiB hole needs no space; fallocate of more than the disk holds
        fails with ENOSPC and changes nothing; filling a hole on a full disk
        fails with ENOSPC and the hole still reads as zeros, the data around
        it as before."""
        f = self.p("sparse.bin")
        head = random.Random(3).randbytes(10000)
        sfs.write_file(f, head)
        os.truncate(f, 1 << 30)                        # 128 times the disk
        self.assertEqual(os.stat(f).st_size, 1 << 30)
        r = sfs.run(["fallocate", "-o", "0", "-l", "64M", f])   # mode 0, inside the size
        self.assertNotEqual(r.rc, 0)
        self.assertIn("No space left", r.err)
        r = sfs.run(["fallocate", "-l", "2G", f])                # mode 0, growing
        self.assertNotEqual(r.rc, 0)
        self.assertIn("No space left", r.err)
        self.assertEqual(os.stat(f).st_size, 1 << 30)
        self.fill(self.p("G.bin"))
        fd = os.open(f, os.O_RDWR)
        try:
            for off in (MiB * 300, MiB * 700 + 5):            # into the hole
                try:
                    os.pwrite(fd, random.Random(off).randbytes(256 * 1024), off)
                    os.fsync(fd)
                    wrote = True
                except OSError as ex:
                    self.assertEqual(ex.errno, errno.ENOSPC, "write into a hole: %s" % ex)
                    wrote = False
                got = os.pread(fd, 256 * 1024, off)           # EIO here fails the test
                if not wrote:
                    self.assertEqual(got, bytes(256 * 1024), "a failed write left bytes")
            self.assertEqual(os.pread(fd, 10000, 0), head)
            self.assertEqual(os.pread(fd, 4096, (1 << 30) - 4096), bytes(4096))
        finally:
            os.close(fd)

    @staticmethod
    def try_listdir(p):
        try:
            return os.listdir(p)
        except OSError as ex:
            return ex

    def test_new_file_on_full_disk(self):
        """Creating files and directories on a full disk: ENOSPC or success,
        and whatever was created lists and reads (no half-made entries)."""
        self.fill(self.p("G.bin"))
        made = {}
        for i in range(20):
            name = self.p("n%d" % i)
            try:
                with open(name, "wb") as f:
                    f.write(b"x" * 5000)
                    f.flush()
                    os.fsync(f.fileno())
                made[name] = b"x" * 5000
            except OSError as ex:
                self.assertEqual(ex.errno, errno.ENOSPC, "create+write n%d: %s" % (i, ex))
            try:
                os.mkdir(self.p("dir%d" % i))
                failed = None
            except OSError as ex:
                failed = ex
            if failed is not None:
                self.assertEqual(failed.errno, errno.ENOSPC, "mkdir dir%d: %s" % (i, failed))
                # a failed mkdir leaves nothing behind (POSIX; and a leftover
                # directory without its header would list as damaged: EIO)
                self.assertFalse(os.path.lexists(self.p("dir%d" % i)),
                                 "mkdir dir%d failed with ENOSPC but dir%d exists (listing it: "
                                 "%s)" % (i, i, self.try_listdir(self.p("dir%d" % i))))
        # everything the mount lists can be stat'ed and read: a file that
        # failed may be there, short (what was acknowledged) but not damaged
        for n in os.listdir(self.d):
            p = self.p(n)
            os.lstat(p)
            if os.path.isdir(p):
                self.assertEqual(self.try_listdir(p), [], "listing %s" % n)
            else:
                data = sfs.read_file(p) if n != "G.bin" else None
                if p in made:
                    self.assertEqual(data, made[p])
                elif n.startswith("n"):
                    self.assertEqual(data, b"x" * len(data), "%s: %r" % (n, data[:50]))
        os.unlink(self.p("G.bin"))
        sfs.write_file(self.p("after.txt"), "room again\n")
        self.m = self.e.remount(self.m)
        self.e.unlock(self.m, self.sid)
        self.assertEqual(sfs.read_file(self.p("after.txt")), b"room again\n")
        for p, data in made.items():
            self.assertEqual(sfs.read_file(p), data)


if __name__ == "__main__":
    sfs.main()
