#!/usr/bin/env python3
"""
test_audit.py - the store's audit trail (doc/format.md "Audit trail",
sessionctl(1) audit) through real mounts: every unlock (right and wrong
password), lock (by a command, idle_lock, max_unlock, unmount), new, delete,
passwd, archive and restore (mv), repair (what unlock cut), use and mount is
one JSON line in STORE/audit.jsonl with time, session, uid, pid
and comm; a request's "by" marks what acted (prune); a storm of wrong
passwords is one line each; the file is 0600 and holds no password, no
session name and no plaintext; it rotates to audit.jsonl.1; sessionctl audit
reads it through the mount or the store, --json and --since, and refuses a
--since that does not parse.
"""
import json
import os
import stat
import subprocess
import time
import unittest

import sfs


with open("/proc/self/comm") as _f:
    MY_COMM = _f.read().strip()   # what the daemon sees for this process's mv


def audit(e, where, *args):
    """sessionctl audit --json ARGS WHERE -> the records (asserts exit 0)."""
    r = e.ctl("audit", "--json", *args, where)
    if r.rc != 0:
        raise AssertionError("sessionctl audit failed: %r" % r)
    return json.loads(r.out)


def ask(m, req):
    """One raw request over the control file -> the response."""
    fd = os.open(os.path.join(m.mnt, ".sessionfs"), os.O_RDWR)
    try:
        data = json.dumps(req).encode()
        os.write(fd, data)
        return json.loads(os.read(fd, 1 << 20))
    finally:
        os.close(fd)


def wait_locked(e, m, sid, limit=60):
    """Poll list until @sid is locked (a hang guard, not a timing check)."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if all(s["locked"] for s in e.list(m) if s["id"] == sid):
            return
        time.sleep(0.2)
    raise AssertionError("%s not locked after %d s" % (sid, limit))


class AuditTest(unittest.TestCase):
    def setUp(self):
        sfs.need_binaries()
        self.e = sfs.Env()
        self.addCleanup(self.e.cleanup)
        self.m = self.e.mount()
        self.trail = os.path.join(self.e.store, "audit.jsonl")

    def records(self, event=None, sid=None):
        return [r for r in audit(self.e, self.m.mnt)
                if (event is None or r["event"] == event)
                and (sid is None or r.get("session") == sid)]

    def test_failed_unlock_storm_one_line_each(self):
        sid = self.e.new(self.m)
        self.e.lock(self.m, sid)
        for _ in range(20):
            r = self.e.ctl("unlock", self.m.sdir(sid), password="not the password")
            self.assertEqual(r.rc, 3, r)
        bad = [r for r in self.records("unlock", sid) if r["ok"] is False]
        self.assertEqual(len(bad), 20)
        for r in bad:
            self.assertEqual(r["error"], "wrong-password")
            self.assertEqual(r["uid"], os.getuid())
            self.assertEqual(r["comm"], "sessionctl")
            self.assertIsInstance(r["pid"], int)
            self.assertTrue(sfs.ISO_Z_RE.match(r["time"]), r)
        self.assertEqual(len({r["pid"] for r in bad}), 20)   # 20 processes, 20 pids
        # the table says so too, one FAILED row each
        t = self.e.ctl("audit", self.m.mnt)
        self.assertEqual(t.rc, 0, t)
        self.assertEqual(t.out.count("FAILED wrong-password"), 20, t.out)

    def test_every_kind_of_event(self):
        name = "secret-name-7d1c"
        sid = self.e.new(self.m, name=name)
        secret_line = '{"type":"note","text":"plaintext-marker-91ab"}\n'
        with open(os.path.join(self.m.sdir(sid), "events.jsonl"), "a") as f:
            f.write(secret_line)
        sfs.write_file(os.path.join(self.m.sdir(sid), "file-name-marker-55e2"), b"x")
        self.e.lock(self.m, sid)
        self.e.unlock(self.m, sid)
        r = self.e.ctl("passwd", self.m.sdir(sid), password="wrong one", new_password="n2")
        self.assertEqual(r.rc, 3, r)
        r = self.e.ctl("passwd", self.m.sdir(sid), password=sfs.PASSWORD,
                       new_password="second password")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(self.e.ctl("use", self.m.sdir(sid)).rc, 0)
        os.rename(self.m.sdir(sid), os.path.join(self.m.mnt, "archive", sid))
        os.rename(os.path.join(self.m.mnt, "archive", sid), self.m.sdir(sid))
        r = self.e.ctl("lock", "--all", self.m.mnt)
        self.assertEqual(r.rc, 0, r)
        self.e.unlock(self.m, sid, password="second password")
        r = self.e.ctl("delete", "--yes", self.m.sdir(sid))
        self.assertEqual(r.rc, 0, r)
        recs = self.records(sid=sid)
        got = [(r["event"], r.get("ok"), r.get("error"), r.get("cause"), r["comm"])
               for r in recs]
        self.assertEqual(got, [
            ("new", True, None, None, "sessionctl"),
            ("lock", True, None, "command", "sessionctl"),
            ("unlock", True, None, None, "sessionctl"),
            ("passwd", False, "wrong-password", None, "sessionctl"),
            ("passwd", True, None, None, "sessionctl"),
            ("use", True, None, None, "sessionctl"),
            ("archive", True, None, None, MY_COMM),
            ("restore", True, None, None, MY_COMM),
            ("lock", True, None, "command", "sessionctl"),
            ("unlock", True, None, None, "sessionctl"),
            ("delete", True, None, None, "sessionctl"),
        ])
        self.assertEqual(self.records("mount")[0]["comm"], "sessionfs")
        # 0600, and nothing of the session's secrets in it
        st = os.stat(self.trail)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        raw = sfs.read_file(self.trail)
        for secret in (sfs.PASSWORD, "second password", "wrong one", name,
                       "plaintext-marker-91ab", "file-name-marker-55e2"):
            self.assertNotIn(secret.encode(), raw)
        # every line is one JSON object
        for ln in raw.decode().splitlines():
            self.assertIsInstance(json.loads(ln), dict)

    def test_by_marks_what_acted(self):
        sid = self.e.new(self.m)
        self.assertEqual(ask(self.m, {"op": "lock", "session": sid, "by": "prune"}),
                         {"ok": True, "open_files": 0})
        self.e.unlock(self.m, sid)
        self.assertEqual(ask(self.m, {"op": "delete", "session": sid, "by": "prune"}),
                         {"ok": True})
        recs = self.records(sid=sid)
        self.assertEqual([(r["event"], r.get("by")) for r in recs],
                         [("new", None), ("lock", "prune"), ("unlock", None),
                          ("delete", "prune")])
        # a "by" that is no short word is an invalid request, and does nothing
        sid2 = self.e.new(self.m)
        for by in ("", "pr une", "x" * 33, 5, None, "a\nb", "é"):
            resp = ask(self.m, {"op": "delete", "session": sid2, "by": by})
            self.assertEqual((resp["ok"], resp["code"]), (False, "invalid"), by)
        self.assertTrue(os.path.isdir(self.m.sdir(sid2)))
        self.assertEqual(len(self.records("delete", sid2)), 0)

    def test_status_archive_and_prune_recorded(self):
        sid = self.e.new(self.m)
        r = self.e.ctl("status", self.m.sdir(sid), "completed")
        self.assertEqual(r.rc, 0, r)
        # a set is recorded, and whether it was done, never the status itself:
        # it is metadata.json's, which the store holds only encrypted
        [rec] = self.records("status", sid)
        self.assertIs(rec["ok"], True)
        self.assertNotIn("status", rec)
        with open(self.trail, "rb") as f:
            self.assertNotIn(b"completed", f.read())
        # a refused set is recorded too (locked here), a read is not
        self.e.lock(self.m, sid)
        resp = ask(self.m, {"op": "status", "session": sid, "status": "failed"})
        self.assertEqual((resp["ok"], resp["code"]), (False, "locked"))
        resp = ask(self.m, {"op": "status", "session": sid})
        self.assertEqual((resp["ok"], resp["code"]), (False, "locked"))
        recs = self.records("status", sid)
        self.assertEqual([(r["ok"], r.get("error")) for r in recs],
                         [(True, None), (False, "locked")])
        # the archive op (prune) is recorded with its "by"; a refused one too
        resp = ask(self.m, {"op": "archive", "session": "INC-0000dead", "by": "prune"})
        self.assertEqual((resp["ok"], resp["code"]), (False, "no-such-session"))
        r = self.e.ctl("prune", "--keep-last", "0", "--yes", self.m.mnt)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual([(r["ok"], r.get("by")) for r in self.records("archive", sid)],
                         [(True, "prune")])
        [gone] = self.records("archive", "INC-0000dead")
        self.assertEqual((gone["ok"], gone["error"], gone["by"]),
                         (False, "no-such-session", "prune"))

    def test_automatic_locks_and_unmount(self):
        m_idle = self.e.mount(opts="idle_lock=1")
        sid = self.e.new(m_idle)
        wait_locked(self.e, m_idle, sid)
        self.e.assert_umount(m_idle)
        m_max = self.e.mount(opts="max_unlock=1,idle_lock=0")
        self.e.unlock(m_max, sid)
        wait_locked(self.e, m_max, sid)
        self.e.assert_umount(m_max)
        m3 = self.e.mount()
        self.e.unlock(m3, sid)
        self.e.assert_umount(m3)
        self.e.assert_umount(self.m)
        # read from the store itself: nothing is mounted now
        recs = [r for r in audit(self.e, self.e.store) if r.get("session") == sid]
        locks = [(r["cause"], r["comm"], r["uid"]) for r in recs if r["event"] == "lock"]
        self.assertEqual(locks, [("idle", "sessionfs", os.getuid()),
                                 ("max_unlock", "sessionfs", os.getuid()),
                                 ("unmount", "sessionfs", os.getuid())])
        events = [r["event"] for r in audit(self.e, self.e.store)]
        self.assertEqual(events.count("mount"), 4)

    def test_repair_recorded(self):
        sid = self.e.new(self.m)
        ev = os.path.join(self.m.sdir(sid), "events.jsonl")
        with open(ev, "a") as f:
            for i in range(50):
                f.write(json.dumps({"n": i, "text": "plaintext-marker-3c3c"}) + "\n")
        back = sfs.backing_of(self.e.store, sid, ev)
        self.e.lock(self.m, sid)
        os.truncate(back, os.path.getsize(back) - 10)   # a torn tail, as a crash leaves
        r = self.e.unlock(self.m, sid)
        self.assertIn("dropped a torn tail", r.err)
        rep = self.records("repair", sid)
        self.assertEqual(len(rep), 1, rep)
        self.assertTrue(any("dropped a torn tail" in w for w in rep[0]["what"]), rep)
        self.assertNotIn(b"plaintext-marker-3c3c", sfs.read_file(self.trail))

    def test_since(self):
        sid = self.e.new(self.m)
        self.assertGreaterEqual(len(audit(self.e, self.m.mnt, "--since", "1h")), 2)
        self.assertGreaterEqual(len(audit(self.e, self.m.mnt, "--since", "7d")), 2)
        self.assertGreaterEqual(len(audit(self.e, self.m.mnt, "--since", "2020-01-01")), 2)
        self.assertEqual(audit(self.e, self.m.mnt, "--since", "2999-01-01T00:00:00Z"), [])
        # an old record (written by hand, as a record of long ago) is left out by --since
        with open(self.trail, "a") as f:
            f.write(json.dumps({"time": "2001-02-03T04:05:06.000Z", "event": "unlock",
                                "session": sid, "uid": 0, "pid": 1, "comm": "x",
                                "ok": True}) + "\n")
        self.assertEqual(len([r for r in audit(self.e, self.m.mnt, "--since", "1d")
                              if r["time"].startswith("2001")]), 0)
        self.assertEqual(len([r for r in audit(self.e, self.m.mnt)
                              if r["time"].startswith("2001")]), 1)
        for bad in ("yesterday", "5x", "1h2", "-3h", "", "2026-13-45", "1e20d", "nan",
                    "1e3h", "0x10", "1.5h", "+3h", " 3h", "inf"):
            r = self.e.ctl("audit", "--since", bad, self.m.mnt)
            self.assertEqual(r.rc, 2, (bad, r))
            self.assertIn("bad --since", r.err)
            self.assertEqual(r.out, "")

    def test_not_a_store_nor_a_mount(self):
        d = self.e.path("plain")
        os.mkdir(d)
        r = self.e.ctl("audit", d)
        self.assertEqual(r.rc, 5, r)
        self.assertIn("not a sessionfs mount", r.err)
        r = self.e.ctl("audit", self.m.mnt, self.m.mnt)
        self.assertEqual(r.rc, 2, r)

    def test_rotation(self):
        # an old trail at the limit (4 MiB), as months of use leave it
        line = json.dumps({"time": "2020-01-01T00:00:00.000Z", "event": "unlock",
                           "session": "INC-0000", "uid": 0, "pid": 1, "comm": "old",
                           "ok": True}) + "\n"
        n = (4 << 20) // len(line) + 1
        with open(self.trail, "a") as f:
            f.write(line * n)
        before = sfs.read_file(self.trail)
        sid = self.e.new(self.m)
        old = os.path.join(self.e.store, "audit.jsonl.1")
        self.assertEqual(sfs.read_file(old), before)
        self.assertEqual(stat.S_IMODE(os.stat(self.trail).st_mode), 0o600)
        new = [json.loads(ln) for ln in sfs.read_file(self.trail).decode().splitlines()]
        self.assertEqual([(r["event"], r.get("session")) for r in new], [("new", sid)])
        recs = audit(self.e, self.m.mnt)
        self.assertEqual(len(recs), len(before.decode().splitlines()) + 1)
        self.assertEqual(recs[-1]["session"], sid)   # oldest first, the new one last
        # a second rotation keeps one old file only
        with open(self.trail, "a") as f:
            f.write(line * n)
        self.e.lock(self.m, sid)
        self.assertEqual(sorted(x for x in os.listdir(self.e.store) if "audit" in x),
                         ["audit.jsonl", "audit.jsonl.1"])
        self.assertEqual(len(sfs.read_file(self.trail).splitlines()), 1)

    def test_two_mounts_append_whole_lines_through_a_rotation(self):
        # just below the limit, so that a rotation comes in the middle of the appends
        line = json.dumps({"time": "2020-01-01T00:00:00.000Z", "event": "use", "uid": 0,
                           "pid": 1, "comm": "old", "ok": True}) + "\n"
        n = (4 << 20) // len(line) - 20
        with open(self.trail, "a") as f:
            f.write(line * n)
        m2 = self.e.mount()
        sids = [self.e.new(self.m), self.e.new(m2)]
        before = len(audit(self.e, self.e.store))
        procs, per = [], 25
        for i, m in enumerate((self.m, m2, self.m, m2)):
            code = ("import json, os, sys\n"
                    "for _ in range(%d):\n"
                    "    fd = os.open(sys.argv[1], os.O_RDWR)\n"
                    "    os.write(fd, json.dumps({'op': 'use', 'session': sys.argv[2],"
                    " 'by': 'w%d'}).encode())\n"
                    "    assert json.loads(os.read(fd, 4096))['ok']\n"
                    "    os.close(fd)\n" % (per, i))
            procs.append(subprocess.Popen(
                ["python3", "-c", code, os.path.join(m.mnt, ".sessionfs"), sids[i % 2]]))
        for p in procs:
            self.assertEqual(p.wait(timeout=sfs.TIMEOUT), 0)
        recs = audit(self.e, self.e.store)
        self.assertEqual(len(recs), before + 4 * per)   # none lost, none torn
        self.assertTrue(os.path.exists(self.trail + ".1"))
        for i in range(4):
            self.assertEqual(len([r for r in recs if r.get("by") == "w%d" % i]), per)
        for name in ("audit.jsonl", "audit.jsonl.1"):
            for ln in sfs.read_file(os.path.join(self.e.store, name)).decode().splitlines():
                self.assertIsInstance(json.loads(ln), dict)


if __name__ == "__main__":
    sfs.main()
