"""`sessionctl status SESSIONDIR [STATUS]` through a real mount (issue 17 item 1):

- reading prints the stored status (a new session's is "active"), --json
  gives {"id","status","updated"};
- setting one of active, paused, completed, failed replaces metadata.json
  through the daemon's checked, atomic replacement: the status is set,
  "updated" moves, every other member (users' own included) is kept, and
  no temporary is left in the session;
- an unknown status is a usage error (exit 2) that names the allowed ones
  and changes nothing; the daemon refuses one sent by hand too;
- a locked session is the locked exit code (7), no such session 4, a
  status read that the stored document lacks prints an empty line; a
  status set in an archived session works the same;
- a stored document that is not a JSON object (damage) is exit 1, not 2.
"""
import json
import os
import shutil
import time
import unittest

import sfs


class StatusTest(unittest.TestCase):
    def setUp(self):
        self.e = sfs.Env()
        self.addCleanup(self.e.cleanup)
        self.m = self.e.mount()
        self.sid = self.e.new(self.m, name="db outage")
        self.sdir = self.m.sdir(self.sid)
        self.meta = os.path.join(self.sdir, "metadata.json")

    def doc(self):
        with open(self.meta) as f:
            return json.load(f)

    def test_read_new_session(self):
        r = self.e.ctl("status", self.sdir)
        self.assertEqual((r.rc, r.out, r.err), (0, "active\n", ""))
        r = self.e.ctl("status", "--json", self.sdir)
        self.assertEqual(r.rc, 0, r)
        got = json.loads(r.out)
        self.assertEqual(got, {"id": self.sid, "status": "active",
                               "updated": self.doc()["updated"]})

    def test_set_each_keeps_the_rest(self):
        d = self.doc()
        d["owner"] = "alice"
        d["tags"] = ["db", "prod"]
        with open(self.meta, "w") as f:
            json.dump(d, f)
        before = self.doc()
        for st in ("paused", "completed", "failed", "active"):
            # "updated" has a resolution of a second: make it move visibly
            time.sleep(1.1)
            r = self.e.ctl("status", self.sdir, st)
            self.assertEqual((r.rc, r.err), (0, ""), r)
            self.assertEqual(r.out, st + "\n")
            after = self.doc()
            self.assertEqual(after["status"], st)
            self.assertGreater(after["updated"], before["updated"])
            self.assertTrue(sfs.ISO_Z_RE.match(after["updated"]), after)
            for k in ("id", "name", "created", "tags", "owner"):
                self.assertEqual(after[k], before[k], k)
            self.assertEqual(self.e.ctl("status", self.sdir).out, st + "\n")
            before = after
        # the replacement leaves nothing behind in the session
        self.assertEqual(sorted(os.listdir(self.sdir)), ["events.jsonl", "metadata.json"])

    def test_unknown_status(self):
        before = self.doc()
        for bad in ("done", "Active", "", "active "):
            r = self.e.ctl("status", self.sdir, bad)
            self.assertEqual(r.rc, 2, r)
            self.assertIn("unknown status", r.err)
            self.assertIn("active, paused, completed or failed", r.err)
            self.assertTrue(r.err.startswith("sessionctl: "), r.err)
        self.assertEqual(self.doc(), before)
        # the daemon holds to the same rule for a request sent by hand
        fd = os.open(os.path.join(self.m.mnt, ".sessionfs"), os.O_RDWR)
        try:
            os.write(fd, json.dumps({"op": "status", "session": self.sid,
                                     "status": "done"}).encode())
            resp = json.loads(os.read(fd, 65536))
        finally:
            os.close(fd)
        self.assertEqual((resp["ok"], resp["code"]), (False, "invalid"))
        self.assertEqual(self.doc(), before)

    def test_locked_and_missing(self):
        self.e.lock(self.m, self.sid)
        for args in ([self.sdir], [self.sdir, "paused"]):
            r = self.e.ctl("status", *args)
            self.assertEqual(r.rc, 7, r)
            self.assertIn("locked", r.err)
        # a session never unlocked by this mount is just as locked
        m2 = self.e.remount(self.m)
        r = self.e.ctl("status", m2.sdir(self.sid), "paused")
        self.assertEqual(r.rc, 7, r)
        r = self.e.ctl("status", m2.sdir("INC-ffff"))
        self.assertEqual(r.rc, 4, r)
        r = self.e.ctl("status", m2.sdir(self.sid), "paused", "extra")
        self.assertEqual(r.rc, 2, r)

    def test_no_status_member_and_archive(self):
        d = self.doc()
        del d["status"]
        with open(self.meta, "w") as f:
            json.dump(d, f)
        r = self.e.ctl("status", self.sdir)
        self.assertEqual((r.rc, r.out), (0, "\n"), r)
        r = self.e.ctl("status", "--json", self.sdir)
        self.assertNotIn("status", json.loads(r.out))
        os.rename(self.sdir, os.path.join(self.m.mnt, "archive", self.sid))
        adir = os.path.join(self.m.mnt, "archive", self.sid)
        r = self.e.ctl("status", adir, "completed")
        self.assertEqual((r.rc, r.out), (0, "completed\n"), r)
        with open(os.path.join(adir, "metadata.json")) as f:
            self.assertEqual(json.load(f)["status"], "completed")

    def test_damaged_document(self):
        """A stored metadata.json that decrypts but is not a JSON object (here
        another file of the session copied over its backing file: whole files
        of a session are not bound to their names, doc/format.md "Tampering")
        is damage, not a bad request: reading and setting the status are exit
        1 (I/O or damage, doc/exit-codes.md), not 2 (usage), and say that
        metadata.json is damaged; nothing is changed. A valid document written
        through the mount mends it."""
        other = os.path.join(self.sdir, "x")
        sfs.write_file(other, "[1, 2]\n")
        meta_b = sfs.backing_of(self.e.store, self.sid, self.meta)
        x_b = sfs.backing_of(self.e.store, self.sid, other)
        self.e.lock(self.m, self.sid)
        shutil.copyfile(x_b, meta_b)
        self.e.unlock(self.m, self.sid)
        self.assertEqual(sfs.read_file(self.meta), b"[1, 2]\n")
        for args in ([self.sdir], ["--json", self.sdir], [self.sdir, "paused"]):
            r = self.e.ctl("status", *args)
            self.assertEqual(r.rc, 1, r)
            self.assertIn("metadata.json is damaged", r.err)
            self.assertEqual(r.out, "")
        self.assertEqual(sfs.read_file(self.meta), b"[1, 2]\n")
        with open(self.meta, "w") as f:
            json.dump({"id": self.sid, "status": "failed"}, f)
        r = self.e.ctl("status", self.sdir, "paused")
        self.assertEqual((r.rc, r.out), (0, "paused\n"), r)

    def test_help(self):
        r = self.e.ctl("status", "--help")
        self.assertEqual(r.rc, 0)
        self.assertIn("status [--json] SESSIONDIR", r.out)


if __name__ == "__main__":
    sfs.main()
