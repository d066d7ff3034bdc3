"""A write never tears bytes an earlier fsync acknowledged (issue 14, failure 3), and
a file whose header a power cut lost comes back as an empty file.

An append to a file whose last block is partial rewrites that block in place.
A power cut during that rewrite can leave the block half old, half new, or the
new size with the old bytes, and the whole block then fails authentication,
fsynced bytes with it. The fsync keeps a copy of the stored last block in the
backing file's "user.sfs.tail" attribute (doc/format.md "Tail record"); the
first open after the mount puts it back when the stored block fails.

The tear is made by hand between two mounts, as a power cut would leave it:
the block's stored bytes as they were at the fsync, then part of the append's
rewrite over them. tests/powercut/run shows the same with real power cuts.
"""
import errno
import os
import time
import unittest

import sfs

HDR = 80        # node header (lib/format.h SFS_HDR_BYTES)
BLOCK = 4096    # plaintext block
CBLOCK = 4136   # stored block: nonce 24, ciphertext, tag 16
OVERHEAD = 40
PAGE = 4096


def backing_size(plain):
    full, rest = divmod(plain, BLOCK)
    return HDR + full * CBLOCK + (rest + OVERHEAD if rest else 0)


class TornTailTest(unittest.TestCase):
    CIPHER = None  # mkfs.sessionfs's default (AES-256-GCM where the CPU has AES-NI)
    SYNCED = BLOCK + 1000 + 7   # a size no other file of the session has

    def setUp(self):
        self.e = sfs.Env(cipher=self.CIPHER)
        self.addCleanup(self.e.cleanup)
        self.m = self.e.mount(foreground=True)
        self.sid = self.e.new(self.m)
        self.data = os.urandom(3 * BLOCK)
        self.path = os.path.join(self.m.sdir(self.sid), "app.log")

    def backing(self):
        """The backing file of app.log (its inode number is the backing one)."""
        return sfs.backing_of(self.e.store, self.sid, self.path)

    def append(self, fd, upto, fsync):
        size = os.fstat(fd).st_size
        os.write(fd, self.data[size:upto])
        if fsync:
            os.fsync(fd)

    def stored(self, backing, block):
        with open(backing, "rb") as f:
            f.seek(HDR + block * CBLOCK)
            return f.read(CBLOCK)

    def remount_and_unlock(self):
        self.m = self.e.remount(self.m)
        self.e.unlock(self.m, self.sid)

    def tear(self, backing, block, old, keep_new_size=True):
        """Write the stored bytes @old of @block back over its first page-aligned
        part: the append's rewrite reached the disk only in part."""
        off = HDR + block * CBLOCK
        cut = (off // PAGE + 1) * PAGE - off  # old bytes up to the next page boundary
        with open(backing, "r+b") as f:
            f.seek(off)
            f.write(old[:cut])
            if not keep_new_size:
                f.truncate(off + len(old))

    def read_all(self):
        with open(self.path, "rb") as f:
            return f.read()

    def test_torn_rewrite_of_the_fsynced_block_is_put_back(self):
        """fsync at 5103 bytes, append to 6000 unsynced, tear block 1: reads the 5103 bytes."""
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644)
        self.append(fd, self.SYNCED, True)
        backing = self.backing()
        old = self.stored(backing, 1)
        self.assertEqual(len(old), self.SYNCED - BLOCK + OVERHEAD)
        self.append(fd, 6000, False)
        os.close(fd)
        self.e.assert_umount(self.m)
        self.tear(backing, 1, old)
        self.remount_and_unlock()
        self.assertEqual(self.read_all(), self.data[:self.SYNCED])
        self.assertEqual(os.stat(self.path).st_size, self.SYNCED)
        self.assertIn("put back from its tail record", self.m.read_log())
        # and the file goes on as any other
        with open(self.path, "ab") as f:
            f.write(b"more")
        self.assertEqual(self.read_all(), self.data[:self.SYNCED] + b"more")

    def test_new_size_with_the_old_bytes(self):
        """The size the append made reached the disk, its bytes did not: the
        block is the fsynced one cut short of its new length."""
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644)
        self.append(fd, self.SYNCED, True)
        backing = self.backing()
        old = self.stored(backing, 1)
        self.append(fd, self.SYNCED + 300, False)
        os.close(fd)
        self.e.assert_umount(self.m)
        with open(backing, "r+b") as f:
            f.seek(HDR + CBLOCK)
            f.write(old)  # old bytes, new (longer) size: the tag is in the wrong place
        self.remount_and_unlock()
        self.assertEqual(self.read_all(), self.data[:self.SYNCED])

    def test_size_no_file_has(self):
        """An append into a new block cut inside its overhead: the size is one no
        file has; the fsynced block is kept and the cut block goes."""
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644)
        self.append(fd, self.SYNCED, True)
        backing = self.backing()
        self.append(fd, 2 * BLOCK + 500, False)
        os.close(fd)
        self.e.assert_umount(self.m)
        with open(backing, "r+b") as f:
            f.truncate(HDR + 2 * CBLOCK + 20)
        self.remount_and_unlock()
        self.assertEqual(self.read_all(), self.data[:self.SYNCED])

    def test_later_fsync_moves_the_record(self):
        """Two fsyncs in the same block: the second one's bytes are put back."""
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644)
        self.append(fd, self.SYNCED, True)
        self.append(fd, self.SYNCED + 200, True)
        backing = self.backing()
        old = self.stored(backing, 1)
        self.append(fd, self.SYNCED + 900, False)
        os.close(fd)
        self.e.assert_umount(self.m)
        self.tear(backing, 1, old)
        self.remount_and_unlock()
        self.assertEqual(self.read_all(), self.data[:self.SYNCED + 200])

    def test_untorn_append_is_kept(self):
        """A record is used only when the stored block fails: an append that
        reached the disk whole is kept, not cut back to the fsync."""
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644)
        self.append(fd, self.SYNCED, True)
        self.append(fd, 2 * BLOCK + 77, False)
        os.close(fd)
        self.remount_and_unlock()
        self.assertEqual(self.read_all(), self.data[:2 * BLOCK + 77])
        self.assertNotIn("tail record", self.m.read_log())

    def test_hole_punched_since_is_kept(self):
        """fsync at 5103 bytes, then cut to 100 and written past 3 blocks: block 1
        is a hole now, which is no tear; nothing is put back (test_stress found it)."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        self.append(fd, self.SYNCED, True)
        os.ftruncate(fd, 100)
        os.pwrite(fd, b"end", 3 * BLOCK)
        os.close(fd)
        want = self.data[:100] + bytes(3 * BLOCK - 100) + b"end"
        self.remount_and_unlock()
        self.assertEqual(os.stat(self.path).st_size, len(want))
        self.assertEqual(self.read_all(), want)
        self.assertNotIn("tail record", self.m.read_log())

    def test_no_record_at_a_block_boundary(self):
        """An fsync at a whole number of blocks drops the record: damage to a
        block before it is reported (EIO), never rolled back to an older record."""
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644)
        self.append(fd, self.SYNCED, True)
        self.append(fd, 2 * BLOCK, True)
        os.close(fd)
        backing = self.backing()
        self.assertNotIn("user.sfs.tail", os.listxattr(backing))
        self.e.assert_umount(self.m)
        with open(backing, "r+b") as f:
            f.seek(HDR + CBLOCK + 100)
            b = f.read(1)
            f.seek(HDR + CBLOCK + 100)
            f.write(bytes([b[0] ^ 1]))
        self.remount_and_unlock()
        with self.assertRaises(OSError) as cm:
            self.read_all()
        self.assertEqual(cm.exception.errno, errno.EIO)
        self.assertEqual(os.stat(self.path).st_size, 2 * BLOCK)

    def test_record_of_another_file_is_not_used(self):
        """A record copied from another file (another id) opens under no block of
        this one: the tear stays EIO, reported, nothing put back."""
        other = os.path.join(self.m.sdir(self.sid), "other.log")
        with open(other, "wb") as f:
            f.write(self.data[:self.SYNCED])
            f.flush()
            os.fsync(f.fileno())
        other_backing = sfs.backing_of(self.e.store, self.sid, other)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644)
        self.append(fd, self.SYNCED, True)
        backing = self.backing()
        old = self.stored(backing, 1)
        self.append(fd, 6000, False)
        os.close(fd)
        self.e.assert_umount(self.m)
        os.setxattr(backing, "user.sfs.tail", os.getxattr(other_backing, "user.sfs.tail"))
        self.tear(backing, 1, old)
        self.remount_and_unlock()
        with self.assertRaises(OSError) as cm:
            self.read_all()
        self.assertEqual(cm.exception.errno, errno.EIO)

    def test_record_in_the_store(self):
        """What the record holds is the stored block, sealed: never plaintext."""
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644)
        self.append(fd, self.SYNCED, True)
        os.close(fd)
        backing = self.backing()
        rec = os.getxattr(backing, "user.sfs.tail")
        self.assertEqual(rec[0], 1)
        self.assertEqual(int.from_bytes(rec[1:9], "little"), 1)
        self.assertEqual(rec[9:], self.stored(backing, 1))
        self.assertNotIn(self.data[BLOCK:BLOCK + 32], rec)

    def test_large_tail_goes_to_a_tail_file(self):
        """A last block of 4,050 bytes is too large for one ext4 attribute block:
        the record goes to the session's tail file, two fsyncs in turn use both
        of its slots, and the second one's bytes are put back."""
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644)
        self.append(fd, BLOCK + 4000, True)
        self.append(fd, BLOCK + 4050, True)
        backing = self.backing()
        rec = os.getxattr(backing, "user.sfs.tail")
        if rec[0] != 2:
            self.skipTest("the store's file system holds 4 KiB attributes: no tail file needed")
        old = self.stored(backing, 1)
        self.assertEqual(rec[12:36], old[:24])  # the pointer names the block's nonce
        self.append(fd, BLOCK + 4090, False)
        os.close(fd)
        self.assertEqual(len(self.tail_files()), 1)
        self.e.assert_umount(self.m)
        self.tear(backing, 1, old)
        self.remount_and_unlock()
        self.assertEqual(self.read_all(), self.data[:BLOCK + 4050])
        self.assertEqual(sorted(os.listdir(self.m.sdir(self.sid))),
                         ["app.log", "events.jsonl", "metadata.json"])

    def tail_files(self):
        tdir = os.path.join(self.e.store, "sessions", self.sid, "root", ".sfstail")
        try:
            return os.listdir(tdir)
        except FileNotFoundError:  # none yet, or the daemon just removed the last
            return []

    def test_tail_file_goes_with_its_file(self):
        """rm, rename over, truncate to 0, and unlink while open then close:
        no tail file stays behind."""
        d = self.m.sdir(self.sid)
        cases = ["rm", "over", "trunc", "open"]
        for c in cases:
            with open(os.path.join(d, c), "wb") as f:
                f.write(self.data[:BLOCK + 4050])
                f.flush()
                os.fsync(f.fileno())
        if not self.tail_files():
            self.skipTest("the store's file system holds 4 KiB attributes: no tail file needed")
        self.assertEqual(len(self.tail_files()), 4)
        os.unlink(os.path.join(d, "rm"))
        with open(os.path.join(d, "t"), "wb") as f:
            f.write(b"x")
        os.rename(os.path.join(d, "t"), os.path.join(d, "over"))
        os.truncate(os.path.join(d, "trunc"), 0)
        self.assertEqual(len(self.tail_files()), 1)
        fd = os.open(os.path.join(d, "open"), os.O_RDWR)
        os.unlink(os.path.join(d, "open"))
        os.write(fd, b"y" * 40)
        os.fsync(fd)  # a record of a file already unlinked...
        os.close(fd)  # ...goes at its last close (FUSE's RELEASE comes after close returns)
        deadline = time.monotonic() + 10
        while self.tail_files() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.tail_files(), [])

    def test_stale_slot_is_not_used(self):
        """A pointer whose slot holds another block (its nonce differs) is not used."""
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644)
        self.append(fd, BLOCK + 4050, True)
        backing = self.backing()
        rec = bytearray(os.getxattr(backing, "user.sfs.tail"))
        if rec[0] != 2:
            self.skipTest("the store's file system holds 4 KiB attributes: no tail file needed")
        old = self.stored(backing, 1)
        self.append(fd, BLOCK + 4090, False)
        os.close(fd)
        self.e.assert_umount(self.m)
        rec[20] ^= 1
        os.setxattr(backing, "user.sfs.tail", bytes(rec))
        self.tear(backing, 1, old)
        self.remount_and_unlock()
        with self.assertRaises(OSError) as cm:
            self.read_all()
        self.assertEqual(cm.exception.errno, errno.EIO)


class HeaderlessFileTest(unittest.TestCase):
    """A file created right before a power cut: the rename that published its
    name is journaled metadata and survives; its 80-byte header is data, still
    in the page cache, and does not. The name then has an empty backing file
    (tests/powercut/run's `list` check found it). It comes back as an empty
    file, mode 0600, logged, whether found by lookup or by a listing."""

    def setUp(self):
        self.e = sfs.Env()
        self.addCleanup(self.e.cleanup)
        self.m = self.e.mount(foreground=True)
        self.sid = self.e.new(self.m)

    def empty_backing(self, name):
        return sfs.backing_of(self.e.store, self.sid, os.path.join(self.m.sdir(self.sid), name))

    def test_lookup_and_listing(self):
        d = self.m.sdir(self.sid)
        for name in ["by-lookup", "by-listing"]:
            sfs.write_file(os.path.join(d, name), b"never fsynced")
        backings = [self.empty_backing(n) for n in ["by-lookup", "by-listing"]]
        self.e.assert_umount(self.m)
        for b in backings:
            os.truncate(b, 0)
        self.m = self.e.remount(self.m)
        self.e.unlock(self.m, self.sid)
        d = self.m.sdir(self.sid)
        st = os.stat(os.path.join(d, "by-lookup"))
        self.assertEqual((st.st_size, st.st_mode & 0o7777), (0, 0o600))
        listed = {n: os.lstat(os.path.join(d, n)) for n in os.listdir(d)}
        self.assertEqual(listed["by-listing"].st_size, 0)
        for name in ["by-lookup", "by-listing"]:
            self.assertEqual(sfs.read_file(os.path.join(d, name)), b"")
            with open(os.path.join(d, name), "ab") as f:
                f.write(b"again")
            self.assertEqual(sfs.read_file(os.path.join(d, name)), b"again")
        self.assertEqual(self.m.read_log().count("had no header"), 2)
        # and it stays a file after a remount: the header written is a real one
        self.m = self.e.remount(self.m)
        self.e.unlock(self.m, self.sid)
        self.assertEqual(sfs.read_file(os.path.join(self.m.sdir(self.sid), "by-lookup")),
                         b"again")


class TornTailXChaChaTest(TornTailTest):
    """The same in a store whose sessions use XChaCha20-Poly1305."""
    CIPHER = "xchacha20poly1305"


if __name__ == "__main__":
    sfs.main()
