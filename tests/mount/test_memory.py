"""After lock, no plaintext stays in the daemon's memory, and the buffers
that carry it are kept out of core dumps.

Each test puts a distinct random marker (64 hex characters) through one path
that carries plaintext in the daemon: write(2) of an ordinary file (one big
write full of markers, and small unaligned ones that merge with stored
blocks), read(2) of it by a daemon that never saw it written, an events.jsonl
line (complete, and an unterminated tail held open across the lock), a
metadata.json document (committed, and one still collecting in an open file),
and a user.* extended attribute. Then it locks the session and reads the
daemon's whole memory through /proc/PID/mem (as root can): the marker must
be found nowhere, not even half of it. The session id, which the daemon keeps, must be found: the
scan itself works.
"""
import errno
import json
import os
import re
import unittest

import sfs

PAGE = os.sysconf("SC_PAGE_SIZE")
CHUNK = 16 << 20
# Mappings larger than this are not read: ASan's shadow memory (terabytes of
# reserve). No buffer of the daemon is anywhere near as large.
SKIP_ABOVE = 1 << 30


def marker():
    return os.urandom(32).hex().encode()


def mappings(pid):
    """[(start, end, perms, flags, name)] of @pid, VmFlags from smaps."""
    out = []
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$", line)
            if m:
                out.append([int(m.group(1), 16), int(m.group(2), 16), m.group(3), "",
                            m.group(4)])
            elif line.startswith("VmFlags:") and out:
                out[-1][3] = line.split(":", 1)[1].strip()
    return [tuple(x) for x in out]


def scan(pid, needles):
    """{needle: [(mapping name, address)]} of every occurrence in @pid's memory."""
    found = {n: [] for n in needles}
    longest = max(len(n) for n in needles)
    fd = os.open("/proc/%d/mem" % pid, os.O_RDONLY)
    try:
        for start, end, perms, _flags, name in mappings(pid):
            if name in ("[vvar]", "[vsyscall]") or end - start > SKIP_ABOVE:
                continue
            pos, tail = start, b""
            while pos < end:
                try:
                    data = os.pread(fd, min(CHUNK, end - pos), pos)
                except OSError:
                    data = b""
                if not data:
                    break
                buf = tail + data
                base = pos - len(tail)
                for n in needles:
                    i = buf.find(n)
                    while i >= 0:
                        found[n].append((name or perms, base + i))
                        i = buf.find(n, i + 1)
                tail = buf[-(longest - 1):]
                pos += len(data)
    finally:
        os.close(fd)
    # a needle across the overlap of two chunks is counted twice: keep one
    return {n: sorted(set(v)) for n, v in found.items()}


def drop_cache(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


class MemoryTest(unittest.TestCase):
    OPTS = None

    def setUp(self):
        if sfs.WRAPPER:
            self.skipTest("the daemon runs under a wrapper: its pid is not the daemon's")
        self.e = sfs.Env()
        self.addCleanup(self.e.cleanup)
        self.m = self.e.mount(foreground=True, opts=self.OPTS)
        self.sid = self.e.new(self.m)
        self.d = self.m.sdir(self.sid)
        self.fds = []
        self.addCleanup(self.close_fds)

    def close_fds(self):
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass

    def lock(self):
        """Lock through the control file from this process: sessionctl would be
        a fork, and the exec closes this process's descriptors in the child,
        which flushes (commits) what the special files still hold."""
        fd = os.open(os.path.join(self.m.mnt, ".sessionfs"), os.O_RDWR)
        try:
            os.write(fd, json.dumps({"op": "lock", "session": self.sid}).encode())
            resp = json.loads(os.pread(fd, 65536, 0))
        finally:
            os.close(fd)
        self.assertTrue(resp.get("ok"), resp)

    def lock_and_scan(self, markers):
        """Lock, then assert no marker in the daemon's memory: not even half of
        one (malloc reuses the first 16 bytes of a freed block for its lists,
        so an unwiped block keeps only the rest of what it held)."""
        self.lock()
        sid = self.sid.encode()
        halves = {what: (m[:32], m[32:]) for what, m in markers.items()}
        found = scan(self.m.proc.pid, [h for hs in halves.values() for h in hs] + [sid])
        self.assertTrue(found[sid], "the scan found not even the session id: it reads nothing")
        left = {what: found[a] + found[b] for what, (a, b) in halves.items()
                if found[a] or found[b]}
        self.assertEqual(left, {}, "plaintext left in the daemon's memory after lock "
                         "(path: [(mapping, address)]): %s" % {
                             k: (len(v), v[:5]) for k, v in left.items()})

    def test_write_and_read(self):
        big, small, merged = marker(), marker(), marker()
        p = os.path.join(self.d, "data.txt")
        # one 1 MiB write full of markers, through write(2)
        line = big + b"\n"
        data = line * ((1 << 20) // len(line))
        fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            self.assertEqual(os.write(fd, data), len(data))
            # small writes: at the end, and inside stored blocks (merged with them)
            for i in range(50):
                os.write(fd, small + b"\n")
            for off in (100, 5000, 70001):
                os.pwrite(fd, merged, off)
        finally:
            os.close(fd)
        # read it back through the daemon, whole and in unaligned pieces
        drop_cache(p)
        with open(p, "rb") as f:
            got = f.read()
        self.assertIn(big, got)
        fd = os.open(p, os.O_RDONLY)
        try:
            for off in (0, 99, 4095, 70000, len(data) - 3):
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                os.pread(fd, 300, off)
        finally:
            os.close(fd)
        self.lock_and_scan({"1 MiB write": big, "small writes": small,
                            "unaligned writes": merged})

    def test_read_only(self):
        """A daemon that only read the file (remounted after it was written)."""
        secret = marker()
        p = os.path.join(self.d, "old.txt")
        sfs.write_file(p, (secret + b"\n") * 5000)
        self.m = self.e.remount(self.m)
        self.e.unlock(self.m, self.sid)
        with open(p, "rb") as f:
            self.assertIn(secret, f.read())
        fd = os.open(p, os.O_RDONLY)
        try:
            os.pread(fd, 10, 4090)  # a read across a block boundary
        finally:
            os.close(fd)
        self.lock_and_scan({"read": secret})

    def test_session_files(self):
        ev, tail, meta, pending = marker(), marker(), marker(), marker()
        events = os.path.join(self.d, "events.jsonl")
        with open(events, "ab") as f:
            for i in range(20):
                f.write(b'{"type":"note","text":"%s"}\n' % ev)
                f.flush()

        with open(events, "rb") as f:
            self.assertIn(ev, f.read())
        # an unterminated line waits in its open file, across the lock
        fd = os.open(events, os.O_WRONLY | os.O_APPEND)
        self.fds.append(fd)
        os.write(fd, b'{"type":"note","text":"%s"' % tail)
        # metadata.json: a committed document, and one still collecting
        mp = os.path.join(self.d, "metadata.json")
        doc = json.loads(sfs.read_file(mp))
        doc["secret"] = meta.decode()
        sfs.write_file(mp, json.dumps(doc))
        with open(mp, "rb") as f:
            self.assertIn(meta, f.read())
        fd = os.open(mp, os.O_WRONLY | os.O_TRUNC)
        self.fds.append(fd)
        doc["secret"] = pending.decode()
        os.write(fd, json.dumps(doc).encode())
        self.lock_and_scan({"events line": ev, "events tail": tail, "metadata.json": meta,
                            "metadata.json unsaved": pending})
        # What those files held is gone: after a new unlock they fail, and
        # nothing of it reaches the store.
        self.e.unlock(self.m, self.sid)
        efd, mfd = self.fds
        with self.assertRaises(OSError) as cm:
            os.write(efd, b'}\n')
        self.assertEqual(cm.exception.errno, errno.EIO)
        for fd in (efd, mfd):
            self.fds.remove(fd)
            with self.assertRaises(OSError) as cm:
                os.close(fd)
            self.assertEqual(cm.exception.errno, errno.EIO, "close of %s" % (
                "events.jsonl" if fd == efd else "metadata.json"))
        self.assertNotIn(tail, sfs.read_file(events))
        got = json.loads(sfs.read_file(mp))
        self.assertEqual(got["secret"], meta.decode())
        with open(events, "ab") as f:  # a new open appends as ever
            f.write(b'{"type":"after"}\n')
        self.assertTrue(sfs.read_file(events).endswith(b'{"type":"after"}\n'))

    def test_long_documents(self):
        """Long documents, checked and parsed as they are stored, then lock at once:
        what parsing them left in the stack and the heap is gone."""
        meta, ev = marker(), marker()
        mp = os.path.join(self.d, "metadata.json")
        doc = json.loads(sfs.read_file(mp))
        doc["secret"] = " ".join([meta.decode()] * 100)
        sfs.write_file(mp, json.dumps(doc))
        with open(os.path.join(self.d, "events.jsonl"), "ab") as f:
            f.write(b'{"type":"note","text":"%s"}\n' % b" ".join([ev] * 100))
        self.lock_and_scan({"metadata.json": meta, "events line": ev})

    def test_buffers_not_dumped(self):
        """The daemon's request buffers (1 MiB and more) are marked MADV_DONTDUMP."""
        p = os.path.join(self.d, "f")
        sfs.write_file(p, os.urandom(1 << 20))  # a request of 1 MiB: every buffer is used
        big = [(s, e, fl) for s, e, _p, fl, _n in mappings(self.m.proc.pid)
               if e - s >= (1 << 20) and e - s <= SKIP_ABOVE and "dd" in fl.split()]
        self.assertTrue(big, "no mapping of 1 MiB or more is excluded from core dumps")


class XattrMemoryTest(MemoryTest):
    OPTS = "xattr"

    def test_xattr(self):
        value = marker()
        p = os.path.join(self.d, "x")
        sfs.write_file(p, b"")
        os.setxattr(p, "user.secret", value)
        self.assertEqual(os.getxattr(p, "user.secret"), value)
        self.assertIn("user.secret", os.listxattr(p))
        self.lock_and_scan({"xattr value": value})


if __name__ == "__main__":
    sfs.main()
