"""The control file with large responses: every offset reads one byte, however
the client reads (doc/control.md).

The kernel splits a large direct read into READs of at most max_pages pages
(128 KiB on older kernels, 1 MiB where libfuse can raise it), which may come in
any order; each carries its own offset. A `list` of 5,000 sessions is a
response of about 260 KB."""
import json
import os
import shutil
import unittest

import sfs

SESSIONS = 5000
KIB = 1024


class LargeResponseTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # One real session, then 4,999 copies of its container made in the
        # store, as an import does (cp into STORE/sessions/): no Argon2 each.
        cls.e = sfs.Env()
        cls.m = cls.e.mount()
        cls.sid = cls.e.new(cls.m)
        cls.e.lock(cls.m, cls.sid)
        src = os.path.join(cls.e.store, "sessions", cls.sid)
        cls.ids = {cls.sid}
        for i in range(SESSIONS - 1):
            sid = "INC-%05x" % (0x10000 + i)
            shutil.copytree(src, os.path.join(cls.e.store, "sessions", sid))
            cls.ids.add(sid)

    @classmethod
    def tearDownClass(cls):
        cls.e.cleanup()

    def ctl_open(self):
        fd = os.open(os.path.join(self.m.mnt, ".sessionfs"), os.O_RDWR)
        self.addCleanup(os.close, fd)
        return fd

    def request(self, fd):
        req = b'{"op":"list"}'
        self.assertEqual(os.write(fd, req), len(req))
        return len(req)

    def check(self, data, what):
        try:
            resp = json.loads(data)
        except ValueError as ex:
            self.fail("%s: not one JSON document (%s): %r ... %r"
                      % (what, ex, data[:80], data[-80:]))
        self.assertIs(resp.get("ok"), True, what)
        self.assertEqual({s["id"] for s in resp["sessions"]}, self.ids, what)
        return resp

    def read_after_write(self):
        fd = self.ctl_open()
        self.request(fd)
        data = b""
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                return data
            data += b

    def test_read_after_write(self):
        data = self.read_after_write()
        self.assertGreater(len(data), 200 * KIB)
        self.check(data, "read(2) after the write")

    def test_one_large_pread_at_zero(self):
        fd = self.ctl_open()
        n = self.request(fd)
        data = os.pread(fd, 16 << 20, 0)
        self.check(data, "one pread(2) at 0")
        # the request's place reads as blanks, then the response
        self.assertEqual(data[:n], b" " * n)
        self.assertEqual(data[n:], self.read_after_write())

    def test_preads_as_the_kernel_splits_them(self):
        """The READs a 128 KiB split makes, sent one by one: each at its own
        offset from 0, in order and backwards. Before the fix, every READ past
        the request's length was taken as relative to the write's end."""
        whole = self.read_after_write()
        for chunk in (128 * KIB, 64 * KIB, 4096):
            fd = self.ctl_open()
            n = self.request(fd)
            total = n + len(whole)
            offsets = list(range(0, total, chunk))
            for order in (offsets, offsets[::-1]):
                parts = {off: os.pread(fd, chunk, off) for off in order}
                data = b"".join(parts[off] for off in offsets)
                self.check(data, "preads of %d bytes" % chunk)
                self.assertEqual(data, b" " * n + whole, "chunk %d" % chunk)
            self.assertEqual(os.pread(fd, chunk, total), b"")

    def test_sessionctl_list_json_through_jq(self):
        if not shutil.which("jq"):
            self.skipTest("no jq")
        r = sfs.run(["sh", "-c", '"$0" list --json "$1" | jq length', sfs.SESSIONCTL,
                     self.m.mnt])
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out.strip(), str(SESSIONS), r)
        r = sfs.run([sfs.SESSIONCTL, "list", self.m.mnt])
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(len(r.out.splitlines()), SESSIONS + 1)


if __name__ == "__main__":
    sfs.main()
