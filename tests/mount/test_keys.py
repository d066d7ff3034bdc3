"""
test_keys.py - key slots and recovery keys (issue 18 items 1 and 2;
doc/format.md "Key file", sessionctl(1) passwd and keys) through real mounts:

- passwd --add (a second password, with a label), --add-recovery-key,
  --remove N: each slot opens the session, the data reads the same
  whichever opened it; a removed slot no longer opens; only the key file
  changes (the session's files are byte-identical in the store);
- refusals with their exit codes, the key file untouched: a wrong password
  for --add (3), removing the last slot, a slot that does not exist, a slot
  proven only by its own password, a 9th slot (12), bad arguments (2); the
  same password in two slots removes either (the other proves it);
- a recovery key: `new --recovery-key` prints it once (stdout, second
  line); unlock takes it with or without dashes, in either case, in groups
  of any spacing; it never reaches the audit trail or the daemon's log;
  passwd does not turn it into a password (12);
- keys --json: index, kind, kdf, opslimit, memlimit, added, label (sealed
  while the session is locked here);
- plain passwd changes only the slots whose password was given (every
  one of them: the old password opens nothing after);
- two mounts of one store: a slot added through one while the other has
  the session unlocked, and slots added through both at once: none lost;
- kill -9 of the daemon at each step of an add and of a remove (strace
  holds each call in turn): the session still opens with its old password,
  and reads whole.
"""
import json
import os
import re
import subprocess
import sys
import threading

import sfs
import test_crash

PW1 = sfs.PASSWORD
PW2 = "second password for the laptop"
RK_RE = re.compile(r"^[0-9a-f]{4}(-[0-9a-f]{4}){15}$")
SLOT_EXIT = 12
WRONG_PASSWORD_EXIT = 3


def key_bytes(e, sid):
    with open(os.path.join(e.store, "sessions", sid, "key"), "rb") as f:
        return f.read()


def root_digest(e, sid):
    """{path: sha256} of every file below session @sid's root in the store."""
    root = os.path.join(e.store, "sessions", sid, "root")
    out = {}
    for r, dirs, files in os.walk(root):
        for n in files:
            p = os.path.join(r, n)
            out[os.path.relpath(p, root)] = sfs.sha256_file(p)
    return out


class KeysBase(sfs.ForegroundMountTest):

    def setUp(self):
        super().setUp()
        self.sid = self.e.new(self.m)
        self.sdir = self.m.sdir(self.sid)
        sfs.write_file(os.path.join(self.sdir, "notes.md"), "db restarted\n")
        # the "updated" refresh of this write lands now, not between two
        # root_digest()s of a test
        self.e.settle(self.m, self.sid)

    def add(self, proof, new, label=None, sdir=None, expect=0):
        a = ["--add"] + (["--label", label] if label is not None else [])
        r = self.e.ctl("passwd", *a, sdir or self.sdir, password=proof, new_password=new)
        self.assertEqual(r.rc, expect, r)
        return r

    def add_recovery(self, proof, expect=0):
        r = self.e.ctl("passwd", "--add-recovery-key", self.sdir, password=proof)
        self.assertEqual(r.rc, expect, r)
        if expect == 0:
            key = r.out.strip()
            self.assertRegex(key, RK_RE)
            self.assertEqual(r.out, key + "\n", "stdout holds the key alone")
            return key
        return r

    def remove(self, n, proof, expect=0):
        r = self.e.ctl("passwd", "--remove", str(n), self.sdir, password=proof)
        self.assertEqual(r.rc, expect, r)
        return r

    def keys(self, sdir=None):
        r = self.e.ctl("keys", "--json", sdir or self.sdir)
        self.assertEqual(r.rc, 0, r)
        return json.loads(r.out)

    def opens(self, secret, sid=None):
        """Does @secret unlock the session (locked first)? Reads it if so."""
        sid = sid or self.sid
        self.e.lock(self.m, sid)
        r = self.e.ctl("unlock", self.m.sdir(sid), password=secret)
        if r.rc == 0:
            self.assertEqual(sfs.read_file(os.path.join(self.m.sdir(sid), "notes.md")),
                             b"db restarted\n")
            return True
        self.assertEqual(r.rc, WRONG_PASSWORD_EXIT, r)
        self.assertIn("wrong password", r.err)
        return False


class SlotTest(KeysBase):

    def test_add_unlock_each_remove(self):
        data = root_digest(self.e, self.sid)
        self.assertEqual(self.keys()["format"] in (1, 2), True, "a new session keeps v1/v2")
        self.add(PW1, PW2, label="laptop")
        key = self.add_recovery(PW2)
        k = self.keys()
        self.assertEqual(k["format"], 3)
        self.assertEqual(k["id"], self.sid)
        self.assertEqual([(s["index"], s["kind"]) for s in k["slots"]],
                         [(0, "password"), (1, "password"), (2, "recovery-key")])
        self.assertEqual([s["label"] for s in k["slots"]], [None, "laptop", None])
        for s in k["slots"]:
            self.assertRegex(s["added"], sfs.ISO_Z_RE)
            self.assertNotIn("label_sealed", s)
            if s["kind"] == "password":
                self.assertEqual((s["kdf"], s["opslimit"], s["memlimit"]),
                                 ("interactive", 2, 64 << 20))
            else:
                self.assertNotIn("kdf", s)
        # the data did not change: only the key file was rewritten
        self.assertEqual(root_digest(self.e, self.sid), data)
        for secret in (PW1, PW2, key, key.replace("-", ""), key.upper(),
                       " ".join(key.replace("-", "")[i:i + 5] for i in range(0, 64, 5))):
            self.assertTrue(self.opens(secret), secret)
        self.assertFalse(self.opens("not any of them"))
        self.assertFalse(self.opens(key[:-1] + ("0" if key[-1] != "0" else "1")))
        # locked here: the labels are sealed, the rest is shown
        self.e.lock(self.m, self.sid)
        k = self.keys()
        self.assertEqual([s.get("label_sealed") for s in k["slots"]], [True] * 3)
        self.assertEqual([s["label"] for s in k["slots"]], [None] * 3)
        self.assertNotIn(b"laptop", key_bytes(self.e, self.sid))
        t = self.e.ctl("keys", self.sdir)
        self.assertEqual(t.rc, 0, t)
        self.assertIn("(sealed: unlock to see)", t.out)
        self.e.unlock(self.m, self.sid)
        self.assertIn("laptop", self.e.ctl("keys", self.sdir).out)
        # remove slot 1 proven by slot 0: PW2 no longer opens, the others do
        self.remove(1, PW1)
        self.assertEqual([s["index"] for s in self.keys()["slots"]], [0, 2])
        self.assertFalse(self.opens(PW2))
        self.assertTrue(self.opens(key))
        # the recovery slot proves the removal of slot 0; the freed index is reused
        self.remove(0, key)
        self.assertFalse(self.opens(PW1))
        self.add(key, PW1)
        self.assertEqual([(s["index"], s["kind"]) for s in self.keys()["slots"]],
                         [(0, "password"), (2, "recovery-key")])
        self.assertTrue(self.opens(PW1))

    def test_wrong_password_for_add(self):
        before = key_bytes(self.e, self.sid)
        r = self.add("wrong password", PW2, expect=WRONG_PASSWORD_EXIT)
        self.assertIn("wrong password", r.err)
        self.assertEqual(key_bytes(self.e, self.sid), before)
        r = self.e.ctl("passwd", "--add-recovery-key", self.sdir, password="wrong")
        self.assertEqual(r.rc, WRONG_PASSWORD_EXIT, r)
        self.assertEqual(r.out, "", "no key printed")
        self.assertEqual(key_bytes(self.e, self.sid), before)
        self.assertFalse(self.opens(PW2))

    def test_remove_refusals(self):
        before = key_bytes(self.e, self.sid)
        # the last slot: refused before any password is checked
        for proof in (PW1, "wrong"):
            r = self.remove(0, proof, expect=SLOT_EXIT)
            self.assertIn("last key slot", r.err)
        r = self.remove(3, PW1, expect=SLOT_EXIT)
        self.assertIn("no key slot of that number", r.err)
        self.assertEqual(key_bytes(self.e, self.sid), before)
        self.add(PW1, PW2)
        before = key_bytes(self.e, self.sid)
        r = self.remove(1, PW2, expect=SLOT_EXIT)
        self.assertIn("give another slot's password", r.err)
        r = self.remove(1, "wrong", expect=WRONG_PASSWORD_EXIT)
        self.assertEqual(key_bytes(self.e, self.sid), before)
        self.assertTrue(self.opens(PW2))
        for bad in ("8", "-1", "x", "1x", ""):
            r = self.e.ctl("passwd", "--remove", bad, self.sdir, password=PW1)
            self.assertEqual(r.rc, 2, r)
            self.assertIn("bad --remove", r.err)
        for args in (["--add", "--remove", "1"], ["--add", "--add-recovery-key"],
                     ["--label", "x"], ["--add", "--label", "tab\there"],
                     ["--add", "--label", "x" * 64]):
            r = self.e.ctl("passwd", *args, self.sdir, password=PW1, new_password=PW2)
            self.assertEqual(r.rc, 2, (args, r))
        self.assertEqual(key_bytes(self.e, self.sid), before)

    def test_same_password_in_two_slots(self):
        """The same password in two slots: removing either is proven by the
        other (the password opens a slot that stays), so it is done, not
        refused as "proven by its own password"; a password that opens only
        the slot to be removed is still refused."""
        self.add(PW1, PW1)
        self.assertEqual([s["index"] for s in self.keys()["slots"]], [0, 1])
        self.remove(0, PW1)
        self.assertEqual([s["index"] for s in self.keys()["slots"]], [1])
        self.assertTrue(self.opens(PW1))
        self.add(PW1, PW1)
        self.assertEqual([s["index"] for s in self.keys()["slots"]], [0, 1])
        self.remove(1, PW1)
        self.assertEqual([s["index"] for s in self.keys()["slots"]], [0])
        self.assertTrue(self.opens(PW1))
        self.add(PW1, PW2)
        before = key_bytes(self.e, self.sid)
        r = self.remove(0, PW1, expect=SLOT_EXIT)
        self.assertIn("give another slot's password", r.err)
        self.assertEqual(key_bytes(self.e, self.sid), before)
        self.remove(0, PW2)
        self.assertFalse(self.opens(PW1))
        self.assertTrue(self.opens(PW2))

    def test_ninth_slot(self):
        for i in range(1, 8):
            self.add(PW1, "password %d" % i, label="slot %d" % i)
        k = self.keys()
        self.assertEqual([s["index"] for s in k["slots"]], list(range(8)))
        before = key_bytes(self.e, self.sid)
        self.assertEqual(len(before), 16 + 8 * 224)
        r = self.add(PW1, "password 8", expect=SLOT_EXIT)
        self.assertIn("all 8 key slots", r.err)
        r = self.e.ctl("passwd", "--add-recovery-key", self.sdir, password=PW1)
        self.assertEqual((r.rc, r.out), (SLOT_EXIT, ""), r)
        self.assertEqual(key_bytes(self.e, self.sid), before)
        self.assertTrue(self.opens("password 7"))
        self.assertTrue(self.opens(PW1))
        self.assertFalse(self.opens("password 8"))

    def test_passwd_changes_only_its_slot(self):
        self.add(PW1, PW2, label="laptop")
        r = self.e.ctl("passwd", self.sdir, password=PW2, new_password="changed")
        self.assertEqual(r.rc, 0, r)
        self.assertFalse(self.opens(PW2))
        self.assertTrue(self.opens("changed"))
        self.assertTrue(self.opens(PW1))
        k = self.keys()
        self.assertEqual([s["label"] for s in k["slots"]], [None, "laptop"])
        # a v1/v2 session's passwd keeps its version (older builds still read it)
        sid = self.e.new(self.m)
        v = self.keys(self.m.sdir(sid))["format"]
        r = self.e.ctl("passwd", self.m.sdir(sid), password=PW1, new_password=PW2)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(self.keys(self.m.sdir(sid))["format"], v)

    def test_passwd_changes_every_slot_of_that_password(self):
        """The same password in two slots (and another password beside):
        passwd changes both, so the old password opens nothing after;
        before, only the first was changed and the old password still opened
        the session through the second. Labels stay; the other password's
        slot is not touched."""
        self.add(PW1, PW1, label="copy")
        self.add(PW1, PW2, label="laptop")
        before = self.keys()["slots"]
        r = self.e.ctl("passwd", self.sdir, password=PW1, new_password="changed")
        self.assertEqual(r.rc, 0, r)
        self.assertFalse(self.opens(PW1))
        self.assertTrue(self.opens("changed"))
        self.assertTrue(self.opens(PW2))
        after = self.keys()["slots"]
        self.assertEqual([(s["index"], s["label"]) for s in after],
                         [(0, None), (1, "copy"), (2, "laptop")])
        self.assertEqual(after[2], before[2])
        # removing either "changed" slot is proven by the other
        self.remove(0, "changed")
        self.assertTrue(self.opens("changed"))

    def test_audit_records_slots(self):
        self.add(PW1, PW2, label="secret-label")
        key = self.add_recovery(PW1)
        self.remove(1, PW1)
        self.e.lock(self.m, self.sid)
        self.e.unlock(self.m, self.sid, password=key)
        with open(os.path.join(self.e.store, "audit.jsonl")) as f:
            trail = f.read()
        recs = [json.loads(x) for x in trail.splitlines()]
        got = [(x["event"], x.get("slot"), x.get("kind"), x["ok"]) for x in recs
               if x.get("session") == self.sid and x["event"].startswith("slot_")]
        self.assertEqual(got, [("slot_add", 1, "password", True),
                               ("slot_add", 2, "recovery-key", True),
                               ("slot_remove", 1, None, True)])
        for secret in (PW1, PW2, "secret-label", key, key.replace("-", "")):
            self.assertNotIn(secret, trail)
            self.assertNotIn(secret, self.m.read_log())


class RecoveryKeyTest(sfs.ForegroundMountTest):

    def test_new_with_recovery_key(self):
        r = self.e.ctl("new", "--recovery-key", self.m.mnt, password=PW1)
        self.assertEqual(r.rc, 0, r)
        lines = r.out.splitlines()
        self.assertEqual(len(lines), 2, r)
        sid, key = lines
        self.assertRegex(sid, sfs.ID_RE)
        self.assertRegex(key, RK_RE)
        self.assertIn("shown only this once", r.err)
        self.assertNotIn(key, r.err)
        # the slot it names is the recovery key's (slot 0 is the password): a user
        # who removes the slot it names must not remove the password instead
        self.assertIn("recovery key in key slot 1,", r.err)
        sdir = self.m.sdir(sid)
        sfs.write_file(os.path.join(sdir, "f"), "F\n")
        k = json.loads(self.e.ctl("keys", "--json", sdir).out)
        self.assertEqual(k["format"], 3)
        self.assertEqual([s["kind"] for s in k["slots"]], ["password", "recovery-key"])
        self.e.lock(self.m, sid)
        self.e.unlock(self.m, sid, password=key.upper())
        self.assertEqual(sfs.read_file(os.path.join(sdir, "f")), b"F\n")
        # passwd does not turn the recovery slot into a password slot
        r = self.e.ctl("passwd", sdir, password=key, new_password="x")
        self.assertEqual(r.rc, SLOT_EXIT, r)
        self.assertIn("recovery key", r.err)
        # ...but the key proves a new password, which then opens it
        r = self.e.ctl("passwd", "--add", sdir, password=key, new_password="new one")
        self.assertEqual(r.rc, 0, r)
        self.e.lock(self.m, sid)
        self.e.unlock(self.m, sid, password="new one")
        # the key is in no log
        with open(os.path.join(self.e.store, "audit.jsonl")) as f:
            trail = f.read()
        for text in (key, key.replace("-", ""), key[:19]):
            self.assertNotIn(text, trail)
            self.assertNotIn(text, self.m.read_log())
        # a second session's recovery key differs and does not open the first
        r2 = self.e.ctl("new", "--recovery-key", self.m.mnt, password=PW1)
        self.assertEqual(r2.rc, 0, r2)
        self.assertNotEqual(r2.out.splitlines()[1], key)
        self.e.lock(self.m, sid)
        r = self.e.ctl("unlock", sdir, password=r2.out.splitlines()[1])
        self.assertEqual(r.rc, WRONG_PASSWORD_EXIT, r)


class TwoMountsTest(KeysBase):

    def test_add_through_another_mount(self):
        m2 = self.e.mount()
        sdir2 = m2.sdir(self.sid)
        # unlocked in the first mount: the second may still add a slot (no data is touched)
        self.add(PW1, PW2, sdir=sdir2)
        r = self.e.ctl("unlock", sdir2, password=PW2)
        self.assertEqual(r.rc, 6, r)  # busy: unlocked by the first mount
        self.assertTrue(self.opens(PW2))
        # slots added at once through both mounts: none is lost (the key file's edit lock)
        errs = []

        def adder(sdir, names):
            for n in names:
                r = self.e.ctl("passwd", "--add", sdir, password=PW1, new_password=n)
                if r.rc != 0:
                    errs.append(r)

        ts = [threading.Thread(target=adder, args=(self.sdir, ["a1", "a2", "a3"])),
              threading.Thread(target=adder, args=(sdir2, ["b1", "b2", "b3"]))]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(errs, [])
        self.assertEqual([s["index"] for s in self.keys()["slots"]], list(range(8)))
        for pw in ("a1", "a3", "b1", "b3", PW2):
            self.assertTrue(self.opens(pw), pw)
        self.e.assert_umount(m2)


class KeySlotCrashTest(test_crash.StepBase):
    """kill -9 of the daemon after each step, in turn, of passwd --add and
    --remove (test_crash.StepBase): the session opens with its old password
    after every crash, and with the new one only if the rename happened."""

    CALLS = "openat,pwrite64,fsync,renameat,renameat2"

    def session(self, slots):
        sid = self.e.new(self.m)
        for pw in slots[1:]:
            r = self.e.ctl("passwd", "--add", self.m.sdir(sid), password=PW1, new_password=pw)
            self.assertEqual(r.rc, 0, r)
        sfs.write_file(os.path.join(self.m.sdir(sid), "x"), "x of %s\n" % sid)
        return sid

    def opens(self, sid, pw):
        r = self.e.ctl("unlock", self.m.sdir(sid), password=pw)
        if r.rc == 0:
            self.e.lock(self.m, sid)
            return True
        self.assertEqual(r.rc, WRONG_PASSWORD_EXIT, r)
        return False

    def whole(self, sid, what):
        self.e.unlock(self.m, sid)
        self.check_session(sid, what)
        self.assertEqual(sfs.read_file(os.path.join(self.m.sdir(sid), "x")),
                         ("x of %s\n" % sid).encode(), what)
        r = self.e.ctl("keys", "--json", self.m.sdir(sid))
        self.assertEqual(r.rc, 0, "%s: %r" % (what, r))
        return json.loads(r.out)

    def test_add(self):
        def argv(sid):
            return [sfs.SESSIONCTL, "passwd", "--add", "--password-file", self.e.pwfile(PW1),
                    "--new-password-file", self.e.pwfile(PW2), self.m.sdir(sid)]

        def after_crash(sid, what):
            self.assertTrue(self.opens(sid, PW1), "%s: the old password no longer opens" % what)
            added = self.opens(sid, PW2)
            n = len(self.whole(sid, what)["slots"])
            self.assertEqual(n, 2 if added else 1, what)
            return "added" if added else "not added"

        def after_done(sid):
            self.assertTrue(self.opens(sid, PW1))
            self.assertTrue(self.opens(sid, PW2))
            self.whole(sid, "add")

        self.kill_each_step("passwd --add", lambda k: self.session([PW1]), argv, after_crash,
                            after_done, self.CALLS)

    def test_remove(self):
        def argv(sid):
            return [sfs.SESSIONCTL, "passwd", "--remove", "1", "--password-file",
                    self.e.pwfile(PW1), self.m.sdir(sid)]

        def after_crash(sid, what):
            self.assertTrue(self.opens(sid, PW1), "%s: the old password no longer opens" % what)
            kept = self.opens(sid, PW2)
            self.assertEqual(len(self.whole(sid, what)["slots"]), 2 if kept else 1, what)
            return "kept" if kept else "removed"

        def after_done(sid):
            self.assertTrue(self.opens(sid, PW1))
            self.assertFalse(self.opens(sid, PW2))
            self.whole(sid, "remove")

        self.kill_each_step("passwd --remove", lambda k: self.session([PW1, PW2]), argv,
                            after_crash, after_done, self.CALLS)


if __name__ == "__main__":
    sfs.main()
