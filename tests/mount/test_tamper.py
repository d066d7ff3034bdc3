"""Tampering with the store is detected: EIO and a log line, never wrong bytes."""
import errno
import json
import os
import unittest

import sfs

HDR = 80        # node header (lib/format.h SFS_HDR_BYTES)
BLOCK = 4096    # plaintext block
OVERHEAD = 40   # nonce 24 + tag 16 per block
NONCE = 24


def backing_size(plain):
    full, rest = divmod(plain, BLOCK)
    return HDR + full * (BLOCK + OVERHEAD) + (rest + OVERHEAD if rest else 0)


class TamperTest(unittest.TestCase):
    VICTIM_SIZE = 3 * BLOCK + 1234  # a size no other file in the session has
    CIPHER = None  # mkfs.sessionfs's default: aes256gcm where the CPU has AES-NI

    def setUp(self):
        self.e = sfs.Env(cipher=self.CIPHER)
        self.addCleanup(self.e.cleanup)
        self.m = self.e.mount(foreground=True)
        self.sid = self.e.new(self.m)
        d = self.m.sdir(self.sid)
        self.victim = os.urandom(self.VICTIM_SIZE)
        sfs.write_file(os.path.join(d, "victim.bin"), self.victim)
        sfs.write_file(os.path.join(d, "bystander.txt"), "still fine\n")

    def backing(self, plain_size):
        """The one backing file of that plaintext size in the session's root."""
        root = os.path.join(self.e.store, "sessions", self.sid, "root")
        want = backing_size(plain_size)
        hits = [os.path.join(root, n) for n in os.listdir(root)
                if os.path.isfile(os.path.join(root, n))
                and os.path.getsize(os.path.join(root, n)) == want]
        self.assertEqual(len(hits), 1, "backing files of %d bytes in %s: %r (all: %r)"
                         % (want, root, hits, {n: os.path.getsize(os.path.join(root, n))
                                               for n in os.listdir(root)}))
        return hits[0]

    def flip(self, path, offset):
        self.tampered = path
        with open(path, "r+b") as f:
            f.seek(offset)
            b = f.read(1)
            f.seek(offset)
            f.write(bytes([b[0] ^ 0x01]))

    def check_detected(self, block_no):
        d = self.m.sdir(self.sid)
        victim = os.path.join(d, "victim.bin")
        log_before = len(self.m.read_log())
        r = sfs.run(["cat", victim])
        self.assertNotEqual(r.rc, 0, "cat of a tampered file succeeded")
        self.assertIn("Input/output error", r.err)
        # Python read: EIO, at the tampered block...
        with open(victim, "rb") as f:
            with self.assertRaises(OSError) as cm:
                f.read()
        self.assertEqual(cm.exception.errno, errno.EIO)
        fd = os.open(victim, os.O_RDONLY)
        try:
            with self.assertRaises(OSError) as cm:
                os.pread(fd, 100, block_no * BLOCK + 5)
            self.assertEqual(cm.exception.errno, errno.EIO)
            # ...while intact blocks of it still read correctly (never wrong bytes)
            other = 0 if block_no != 0 else 1
            try:
                got = os.pread(fd, 100, other * BLOCK)
                self.assertEqual(got, self.victim[other * BLOCK:other * BLOCK + 100])
            except OSError as ex:
                # refusing the whole file is acceptable; wrong bytes are not
                self.assertEqual(ex.errno, errno.EIO)
        finally:
            os.close(fd)
        # other files are unaffected
        self.assertEqual(sfs.read_file(os.path.join(d, "bystander.txt")), b"still fine\n")
        self.assertEqual(sorted(os.listdir(d)),
                         ["bystander.txt", "events.jsonl", "metadata.json", "victim.bin"])
        log = self.m.read_log()[log_before:].lower()
        self.assertTrue(any(w in log for w in ("block", "corrupt", "authentic")),
                        "daemon log does not name the problem:\n" + self.m.read_log())
        # ...and which file: by its backing name in the store or its name in the mount
        self.assertTrue(os.path.basename(self.tampered).lower() in log or "victim.bin" in log,
                        "daemon log does not say which file:\n" + self.m.read_log())
        if os.environ.get("SFS_SHOW_LOG"):
            print(self.m.read_log())

    def test_flip_while_locked(self):
        self.e.lock(self.m, self.sid)
        self.flip(self.backing(self.VICTIM_SIZE), HDR + NONCE + 10)
        self.e.unlock(self.m, self.sid)
        self.check_detected(0)

    def test_flip_while_unmounted(self):
        self.e.assert_umount(self.m)
        # block 2's ciphertext
        self.flip(self.backing(self.VICTIM_SIZE), HDR + 2 * (BLOCK + OVERHEAD) + NONCE + 10)
        self.m = self.e.mount(foreground=True, mnt=self.m.mnt)
        self.e.unlock(self.m, self.sid)
        self.check_detected(2)

    def test_flip_tag_of_last_block(self):
        self.e.lock(self.m, self.sid)
        path = self.backing(self.VICTIM_SIZE)
        self.flip(path, os.path.getsize(path) - 1)  # last byte of the last block's tag
        self.e.unlock(self.m, self.sid)
        self.check_detected(3)

    def test_swapped_blocks(self):
        self.e.lock(self.m, self.sid)
        path = self.tampered = self.backing(self.VICTIM_SIZE)
        cb = BLOCK + OVERHEAD
        with open(path, "r+b") as f:
            f.seek(HDR)
            b0 = f.read(cb)
            b1 = f.read(cb)
            f.seek(HDR)
            f.write(b1 + b0)
        self.e.unlock(self.m, self.sid)
        self.check_detected(0)

    def test_truncated_mid_block(self):
        self.e.lock(self.m, self.sid)
        path = self.backing(self.VICTIM_SIZE)
        os.truncate(path, HDR + (BLOCK + OVERHEAD) + 500)  # cut inside block 1
        self.e.unlock(self.m, self.sid)
        d = self.m.sdir(self.sid)
        r = sfs.run(["cat", os.path.join(d, "victim.bin")])
        self.assertNotEqual(r.rc, 0, "cat of a cut file succeeded")
        self.assertIn("Input/output error", r.err)
        with open(os.path.join(d, "victim.bin"), "rb") as f:
            with self.assertRaises(OSError) as cm:
                f.read()
        self.assertEqual(cm.exception.errno, errno.EIO)
        self.assertEqual(sfs.read_file(os.path.join(d, "bystander.txt")), b"still fine\n")

    def test_flip_in_a_streamed_file(self):
        """A file read start to end comes as 128 KiB readahead READs, two at once, each opened
        on its own thread (fs/loop.c, sfs_op_read): a flipped block among them is still EIO,
        and what comes before it reads right."""
        d = self.m.sdir(self.sid)
        size = 3 * 1024 * 1024 + 777  # no other file in the session has it
        data = os.urandom(size)
        sfs.write_file(os.path.join(d, "stream.bin"), data)
        bad = 300  # block 300: inside the tenth 128 KiB READ
        self.e.lock(self.m, self.sid)  # drops the kernel's pages of it
        self.flip(self.backing(size), HDR + bad * (BLOCK + OVERHEAD) + NONCE + 10)
        self.e.unlock(self.m, self.sid)
        path = os.path.join(d, "stream.bin")
        r = sfs.run(["cat", path])
        self.assertNotEqual(r.rc, 0, "cat of a tampered file succeeded")
        self.assertIn("Input/output error", r.err)
        # Read in 1 MiB steps as dd does: the first MiB is right, the one holding block 300
        # is EIO, the ones after it right again.
        fd = os.open(path, os.O_RDONLY)
        try:
            for mib in range(4):
                off = mib * 1024 * 1024
                if off <= bad * BLOCK < off + 1024 * 1024:
                    # Pages before the bad READ's may come first (a short read): right bytes.
                    pos = off
                    with self.assertRaises(OSError) as cm:
                        while pos < off + 1024 * 1024:
                            got = os.pread(fd, off + 1024 * 1024 - pos, pos)
                            self.assertTrue(got, "EOF at %d" % pos)
                            self.assertEqual(got, data[pos:pos + len(got)])
                            pos += len(got)
                    self.assertEqual(cm.exception.errno, errno.EIO)
                    self.assertLessEqual(pos, bad * BLOCK)
                else:
                    self.assertEqual(os.pread(fd, 1024 * 1024, off), data[off:off + 1024 * 1024])
        finally:
            os.close(fd)
        log = self.m.read_log().lower()
        self.assertTrue(os.path.basename(self.tampered).lower() in log or "stream.bin" in log,
                        "daemon log does not say which file:\n" + self.m.read_log())

    def backing_of(self, name):
        """The backing file of NAME in the session's root (the mount keeps backing inode numbers)."""
        return sfs.backing_of(self.e.store, self.sid, os.path.join(self.m.sdir(self.sid), name))

    def test_file_id_poisoning(self):
        """X's header copied over an empty file E: E's content must not be sealed under X's id.

        Otherwise X's blocks would later read as E's content (the class the 2017 gocryptfs
        audit reported). E gets a fresh id at its first write, so a block of X moved into E
        is EIO, and so is one of E moved into X.
        """
        d = self.m.sdir(self.sid)
        sfs.write_file(os.path.join(d, "empty.bin"), b"")
        x_path = self.backing_of("victim.bin")
        e_path = self.tampered = self.backing_of("empty.bin")
        self.assertEqual(os.path.getsize(e_path), HDR)
        self.e.lock(self.m, self.sid)
        with open(x_path, "rb") as f:
            x_header = f.read(HDR)
        with open(e_path, "r+b") as f:
            f.write(x_header)
        self.e.unlock(self.m, self.sid)
        content = os.urandom(2 * BLOCK)
        sfs.write_file(os.path.join(d, "empty.bin"), content)
        self.assertEqual(sfs.read_file(os.path.join(d, "empty.bin")), content)
        self.e.lock(self.m, self.sid)
        cb = BLOCK + OVERHEAD
        with open(x_path, "rb") as f:
            f.seek(HDR)
            x_block0 = f.read(cb)
        with open(e_path, "r+b") as f:
            f.seek(HDR)
            e_block0 = f.read(cb)
            f.seek(HDR)
            f.write(x_block0)
        with open(x_path, "r+b") as f:
            f.seek(HDR + cb)
            f.write(e_block0)  # and E's block 0 in X's block 1
        self.e.unlock(self.m, self.sid)
        log_before = len(self.m.read_log())
        for name, off, foreign in (("empty.bin", 0, self.victim[:BLOCK]),
                                   ("victim.bin", BLOCK, content[:BLOCK])):
            fd = os.open(os.path.join(d, name), os.O_RDONLY)
            try:
                with self.assertRaises(OSError, msg="%s read another file's block" % name) as cm:
                    got = os.pread(fd, BLOCK, off)
                    self.assertFalse(got == foreign, "%s reads another file's bytes" % name)
                self.assertEqual(cm.exception.errno, errno.EIO)
            finally:
                os.close(fd)
        self.assertIn("corrupt", self.m.read_log()[log_before:].lower())
        with open(e_path, "rb") as f:
            self.assertNotEqual(f.read(HDR)[8:24], x_header[8:24], "E still has X's id")
        self.assertEqual(sfs.read_file(os.path.join(d, "bystander.txt")), b"still fine\n")


class EventsNotALogTest(unittest.TestCase):
    """Another file of the session copied over events.jsonl's backing file (by
    someone who can write the store) is damage: unlock leaves it untouched and
    says so, events.jsonl reads and appends as EIO, the rest of the session
    works. It is never turned into a log, whatever its lines are."""

    def setUp(self):
        self.e = sfs.Env()
        self.addCleanup(self.e.cleanup)
        self.m = self.e.mount(foreground=True)
        self.sid = self.e.new(self.m)
        self.d = self.m.sdir(self.sid)
        self.root = os.path.join(self.e.store, "sessions", self.sid, "root")

    def backing_of_kind(self, kind, size=None):
        """The one backing file in the session root with that node kind (clear
        header bytes 6..7) and, if given, that size."""
        hits = []
        for n in os.listdir(self.root):
            p = os.path.join(self.root, n)
            if not os.path.isfile(p) or n.startswith("."):
                continue
            with open(p, "rb") as f:
                hdr = f.read(8)
            if hdr[:4] == b"SFSF" and int.from_bytes(hdr[6:8], "little") == kind and (
                    size is None or os.path.getsize(p) == size):
                hits.append(p)
        self.assertEqual(len(hits), 1, hits)
        return hits[0]

    def copy_over_events(self, content):
        sfs.write_file(os.path.join(self.d, "notes.txt"), content)
        self.e.lock(self.m, self.sid)
        src = self.backing_of_kind(0, backing_size(len(content)))
        dst = self.backing_of_kind(1)
        with open(src, "rb") as f:
            data = f.read()
        with open(dst, "wb") as f:  # what cp SRC DST does
            f.write(data)
        return dst, data

    def check_refused(self, dst, data, content):
        log_before = len(self.m.read_log())
        r = self.e.unlock(self.m, self.sid)  # the session unlocks...
        # ...and sessionctl tells the user, not only the daemon's log
        self.assertRegex(r.err, r"warning: %s: events\.jsonl: not an event log" % self.sid, r)
        ev = os.path.join(self.d, "events.jsonl")
        with self.assertRaises(OSError) as cm:  # ...but its events.jsonl is damage
            sfs.read_file(ev)
        self.assertEqual(cm.exception.errno, errno.EIO)
        with self.assertRaises(OSError) as cm:
            with open(ev, "ab") as f:
                f.write(b'{"type":"note"}\n')
        self.assertEqual(cm.exception.errno, errno.EIO)
        r = sfs.run(["cat", ev])
        self.assertNotEqual(r.rc, 0)
        self.assertNotIn(content.strip(), r.out)
        # list shows the session damaged, naming the file
        row = [x for x in self.e.list(self.m) if x["id"] == self.sid][0]
        self.assertEqual([d["file"] for d in row.get("damaged", [])], ["events.jsonl"], row)
        self.assertIn("not an event log", row["damaged"][0]["what"])
        # the rest of the session is fine
        self.assertEqual(sfs.read_file(os.path.join(self.d, "notes.txt")), content.encode())
        self.assertEqual(json.loads(sfs.read_file(os.path.join(self.d, "metadata.json")))["id"],
                         self.sid)
        # the daemon says which file and what is wrong with it
        log = self.m.read_log()[log_before:]
        self.assertRegex(log, r"%s: events\.jsonl: not an event log" % self.sid, log)
        # and the file is left exactly as it was
        with open(dst, "rb") as f:
            self.assertEqual(f.read(), data)

    def test_not_json_over_events(self):
        content = "not json\n"
        dst, data = self.copy_over_events(content)
        self.check_refused(dst, data, content)
        # a second unlock does not take it either
        self.e.lock(self.m, self.sid)
        self.check_refused(dst, data, content)

    def test_json_lines_over_events(self):
        """Valid lines make no difference: the file is still not the session's log."""
        content = '{"type":"forged","text":"never logged"}\n'
        dst, data = self.copy_over_events(content)
        self.check_refused(dst, data, content)


class TamperXChaChaTest(TamperTest):
    """The same in a store whose sessions use XChaCha20-Poly1305 (version 1 key files)."""
    CIPHER = "xchacha20poly1305"


if __name__ == "__main__":
    sfs.main()
