"""user.* extended attributes (-o xattr): stored encrypted in the session's
root/.sfsx/, one blob per node; semantics of setxattr(2) and friends as on
ext4; gone with the node's last link; off by default (EOPNOTSUPP, and no
round trip per file for ls -l)."""
import ctypes
import errno
import json
import os
import re
import shutil
import stat
import threading
import time
import unittest

import sfs

LIBC = ctypes.CDLL(None, use_errno=True)
LIBC.getxattr.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
LIBC.getxattr.restype = ctypes.c_ssize_t
LIBC.listxattr.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
LIBC.listxattr.restype = ctypes.c_ssize_t


def raw_getxattr(path, name, size):
    """getxattr(2) with a buffer of @size bytes: (result, errno)."""
    buf = ctypes.create_string_buffer(max(size, 1))
    n = LIBC.getxattr(path.encode(), name.encode(), buf if size else None, size)
    return n, (ctypes.get_errno() if n < 0 else 0)


def raw_listxattr(path, size):
    buf = ctypes.create_string_buffer(max(size, 1))
    n = LIBC.listxattr(path.encode(), buf if size else None, size)
    return n, (ctypes.get_errno() if n < 0 else 0)


class XattrBase(unittest.TestCase):
    OPTS = "xattr"
    FOREGROUND = True

    def setUp(self):
        self.e = sfs.Env()
        self.addCleanup(self.e.cleanup)
        self.m = self.e.mount(foreground=self.FOREGROUND, opts=self.OPTS)
        self.sid = self.e.new(self.m)
        self.d = self.m.sdir(self.sid)

    def tearDown(self):
        # The daemon must exit cleanly, and say nothing of a sanitizer (build-asan/).
        if self.m.mounted:
            self.e.assert_umount(self.m)
        self.e.assert_daemons_quiet()

    def p(self, *parts):
        return os.path.join(self.d, *parts)

    def root(self):
        return os.path.join(self.e.store, "sessions", self.sid, "root")

    def blobs(self):
        """Names of the blobs in the session's .sfsx (none if it does not exist)."""
        x = os.path.join(self.root(), ".sfsx")
        return sorted(os.listdir(x)) if os.path.isdir(x) else []

    def assert_errno(self, err, fn, *args, **kw):
        with self.assertRaises(OSError) as cm:
            fn(*args, **kw)
        self.assertEqual(cm.exception.errno, err,
                         "%s%r: %s, want %s" % (fn.__name__, args, cm.exception,
                                                errno.errorcode[err]))


class XattrTest(XattrBase):
    def test_roundtrip_values(self):
        f = self.p("f")
        sfs.write_file(f, "content\n")
        self.assertEqual(os.listxattr(f), [])
        os.setxattr(f, "user.text", b"hello")
        os.setxattr(f, "user.binary", bytes(range(256)))
        os.setxattr(f, "user.empty", b"")
        big = os.urandom(65536)
        os.setxattr(f, "user.big", big)
        self.assertEqual(os.getxattr(f, "user.text"), b"hello")
        self.assertEqual(os.getxattr(f, "user.binary"), bytes(range(256)))
        self.assertEqual(os.getxattr(f, "user.empty"), b"")
        self.assertEqual(os.getxattr(f, "user.big"), big)
        self.assertEqual(os.listxattr(f), ["user.text", "user.binary", "user.empty", "user.big"])
        # Replaced in place; the content is untouched.
        os.setxattr(f, "user.text", b"bye")
        self.assertEqual(os.getxattr(f, "user.text"), b"bye")
        self.assertEqual(sfs.read_file(f), b"content\n")
        os.removexattr(f, "user.big")
        self.assertEqual(os.listxattr(f), ["user.text", "user.binary", "user.empty"])
        self.assert_errno(errno.ENODATA, os.getxattr, f, "user.big")
        self.assert_errno(errno.ENODATA, os.removexattr, f, "user.big")
        # The command-line tools.
        r = sfs.run(["setfattr", "-n", "user.cli", "-v", "from setfattr", f])
        self.assertEqual(r.rc, 0, r)
        r = sfs.run(["getfattr", "-n", "user.cli", "--only-values", f])
        self.assertEqual((r.rc, r.out), (0, "from setfattr"), r)
        r = sfs.run(["getfattr", "-d", f])
        self.assertEqual(r.rc, 0, r)
        self.assertIn('user.cli="from setfattr"', r.out)
        self.assertIn('user.text="bye"', r.out)
        r = sfs.run(["setfattr", "-x", "user.cli", f])
        self.assertEqual(r.rc, 0, r)
        r = sfs.run(["getfattr", "-n", "user.cli", f])
        self.assertNotEqual(r.rc, 0, r)
        self.assertIn("No such attribute", r.err)
        # The last one removed: so is the blob.
        for n in os.listxattr(f):
            os.removexattr(f, n)
        self.assertEqual(self.blobs(), [])

    def test_flags_and_limits(self):
        f = self.p("f")
        sfs.write_file(f, "x")
        os.setxattr(f, "user.a", b"1", os.XATTR_CREATE)
        self.assert_errno(errno.EEXIST, os.setxattr, f, "user.a", b"2", os.XATTR_CREATE)
        self.assert_errno(errno.ENODATA, os.setxattr, f, "user.b", b"2", os.XATTR_REPLACE)
        os.setxattr(f, "user.a", b"3", os.XATTR_REPLACE)
        self.assertEqual(os.getxattr(f, "user.a"), b"3")
        self.assertEqual(os.listxattr(f), ["user.a"])
        # Names: up to 255 bytes with the prefix (the kernel's limit), as ext4.
        longest = "user." + "n" * 250
        os.setxattr(f, longest, b"long")
        self.assertEqual(os.getxattr(f, longest), b"long")
        self.assert_errno(errno.ERANGE, os.setxattr, f, longest + "n", b"x")
        self.assert_errno(errno.EINVAL, os.setxattr, f, "user.", b"x")
        # Values: up to 64 KiB; a node holds at most 128 KiB in all: ENOSPC past it.
        self.assert_errno(errno.E2BIG, os.setxattr, f, "user.huge", b"x" * 65537)
        os.setxattr(f, "user.big1", b"1" * 65536)
        self.assert_errno(errno.ENOSPC, os.setxattr, f, "user.big2", b"2" * 65536)
        self.assertEqual(os.getxattr(f, "user.big1"), b"1" * 65536)
        # Size 0 asks the size; a buffer too small is ERANGE.
        self.assertEqual(raw_getxattr(f, "user.a", 0), (1, 0))
        self.assertEqual(raw_getxattr(f, "user.big1", 100), (-1, errno.ERANGE))
        self.assertEqual(raw_getxattr(f, "user.big1", 65536), (65536, 0))
        need = len("user.a\0") + len(longest) + 1 + len("user.big1\0")
        self.assertEqual(raw_listxattr(f, 0), (need, 0))
        self.assertEqual(raw_listxattr(f, need - 1), (-1, errno.ERANGE))
        self.assertEqual(raw_listxattr(f, need), (need, 0))

    def test_directories_and_session_root(self):
        os.mkdir(self.p("dir"))
        os.setxattr(self.p("dir"), "user.kind", b"directory")
        os.setxattr(self.d, "user.kind", b"session root")
        self.assertEqual(os.getxattr(self.p("dir"), "user.kind"), b"directory")
        self.assertEqual(os.getxattr(self.d, "user.kind"), b"session root")
        self.assertEqual(len(self.blobs()), 2)
        # .sfsx is internal: never listed, never reachable by name.
        self.assertNotIn(".sfsx", os.listdir(self.d))
        self.assertFalse(os.path.exists(self.p(".sfsx")))
        r = sfs.run(["ls", "-la", self.d])
        self.assertEqual(r.rc, 0, r)
        self.assertNotIn("sfsx", r.out)

    def test_symlinks_take_none(self):
        sfs.write_file(self.p("target"), "t")
        os.symlink("target", self.p("link"))
        self.assert_errno(errno.EPERM, os.setxattr, self.p("link"), "user.a", b"1",
                          0, follow_symlinks=False)
        self.assert_errno(errno.ENODATA, os.getxattr, self.p("link"), "user.a",
                          follow_symlinks=False)
        self.assertEqual(os.listxattr(self.p("link"), follow_symlinks=False), [])
        # Following the link reaches the target's.
        os.setxattr(self.p("link"), "user.a", b"via link")
        self.assertEqual(os.getxattr(self.p("target"), "user.a"), b"via link")

    def test_special_files(self):
        meta = self.p("metadata.json")
        # metadata.json is replaced by a new node at every write: it takes none.
        self.assert_errno(errno.EPERM, os.setxattr, meta, "user.a", b"1")
        self.assertEqual(os.listxattr(meta), [])
        ev = self.p("events.jsonl")
        os.setxattr(ev, "user.source", b"agent-7")
        with open(ev, "a") as f:
            f.write('{"type":"note"}\n')
        self.assertEqual(os.getxattr(ev, "user.source"), b"agent-7")

    def test_hard_links_share_and_rename_keeps(self):
        a, b = self.p("a"), self.p("b")
        sfs.write_file(a, "shared")
        os.link(a, b)
        os.setxattr(a, "user.tag", b"one node")
        self.assertEqual(os.getxattr(b, "user.tag"), b"one node")
        os.setxattr(b, "user.more", b"2")
        self.assertEqual(os.listxattr(a), ["user.tag", "user.more"])
        self.assertEqual(len(self.blobs()), 1)
        os.mkdir(self.p("sub"))
        os.rename(a, self.p("sub", "moved"))
        self.assertEqual(os.getxattr(self.p("sub", "moved"), "user.tag"), b"one node")
        # One link gone: the other keeps them.
        os.unlink(b)
        self.assertEqual(os.getxattr(self.p("sub", "moved"), "user.more"), b"2")
        self.assertEqual(len(self.blobs()), 1)
        # The last link gone: the blob goes.
        os.unlink(self.p("sub", "moved"))
        self.assertEqual(self.blobs(), [])

    def test_removed_with_the_node(self):
        # rmdir
        os.mkdir(self.p("dir"))
        os.setxattr(self.p("dir"), "user.a", b"1")
        self.assertEqual(len(self.blobs()), 1)
        os.rmdir(self.p("dir"))
        self.assertEqual(self.blobs(), [])
        # rename over a file: the file renamed over loses its; the moved one keeps its own.
        for n in ("src", "dst"):
            sfs.write_file(self.p(n), n)
            os.setxattr(self.p(n), "user.name", n.encode())
        self.assertEqual(len(self.blobs()), 2)
        os.rename(self.p("src"), self.p("dst"))
        self.assertEqual(os.getxattr(self.p("dst"), "user.name"), b"src")
        self.assertEqual(len(self.blobs()), 1)
        os.unlink(self.p("dst"))
        self.assertEqual(self.blobs(), [])
        # rename of a directory over an empty one.
        os.mkdir(self.p("d1"))
        os.mkdir(self.p("d2"))
        os.setxattr(self.p("d1"), "user.n", b"1")
        os.setxattr(self.p("d2"), "user.n", b"2")
        os.rename(self.p("d1"), self.p("d2"))
        self.assertEqual(os.getxattr(self.p("d2"), "user.n"), b"1")
        self.assertEqual(len(self.blobs()), 1)
        os.rmdir(self.p("d2"))
        self.assertEqual(self.blobs(), [])
        # A file unlinked while open keeps them until its last close, as on ext4.
        f = self.p("open")
        sfs.write_file(f, "still open")
        os.setxattr(f, "user.a", b"kept")
        fd = os.open(f, os.O_RDWR)
        try:
            os.unlink(f)
            self.assertEqual(os.getxattr(fd, "user.a"), b"kept")
            os.setxattr(fd, "user.b", b"new")
            self.assertEqual(os.listxattr(fd), ["user.a", "user.b"])
            self.assertEqual(len(self.blobs()), 1)
        finally:
            os.close(fd)
        deadline = time.monotonic() + 5
        while self.blobs() and time.monotonic() < deadline:
            time.sleep(0.05)  # release is asynchronous to close(2)
        self.assertEqual(self.blobs(), [])

    def header_id(self, name):
        """The node id (hex) in the header of NAME's backing file, found by inode number."""
        ino = os.stat(self.p(name)).st_ino
        for n in os.listdir(self.root()):
            path = os.path.join(self.root(), n)
            if os.lstat(path).st_ino == ino:
                with open(path, "rb") as f:
                    return f.read(24)[8:24].hex()
        self.fail("no backing file for " + name)

    def test_kept_across_id_renewal(self):
        """An empty file gets a fresh id before its first content and when cut to zero
        (doc/format.md, "File content"); its attributes, stored under its id, move along."""
        f = self.p("f")
        sfs.write_file(f, "content")
        os.setxattr(f, "user.a", b"kept")
        ids = [self.header_id("f")]
        self.assertEqual(self.blobs(), ids)
        os.truncate(f, 0)  # cut to zero: a new id
        ids.append(self.header_id("f"))
        sfs.write_file(f, "again")  # open(O_TRUNC) of an empty file, then a write: no new id
        ids.append(self.header_id("f"))
        self.assertNotEqual(ids[0], ids[1])
        self.assertEqual(ids[1], ids[2])
        self.assertEqual(self.blobs(), [ids[2]])
        self.assertEqual(os.getxattr(f, "user.a"), b"kept")
        with open(f, "w") as fh:  # O_TRUNC of a file with content: a new id
            fh.write("third")
        ids.append(self.header_id("f"))
        self.assertNotEqual(ids[3], ids[2])
        self.assertEqual(self.blobs(), [ids[3]])
        # An empty file the mount did not make (after a remount): a new id at its first write.
        sfs.write_file(self.p("e"), "")
        os.setxattr(self.p("e"), "user.b", b"e's")
        e0 = self.header_id("e")
        self.e.assert_umount(self.m)
        self.m = self.e.mount(foreground=True, opts=self.OPTS, mnt=self.m.mnt)
        self.e.unlock(self.m, self.sid)
        with open(self.p("e"), "ab") as fh:
            fh.write(b"first content")
        e1 = self.header_id("e")
        self.assertNotEqual(e0, e1)
        self.assertEqual(self.blobs(), sorted([ids[3], e1]))
        self.assertEqual(os.getxattr(self.p("e"), "user.b"), b"e's")
        self.assertEqual(os.getxattr(f, "user.a"), b"kept")
        self.assertEqual(sfs.read_file(self.p("e")), b"first content")
        self.assertEqual(sfs.read_file(f), b"third")

    def test_ctime_and_session_change(self):
        f = self.p("f")
        sfs.write_file(f, "x")
        meta = self.p("metadata.json")
        time.sleep(1.1)
        updated = json.loads(sfs.read_file(meta))["updated"]
        before = os.stat(f)
        time.sleep(1.1)  # ctime and "updated" have a resolution to beat
        os.setxattr(f, "user.a", b"1")
        after = os.stat(f)
        self.assertGreater(after.st_ctime_ns, before.st_ctime_ns)
        self.assertEqual(after.st_mtime_ns, before.st_mtime_ns)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if json.loads(sfs.read_file(meta))["updated"] != updated:
                break
            time.sleep(0.2)
        self.assertNotEqual(json.loads(sfs.read_file(meta))["updated"], updated,
                            "metadata.json 'updated' did not follow a setxattr")

    def test_concurrent_setters_of_one_file(self):
        f = self.p("f")
        sfs.write_file(f, "x")
        errors = []

        def setter(t):
            try:
                for i in range(20):
                    os.setxattr(f, "user.t%d-%d" % (t, i), b"v%d" % i)
            except OSError as ex:
                errors.append(ex)

        threads = [threading.Thread(target=setter, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(sorted(os.listxattr(f)),
                         sorted("user.t%d-%d" % (t, i) for t in range(4) for i in range(20)))

    def test_survives_remount_unreadable_when_locked(self):
        f = self.p("f")
        sfs.write_file(f, "x")
        os.setxattr(f, "user.keep", b"across mounts")
        os.setxattr(self.d, "user.root", b"r")
        self.e.lock(self.m, self.sid)
        self.assert_errno(errno.EACCES, os.getxattr, f, "user.keep")
        self.assert_errno(errno.EACCES, os.listxattr, f)
        self.assert_errno(errno.EACCES, os.setxattr, f, "user.x", b"1")
        self.assert_errno(errno.EACCES, os.getxattr, self.d, "user.root")
        self.assert_errno(errno.EACCES, os.listxattr, self.d)
        # ls -l of sessions/ (locked roots) still works.
        r = sfs.run(["ls", "-l", self.m.sessions()])
        self.assertEqual(r.rc, 0, r)
        self.e.unlock(self.m, self.sid)
        self.assertEqual(os.getxattr(f, "user.keep"), b"across mounts")
        self.e.assert_umount(self.m)
        self.m = self.e.mount(foreground=True, opts=self.OPTS, mnt=self.m.mnt)
        self.e.unlock(self.m, self.sid)
        self.assertEqual(os.getxattr(f, "user.keep"), b"across mounts")
        self.assertEqual(os.getxattr(self.d, "user.root"), b"r")

    def test_no_plaintext_in_the_store(self):
        name, value = "user.CanaryName7f3a", b"CanaryValue-0c9e-secret-token"
        sfs.write_file(self.p("f"), "x")
        os.mkdir(self.p("d"))
        os.setxattr(self.p("f"), name, value)
        os.setxattr(self.p("d"), name, value)
        needles = [b"CanaryName7f3a", b"CanaryValue-0c9e", value.hex().encode()]
        seen = 0
        for dirpath, dirnames, filenames in os.walk(self.e.store):
            for n in filenames + dirnames:
                self.assertNotIn("Canary", n)
            for n in filenames:
                data = sfs.read_file(os.path.join(dirpath, n))
                seen += len(data)
                for needle in needles:
                    self.assertNotIn(needle, data, os.path.join(dirpath, n))
        self.assertGreater(seen, 0)
        self.assertEqual(len(self.blobs()), 2)
        for b in self.blobs():
            self.assertRegex(b, r"^[0-9a-f]{32}$")
            st = os.stat(os.path.join(self.root(), ".sfsx", b))
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
            self.assertEqual(sfs.read_file(os.path.join(self.root(), ".sfsx", b))[:6],
                             b"SFSX\x01\x00")
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(self.root(), ".sfsx")).st_mode),
                         0o700)

    def test_tampering_is_eio(self):
        a, b = self.p("a"), self.p("b")
        sfs.write_file(a, "a")
        sfs.write_file(b, "b")
        os.setxattr(a, "user.who", b"a")
        blob_a = self.blobs()[0]
        os.setxattr(b, "user.who", b"b")
        blob_b = [n for n in self.blobs() if n != blob_a][0]
        x = os.path.join(self.root(), ".sfsx")
        # A flipped byte.
        log_before = len(self.m.read_log())
        data = bytearray(sfs.read_file(os.path.join(x, blob_a)))
        data[len(data) // 2] ^= 0x01
        sfs.write_file(os.path.join(x, blob_a), bytes(data))
        self.assert_errno(errno.EIO, os.getxattr, a, "user.who")
        self.assert_errno(errno.EIO, os.listxattr, a)
        self.assert_errno(errno.EIO, os.setxattr, a, "user.other", b"1")
        log = self.m.read_log()[log_before:]
        self.assertIn("extended attributes failed authentication", log)
        self.assertIn(self.sid, log)
        # b's blob under a's name: bound to b's node id, so it fails too.
        shutil.copyfile(os.path.join(x, blob_b), os.path.join(x, blob_a))
        self.assert_errno(errno.EIO, os.getxattr, a, "user.who")
        self.assertEqual(os.getxattr(b, "user.who"), b"b")
        # Cut short.
        data = sfs.read_file(os.path.join(x, blob_b))
        sfs.write_file(os.path.join(x, blob_b), data[:-1])
        self.assert_errno(errno.EIO, os.getxattr, b, "user.who")
        # The files themselves are fine, and unlink cleans up.
        self.assertEqual(sfs.read_file(a), b"a")
        os.unlink(a)
        os.unlink(b)
        self.assertEqual(self.blobs(), [])

    def test_namespaces_and_outside_sessions(self):
        f = self.p("f")
        sfs.write_file(f, "x")
        # Only user.* is stored; the rest is answered without a look at the store.
        for name in ("security.selinux", "security.capability", "system.posix_acl_access",
                     "system.posix_acl_default", "trusted.a", "system.other"):
            self.assert_errno(errno.EOPNOTSUPP, os.getxattr, f, name)
        for name in ("security.a", "trusted.a"):
            self.assert_errno(errno.EOPNOTSUPP, os.setxattr, f, name, b"1")
        for name in ("security.a", "trusted.a", "system.posix_acl_access"):
            self.assert_errno(errno.EOPNOTSUPP, os.removexattr, f, name)
        if shutil.which("setfacl"):  # package acl: optional here
            r = sfs.run(["setfacl", "-m", "u:nobody:r", f])
            self.assertIn("Operation not supported", r.err)
        r = sfs.run(["setfattr", "-n", "trusted.x", "-v", "1", f])
        self.assertIn("Operation not supported", r.err)
        # Outside sessions: none, and none can be stored.
        ctl = os.path.join(self.m.mnt, ".sessionfs")
        for p in (self.m.mnt, self.m.sessions(), os.path.join(self.m.mnt, "archive"), ctl):
            self.assertEqual(os.listxattr(p), [], p)
            self.assert_errno(errno.ENODATA, os.getxattr, p, "user.a")
            self.assert_errno(errno.EPERM, os.setxattr, p, "user.a", b"1")
            self.assert_errno(errno.ENODATA, os.removexattr, p, "user.a")
        r = sfs.run(["ls", "-l", self.m.mnt, self.m.sessions(), self.d])
        self.assertEqual(r.rc, 0, r)

    def test_copies_keep_them(self):
        f = self.p("f")
        sfs.write_file(f, "payload\n")
        os.setxattr(f, "user.origin", b"incident")
        os.setxattr(f, "user.bin", b"\x00\x01\xff")
        # cp -a inside the session: the copy gets its own.
        r = sfs.run(["cp", "-a", f, self.p("copy")])
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(os.getxattr(self.p("copy"), "user.origin"), b"incident")
        self.assertEqual(os.getxattr(self.p("copy"), "user.bin"), b"\x00\x01\xff")
        self.assertEqual(len(self.blobs()), 2)
        os.setxattr(self.p("copy"), "user.origin", b"changed")
        self.assertEqual(os.getxattr(f, "user.origin"), b"incident")
        # cp -a out of the mount and back in.
        out = self.e.path("outside")
        r = sfs.run(["cp", "-a", f, out])
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(os.getxattr(out, "user.origin"), b"incident")
        r = sfs.run(["cp", "-a", out, self.p("back")])
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(os.getxattr(self.p("back"), "user.bin"), b"\x00\x01\xff")
        # tar --xattrs, out and in.
        tarball = self.e.path("x.tar")
        r = sfs.run(["tar", "--xattrs", "-cf", tarball, "-C", self.d, "f"])
        self.assertEqual(r.rc, 0, r)
        os.mkdir(self.e.path("untar"))
        r = sfs.run(["tar", "--xattrs", "-xf", tarball, "-C", self.e.path("untar")])
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(os.getxattr(self.e.path("untar", "f"), "user.origin"), b"incident")
        os.mkdir(self.p("untar"))
        r = sfs.run(["tar", "--xattrs", "-xf", tarball, "-C", self.p("untar")])
        if r.rc != 0 and "Function not implemented" in r.err:
            # GNU tar --xattrs makes a regular file with mknod(2), then sets its
            # attributes, then writes it: mknod is not implemented yet.
            self.skipTest("tar --xattrs -x needs mknod: %s" % r.err.strip())
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(os.getxattr(self.p("untar", "f"), "user.origin"), b"incident")
        self.assertEqual(os.getxattr(self.p("untar", "f"), "user.bin"), b"\x00\x01\xff")
        self.assertEqual(sfs.read_file(self.p("untar", "f")), b"payload\n")

    def test_unlock_sweeps_leftover_temporaries(self):
        os.setxattr(self.d, "user.a", b"1")
        self.e.lock(self.m, self.sid)
        x = os.path.join(self.root(), ".sfsx")
        left = os.path.join(x, ".tmp.%s.999.0" % self.blobs()[0])
        sfs.write_file(left, "half written")
        self.e.unlock(self.m, self.sid)
        self.assertFalse(os.path.exists(left))
        self.assertEqual(os.getxattr(self.d, "user.a"), b"1")

    def test_permissions(self):
        if os.getuid() != 0:
            self.skipTest("needs root")
        self.e.assert_umount(self.m)
        os.chmod(self.e.tmp, 0o755)
        self.m = self.e.mount(foreground=True, opts="xattr,allow_other,default_permissions",
                              mnt=self.m.mnt)
        self.e.unlock(self.m, self.sid)
        os.chmod(self.d, 0o755)
        shared, private = self.p("shared"), self.p("private")
        sfs.write_file(shared, "s", mode=0o644)
        sfs.write_file(private, "p", mode=0o600)
        os.setxattr(shared, "user.a", b"1")
        os.setxattr(private, "user.a", b"1")

        def as_nobody(fn):
            rfd, wfd = os.pipe()
            pid = os.fork()
            if pid == 0:
                try:
                    os.close(rfd)
                    os.setgroups([])
                    os.setgid(65534)
                    os.setuid(65534)
                    try:
                        out = "ok:%r" % (fn(),)
                    except OSError as ex:
                        out = "err:%s" % errno.errorcode.get(ex.errno, ex.errno)
                    os.write(wfd, out.encode())
                finally:
                    os._exit(0)
            os.close(wfd)
            out = os.read(rfd, 4096).decode()
            os.close(rfd)
            os.waitpid(pid, 0)
            return out

        self.assertEqual(as_nobody(lambda: os.getxattr(shared, "user.a")), "ok:b'1'")
        self.assertEqual(as_nobody(lambda: os.getxattr(private, "user.a")), "err:EACCES")
        self.assertEqual(as_nobody(lambda: os.setxattr(shared, "user.b", b"1")), "err:EACCES")
        self.assertEqual(as_nobody(lambda: os.removexattr(shared, "user.a")), "err:EACCES")
        self.assertEqual(os.listxattr(shared), ["user.a"])


class RoundTripTest(XattrBase):
    """How many GETXATTR requests ls -l costs (from the libfuse debug log)."""
    OPTS = "xattr,debug"

    def count_getxattr(self, fn):
        time.sleep(0.2)
        before = len(self.m.read_log())
        fn()
        time.sleep(0.2)
        return len(re.findall(r"opcode: GETXATTR", self.m.read_log()[before:]))

    def ls_l_200(self):
        os.mkdir(self.p("many"))
        for i in range(200):
            sfs.write_file(self.p("many", "f%03d" % i), "x")
        time.sleep(1.2)  # entries and attributes expire: a cold ls -l

        def ls():
            r = sfs.run(["ls", "-l", self.p("many")])
            self.assertEqual(r.rc, 0, r)
            self.assertEqual(len(r.out.splitlines()), 201)
        n = self.count_getxattr(ls)
        appends = self.count_getxattr(
            lambda: [sfs.run(["sh", "-c", "echo line >> " + self.p("many", "f000")])
                     for _ in range(20)])
        return n, appends

    def test_ls_l_costs_no_round_trip_per_file(self):
        n, appends = self.ls_l_200()
        print("\n-o %s: ls -l of 200 files: %d GETXATTR requests; 20 appends: %d"
              % (self.OPTS, n, appends))
        # security.* and system.posix_acl_* are EOPNOTSUPP, which ls remembers per
        # file system: one of each per listing, not one per file.
        self.assertLessEqual(n, 4)


class WithoutOptionTest(RoundTripTest):
    """Without -o xattr: not supported, and no request after the first."""
    OPTS = "debug"

    def test_ls_l_costs_no_round_trip_per_file(self):
        n, appends = self.ls_l_200()
        print("\n-o %s: ls -l of 200 files: %d GETXATTR requests; 20 appends: %d"
              % (self.OPTS, n, appends))
        self.assertEqual((n, appends), (0, 0))

    def test_not_supported(self):
        f = self.p("f")
        sfs.write_file(f, "x")
        self.assert_errno(errno.EOPNOTSUPP, os.setxattr, f, "user.a", b"1")
        self.assert_errno(errno.EOPNOTSUPP, os.getxattr, f, "user.a")
        self.assert_errno(errno.EOPNOTSUPP, os.listxattr, f)
        self.assert_errno(errno.EOPNOTSUPP, os.removexattr, f, "user.a")
        r = sfs.run(["setfattr", "-n", "user.a", "-v", "1", f])
        self.assertNotEqual(r.rc, 0, r)
        self.assertIn("Operation not supported", r.err)
        r = sfs.run(["ls", "-l", self.d])
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.err, "")
        r = sfs.run(["cp", "-a", f, self.p("copy")])
        self.assertEqual(r.rc, 0, r)

    def test_blobs_still_go_with_their_node(self):
        """Attributes set in an -o xattr mount: a mount without it does not show
        them, but still removes them with their node."""
        f = self.p("f")
        sfs.write_file(f, "x")
        self.e.assert_umount(self.m)
        m = self.e.mount(foreground=True, opts="xattr", mnt=self.m.mnt)
        self.e.unlock(m, self.sid)
        os.setxattr(f, "user.a", b"1")
        self.e.assert_umount(m)
        self.m = self.e.mount(foreground=True, opts=self.OPTS, mnt=m.mnt)
        self.e.unlock(self.m, self.sid)
        self.assertEqual(len(self.blobs()), 1)
        self.assert_errno(errno.EOPNOTSUPP, os.getxattr, f, "user.a")
        os.unlink(f)
        self.assertEqual(self.blobs(), [])


if __name__ == "__main__":
    sfs.main()
