"""fsck.sessionfs (issue 16): a store is checked offline, each kind of damage made by
hand in the unmounted store (flipping, cutting, zeroing, removing, copying files;
leftover temporaries of key-file and rules-file writes) is
reported with the right exit bits, repaired with -y where a repair exists, and a
second -n run is clean or reports exactly what is left. -n changes nothing; a
session unlocked in a live mount is skipped and never touched. A file torn inside
its last block is named so, and put back from its tail record (the torn bytes kept)
or left. By crashing: fsck -y killed after each of its store-changing calls during
a salvage, a re-append of kept lines and a move to lost+found (FsckKillTest), and
the daemon killed after each of its store-changing calls during an append, a
rename, `sessionctl new` and `passwd --add`, then fsck run (FsckAfterDaemonKillTest).
"""
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import unittest

import sfs
from test_crash import CrashBase, LONG_A, LONG_B, py

FSCK = os.path.join(sfs.BUILD, "cli", "fsck.sessionfs")
CLEAN, CORRECTED, UNCORRECTED, ERROR, USAGE = 0, 1, 4, 8, 16


def tree_hash(root):
    """A hash of every name, type, size, content, symlink target and user xattr below @root."""
    h = hashlib.sha256()
    for dirpath, dnames, fnames in os.walk(root):
        dnames.sort()
        for name in sorted(dnames + fnames):
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            h.update(("%s %o %d\n" % (os.path.relpath(p, root), st.st_mode, st.st_size)).encode())
            if os.path.islink(p):
                h.update(os.readlink(p).encode())
            elif os.path.isfile(p):
                with open(p, "rb") as f:
                    h.update(f.read())
            if not os.path.islink(p):
                for k in sorted(os.listxattr(p)):
                    h.update(k.encode() + os.getxattr(p, k))
    return h.hexdigest()


class FsckTest(unittest.TestCase):
    def setUp(self):
        sfs.need_binaries(FSCK)
        self.e = sfs.Env()
        self.addCleanup(self.e.cleanup)
        self.pw = self.e.pwfile(sfs.PASSWORD)
        m = self.e.mount(foreground=True, opts="xattr")
        self.sid = self.e.new(m)
        d = m.sdir(self.sid)
        self.paths = {}
        os.makedirs(os.path.join(d, "data", "logs"))
        self.paths["app"] = os.path.join(d, "data", "logs", "app.log")
        sfs.write_file(self.paths["app"], os.urandom(3 * 4096 + 100))
        self.paths["notes"] = os.path.join(d, "notes.md")
        sfs.write_file(self.paths["notes"], b"# notes\n" * 1000)
        self.paths["long"] = os.path.join(d, "L" * 200)
        sfs.write_file(self.paths["long"], b"long name")
        self.paths["link"] = os.path.join(d, "link")
        os.symlink("notes.md", self.paths["link"])
        os.setxattr(self.paths["notes"], "user.origin", b"incident")
        self.paths["events"] = os.path.join(d, "events.jsonl")
        for i in range(3):  # three appends: three END records
            with open(self.paths["events"], "a") as f:
                f.write("".join('{"type":"note","i":%d,"j":%d}\n' % (i, j) for j in range(40)))
        self.back = {k: self.backing(m, k) for k in ("notes", "long", "events")}
        self.e.assert_umount(m)
        self.root = os.path.join(self.e.store, "sessions", self.sid, "root")
        self.cont = os.path.join(self.e.store, "sessions", self.sid)

    def backing(self, m, key):
        return sfs.backing_of(self.e.store, self.sid, self.paths[key])

    def fsck(self, *args, password=True, expect=None):
        a = [FSCK] + list(args)
        if password:
            a += ["--password-file", self.pw]
        r = subprocess.run(a + [self.e.store], capture_output=True, text=True,
                           timeout=sfs.TIMEOUT, stdin=subprocess.DEVNULL)
        if expect is not None:
            self.assertEqual(r.returncode, expect, "%s\nstdout: %s\nstderr: %s"
                             % (a, r.stdout, r.stderr))
        return r

    def findings(self, *args, password=True):
        r = self.fsck("-n", "--json", *args, password=password)
        doc = json.loads(r.stdout)
        self.assertEqual(doc["exit"], r.returncode)
        return doc, r.returncode

    def codes(self, password=True):
        doc, _ = self.findings(password=password)
        return [f["code"] for f in doc["findings"] if f["state"] != "note"]

    def repaired(self, code, password=True):
        """-n reports @code (exit 4, store unchanged), -y repairs it (exit 1), -n is clean."""
        before = tree_hash(self.e.store)
        self.assertIn(code, self.codes(password))
        self.fsck("-n", password=password, expect=UNCORRECTED)
        self.assertEqual(tree_hash(self.e.store), before, "-n changed the store")
        r = self.fsck("-y", password=password, expect=CORRECTED)
        self.assertIn("repaired", r.stdout)
        self.fsck("-n", password=password, expect=CLEAN)
        self.fsck("-n", password=not password, expect=CLEAN)

    def left(self, code, password=True):
        """@code is reported and has no repair: -y leaves it, -n after reports it again."""
        before = tree_hash(self.e.store)
        self.assertIn(code, self.codes(password))
        self.fsck("-y", password=password, expect=UNCORRECTED)
        self.assertEqual(tree_hash(self.e.store), before, "-y changed what it cannot repair")
        self.assertIn(code, self.codes(password))

    # --- clean ---

    def test_clean(self):
        self.fsck("-n", password=False, expect=CLEAN)
        self.fsck("-n", expect=CLEAN)
        self.fsck("-y", expect=CLEAN)
        doc, rc = self.findings()
        self.assertEqual(rc, 0)
        self.assertEqual(doc["sessions"], 1)
        self.assertEqual(doc["sessions_done"], 1)
        self.assertGreater(doc["bytes_checked"], 3 * 4096)
        self.assertEqual([f for f in doc["findings"] if f["state"] != "note"], [])

    def test_usage(self):
        self.fsck("-n", "-y", expect=USAGE)
        r = subprocess.run([FSCK], capture_output=True, text=True)
        self.assertEqual(r.returncode, USAGE)
        r = subprocess.run([FSCK, "--help"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0)
        self.assertIn("Usage", r.stdout)

    def test_not_a_store(self):
        r = subprocess.run([FSCK, "-n", self.e.path("nowhere")], capture_output=True,
                           text=True)
        self.assertEqual(r.returncode, ERROR)
        self.assertIn("fsck.sessionfs:", r.stderr)

    def test_wrong_password(self):
        bad = self.e.pwfile("not the password")
        r = subprocess.run([FSCK, "-n", "--password-file", bad, self.e.store],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, ERROR, r.stdout + r.stderr)
        self.assertIn("wrong password", r.stdout)

    def test_session_password(self):
        r = subprocess.run([FSCK, "-n", "--json", "--session", self.sid, "--password-file",
                            self.pw, self.e.store], capture_output=True, text=True)
        self.assertEqual(r.returncode, CLEAN, r.stdout + r.stderr)
        self.assertGreater(json.loads(r.stdout)["bytes_checked"], 3 * 4096)

    def test_no_such_session(self):
        r = subprocess.run([FSCK, "-n", "--session", "INC-ffff", "--password-file", self.pw,
                            self.e.store], capture_output=True, text=True)
        self.assertEqual(r.returncode, ERROR)
        self.assertIn("INC-ffff: no such session", r.stderr)

    def test_asks_on_a_terminal(self):
        import pty
        open(os.path.join(self.root, ".sfs-new-0123456789abcdef"), "w").close()
        open(os.path.join(self.root, ".sfs-meta-0123456789abcdef"), "w").close()
        pid, fd = pty.fork()
        if pid == 0:
            os.execv(FSCK, [FSCK, self.e.store])
        out, answers = b"", [b"y\n", b"n\n"]
        while True:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
            if out.count(b"[y/N]") > 2 - len(answers):
                os.write(fd, answers.pop(0))
        _, status = os.waitpid(pid, 0)
        os.close(fd)
        self.assertEqual(os.waitstatus_to_exitcode(status), CORRECTED | UNCORRECTED,
                         out.decode(errors="replace"))
        self.assertEqual(out.count(b"[y/N]"), 2)
        left = [n for n in os.listdir(self.root) if n.startswith(".sfs-")]
        self.assertEqual(len(left), 1)
        self.fsck("-y", password=False, expect=CORRECTED)
        self.fsck("-n", password=False, expect=CLEAN)

    def test_no_terminal_changes_nothing(self):
        open(os.path.join(self.root, ".sfs-new-0123456789abcdef"), "w").close()
        before = tree_hash(self.e.store)
        r = self.fsck(expect=UNCORRECTED)
        self.assertIn("no terminal", r.stderr)
        self.assertEqual(tree_hash(self.e.store), before)

    # --- leftovers, without a password ---

    def test_leftovers(self):
        open(os.path.join(self.root, ".sfs-new-0123456789abcdef"), "w").close()
        open(os.path.join(self.root, ".sfs-meta-0123456789abcdef"), "w").close()
        sub = [n for n in os.listdir(self.root)
               if os.path.isdir(os.path.join(self.root, n)) and not n.startswith(".")][0]
        os.mkdir(os.path.join(self.root, sub, ".sfs-gone-0123456789abcdef"))
        os.mkdir(os.path.join(self.e.store, "sessions", ".new-INC-beef-0123456789ab"))
        self.repaired("leftover", password=False)
        self.assertFalse(os.path.exists(os.path.join(self.root, ".sfs-new-0123456789abcdef")))

    def test_interrupted_key_and_rules_writes(self):
        """The temporaries of a key-file and a rules-file replacement a crash left
        in the container (.tmp.key.PID.SEQ, .tmp.rules.PID.SEQ: passwd --add killed
        before its rename, FsckAfterDaemonKillTest makes one for real) are named
        as interrupted writes, not as entries sessionfs never makes; -y removes
        them (a repair in the audit trail) and the session opens as before. While
        a key-file write is under way (its edit lock held, as a mount changing a
        locked session's slots holds it) its temporary is left, and reported."""
        key = os.path.join(self.cont, "key")
        tmp_key = os.path.join(self.cont, ".tmp.key.4242.7")
        tmp_rules = os.path.join(self.cont, ".tmp.rules.4242.8")
        shutil.copyfile(key, tmp_key)
        sfs.write_file(tmp_rules, os.urandom(100))
        doc, rc = self.findings(password=False)
        self.assertEqual(rc, UNCORRECTED)
        got = {f["path"].rsplit("/", 1)[1]: (f["code"], f["state"], f["what"])
               for f in doc["findings"] if ".tmp." in f["path"]}
        self.assertEqual(sorted(got), [".tmp.key.4242.7", ".tmp.rules.4242.8"], doc)
        self.assertEqual(got[".tmp.key.4242.7"][:2], ("leftover", "left"))
        self.assertIn("interrupted key-file write", got[".tmp.key.4242.7"][2])
        self.assertEqual(got[".tmp.rules.4242.8"][:2], ("leftover", "left"))
        self.assertIn("interrupted write of the redaction rules", got[".tmp.rules.4242.8"][2])
        # a write under way: its edit lock held, the temporary is left
        fd = os.open(key, os.O_RDWR)
        try:
            fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack("hhqqi4x", fcntl.F_WRLCK, 0, 0, 0, 0))
            r = self.fsck("-y", "--json", password=False, expect=CORRECTED | UNCORRECTED)
            got = {f["path"].rsplit("/", 1)[1]: (f["code"], f["state"])
                   for f in json.loads(r.stdout)["findings"] if ".tmp." in f["path"]}
            self.assertEqual(got, {".tmp.key.4242.7": ("busy", "skipped"),
                                   ".tmp.rules.4242.8": ("leftover", "fixed")})
            self.assertTrue(os.path.exists(tmp_key))
            self.assertFalse(os.path.exists(tmp_rules))
        finally:
            os.close(fd)
        self.repaired("leftover", password=False)
        self.assertEqual([n for n in os.listdir(self.cont) if n.startswith(".tmp.")], [])
        r = subprocess.run([sfs.SESSIONCTL, "audit", "--json", self.e.store],
                           capture_output=True, text=True, timeout=sfs.TIMEOUT)
        self.assertEqual([x["code"] for x in json.loads(r.stdout) if x["event"] == "repair"],
                         ["leftover", "leftover"])
        m = self.e.mount()
        self.e.unlock(m, self.sid)
        self.assertEqual(sfs.read_file(os.path.join(m.sdir(self.sid), "notes.md")),
                         b"# notes\n" * 1000)

    def test_repairs_go_to_the_audit_trail(self):
        """Each repair -y makes is a "repair" record by fsck in STORE/audit.jsonl,
        with the finding's code and never its path; -n adds none."""
        open(os.path.join(self.root, ".sfs-new-0123456789abcdef"), "w").close()
        os.unlink(os.path.join(self.cont, "lock"))

        def repairs():
            r = subprocess.run([sfs.SESSIONCTL, "audit", "--json", self.e.store],
                               capture_output=True, text=True, timeout=sfs.TIMEOUT)
            self.assertEqual(r.returncode, 0, r.stderr)
            return [x for x in json.loads(r.stdout) if x["event"] == "repair"]

        self.fsck("-n", password=False, expect=UNCORRECTED)
        self.assertEqual(repairs(), [])
        self.fsck("-y", password=False, expect=CORRECTED)
        recs = repairs()
        self.assertEqual(sorted(x["code"] for x in recs), ["layout", "leftover"], recs)
        for x in recs:
            self.assertEqual((x["by"], x["comm"], x["ok"], x["session"], x["uid"]),
                             ("fsck", "fsck.sessionfs", True, self.sid, os.getuid()), x)
        self.assertNotIn(".sfs-new", json.dumps(recs))
        self.fsck("-n", expect=CLEAN)
        r = subprocess.run([sfs.SESSIONCTL, "audit", self.e.store], capture_output=True,
                           text=True, timeout=sfs.TIMEOUT)
        self.assertIn("by=fsck", r.stdout)
        self.assertIn("code=leftover", r.stdout)

    def test_orphan_sidecar(self):
        os.unlink(self.back["long"])
        self.repaired("sidecar", password=False)
        self.assertFalse(os.path.exists(self.back["long"] + ".n"))

    def test_orphan_xattr_blob(self):
        sfsx = os.path.join(self.root, ".sfsx")
        blob = os.listdir(sfsx)[0]
        with open(os.path.join(sfsx, blob), "rb") as f:
            data = f.read()
        sfs.write_file(os.path.join(sfsx, "0" * 32), data)
        self.repaired("orphan", password=False)
        self.assertEqual(os.listdir(sfsx), [blob])

    def test_orphan_tail_file(self):
        tails = os.path.join(self.root, ".sfstail")
        os.makedirs(tails, exist_ok=True)
        sfs.write_file(os.path.join(tails, "ab" * 16), b"\0" * 8292)
        self.repaired("orphan", password=False)
        self.assertFalse(os.path.exists(os.path.join(tails, "ab" * 16)))

    def test_missing_lock(self):
        os.unlink(os.path.join(self.cont, "lock"))
        self.repaired("layout", password=False)
        self.assertTrue(os.path.isfile(os.path.join(self.cont, "lock")))

    def test_lost_dir_header_has_copy(self):
        sub = [n for n in os.listdir(self.root)
               if os.path.isdir(os.path.join(self.root, n)) and not n.startswith(".")][0]
        hdr = os.path.join(self.root, sub, ".sfsdir")
        with open(hdr, "r+b") as f:
            f.write(b"\0" * 80)
        self.repaired("dirheader", password=True)

    def test_dir_header_repair_killed(self):
        """fsck -y killed after each of its store-changing calls in turn while it
        writes a directory's .sfsdir again from its copy (a temporary, fsynced,
        renamed over): a second -y finishes, -n after it is clean and names no entry
        "sessionfs never makes" (before: the temporary .tmp..sfsdir.* a kill left
        was one, and stayed), and the directory lists."""
        sub = [n for n in os.listdir(self.root)
               if os.path.isdir(os.path.join(self.root, n)) and not n.startswith(".")][0]
        with open(os.path.join(self.root, sub, ".sfsdir"), "r+b") as f:
            f.write(b"\0" * 80)

        def check(what):
            self.assertEqual([n for n in os.listdir(os.path.join(self.root, sub))
                              if n.startswith(".tmp.")], [], what)
            m = self.e.mount(foreground=True)
            self.e.unlock(m, self.sid)
            self.assertEqual(os.listdir(os.path.join(m.sdir(self.sid), "data")), ["logs"],
                             what)
            self.e.assert_umount(m)

        self.kill_each_step(check)

    # --- damage that has no repair ---

    def test_key_file_cut(self):
        with open(os.path.join(self.cont, "key"), "r+b") as f:
            f.truncate(100)
        self.left("key", password=False)

    def test_header_zeroed(self):
        with open(self.back["notes"], "r+b") as f:
            f.write(b"\0" * 4)
        self.left("header", password=False)

    def test_cut_inside_block(self):
        os.truncate(self.back["notes"], 80 + 4136 + 20)  # 20 bytes: no block is that short
        self.left("size", password=False)

    def finding(self, code):
        doc, _ = self.findings()
        return [x for x in doc["findings"] if x["code"] == code]

    def test_torn_last_block_no_record(self):
        # notes.md (8000 bytes, never fsynced: no tail record) cut 100 stored bytes
        # short: its last block (block 1, 3904 bytes) no longer authenticates; with
        # a size a file has and no tail record nothing tells a tear from damage
        size = os.path.getsize(self.back["notes"])
        os.truncate(self.back["notes"], size - 100)
        f = self.finding("content")
        self.assertEqual(len(f), 1, f)
        self.assertEqual((f[0]["path"], f[0]["path_decrypted"]), ("notes.md", True))
        self.assertIn("block 1, plaintext bytes 4096..", f[0]["what"])
        self.assertIn("last block, partial, and it has no tail record", f[0]["what"])
        self.assertIsNone(f[0]["repair"])
        self.assertEqual(self.codes(), ["content"])  # one finding, not two
        self.left("content")  # -y changes nothing: the bytes stay

    def test_torn_last_block_cut_in_overhead(self):
        os.truncate(self.back["notes"], 80 + 4136 + 20)
        f = self.finding("torn")
        self.assertEqual(len(f), 1, f)
        self.assertEqual((f[0]["path"], f[0]["path_decrypted"]), ("notes.md", True))
        self.assertIn("torn inside its last block: block 1 (plaintext bytes 4096..): the "
                      "backing file ends 20 stored bytes into it", f[0]["what"])
        self.assertIn("a size no file has", f[0]["what"])
        self.assertIn("no tail record", f[0]["what"])
        self.assertIsNone(f[0]["repair"])
        self.assertEqual(self.codes(), ["torn"])
        self.left("torn")

    def torn_synced(self):
        """synced.md fsynced at 9000 bytes (a tail record of block 2, 808 bytes),
        then 500 bytes appended and never fsynced; a crash tears the rewritten
        block 2 (its last 100 stored bytes cut): the torn block's stored bytes."""
        m = self.e.mount(foreground=True)
        self.e.unlock(m, self.sid)
        p = os.path.join(m.sdir(self.sid), "synced.md")
        with open(p, "wb") as f:
            f.write(b"# synced\n" * 1000)
            os.fsync(f.fileno())
            f.write(b"more\n" * 100)
        back = sfs.backing_of(self.e.store, self.sid, p)
        self.e.assert_umount(m)
        os.truncate(back, os.path.getsize(back) - 100)
        with open(back, "rb") as f:
            f.seek(80 + 2 * 4136)
            return f.read()

    def test_torn_last_block_tail_record(self):
        torn = self.torn_synced()
        f = self.finding("torn")
        self.assertEqual(len(f), 1, f)
        self.assertEqual(f[0]["path"], "synced.md")
        self.assertIn("block 2 (plaintext bytes 8192..)", f[0]["what"])
        self.assertIn("tail record", f[0]["what"])
        self.assertIn("put block 2 back from its tail record (808 plaintext bytes",
                      f[0]["repair"])
        self.assertIn("torn.kept-", f[0]["repair"])
        self.repaired("torn")
        # the torn block's stored bytes are kept, byte for byte
        kept = [n for n in os.listdir(self.cont) if n.startswith("torn.kept-")]
        self.assertEqual(len(kept), 1)
        with open(os.path.join(self.cont, kept[0]), "rb") as f:
            self.assertEqual(f.read(), torn)
        m = self.e.mount(foreground=True)
        self.e.unlock(m, self.sid)
        self.assertEqual(sfs.read_file(os.path.join(m.sdir(self.sid), "synced.md")),
                         b"# synced\n" * 1000)
        self.e.assert_umount(m)

    def test_torn_last_block_repair_killed(self):
        """fsck -y killed after each of its store-changing calls in turn while it
        keeps a torn block's stored bytes in torn.kept-* and puts the block back
        from its tail record: a second -y finishes (the file reads as the last fsync
        left it), -n after it is clean, and the torn bytes are kept once, whole, in
        one torn.kept-* file (before: a second one after a kill between keeping them
        and putting the block back)."""
        torn = self.torn_synced()

        def check(what):
            kept = [n for n in os.listdir(self.cont) if n.startswith("torn.kept-")]
            self.assertEqual(len(kept), 1, "%s: %s" % (what, kept))
            with open(os.path.join(self.cont, kept[0]), "rb") as f:
                self.assertEqual(f.read(), torn, what)
            m = self.e.mount(foreground=True)
            self.e.unlock(m, self.sid)
            self.assertEqual(sfs.read_file(os.path.join(m.sdir(self.sid), "synced.md")),
                             b"# synced\n" * 1000, what)
            self.e.assert_umount(m)

        self.kill_each_step(check)

    def test_torn_last_block_repair_fails_after_the_cut(self):
        """The torn block put back from its tail record fails after the file
        was cut (strace makes every pwrite64 after the first, the copy into
        torn.kept-*, fail with EIO): fsck -y reports the repair it could not
        make, exit 4 or 8, and the torn bytes stay in their torn.kept-* file,
        whole (before: the copy was removed on any failure, after the cut too,
        and those bytes were gone from the store)."""
        if not have_strace():
            self.skipTest("strace is not installed (.ci/deps installs it)")
        torn = self.torn_synced()
        log = self.e.path("strace-fail.log")
        r = subprocess.run(["strace", "-f", "-o", log, "-e", "trace=pwrite64,ftruncate",
                            "-e", "inject=pwrite64:error=EIO:when=2+",
                            FSCK, "-y", "--password-file", self.pw, self.e.store],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           env=sfs.traced_env(), timeout=sfs.TIMEOUT)
        calls = [x.split()[1].split("(")[0] for x in open(log).read().split("\n")
                 if "pwrite64(" in x or "ftruncate(" in x]
        # the copy, the cut, then the failed write of the block
        self.assertEqual(calls[:3], ["pwrite64", "ftruncate", "pwrite64"], calls)
        self.assertIn(r.returncode & (UNCORRECTED | ERROR), (UNCORRECTED, ERROR),
                      r.stdout + r.stderr)
        self.assertEqual(r.returncode & CORRECTED, 0, r.stdout + r.stderr)
        self.assertIn("repair failed (Input/output error): put block 2 back", r.stdout)
        kept = [n for n in os.listdir(self.cont) if n.startswith("torn.kept-")]
        self.assertEqual(len(kept), 1, kept)
        with open(os.path.join(self.cont, kept[0]), "rb") as f:
            self.assertEqual(f.read(), torn)

    def test_torn_last_block_repair_fails_before_the_cut(self):
        """The same repair failing at its first change (strace makes the cut,
        ftruncate, fail with EIO): the file is as it was, fsck -y reports the
        repair it could not make, and the torn.kept-* copy it made first is
        removed (a kept file left would hold up a rekey for nothing)."""
        if not have_strace():
            self.skipTest("strace is not installed (.ci/deps installs it)")
        self.torn_synced()
        back = [os.path.join(r, n) for r, _, ns in os.walk(self.cont) for n in ns
                if not os.path.islink(os.path.join(r, n))]
        before = {p: sfs.read_file(p) for p in back}
        r = subprocess.run(["strace", "-f", "-o", self.e.path("strace-fail.log"),
                            "-e", "trace=ftruncate", "-e", "inject=ftruncate:error=EIO",
                            FSCK, "-y", "--password-file", self.pw, self.e.store],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           env=sfs.traced_env(), timeout=sfs.TIMEOUT)
        self.assertIn("repair failed (Input/output error): put block 2 back", r.stdout)
        self.assertEqual(r.returncode & CORRECTED, 0, r.stdout + r.stderr)
        self.assertEqual([n for n in os.listdir(self.cont) if n.startswith("torn.kept-")], [])
        self.assertEqual({p: sfs.read_file(p) for p in back}, before)

    def kill_each_step(self, check):
        """fsck -y on (a copy of) the store as it is, killed after each of its
        store-changing calls in turn (FSCK_STEPS); after each kill -y exits 0 or 1,
        -n after it is clean and @check(what) holds."""
        template = self.e.path("template")
        shutil.copytree(self.e.store, template, symlinks=True)
        report = []
        k = 0
        while True:
            k += 1
            self.assertLess(k, 50, "fsck -y never completed")
            shutil.rmtree(self.e.store)
            shutil.copytree(template, self.e.store, symlinks=True)
            step = self.kill_at(FSCK_STEPS, k)
            if step is None:
                break
            what = "fsck -y killed after step %d (%s)" % (k, step[:100])
            r = self.fsck("-y")
            self.assertIn(r.returncode, (CLEAN, CORRECTED), "%s: %s%s" % (what, r.stdout,
                                                                          r.stderr))
            r = self.fsck("-n", "--json")
            self.assertEqual(r.returncode, CLEAN, "%s: %s%s" % (what, r.stdout, r.stderr))
            # no entry "sessionfs never makes": each leftover of fsck's own is named
            self.assertEqual([f for f in json.loads(r.stdout)["findings"]
                              if f["code"] == "unknown"], [], what)
            check(what)
            report.append(what)
        print("\n".join(report), file=sys.stderr)
        self.assertGreater(k, 3, "no step was traced")

    def test_flipped_content_byte(self):
        self.fsck("-n", password=False, expect=CLEAN)  # not visible without the key
        with open(self.back["notes"], "r+b") as f:
            f.seek(80 + 4136 + 100)
            b = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([b[0] ^ 1]))
        self.left("content")
        doc, _ = self.findings()
        f = [x for x in doc["findings"] if x["code"] == "content"][0]
        self.assertEqual(f["path"], "notes.md")
        self.assertTrue(f["path_decrypted"])
        self.assertIn("block 1", f["what"])

    def test_flipped_header_byte(self):
        with open(self.back["notes"], "r+b") as f:
            f.seek(60)
            b = f.read(1)
            f.seek(60)
            f.write(bytes([b[0] ^ 1]))
        self.left("header")

    def test_flipped_name(self):
        old = self.back["notes"]
        name = os.path.basename(old)
        new = name[:-2] + ("A" if name[-2] != "A" else "B") + name[-1]
        os.rename(old, os.path.join(self.root, new))
        self.repaired("name")
        m = self.e.mount(foreground=True, opts="xattr")
        self.e.unlock(m, self.sid)
        lf = os.path.join(m.sdir(self.sid), "lost+found")
        self.assertEqual(os.listdir(lf), ["#" + new[:64]])
        self.assertEqual(sfs.read_file(os.path.join(lf, "#" + new[:64])), b"# notes\n" * 1000)
        self.assertEqual(os.getxattr(os.path.join(lf, "#" + new[:64]), "user.origin"),
                         b"incident")
        self.assertNotIn("notes.md", os.listdir(m.sdir(self.sid)))
        self.e.assert_umount(m)

    def test_long_name_sidecar_removed(self):
        os.unlink(self.back["long"] + ".n")
        self.left("name", password=False)
        self.repaired("name")

    def metadata_restored(self):
        self.repaired("metadata")
        m = self.e.mount(foreground=True)
        self.e.unlock(m, self.sid)
        with open(os.path.join(m.sdir(self.sid), "metadata.json")) as f:
            doc = json.load(f)
        self.assertEqual(doc["id"], self.sid)
        self.assertRegex(doc["created"], sfs.ISO_Z_RE)
        self.assertEqual(doc["status"], "active")
        self.e.assert_umount(m)

    def test_metadata_missing(self):
        meta = [p for p in os.listdir(self.root) if len(p) == 39]
        self.assertEqual(len(meta), 1)  # metadata.json: 13 bytes, 39 characters
        os.unlink(os.path.join(self.root, meta[0]))
        self.metadata_restored()

    def test_metadata_restore_killed(self):
        """fsck -y killed after each of its store-changing calls in turn while it
        writes a missing metadata.json anew: a second -y finishes (the .sfs-meta-*
        a kill left is a leftover it removes), -n after it is clean, and
        metadata.json reads with the session's id."""
        meta = [p for p in os.listdir(self.root) if len(p) == 39]
        os.unlink(os.path.join(self.root, meta[0]))

        def check(what):
            self.assertEqual([n for n in os.listdir(self.root) if n.startswith(".sfs-")], [],
                             what)
            m = self.e.mount(foreground=True)
            self.e.unlock(m, self.sid)
            with open(os.path.join(m.sdir(self.sid), "metadata.json")) as f:
                self.assertEqual(json.load(f)["id"], self.sid, what)
            self.e.assert_umount(m)

        self.kill_each_step(check)

    def test_metadata_empty(self):
        meta = [p for p in os.listdir(self.root) if len(p) == 39][0]
        os.truncate(os.path.join(self.root, meta), 0)
        self.metadata_restored()

    def test_flipped_symlink(self):
        link = [n for n in os.listdir(self.root) if os.path.islink(os.path.join(self.root, n))][0]
        p = os.path.join(self.root, link)
        t = os.readlink(p)
        os.unlink(p)
        os.symlink(t[:5] + ("A" if t[5] != "A" else "B") + t[6:], p)
        self.left("symlink")

    def test_flipped_xattr_blob(self):
        sfsx = os.path.join(self.root, ".sfsx")
        p = os.path.join(sfsx, os.listdir(sfsx)[0])
        with open(p, "r+b") as f:
            f.seek(35)
            b = f.read(1)
            f.seek(35)
            f.write(bytes([b[0] ^ 1]))
        self.left("xattr")

    def test_event_record_damaged(self):
        with open(self.back["events"], "r+b") as f:
            f.seek(80 + 44 + 5)  # the payload of the first record
            b = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([b[0] ^ 1]))
        self.repaired("log-damage")
        m = self.e.mount(foreground=True)
        self.e.unlock(m, self.sid)
        d = m.sdir(self.sid)
        with open(os.path.join(d, "events.jsonl")) as f:
            lines = [json.loads(ln) for ln in f.read().splitlines()]
        # the first append (40 lines, one record) is lost: one marker stands for it
        self.assertEqual(len(lines), 81)
        self.assertEqual(lines[0]["sessionfs"], "damaged")
        self.assertGreater(lines[0]["bytes"], 0)
        self.assertEqual([x["i"] for x in lines[1:]], [1] * 40 + [2] * 40)
        old = [n for n in os.listdir(d) if n.startswith("events.damaged-")]
        self.assertEqual(len(old), 1)
        with open(os.path.join(d, "events.jsonl"), "a") as f:
            f.write('{"type":"note","after":"salvage"}\n')
        self.e.assert_umount(m)
        self.fsck("-n", expect=CLEAN)

    def kill_at(self, call, nth=1):
        """fsck -y killed (-9) right after its @nth call of those in @call: that
        call's strace line, or None if fsck -y completed first. One system call
        (fsck makes its repairs on one thread): strace holds only its @nth
        invocation, for HOLD_S (when=@nth: strace counts per syscall and per
        thread, and no other thread of fsck makes these calls), so the kill
        lands while it is held however late this process sees the line, as it
        may on a loaded machine (mount tests run two at a time); those tests
        check the state of that very step. A set of calls (the step-by-step
        loop, whose checks accept the state after any step): each is held
        STEP_DELAY_MS, the @nth killed."""
        if not have_strace():
            self.skipTest("strace is not installed (.ci/deps installs it)")
        log = self.e.path("strace-%d.log" % nth)
        if os.path.exists(log):
            os.unlink(log)  # not the lines of a run before
        one = "," not in call
        inject = ("%s:delay_exit=%ds:when=%d" % (call, HOLD_S, nth) if one else
                  "%s:delay_exit=%dms" % (call, STEP_DELAY_MS))
        want = 1 if one else nth
        st = subprocess.Popen(["strace", "-f", "-o", log, "-e", "trace=" + call,
                               "-e", "inject=" + inject,
                               FSCK, "-y", "--password-file", self.pw, self.e.store],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=sfs.traced_env())
        try:
            held = []
            while len(held) < want and st.poll() is None:
                time.sleep(0.002)
                try:
                    with open(log) as f:
                        held = [x for x in f.read().split("\n") if "(DELAYED)" in x]
                except FileNotFoundError:
                    pass
            if len(held) < want:
                st.wait()
                self.assertEqual(st.returncode, CORRECTED)
                return None  # fsck -y made fewer such calls, and completed
            # strace -f names the thread; the process is its thread group
            with open("/proc/%s/status" % held[want - 1].split()[0]) as f:
                pid = int(re.search(r"^Tgid:\s*(\d+)", f.read(), re.M).group(1))
            os.kill(pid, signal.SIGKILL)
        finally:
            # A traced process stays stopped, its SIGKILL pending, until strace
            # lets it go, and strace would sit out the rest of the hold
            st.kill()
            st.wait(timeout=30)
        # fsck gone: every thread of it, so its descriptors and lock are released
        end = time.monotonic() + 30
        while time.monotonic() < end and not gone(pid):
            time.sleep(0.002)
        self.assertTrue(gone(pid), "fsck -y (pid %d) lives on after SIGKILL" % pid)
        return held[want - 1]

    def test_salvage_interrupted(self):
        """fsck -y killed between the link that keeps the damaged log as
        events.damaged-<hex>.jsonl and the rename of the new log over events.jsonl:
        the old log has two names (one backing inode, two links). A mount shows
        them as two hard links of one file; fsck -n reports the interrupted salvage
        and changes nothing; -y finishes it under the name it already kept (not a
        third one), and -n after it is clean."""
        with open(self.back["events"], "r+b") as f:
            f.seek(80 + 44 + 5)  # the payload of the first record
            b = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([b[0] ^ 1]))
        self.assertIsNotNone(self.kill_at("linkat"))
        ino = os.stat(self.back["events"]).st_ino
        names = sorted(n for n in os.listdir(self.root)
                       if os.lstat(os.path.join(self.root, n)).st_ino == ino)
        self.assertEqual(len(names), 2, names)
        self.assertEqual(os.stat(self.back["events"]).st_nlink, 2)
        # a mount shows two hard links of one file, both reading the old log
        m = self.e.mount(foreground=True)
        self.e.unlock(m, self.sid)
        d = m.sdir(self.sid)
        kept = [n for n in os.listdir(d) if n.startswith("events.damaged-")]
        self.assertEqual(len(kept), 1, os.listdir(d))
        a, b = os.stat(os.path.join(d, "events.jsonl")), os.stat(os.path.join(d, kept[0]))
        self.assertEqual((a.st_ino, a.st_size), (b.st_ino, b.st_size))
        self.assertEqual((a.st_nlink, b.st_nlink), (2, 2))
        self.assertEqual(events_lines(os.path.join(d, "events.jsonl")),
                         events_lines(os.path.join(d, kept[0])))
        self.e.assert_umount(m)
        # -n reports the interrupted salvage, and changes nothing
        before = tree_hash(self.e.store)
        doc, rc = self.findings()
        self.assertEqual(rc, UNCORRECTED)
        f = [x for x in doc["findings"] if x["path"] == "events.jsonl"]
        self.assertEqual([x["code"] for x in f], ["log-damage"], doc)
        self.assertIn("interrupted salvage", f[0]["what"])
        self.assertIn(kept[0], f[0]["what"])
        self.assertIn(kept[0], f[0]["repair"])
        self.assertEqual(tree_hash(self.e.store), before, "-n changed the store")
        # -y finishes it under the kept name; -n after is clean
        self.fsck("-y", expect=CORRECTED)
        self.fsck("-n", expect=CLEAN)
        # the damaged log keeps one name, the one the killed run gave it
        kept_back = [n for n in names if n != os.path.basename(self.back["events"])]
        self.assertEqual(sorted(n for n in os.listdir(self.root)
                                if os.lstat(os.path.join(self.root, n)).st_ino == ino),
                         kept_back)
        m = self.e.mount(foreground=True)
        self.e.unlock(m, self.sid)
        d = m.sdir(self.sid)
        self.assertEqual([n for n in os.listdir(d) if n.startswith("events.damaged-")], kept)
        with open(os.path.join(d, "events.jsonl")) as f:
            lines = [json.loads(ln) for ln in f.read().splitlines()]
        self.assertEqual(lines[0]["sessionfs"], "damaged")
        self.assertEqual([x["i"] for x in lines[1:]], [1] * 40 + [2] * 40)
        self.assertNotEqual(os.stat(os.path.join(d, "events.jsonl")).st_ino,
                            os.stat(os.path.join(d, kept[0])).st_ino)
        self.e.assert_umount(m)

    def test_big_log_damaged_in_several_chunks(self):
        # A log of several MiB is read a MiB (256 frames) at a time, the next MiB read and
        # opened on another thread while the walk goes through this one: damage inside a
        # chunk and across the boundary of two is reported and salvaged all the same.
        m = self.e.mount(foreground=True)
        self.e.unlock(m, self.sid)
        ev = os.path.join(m.sdir(self.sid), "events.jsonl")
        for a in range(300):
            with open(ev, "a") as f:
                f.write("".join('{"type":"note","a":%d,"n":%d,"pad":"%s"}\n'
                                % (a, n, "p" * 100) for n in range(100)))
        with open(ev) as f:
            before = f.read().splitlines()
        self.e.assert_umount(m)
        chunk = 256 * 4096
        self.assertGreater(os.path.getsize(self.back["events"]), 3 * chunk)
        with open(self.back["events"], "r+b") as f:
            f.seek(80 + chunk + 10 * 4096 + 700)  # inside the second chunk
            b = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([b[0] ^ 1]))
            f.seek(80 + 2 * chunk - 3000)  # across the second and third
            f.write(b"\0" * 6000)
        doc, rc = self.findings()
        self.assertEqual(rc, UNCORRECTED)
        dmg = [f for f in doc["findings"] if f["code"] == "log-damage"]
        self.assertEqual(len(dmg), 1)
        self.assertIn("2 span(s)", dmg[0]["what"])
        self.fsck("-y", expect=CORRECTED)
        self.fsck("-n", expect=CLEAN)
        m = self.e.mount(foreground=True)
        self.e.unlock(m, self.sid)
        with open(os.path.join(m.sdir(self.sid), "events.jsonl")) as f:
            after = f.read().splitlines()
        self.e.assert_umount(m)
        marks = [ln for ln in after if '"sessionfs":"damaged"' in ln]
        kept = [ln for ln in after if '"sessionfs":"damaged"' not in ln]
        self.assertEqual(len(marks), 2)
        # what is kept is the log's lines in order, less those of the two spans
        it = iter(before)
        self.assertTrue(all(ln in it for ln in kept))
        self.assertGreater(len(kept), len(before) - 200)
        # before the first span and after the last, every line
        head, tail = after[:after.index(marks[0])], after[after.index(marks[1]) + 1:]
        self.assertEqual(head, before[:len(head)])
        self.assertEqual(tail, before[len(before) - len(tail):])
        self.assertGreater(len(head), 3000)
        self.assertGreater(len(tail), 10000)

    # --- the event log's torn tail ---

    def test_torn_tail(self):
        size = os.path.getsize(self.back["events"])
        os.truncate(self.back["events"], size - 10)
        before = tree_hash(self.e.store)
        self.assertIn("torn-tail", self.codes())
        self.assertEqual(tree_hash(self.e.store), before)
        self.fsck("-n", password=False, expect=CLEAN)  # only the key tells
        self.fsck("-y", expect=CORRECTED)
        kept = [n for n in os.listdir(self.cont) if n.startswith("events.kept-")]
        self.assertEqual(len(kept), 1)
        self.fsck("-n", expect=CLEAN)
        # what is left reads as two whole appends
        m = self.e.mount(foreground=True)
        self.e.unlock(m, self.sid)
        with open(os.path.join(m.sdir(self.sid), "events.jsonl")) as f:
            lines = f.read().splitlines()
        self.assertEqual(len(lines), 80)
        for ln in lines:
            json.loads(ln)

    def torn_big_append(self):
        """A 300 KB append (many records) cut 1000 stored bytes short, as a crash in
        the middle of it leaves: its whole records before the cut hold whole lines."""
        m = self.e.mount(foreground=True)
        self.e.unlock(m, self.sid)
        with open(os.path.join(m.sdir(self.sid), "events.jsonl"), "a") as f:
            f.write("".join('{"type":"note","big":%d,"pad":"%s"}\n' % (j, "x" * 200)
                            for j in range(1200)))
        self.e.assert_umount(m)
        os.truncate(self.back["events"], os.path.getsize(self.back["events"]) - 1000)

    def event_ids(self):
        m = self.e.mount(foreground=True)
        self.e.unlock(m, self.sid)
        with open(os.path.join(m.sdir(self.sid), "events.jsonl")) as f:
            lines = [json.loads(ln) for ln in f.read().splitlines()]
        self.e.assert_umount(m)
        return [(x.get("i"), x.get("j"), x.get("big")) for x in lines]

    def test_torn_tail_cut_interrupted(self):
        """fsck -y killed after it kept a torn tail's bytes in events.kept-* and
        before it cut them off the log: the next -y cuts the tail without keeping
        the same bytes a second time, and appends each line at most once; -n after
        it is clean."""
        self.torn_big_append()
        template = self.e.path("template")
        shutil.copytree(self.e.store, template, symlinks=True)
        size = os.path.getsize(self.back["events"])
        self.fsck("-y", expect=CORRECTED)
        self.fsck("-n", expect=CLEAN)
        want = self.event_ids()
        self.assertEqual(len(want), 120 + len([x for x in want if x[2] is not None]))
        self.assertGreater(len(want), 1000)
        self.assertEqual(len([n for n in os.listdir(self.cont)
                              if n.startswith("events.kept-")]), 1)
        # killed after the kept file's header, after its first 256 KiB, after its
        # fsync and after the container's: the log is not cut yet
        # (then an unlock, which cuts a torn tail the same way, before the second -y)
        for call, nth, unlock in (("pwrite64", 1, False), ("pwrite64", 2, False),
                                  ("fsync", 1, False), ("fsync", 2, False),
                                  ("pwrite64", 2, True)):
            shutil.rmtree(self.e.store)
            shutil.copytree(template, self.e.store, symlinks=True)
            step = self.kill_at(call, nth)
            self.assertIsNotNone(step, "fsck -y made fewer than %d %s" % (nth, call))
            what = "fsck -y killed after %s" % step
            self.assertEqual(os.path.getsize(self.back["events"]), size, what)
            self.assertEqual(len([n for n in os.listdir(self.cont)
                                  if n.startswith("events.kept-")]), 1, what)
            doc, rc = self.findings()
            self.assertEqual(rc, UNCORRECTED, what)
            if unlock:
                m = self.e.mount(foreground=True)
                self.e.unlock(m, self.sid)
                self.e.assert_umount(m)
                self.assertLess(os.path.getsize(self.back["events"]), size, what)
                self.assertEqual(len([n for n in os.listdir(self.cont)
                                      if n.startswith("events.kept-")]), 1, what)
            r = self.fsck("-y")
            self.assertEqual(r.returncode, CORRECTED, "%s: %s%s" % (what, r.stdout, r.stderr))
            r = self.fsck("-n")
            self.assertEqual(r.returncode, CLEAN, "%s: %s%s" % (what, r.stdout, r.stderr))
            # each line once: the tail kept once, its lines appended once
            self.assertEqual(self.event_ids(), want, what)
            self.assertEqual(len([n for n in os.listdir(self.cont)
                                  if n.startswith("events.kept-")]), 1, what)

    def test_kept_lines_reappended(self):
        # a lost sector (zeros) in the second append, as a power loss leaves it: unlock
        # cuts from there and keeps the second and third appends in events.kept-*
        with open(self.back["events"], "r+b") as f:
            f.seek(80 + 1300)
            f.write(b"\0" * 600)
        m = self.e.mount(foreground=True)
        self.e.unlock(m, self.sid)
        with open(os.path.join(m.sdir(self.sid), "events.jsonl")) as f:
            self.assertEqual(len(f.read().splitlines()), 40)
        self.e.assert_umount(m)
        self.assertEqual(len([n for n in os.listdir(self.cont)
                              if n.startswith("events.kept-")]), 1)
        self.fsck("-n", password=False, expect=CLEAN)  # only the key reads them
        self.repaired("kept")
        m = self.e.mount(foreground=True)
        self.e.unlock(m, self.sid)
        with open(os.path.join(m.sdir(self.sid), "events.jsonl")) as f:
            lines = [json.loads(ln) for ln in f.read().splitlines()]
        self.assertEqual([x["i"] for x in lines], [0] * 40 + [2] * 40)
        self.e.assert_umount(m)
        self.assertTrue([n for n in os.listdir(self.cont) if n.endswith(".appended")])

    # --- a live mount ---

    def test_live_mount_skipped(self):
        m = self.e.mount(foreground=True)
        self.e.unlock(m, self.sid)
        try:
            before = tree_hash(self.e.store)
            doc, rc = self.findings()
            self.assertEqual(rc, UNCORRECTED)
            self.assertEqual([f["code"] for f in doc["findings"]], ["busy"])
            self.assertEqual(doc["findings"][0]["state"], "skipped")
            self.fsck("-y", expect=UNCORRECTED)
            self.assertEqual(tree_hash(self.e.store), before)
            # a leftover made now (as a crash of another mount would) stays
            open(os.path.join(self.root, ".sfs-new-0123456789abcdef"), "w").close()
            self.fsck("-y", expect=UNCORRECTED)
            self.assertTrue(os.path.exists(os.path.join(self.root,
                                                        ".sfs-new-0123456789abcdef")))
        finally:
            self.e.assert_umount(m)
        self.repaired("leftover", password=False)


# fsck's calls that change the store (and its writes to stdout): each is held
# in turn (strace delay_exit) and fsck is killed while it is held
FSCK_STEPS = ("pwrite64,pwritev,write,ftruncate,fallocate,renameat,renameat2,linkat,"
              "unlinkat,fsync,fdatasync,mkdirat,symlinkat,fsetxattr")
STEP_DELAY_MS = 150
# kill_at: how long the one call it kills at is held (killed long before)
HOLD_S = 60


def gone(pid):
    """Has process @pid ended, every thread of it (a zombie or reaped)?"""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state in "ZX" and os.listdir("/proc/%d/task" % pid) in ([], [str(pid)])
    except FileNotFoundError:
        return True


def have_strace():
    return subprocess.run(["strace", "-V"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def events_lines(path):
    """The lines of events.jsonl at @path that read, parsed, and the number of
    bytes that fail with EIO (a damaged record): read in 512-byte pieces, a piece
    that fails read again byte by byte; only lines whose every byte reads count."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        data, bad = [], 0
        for off in range(0, size, 512):
            try:
                data += [bytes([c]) for c in os.pread(fd, 512, off)]
            except OSError as ex:
                if ex.errno != 5:
                    raise
                for o in range(off, min(off + 512, size)):
                    try:
                        data.append(os.pread(fd, 1, o))
                    except OSError as ex:
                        if ex.errno != 5:
                            raise
                        bad += 1
                        data.append(None)
    finally:
        os.close(fd)
    # after bytes that fail, a line is kept if it is a JSON object (as fsck's
    # salvage does: a proper suffix of an object line is no object)
    lines, cur, after_bad = [], b"", False
    for c in data:
        if c is None:
            cur, after_bad = b"", True
        elif c == b"\n":
            try:
                lines.append(json.loads(cur))
            except ValueError:
                if not after_bad:
                    raise
            cur, after_bad = b"", False
        else:
            cur += c
    return lines, bad


class FsckKillTest(unittest.TestCase):
    """kill -9 of fsck.sessionfs -y after each of its store-changing calls in turn
    (strace holds each for a moment), during the three repairs that write most: the
    salvage of a damaged event log, the re-append of an events.kept-* file's lines
    and a move into lost+found, all three in one run. After every kill the session
    unlocks through a real mount with every readable line present (no line twice);
    a second fsck -y then -n is clean; the lines are exactly those of the first
    repair's result; the store never holds less than before."""

    def setUp(self):
        sfs.need_binaries(FSCK)
        if not have_strace():
            self.skipTest("strace is not installed (.ci/deps installs it)")
        self.e = sfs.Env()
        self.addCleanup(self.e.cleanup)
        self.pw = self.e.pwfile(sfs.PASSWORD)
        m = self.e.mount(foreground=True)
        self.sid = self.e.new(m)
        d = m.sdir(self.sid)
        sfs.write_file(os.path.join(d, "notes.md"), b"# notes\n" * 1000)
        ev = os.path.join(d, "events.jsonl")
        back = sfs.backing_of(self.e.store, self.sid, ev)
        ends = []
        for i in range(4):  # four appends, one record each
            with open(ev, "a") as f:
                f.write("".join('{"type":"note","i":%d,"j":%d}\n' % (i, j) for j in range(40)))
            ends.append(os.path.getsize(back))
        notes = sfs.backing_of(self.e.store, self.sid, os.path.join(d, "notes.md"))
        self.e.assert_umount(m)
        # a lost sector in the third append: unlock cuts it and the fourth into events.kept-*
        self.assertGreater(ends[2] - ends[1], 800)
        with open(back, "r+b") as f:
            f.seek(ends[1] + 100)
            f.write(b"\0" * 600)
        m = self.e.mount(foreground=True)
        self.e.unlock(m, self.sid)
        self.e.assert_umount(m)
        self.cont = os.path.join(self.e.store, "sessions", self.sid)
        self.assertEqual(len([n for n in os.listdir(self.cont) if n.startswith("events.kept-")]), 1)
        # damage in the first record (salvage) and a name that does not decrypt (lost+found)
        with open(back, "r+b") as f:
            f.seek(80 + 44 + 5)
            b = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([b[0] ^ 1]))
        name = os.path.basename(notes)
        os.rename(notes, os.path.join(os.path.dirname(notes),
                                      name[:-2] + ("A" if name[-2] != "A" else "B") + name[-1]))
        self.template = self.e.path("template")
        shutil.copytree(self.e.store, self.template, symlinks=True)
        self.assertEqual(sorted(self.codes()), ["kept", "log-damage", "name"])

    def fsck(self, *args):
        return subprocess.run([FSCK] + list(args) + ["--password-file", self.pw, self.e.store],
                              capture_output=True, text=True, timeout=sfs.TIMEOUT,
                              stdin=subprocess.DEVNULL)

    def codes(self):
        r = self.fsck("-n", "--json")
        return [f["code"] for f in json.loads(r.stdout)["findings"] if f["state"] != "note"]

    def session(self):
        """Mount, unlock: (the events lines that read, pieces that failed, lost+found)."""
        m = self.e.mount(foreground=True)
        try:
            self.e.unlock(m, self.sid)
            d = m.sdir(self.sid)
            lines, bad = events_lines(os.path.join(d, "events.jsonl"))
            lf = os.path.join(d, "lost+found")
            lost = {n: sfs.read_file(os.path.join(lf, n)) for n in os.listdir(lf)} \
                if os.path.isdir(lf) else {}
            self.damaged = sorted(n for n in os.listdir(d) if n.startswith("events.damaged-"))
            # every other file reads whole
            for root, dirs, files in os.walk(d):
                for n in files:
                    if not n.startswith("events."):
                        sfs.read_file(os.path.join(root, n))
        finally:
            self.e.assert_umount(m)
        return lines, bad, lost

    def reset(self):
        shutil.rmtree(self.e.store)
        shutil.copytree(self.template, self.e.store, symlinks=True)

    def held(self, log):
        try:
            with open(log) as f:
                return [x for x in f.read().split("\n") if "(DELAYED)" in x]
        except FileNotFoundError:
            return []

    def test_kill_fsck_during_repairs(self):
        # the result of an uninterrupted run
        r = self.fsck("-y")
        self.assertEqual(r.returncode, CORRECTED, r.stdout + r.stderr)
        self.assertEqual(self.fsck("-n").returncode, CLEAN)
        want, bad, want_lost = self.session()
        self.assertEqual(bad, 0)
        self.assertEqual(want[0]["sessionfs"], "damaged")
        self.assertEqual([x["i"] for x in want[1:]], [1] * 40 + [3] * 40)
        self.assertEqual(list(want_lost.values()), [b"# notes\n" * 1000])
        log = self.e.path("strace.log")
        report = []
        k = sfs.KILL_FIRST - sfs.KILL_STRIDE
        while True:
            k += sfs.KILL_STRIDE
            self.assertLess(k, 200, "fsck -y never completed")
            self.reset()
            st = subprocess.Popen(["strace", "-f", "-o", log, "-e", "trace=" + FSCK_STEPS,
                                   "-e", "inject=%s:delay_exit=%dms" % (FSCK_STEPS,
                                                                         STEP_DELAY_MS),
                                   FSCK, "-y", "--password-file", self.pw, self.e.store],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, env=sfs.traced_env())
            while len(self.held(log)) < k and st.poll() is None:
                time.sleep(0.002)
            steps = self.held(log)
            if len(steps) < k:
                st.wait()
                self.assertEqual(st.returncode, CORRECTED)
                break
            step = steps[k - 1]
            os.kill(int(step.split()[0]), signal.SIGKILL)
            st.wait(timeout=30)
            what = "fsck -y killed after step %d (%s)" % (k, step)
            # the session opens, and no readable line is lost or doubled
            lines, bad, lost = self.session()
            marks = [x for x in lines if "sessionfs" in x]
            ids = [x["i"] for x in lines if "i" in x]
            self.assertLessEqual(set(ids), {1, 3}, what)
            self.assertEqual([i for i in ids if i == 1], [1] * 40, what)
            self.assertIn([i for i in ids if i == 3], ([], [3] * 40), what)
            self.assertLessEqual(len(marks), 1, what)
            # lost+found or the name that does not decrypt: the bytes are there
            self.assertIn(list(lost.values()), ([], [b"# notes\n" * 1000]), what)
            # a second run mends the rest, a third finds nothing
            r = self.fsck("-y")
            self.assertIn(r.returncode, (CLEAN, CORRECTED), "%s: %s%s" % (what, r.stdout,
                                                                          r.stderr))
            r = self.fsck("-n")
            self.assertEqual(r.returncode, CLEAN, "%s: %s%s" % (what, r.stdout, r.stderr))
            lines, bad, lost = self.session()
            self.assertEqual(bad, 0, what)
            self.assertEqual(lines, want, what)
            # the damaged log is kept once, under one name (a kill between the salvage's
            # link and its rename left it under two: the rerun made a third)
            self.assertEqual(len(self.damaged), 1, "%s: %s" % (what, self.damaged))
            self.assertEqual(list(lost.values()), list(want_lost.values()), what)
            report.append("%s: %s" % (what, "ok"))
        print("\n".join(report), file=sys.stderr)
        self.assertGreater(k, 5, "no step was traced")


# the daemon's calls that change the store, held in turn before it is killed
DAEMON_STEPS = ("mkdirat,unlinkat,renameat,renameat2,linkat,symlinkat,pwrite64,fallocate,"
                "ftruncate,fsync")


class FsckAfterDaemonKillTest(CrashBase):
    """kill -9 of the daemon after each of its store-changing calls in turn (strace
    holds each for a moment) during an events.jsonl append, a rename of a long name
    over another and `sessionctl new`; after each kill, with the dead mount detached:
    fsck -n exits 0 or 4 (never an operational error) and changes nothing, -y mends
    (exit 1 exactly when -n reported something), -n after it is clean, and the store
    mounts, every session unlocks and reads whole, and events.jsonl holds every line
    acknowledged before the kill."""

    def setUp(self):
        sfs.need_binaries(FSCK)
        if not have_strace():
            self.skipTest("strace is not installed (.ci/deps installs it)")
        super().setUp()
        self.pw = self.e.pwfile(sfs.PASSWORD)
        self.sid = self.e.new(self.m)
        self.found = {}

    def fsck(self, *args):
        return subprocess.run([FSCK] + list(args) + ["--password-file", self.pw, self.e.store],
                              capture_output=True, text=True, timeout=sfs.TIMEOUT,
                              stdin=subprocess.DEVNULL)

    def trace(self, log):
        st = subprocess.Popen(["strace", "-f", "-p", str(self.m.proc.pid), "-o", log,
                               "-e", "trace=" + DAEMON_STEPS,
                               "-e", "inject=%s:delay_exit=%dms" % (DAEMON_STEPS,
                                                                     STEP_DELAY_MS)],
                              stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        line = st.stderr.readline()
        if "attached" not in line:
            st.kill()
            st.wait()
            st.stderr.close()
            self.fail("strace did not attach: %r" % line)
        return st

    def mended(self, what):
        """fsck -n, -y, -n on the store of the dead mount; its codes."""
        before = tree_hash(self.e.store)
        r = self.fsck("-n", "--json")
        self.assertIn(r.returncode, (CLEAN, UNCORRECTED), "%s: %s%s" % (what, r.stdout, r.stderr))
        codes = sorted(f["code"] for f in json.loads(r.stdout)["findings"]
                       if f["state"] != "note")
        self.assertEqual(bool(codes), r.returncode == UNCORRECTED, what)
        self.assertEqual(tree_hash(self.e.store), before, "%s: -n changed the store" % what)
        r = self.fsck("-y")
        self.assertEqual(r.returncode, CORRECTED if codes else CLEAN,
                         "%s: %s%s" % (what, r.stdout, r.stderr))
        r = self.fsck("-n")
        self.assertEqual(r.returncode, CLEAN, "%s: %s%s" % (what, r.stdout, r.stderr))
        return codes

    def check_sessions(self, what):
        """Every session listed unlocks, lists and reads whole; its events lines parse."""
        for x in self.e.list(self.m):
            sid = x["id"]
            if x.get("state", x.get("status")) != "unlocked":
                self.e.unlock(self.m, sid)
            for root, dirs, files in os.walk(self.m.sdir(sid)):
                for n in files:
                    sfs.read_file(os.path.join(root, n))
            with open(os.path.join(self.m.sdir(sid), "events.jsonl")) as f:
                for ln in f.read().splitlines():
                    json.loads(ln)

    def kill_each_step(self, name, prepare, argv, check):
        log = self.e.path("strace-%s.log" % name)
        k = sfs.KILL_FIRST - sfs.KILL_STRIDE
        while True:
            k += sfs.KILL_STRIDE
            self.assertLess(k, 60, "%s: never completed" % name)
            ctx = prepare(k)
            st = self.trace(log)
            op = subprocess.Popen(argv(ctx), stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            while self.held(log) < k and op.poll() is None:
                time.sleep(0.002)
            if op.poll() is not None and self.held(log) < k:
                st.terminate()
                st.wait()
                st.stderr.close()
                self.assertEqual(op.returncode, 0, "%s: %s" % (name, op.stderr.read()))
                op.stderr.close()
                break
            self.crash(op)
            op.stderr.close()
            st.wait(timeout=30)
            st.stderr.close()
            with open(log) as f:
                step = [x for x in f.read().split("\n") if "(DELAYED)" in x][k - 1]
            what = "%s, daemon killed after step %d (%s)" % (name, k, step[:120])
            codes = self.mended(what)
            self.found["%s step %d %s" % (name, k, step.split("(", 1)[0].split()[-1])] = codes
            self.remount()
            self.check_sessions(what)
            check(ctx, what)
        self.assertGreater(k, 1, "%s: no step was traced" % name)

    def held(self, log):
        try:
            with open(log) as f:
                return f.read().count("(DELAYED)")
        except FileNotFoundError:
            return 0

    def tearDown(self):
        print("\n".join("%s: fsck found %s" % (k, v or "nothing")
                        for k, v in self.found.items()), file=sys.stderr)

    def test_kill_during_append(self):
        ev = lambda: os.path.join(self.m.sdir(self.sid), "events.jsonl")
        # 300 KB of lines: several frames of records in one append
        big = "".join('{"type":"note","k":%%d,"j":%d,"pad":"%s"}\n' % (j, "x" * 200)
                      for j in range(1200))

        def prepare(k):
            with open(ev()) as f:
                return [ln for ln in f.read().splitlines()]

        def argv(before):
            src = self.e.path("append-%d" % len(before))
            with open(src, "w") as f:
                f.write(big.replace("%d", str(len(before))))
            return py("open(sys.argv[1], 'a').write(open(sys.argv[2]).read())", ev(), src)

        def check(before, what):
            with open(ev()) as f:
                now = f.read().splitlines()
            self.assertEqual(now[:len(before)], before, "%s: lines lost" % what)
            self.assertIn(len(now) - len(before), (0, 1200), what)

        self.kill_each_step("append", prepare, argv, check)

    def test_kill_during_rename_long(self):
        def prepare(k):
            d = os.path.join(self.m.sdir(self.sid), "r%d" % k)
            os.mkdir(d)
            sfs.write_file(os.path.join(d, LONG_A), "A\n")
            sfs.write_file(os.path.join(d, LONG_B), "B\n")
            return d

        def argv(d):
            return py("os.rename(sys.argv[1], sys.argv[2])", os.path.join(d, LONG_A),
                      os.path.join(d, LONG_B))

        def check(d, what):
            got = {n: sfs.read_file(os.path.join(d, n)) for n in os.listdir(d)}
            self.assertIn(got, ({LONG_A: b"A\n", LONG_B: b"B\n"}, {LONG_B: b"A\n"}), what)

        self.kill_each_step("rename-long", prepare, argv, check)

    def test_kill_during_passwd_add(self):
        """passwd --add (a key slot added: the key file replaced through a
        temporary) with the daemon killed after each step: a temporary left
        (.tmp.key.*) is reported as an interrupted key-file write and removed
        by -y (mended() checks the exit bits: before, it was a note, "an entry
        sessionfs never makes", and stayed); the session opens with its old
        password, and with the new one exactly when the rename was made."""
        new_pw = "a second password"

        def prepare(k):
            sid = self.e.new(self.m)
            return sid, os.path.join(self.e.store, "sessions", sid)

        def argv(ctx):
            return [sfs.SESSIONCTL, "passwd", "--add", "--password-file", self.pw,
                    "--new-password-file", self.e.pwfile(new_pw), self.m.sdir(ctx[0])]

        def check(ctx, what):
            sid, cont = ctx
            self.assertEqual([n for n in os.listdir(cont) if n.startswith(".tmp.")], [], what)
            self.e.lock(self.m, sid)
            r = self.e.ctl("unlock", self.m.sdir(sid), password=new_pw)
            self.assertIn(r.rc, (0, 3), "%s: %r" % (what, r))  # added or not, never half
            if r.rc == 0:
                self.e.lock(self.m, sid)
            self.e.unlock(self.m, sid)

        self.kill_each_step("passwd-add", prepare, argv, check)
        left = [k for k, v in self.found.items() if k.startswith("passwd-add") and v]
        self.assertTrue(left, "no step left a temporary: %s" % self.found)
        self.assertTrue(all(self.found[k] == ["leftover"] for k in left), self.found)

    def test_kill_during_new(self):
        def prepare(k):
            return {x["id"] for x in self.e.list(self.m)}

        def argv(before):
            return [sfs.SESSIONCTL, "new", "--password-file", self.pw, self.m.mnt]

        def check(before, what):
            now = {x["id"] for x in self.e.list(self.m)}
            self.assertTrue(before <= now, what)
            self.assertLessEqual(len(now - before), 1, what)
            self.assertEqual(self.leftovers(), [], what)

        self.kill_each_step("new", prepare, argv, check)
        # a kill in the middle of `new` leaves a half-made container that fsck reports
        self.assertTrue(any(v for k, v in self.found.items()), self.found)


if __name__ == "__main__":
    sfs.main()
