#!/usr/bin/env python3
"""
test_copy.py - sessionctl copy (sessionctl(1) copy) through real mounts: an
independent copy of an unlocked session under a new id, with its own key and
password, in the same mount or in a mount of another store (--to). Every
file, directory, symlink, FIFO, hard link, user.* xattr, mode, atime and
mtime is kept, events.jsonl byte for byte, metadata.json's members but "id"
(and "updated"); the copy opens with the new password and not with the old
one; the source is not changed (its store container byte for byte); the
audit trail of each store records it; --id that exists is refused (exit 8,
nothing changed), a locked source is exit 7; a copy killed (kill -9 of
sessionctl, or of the target's daemon) is left "copying", never taken for
whole, and the same command makes it again; --json; a file replaced by a
FIFO mid-copy is refused (exit 1), not waited on; a hard-linked name
replaced mid-copy is copied as the file opened, never linked to another.
"""
import hashlib
import json
import os
import re
import signal
import stat
import subprocess
import time
import unittest

import sfs

NEW_PW = "a colleague's own password"


def audit(e, where):
    r = e.ctl("audit", "--json", where)
    if r.rc != 0:
        raise AssertionError("sessionctl audit failed: %r" % r)
    return json.loads(r.out)


def times(root):
    """{rel: (atime_ns, mtime_ns)} of every node below @root but the
    session's two documents, read before anything is opened."""
    out = {}
    for dirpath, dnames, fnames in os.walk(root):
        for name in dnames + fnames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            if rel in ("metadata.json",):
                continue
            st = os.lstat(p)
            out[rel] = (st.st_atime_ns, st.st_mtime_ns)
    return out


def tree(root):
    """sfs.describe_tree of @root without metadata.json (its own checks)."""
    desc, links = sfs.describe_tree(root)
    desc.pop("metadata.json")
    return desc, links


def container(store, sid):
    """{rel: (size, mtime_ns, sha256)} of session @sid's container in @store,
    its busy-lock file aside: what the store holds of it."""
    out = {}
    top = os.path.join(store, "sessions", sid)
    for dirpath, dnames, fnames in os.walk(top):
        for name in dnames + fnames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, top)
            st = os.lstat(p)
            if rel == "lock":
                continue
            out[rel] = (st.st_size, st.st_mtime_ns,
                        sfs.sha256_file(p) if stat.S_ISREG(st.st_mode) else None)
    return out


def fill(sdir, files=0):
    """A session with every kind of node: files (an empty one, a sparse one,
    one of 3 MiB), nested directories (one 0500), a symlink, a FIFO, a hard
    link, user.* xattrs on a file and a directory, modes, atimes newer than
    mtimes (relatime leaves them), events.jsonl lines (one long, one not
    ASCII); and @files more small files in bulk/."""
    os.makedirs(os.path.join(sdir, "data", "deep", "er"))
    sfs.write_file(os.path.join(sdir, "notes.md"), "# db outage\nrestarted at 12:00\n", 0o640)
    sfs.write_file(os.path.join(sdir, "empty"), b"")
    sfs.write_file(os.path.join(sdir, "data", "big.bin"), os.urandom(3 << 20 | 123))
    with open(os.path.join(sdir, "data", "sparse"), "wb") as f:
        f.seek(5 << 20)
        f.write(b"end")
    sfs.write_file(os.path.join(sdir, "data", "deep", "er", "x.log"), "line\n" * 1000, 0o400)
    os.link(os.path.join(sdir, "notes.md"), os.path.join(sdir, "data", "notes-link.md"))
    os.symlink("../notes.md", os.path.join(sdir, "data", "to-notes"))
    os.symlink("/nowhere/at/all", os.path.join(sdir, "dangling"))
    os.mkfifo(os.path.join(sdir, "data", "pipe"), 0o620)
    os.setxattr(os.path.join(sdir, "notes.md"), "user.origin", b"pager\x00duty")
    os.setxattr(os.path.join(sdir, "data"), "user.kind", b"evidence")
    with open(os.path.join(sdir, "events.jsonl"), "a") as f:
        f.write('{"type":"note","text":"db restarted"}\n')
        f.write('{"type":"note","text":"%s"}\n' % ("x" * 300000))
        f.write('{"type":"note","text":"caf\u00e9 \u2603"}\n')
    if files:
        os.mkdir(os.path.join(sdir, "bulk"))
        for i in range(files):
            sfs.write_file(os.path.join(sdir, "bulk", "f%05d" % i), os.urandom(8192))
    os.chmod(os.path.join(sdir, "data", "deep"), 0o500)
    base = 1600000000
    for i, rel in enumerate(["notes.md", "empty", "data/big.bin", "data/sparse",
                             "data/deep/er/x.log"]):
        p = os.path.join(sdir, rel)
        os.utime(p, ns=((base + 86400 * 365 * 6 + i) * 10**9 + 7, (base + i) * 10**9 + 123456789))
    os.utime(os.path.join(sdir, "dangling"), ns=(base * 10**9, base * 10**9 + 5),
             follow_symlinks=False)
    for d in ("data/deep/er", "data/deep", "data"):
        os.utime(os.path.join(sdir, d), ns=(base * 10**9 + 11, base * 10**9 + 22))


class CopyTest(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        """The stores live on a noatime bind mount: sessionfs shows the
        backing files' atime, which relatime would move at the daemon's next
        read of a file whose atime was set older than its ctime."""
        sfs.need_binaries()
        self.e = sfs.Env(make_store=False)
        self.addCleanup(self.e.cleanup)
        self.fs = self.e.path("fs")
        os.mkdir(self.fs)
        r = sfs.run(["mount", "--bind", self.fs, self.fs])
        self.assertEqual(r.rc, 0, r)
        self.addCleanup(sfs.run, ["umount", self.fs])
        r = sfs.run(["mount", "-o", "remount,bind,noatime", self.fs])
        self.assertEqual(r.rc, 0, r)
        self.addCleanup(self.stop_all)
        self.addCleanup(self.lazy_umount_all)
        self.e.store = os.path.join(self.fs, "store")
        sfs.mkfs(self.e.store)
        self.m = self.e.mount(opts="xattr")

    def stop_all(self):
        for m in self.e.mounts:
            m.stop()

    def lazy_umount_all(self):
        for m in self.e.mounts:
            if m.proc is not None and m.proc.poll() is not None:
                sfs.run(["fusermount3", "-uz", m.mnt])

    def source(self, files=0, m=None):
        """A filled session (in self.m or @m), locked and unlocked again so
        that its pending "updated" is written: from then on nothing changes it."""
        m = m or self.m
        sid = self.e.new(m, name="db outage")
        sdir = m.sdir(sid)
        fill(sdir, files)
        meta = json.loads(sfs.read_file(os.path.join(sdir, "metadata.json")))
        meta["owner"] = {"team": "sre", "pager": [1, 2]}
        meta["status"] = "paused"
        meta["tags"] = ["db", "p1"]
        sfs.write_file(os.path.join(sdir, "metadata.json"), json.dumps(meta, indent=1))
        self.e.lock(m, sid)
        self.e.unlock(m, sid)
        return sid, sdir

    def copy(self, sdir, *args, m=None):
        return self.e.ctl("copy", *args, sdir, new_password=NEW_PW)

    def state(self, store, sid, sdir):
        """What must not change in a source: its container and what the mount shows."""
        return (container(store, sid), sfs.read_file(os.path.join(sdir, "metadata.json")),
                tree(sdir))

    def assert_same(self, sdir, cdir, src_times, sid, cid):
        """@cdir is a whole copy of @sdir, session @sid copied as @cid."""
        ct = times(cdir)
        st = dict(src_times)
        diff = {k: (st.get(k), ct.get(k)) for k in set(ct) | set(st) if ct.get(k) != st.get(k)}
        self.assertEqual(diff, {}, "atimes and mtimes: (source, copy)")
        self.assertEqual(tree(cdir), tree(sdir))
        self.assertEqual(sfs.read_file(os.path.join(cdir, "events.jsonl")),
                         sfs.read_file(os.path.join(sdir, "events.jsonl")))
        src = json.loads(sfs.read_file(os.path.join(sdir, "metadata.json")))
        cp = json.loads(sfs.read_file(os.path.join(cdir, "metadata.json")))
        self.assertEqual(cp["id"], cid)
        self.assertRegex(cp["updated"], sfs.ISO_Z_RE)
        for k in ("id", "updated"):
            src.pop(k)
            cp.pop(k)
        self.assertEqual(cp, src)  # name, created, status, tags, own members
        self.assertEqual(os.stat(cdir).st_mode, os.stat(sdir).st_mode)

    def test_same_mount(self):
        sid, sdir = self.source()
        before = self.state(self.e.store, sid, sdir)
        src_times = times(sdir)
        r = self.copy(sdir)
        self.assertEqual(r.rc, 0, r)
        cid = r.out.strip()
        self.assertRegex(cid, sfs.ID_RE)
        self.assertNotEqual(cid, sid)
        self.assertIn("Argon2id", r.err)
        cdir = self.m.sdir(cid)
        self.assert_same(sdir, cdir, src_times, sid, cid)
        # hard links are links, the FIFO a FIFO, the sparse file sparse
        self.assertEqual(os.stat(os.path.join(cdir, "notes.md")).st_ino,
                         os.stat(os.path.join(cdir, "data", "notes-link.md")).st_ino)
        self.assertTrue(stat.S_ISFIFO(os.lstat(os.path.join(cdir, "data", "pipe")).st_mode))
        self.assertLess(os.stat(os.path.join(cdir, "data", "sparse")).st_blocks * 512, 1 << 20)
        self.assertEqual(self.state(self.e.store, sid, sdir), before, "the source changed")
        # its own key: the new password opens it, the old one does not (exit 3)
        self.e.lock(self.m, cid)
        r = self.e.ctl("unlock", cdir, password=sfs.PASSWORD)
        self.assertEqual(r.rc, 3, r)
        self.e.unlock(self.m, cid, password=NEW_PW)
        self.assertEqual(tree(cdir), tree(sdir))
        self.assertNotEqual(sfs.read_file(os.path.join(self.e.store, "sessions", cid, "key")),
                            sfs.read_file(os.path.join(self.e.store, "sessions", sid, "key")))
        # the copy is independent: a change to it leaves the source alone
        with open(os.path.join(cdir, "events.jsonl"), "a") as f:
            f.write('{"type":"note","text":"handed over"}\n')
        sfs.write_file(os.path.join(cdir, "notes.md"), "changed\n")
        self.assertEqual(self.state(self.e.store, sid, sdir)[1:], before[1:])
        recs = audit(self.e, self.m.mnt)
        new = [x for x in recs if x["event"] == "new" and x.get("session") == cid]
        self.assertEqual(len(new), 1, recs)
        self.assertEqual((new[0].get("by"), new[0].get("copy_of")), ("copy", sid))
        cps = [x for x in recs if x["event"] == "copy"]
        self.assertEqual(len(cps), 1, recs)  # one store: one record
        self.assertEqual((cps[0]["session"], cps[0]["from"], cps[0]["ok"]), (cid, sid, True))

    def test_rules_go_with_the_copy(self):
        """The copy gets the source's redaction rules, in order: what they
        remove from a line appended to the source is removed from one
        appended to the copy. The events copied stay as the source stored them."""
        sid, sdir = self.source()
        secret = "hunter42"
        with open(os.path.join(sdir, "events.jsonl"), "a") as f:
            f.write('{"before_rule":"%s"}\n' % secret)
        for args in (["--builtin", "aws-access-key-id"], ["--rule", "pw=hunter[0-9]+"]):
            r = self.e.ctl("redact", *args, sdir)
            self.assertEqual(r.rc, 0, r)
        r = self.copy(sdir)
        self.assertEqual(r.rc, 0, r)
        cdir = self.m.sdir(r.out.strip())
        self.assertEqual(sfs.read_file(os.path.join(cdir, "events.jsonl")),
                         sfs.read_file(os.path.join(sdir, "events.jsonl")))
        lists = [json.loads(self.e.ctl("redact", "--list-rules", "--json", d).out)["rules"]
                 for d in (sdir, cdir)]
        self.assertEqual(lists[1], lists[0])
        self.assertEqual([x["name"] for x in lists[1]], ["aws-access-key-id", "pw"])
        with open(os.path.join(cdir, "events.jsonl"), "a") as f:
            f.write('{"after":"%s AKIAABCDEFGHIJKLMNOP"}\n' % secret)
        last = sfs.read_file(os.path.join(cdir, "events.jsonl")).splitlines()[-1]
        self.assertEqual(json.loads(last), {"after": "[REDACTED] [REDACTED]"})

    def test_json_and_id(self):
        sid, sdir = self.source()
        r = self.copy(sdir, "--json", "--id", "INC-c0de0001")
        self.assertEqual(r.rc, 0, r)
        out = json.loads(r.out)
        self.assertEqual(out["id"], "INC-c0de0001")
        self.assertEqual(out["from"], sid)
        self.assertEqual(out["mount"], self.m.mnt)
        self.assertEqual((out["files"], out["directories"], out["symlinks"], out["special"],
                          out["hardlinks"]), (5, 3, 2, 1, 1))
        self.assertEqual(out["bytes"], sum(os.path.getsize(os.path.join(self.m.sdir(sid), p))
                                           for p in ("notes.md", "data/big.bin", "data/sparse",
                                                     "data/deep/er/x.log")))
        self.assertEqual(out["events"], 3)
        self.assertEqual(out["events_bytes"],
                         os.path.getsize(os.path.join(sdir, "events.jsonl")))
        for k in ("kdf", "opslimit", "memlimit", "cipher"):
            self.assertIn(k, out)
        self.assertEqual(tree(self.m.sdir("INC-c0de0001")), tree(sdir))

    def test_to_another_store(self):
        sid, sdir = self.source()
        store2 = os.path.join(self.fs, "store2")
        sfs.mkfs(store2, cipher="xchacha20poly1305")
        m2 = self.e.mount(opts="xattr", store=store2)
        before = self.state(self.e.store, sid, sdir)
        src_times = times(sdir)
        r = self.e.ctl("copy", "--to", m2.mnt, "--json", sdir, new_password=NEW_PW)
        self.assertEqual(r.rc, 0, r)
        out = json.loads(r.out)
        cid = out["id"]
        self.assertEqual(out["cipher"], "xchacha20poly1305")  # the target store's
        self.assertFalse(os.path.exists(self.m.sdir(cid)))
        self.assert_same(sdir, m2.sdir(cid), src_times, sid, cid)
        self.assertEqual(self.state(self.e.store, sid, sdir), before)
        self.e.lock(m2, cid)
        self.assertEqual(self.e.ctl("unlock", m2.sdir(cid), password=sfs.PASSWORD).rc, 3)
        self.e.unlock(m2, cid, password=NEW_PW)
        # each store's audit trail says it, from its side
        there = [x for x in audit(self.e, m2.mnt) if x["event"] == "copy"]
        here = [x for x in audit(self.e, self.m.mnt) if x["event"] == "copy"]
        self.assertEqual([(x["session"], x.get("from")) for x in there], [(cid, sid)])
        self.assertEqual([(x["session"], x.get("to")) for x in here], [(sid, cid)])

    def test_existing_id_refused(self):
        sid, sdir = self.source()
        other = self.e.new(self.m, name="someone else's", sid="INC-beef")
        with open(os.path.join(self.m.sdir(other), "events.jsonl"), "a") as f:
            f.write('{"mine":1}\n')
        self.e.lock(self.m, other)
        self.e.unlock(self.m, other)
        before = (self.state(self.e.store, other, self.m.sdir(other)),
                  sorted(os.listdir(self.m.sessions())))
        r = self.copy(sdir, "--id", other)
        self.assertEqual(r.rc, 8, r)
        self.assertIn("already exists", r.err)
        self.assertIn(other, r.err)
        # the source's id is taken too
        r = self.copy(sdir, "--id", sid)
        self.assertEqual(r.rc, 8, r)
        self.assertEqual((self.state(self.e.store, other, self.m.sdir(other)),
                          sorted(os.listdir(self.m.sessions()))), before)
        # locked, and the new password does not open it: still exists, still locked
        self.e.lock(self.m, other)
        r = self.copy(sdir, "--id", other)
        self.assertEqual(r.rc, 8, r)
        self.assertTrue([s for s in self.e.list(self.m) if s["id"] == other][0]["locked"])
        self.assertEqual(sorted(os.listdir(self.m.sessions())), before[1])
        # locked, and the new password opens it (but it is no unfinished copy): locked again
        self.e.unlock(self.m, other)
        self.assertEqual(self.e.ctl("passwd", self.m.sdir(other), password=sfs.PASSWORD,
                                    new_password=NEW_PW).rc, 0)
        self.e.lock(self.m, other)
        r = self.copy(sdir, "--id", other)
        self.assertEqual(r.rc, 8, r)
        self.assertTrue([s for s in self.e.list(self.m) if s["id"] == other][0]["locked"])
        self.assertEqual(sorted(os.listdir(self.m.sessions())), before[1])

    def test_locked_source(self):
        sid, sdir = self.source()
        self.e.lock(self.m, sid)
        before = sorted(os.listdir(self.m.sessions()))
        r = self.copy(sdir)
        self.assertEqual(r.rc, 7, r)
        self.assertIn("locked", r.err)
        self.assertEqual(sorted(os.listdir(self.m.sessions())), before)

    def test_bad_input(self):
        sid, sdir = self.source()
        before = sorted(os.listdir(self.m.sessions()))
        for args, rc in ((["--id", "INC-XYZ"], 2), (["--id", "bad"], 2),
                         (["--to", self.e.tmp], 5), (["--password", "x"], 2),
                         (["--bogus"], 2)):
            r = self.copy(sdir, *args)
            self.assertEqual(r.rc, rc, (args, r))
            self.assertTrue(r.err.startswith("sessionctl: "), r)
        r = self.e.ctl("copy", self.m.sdir("INC-0bad"), new_password=NEW_PW)
        self.assertEqual(r.rc, 4, r)
        r = self.e.ctl("copy", sdir)  # no terminal, no --new-password-file
        self.assertEqual(r.rc, 10, r)
        self.assertEqual(sfs.run([sfs.SESSIONCTL, "copy", "--help"]).rc, 0)
        self.assertEqual(sorted(os.listdir(self.m.sessions())), before)

    def test_target_without_xattr(self):
        """A source with xattrs, a target mount without -o xattr: refused with a
        reason, and what was made stays an unfinished copy."""
        sid, sdir = self.source()
        store2 = os.path.join(self.fs, "store2")
        sfs.mkfs(store2)
        m2 = self.e.mount(store=store2)
        r = self.e.ctl("copy", "--to", m2.mnt, "--id", "INC-0a0a", sdir, new_password=NEW_PW)
        self.assertEqual(r.rc, 1, r)
        self.assertIn("-o xattr", r.err)
        meta = json.loads(sfs.read_file(os.path.join(m2.sdir("INC-0a0a"), "metadata.json")))
        self.assertEqual((meta["status"], meta["copy_of"]), ("copying", sid))

    def wait_started(self, proc, cdir):
        """Poll (a hang guard, no timing check) until the copy in @cdir has
        files in bulk/, then stop sessionctl there."""
        end = time.monotonic() + sfs.TIMEOUT
        while time.monotonic() < end:
            try:
                if len(os.listdir(os.path.join(cdir, "bulk"))) >= 20:
                    return
            except OSError:
                pass
            if proc.poll() is not None:
                break
            time.sleep(0.005)
        raise AssertionError("the copy did not start (rc %r)" % proc.poll())

    def assert_unfinished(self, cdir, sid):
        meta = json.loads(sfs.read_file(os.path.join(cdir, "metadata.json")))
        self.assertEqual(meta["status"], "copying")
        self.assertEqual(meta["copy_of"], sid)
        self.assertNotIn("owner", meta)

    def test_kill_mid_copy_then_again(self):
        sid, sdir = self.source(files=600)
        before = self.state(self.e.store, sid, sdir)
        src_times = times(sdir)
        cid = "INC-c0c0"
        proc = subprocess.Popen([sfs.SESSIONCTL, "copy", "--id", cid, "--new-password-file",
                                 self.e.pwfile(NEW_PW), sdir],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            self.wait_started(proc, self.m.sdir(cid))
            proc.kill()
        finally:
            proc.kill()
            proc.wait()
        self.assertEqual(proc.returncode, -signal.SIGKILL)
        cdir = self.m.sdir(cid)
        self.assert_unfinished(cdir, sid)
        listed = [s for s in self.e.list(self.m) if s["id"] == cid][0]
        self.assertEqual(listed["status"], "copying")
        self.assertEqual(self.state(self.e.store, sid, sdir), before)
        # another id beside it: the unfinished one stays as it is
        r = self.copy(sdir)
        self.assertEqual(r.rc, 0, r)
        self.assert_unfinished(cdir, sid)
        # the same command again: made again, whole
        r = self.copy(sdir, "--id", cid)
        self.assertEqual(r.rc, 0, r)
        self.assertIn("unfinished copy", r.err)
        self.assertEqual(r.out.strip(), cid)
        self.assert_same(sdir, cdir, src_times, sid, cid)
        self.assertEqual(self.state(self.e.store, sid, sdir), before)
        # a whole copy is never made again
        r = self.copy(sdir, "--id", cid)
        self.assertEqual(r.rc, 8, r)

    def test_kill_target_daemon_mid_copy(self):
        sid, sdir = self.source(files=600)
        store2 = os.path.join(self.fs, "store2")
        sfs.mkfs(store2)
        m2 = self.e.mount(foreground=True, opts="xattr", store=store2)
        src_times = times(sdir)
        before = self.state(self.e.store, sid, sdir)
        cid = "INC-d00d"
        proc = subprocess.Popen([sfs.SESSIONCTL, "copy", "--to", m2.mnt, "--id", cid,
                                 "--new-password-file", self.e.pwfile(NEW_PW), sdir],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            self.wait_started(proc, m2.sdir(cid))
            m2.proc.kill()
            m2.proc.wait()
            self.assertEqual(proc.wait(timeout=sfs.TIMEOUT), 1)
        finally:
            proc.kill()
            proc.wait()
        sfs.run(["fusermount3", "-uz", m2.mnt])
        m2 = self.e.mount(foreground=True, opts="xattr", store=store2, mnt=m2.mnt)
        self.assertEqual(self.state(self.e.store, sid, sdir), before)
        # after the crash the copy is locked; its new password shows it unfinished
        self.e.unlock(m2, cid, password=NEW_PW)
        self.assert_unfinished(m2.sdir(cid), sid)
        self.e.lock(m2, cid)
        # run again: unlocked with the new password, found unfinished, made again
        r = self.e.ctl("copy", "--to", m2.mnt, "--id", cid, sdir, new_password=NEW_PW)
        self.assertEqual(r.rc, 0, r)
        self.assertIn("unfinished copy", r.err)
        self.assert_same(sdir, m2.sdir(cid), src_times, sid, cid)

    def test_from_archive_and_progress_on_a_terminal(self):
        """A session in archive/ is copied into sessions/; on a terminal
        stderr shows files and MiB done, elsewhere nothing (test_same_mount)."""
        sid, sdir = self.source(files=30)
        os.rename(sdir, os.path.join(self.m.mnt, "archive", sid))
        adir = os.path.join(self.m.mnt, "archive", sid)
        rc, out, err = sfs.run_stderr_on_tty([sfs.SESSIONCTL, "copy", "--id", "INC-a7c4",
                                              "--new-password-file", self.e.pwfile(NEW_PW),
                                              adir])
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.decode().strip(), "INC-a7c4")
        self.assertRegex(err.decode(), r"copying %s to INC-a7c4: 36/36 files, 8/8 MiB" % sid)
        self.assertEqual(tree(self.m.sdir("INC-a7c4")), tree(adir))

    def test_kill_source_daemon_mid_copy(self):
        """The source's daemon killed mid-copy: the source's store is as it
        was, the copy (in self.m) unfinished; remounted and unlocked, the same
        command makes it whole."""
        store3 = os.path.join(self.fs, "store3")
        sfs.mkfs(store3)
        ms = self.e.mount(foreground=True, opts="xattr", store=store3)
        sid, sdir = self.source(files=600, m=ms)
        before = container(ms.store, sid)
        cid = "INC-5ca1e"
        proc = subprocess.Popen([sfs.SESSIONCTL, "copy", "--to", self.m.mnt, "--id", cid,
                                 "--new-password-file", self.e.pwfile(NEW_PW), sdir],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            self.wait_started(proc, self.m.sdir(cid))
            ms.proc.kill()
            ms.proc.wait()
            self.assertEqual(proc.wait(timeout=sfs.TIMEOUT), 1)
        finally:
            proc.kill()
            proc.wait()
        sfs.run(["fusermount3", "-uz", ms.mnt])
        self.assertEqual(container(ms.store, sid), before)
        self.assert_unfinished(self.m.sdir(cid), sid)
        ms = self.e.mount(foreground=True, opts="xattr", store=ms.store, mnt=ms.mnt)
        self.e.unlock(ms, sid)
        src_times = times(sdir)
        r = self.e.ctl("copy", "--to", self.m.mnt, "--id", cid, sdir, new_password=NEW_PW)
        self.assertEqual(r.rc, 0, r)
        self.assert_same(sdir, self.m.sdir(cid), src_times, sid, cid)
        self.assertEqual(container(ms.store, sid), before)

    def test_fifo_swapped_in_mid_copy(self):
        """A regular file replaced by a FIFO between the walk's stat of it and
        its open (strace holds the stat's return while the test swaps them):
        the copy neither hangs in the open (a FIFO with no writer) nor reads
        the FIFO as the file: exit 1 naming the path, the copy left
        unfinished; the same command again copies the FIFO as a FIFO. The
        timeout only guards against the hang."""
        sid = self.e.new(self.m)
        sdir = self.m.sdir(sid)
        victim = os.path.join(sdir, "victim")
        sfs.write_file(victim, "a regular file\n")
        log = self.e.path("strace-copy.log")
        cid = "INC-f1f0"
        argv = [sfs.SESSIONCTL, "copy", "--id", cid, "--new-password-file",
                self.e.pwfile(NEW_PW), sdir]
        proc = subprocess.Popen(["strace", "-f", "-o", log, "-P", "victim",
                                 "-e", "trace=newfstatat",
                                 "-e", "inject=newfstatat:delay_exit=2000ms:when=1"] + argv,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=sfs.traced_env())
        try:
            end = time.monotonic() + sfs.TIMEOUT
            while proc.poll() is None and time.monotonic() < end:
                if os.path.exists(log) and "(DELAYED)" in sfs.read_file(log).decode():
                    break
                time.sleep(0.01)
            self.assertIsNone(proc.poll(), "the copy was not held at its stat")
            os.unlink(victim)
            os.mkfifo(victim, 0o600)
            try:
                out, err = proc.communicate(timeout=sfs.TIMEOUT)
            except subprocess.TimeoutExpired:
                self.fail("sessionctl copy hangs on a FIFO swapped in for a file")
        finally:
            proc.kill()
            proc.wait()
        self.assertEqual(proc.returncode, 1, err)
        self.assertRegex(err, r"cannot copy %s to %s: victim: .*FIFO" % (sid, cid))
        self.assert_unfinished(self.m.sdir(cid), sid)
        r = self.copy(sdir, "--id", cid)
        self.assertEqual(r.rc, 0, r)
        self.assertTrue(stat.S_ISFIFO(os.lstat(os.path.join(self.m.sdir(cid), "victim")).st_mode))

    def test_hard_link_swapped_in_mid_copy(self):
        """A hard-linked file replaced by another file between the walk's
        stat of one of its names and the open (strace holds the first stat
        of any of its three names while the test renames a new file over
        that name): the copy links by the file it opened, not by what the
        walk saw. The name held gets the new file's content; the two other
        names, still one file, stay linked to each other with the old
        content. Before, the new file was remembered under the old file's
        inode number and the other names were linked to it: wrong content."""
        sid = self.e.new(self.m)
        sdir = self.m.sdir(sid)
        names = ["l1", "l2", "l3"]
        sfs.write_file(os.path.join(sdir, "l1"), "the linked file\n")
        for n in names[1:]:
            os.link(os.path.join(sdir, "l1"), os.path.join(sdir, n))
        os.mkdir(os.path.join(sdir, "d"))
        log = self.e.path("strace-copy.log")
        cid = "INC-f1f1"
        argv = [sfs.SESSIONCTL, "copy", "--id", cid, "--new-password-file",
                self.e.pwfile(NEW_PW), sdir]
        trace = ["strace", "-f", "-o", log]
        for n in names:
            trace += ["-P", n]
        trace += ["-e", "trace=newfstatat", "-e", "inject=newfstatat:delay_exit=2000ms:when=1"]
        proc = subprocess.Popen(trace + argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True,
                                env=sfs.traced_env())
        held = None
        try:
            end = time.monotonic() + sfs.TIMEOUT
            while proc.poll() is None and time.monotonic() < end:
                if os.path.exists(log):
                    m = re.search(r'newfstatat\(\d+, "(l\d)".*\(DELAYED\)',
                                  sfs.read_file(log).decode())
                    if m:
                        held = m.group(1)
                        break
                time.sleep(0.01)
            self.assertIsNone(proc.poll(), "the copy was not held at its stat")
            self.assertIsNotNone(held)
            # made now: the walk listed the session already
            sfs.write_file(os.path.join(sdir, "d", "other"), "swapped in\n")
            os.rename(os.path.join(sdir, "d", "other"), os.path.join(sdir, held))
            out, err = proc.communicate(timeout=sfs.TIMEOUT)
        finally:
            proc.kill()
            proc.wait()
        self.assertEqual(proc.returncode, 0, err)
        cdir = self.m.sdir(cid)
        rest = [n for n in names if n != held]
        self.assertEqual(sfs.read_file(os.path.join(cdir, held)), b"swapped in\n")
        for n in rest:
            self.assertEqual(sfs.read_file(os.path.join(cdir, n)), b"the linked file\n", n)
        ino = [os.lstat(os.path.join(cdir, n)).st_ino for n in names]
        self.assertEqual(os.lstat(os.path.join(cdir, rest[0])).st_ino,
                         os.lstat(os.path.join(cdir, rest[1])).st_ino)
        self.assertEqual(len(set(ino)), 2)
        self.assertEqual(os.lstat(os.path.join(cdir, held)).st_nlink, 1)


class ProtocolTest(unittest.TestCase):
    """The control protocol's parts of copy (doc/control.md): new's "created"
    and "copy_of", and the "copy" op that records a finished copy."""

    def setUp(self):
        sfs.need_binaries()
        self.e = sfs.Env()
        self.addCleanup(self.e.cleanup)
        self.m = self.e.mount()
        self.sid = self.e.new(self.m)

    def ask(self, req):
        fd = os.open(os.path.join(self.m.mnt, ".sessionfs"), os.O_RDWR)
        try:
            os.write(fd, json.dumps(req).encode())
            return json.loads(os.read(fd, 1 << 20))
        finally:
            os.close(fd)

    def test_new_members(self):
        before = sorted(os.listdir(self.m.sessions()))
        for extra in ({"created": "yesterday"}, {"created": 5}, {"created": "2025-02-30T00:00:00Z"},
                      {"copy_of": "INC-XY"}, {"copy_of": None}):
            req = dict({"op": "new", "password": "p", "id": "INC-f00d"}, **extra)
            self.assertEqual(self.ask(req).get("code"), "invalid", req)
        self.assertEqual(sorted(os.listdir(self.m.sessions())), before)
        r = self.ask({"op": "new", "password": "p", "id": "INC-f00d", "name": "n",
                      "created": "2020-01-02T03:04:05Z", "copy_of": self.sid})
        self.assertTrue(r["ok"], r)
        meta = json.loads(sfs.read_file(os.path.join(self.m.sdir("INC-f00d"), "metadata.json")))
        self.assertEqual((meta["created"], meta["status"], meta["copy_of"], meta["name"]),
                         ("2020-01-02T03:04:05Z", "copying", self.sid, "n"))
        # a document that keeps "created" replaces it
        meta.update(status="active", id="INC-f00d")
        del meta["copy_of"]
        sfs.write_file(os.path.join(self.m.sdir("INC-f00d"), "metadata.json"), json.dumps(meta))
        self.assertEqual(json.loads(sfs.read_file(os.path.join(self.m.sdir("INC-f00d"),
                                                               "metadata.json"))), meta)

    def test_copy_op(self):
        sid = self.sid
        for req in ({"op": "copy", "session": sid},
                    {"op": "copy", "session": sid, "from": "INC-1234", "to": "INC-5678"},
                    {"op": "copy", "session": sid, "from": "bad"},
                    {"op": "copy", "session": sid, "to": 7},
                    {"op": "copy", "from": "INC-1234"}):
            self.assertEqual(self.ask(req).get("code"), "invalid", req)
        self.assertEqual(self.ask({"op": "copy", "session": "INC-0bad0", "from": sid})
                         .get("code"), "no-such-session")
        self.e.lock(self.m, sid)  # locked or not: it records
        self.assertTrue(self.ask({"op": "copy", "session": sid, "to": "INC-1234"})["ok"])
        recs = [x for x in audit(self.e, self.m.mnt) if x["event"] == "copy"]
        self.assertEqual([(x["session"], x["to"], x["ok"]) for x in recs],
                         [(sid, "INC-1234", True)])


if __name__ == "__main__":
    sfs.main()
