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



class RequestCheckTest(unittest.TestCase):
    """What the daemon answers a request that lacks what its op takes, or names
    no session (doc/control.md, "Requests"): each request on its own open of
    the control file, the response's code and text checked. Pins the checks
    fs/ctl.c makes from lib/proto.h before a handler runs."""

    INVALID = ("invalid", "invalid request")
    NOSUCH = ("no-such-session", "no such session")

    @classmethod
    def setUpClass(cls):
        cls.e = sfs.Env()
        cls.m = cls.e.mount()
        cls.sid = cls.e.new(cls.m)
        cls.e.lock(cls.m, cls.sid)

    @classmethod
    def tearDownClass(cls):
        cls.e.cleanup()

    def ask(self, req):
        fd = os.open(os.path.join(self.m.mnt, ".sessionfs"), os.O_RDWR)
        try:
            data = req if isinstance(req, bytes) else json.dumps(req).encode()
            self.assertEqual(os.write(fd, data), len(data))
            return json.loads(os.read(fd, 1 << 20))
        finally:
            os.close(fd)

    def expect(self, req, want):
        resp = self.ask(req)
        self.assertEqual((resp.get("ok"), resp.get("code"), resp.get("error")),
                         (False,) + want, req)

    def test_not_a_request(self):
        for req in (b"[]", b'"list"', b"{", {}, {"op": 5}, {"op": None}, {"op": "nope"},
                    {"op": "LIST"}, {"session": self.sid}):
            self.expect(req, self.INVALID)

    def test_missing_or_wrong_members(self):
        sid = self.sid
        for req in ({"op": "new"}, {"op": "new", "password": ""},
                    {"op": "new", "password": 5}, {"op": "new", "password": "p", "id": "bad"},
                    {"op": "unlock"}, {"op": "unlock", "session": sid},
                    {"op": "unlock", "password": "p"},
                    {"op": "unlock", "session": 7, "password": "p"},
                    {"op": "lock"}, {"op": "lock", "session": ["x"]},
                    {"op": "passwd", "session": sid, "password": "p"},
                    {"op": "passwd", "session": sid, "password": "p", "new_password": ""},
                    {"op": "passwd", "session": sid, "new_password": "n"},
                    {"op": "passwd", "password": "p", "new_password": "n"},
                    {"op": "delete"}, {"op": "delete", "session": False}):
            self.expect(req, self.INVALID)

    def test_no_such_session(self):
        for sid in ("INC-0000", "x", "../sessions", "INC-ABCD", ""):
            self.expect({"op": "unlock", "session": sid, "password": "p"}, self.NOSUCH)
            self.expect({"op": "unlock", "session": sid, "password": ""}, self.NOSUCH)
            self.expect({"op": "lock", "session": sid}, self.NOSUCH)
            self.expect({"op": "passwd", "session": sid, "password": "p",
                         "new_password": "n"}, self.NOSUCH)
            self.expect({"op": "delete", "session": sid}, self.NOSUCH)

    def test_wrong_password_and_the_rest(self):
        self.expect({"op": "unlock", "session": self.sid, "password": "wrong"},
                    ("wrong-password", "wrong password"))
        resp = self.ask({"op": "hello", "ignored": 1})
        self.assertIs(resp.get("ok"), True)
        self.assertEqual(resp.get("store"), self.m.store)
        self.assertEqual(self.ask({"op": "lock", "session": self.sid}),
                         {"ok": True, "open_files": 0})
        resp = self.ask({"op": "lock_all", "session": 5})
        self.assertEqual((resp.get("ok"), resp.get("open_files")), (True, 0))


if __name__ == "__main__":
    sfs.main()
