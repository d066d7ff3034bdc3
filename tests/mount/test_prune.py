"""`sessionctl prune MOUNTPOINT [--older-than D] [--status S] [--keep-last N]
[--archive | --delete] [--dry-run] [--yes]` through a real mount (issue 17
item 4). Sessions are made old by setting the mtimes of their containers'
files in the store (what the store tells without a password):

- --older-than selects by the last change, locked sessions included; the
  plan names exactly the sessions acted on; --archive (the default) moves
  them to archive/ (they still open there), --delete removes them from the
  store, locked ones too, archived ones included;
- --keep-last N keeps the N newest; --status selects unlocked sessions of
  that status and says how many locked ones it could not see;
- --dry-run changes nothing; without --yes and without a terminal it
  refuses (exit 11) and changes nothing; on a terminal it asks ('n' keeps
  everything, 'y' prunes);
- a session unlocked by a second mount of the store is skipped and
  reported, the rest pruned;
- bad input (a duration that does not parse, a bad --keep-last, --archive
  with --delete, no criterion) is a usage error (2) that changes nothing; a
  prune that matches nothing says so and exits 0.
"""
import json
import os
import re
import subprocess
import time
import unittest

import sfs
from test_ctl_auth import read_until, spawn_on_pty

DAY = 86400


def age(store, sid, days, where="sessions"):
    """Make every node of container SID in STORE last changed DAYS ago."""
    t = time.time() - days * DAY
    root = os.path.join(store, where, sid)
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            os.utime(os.path.join(d, n), (t, t), follow_symlinks=False)
    os.utime(root, (t, t))


class PruneTest(unittest.TestCase):
    def setUp(self):
        self.e = sfs.Env()
        self.addCleanup(self.e.cleanup)
        self.m = self.e.mount()
        # old1 (60 days, locked), old2 (40 days, locked), mid (10 days, locked),
        # new (now, unlocked)
        self.old1 = self.e.new(self.m, sid="INC-0001")
        self.old2 = self.e.new(self.m, sid="INC-0002")
        self.mid = self.e.new(self.m, sid="INC-0003")
        self.new = self.e.new(self.m, sid="INC-0004")
        self.e.lock(self.m, self.old1, self.old2, self.mid)
        for sid, days in ((self.old1, 60), (self.old2, 40), (self.mid, 10)):
            age(self.e.store, sid, days)

    def prune(self, *args, m=None):
        return self.e.ctl("prune", *args, (m or self.m).mnt)

    def where(self):
        """{id: 'sessions'|'archive'} of every session, from the store."""
        out = {}
        for w in ("sessions", "archive"):
            for n in os.listdir(os.path.join(self.e.store, w)):
                if sfs.ID_RE.match(n):
                    out[n] = w
        return out

    def snapshot(self):
        return self.where(), self.e.list(self.m)

    def plan(self, out, verb):
        return [ln.split()[1] for ln in out.splitlines() if ln.startswith(verb + " ")]

    def test_older_than_archives_locked_sessions(self):
        r = self.prune("--older-than", "30d", "--yes")
        self.assertEqual((r.rc, r.err), (0, ""), r)
        self.assertEqual(self.plan(r.out, "archive"), [self.old2, self.old1])
        self.assertEqual(self.plan(r.out, "archived"), [self.old2, self.old1])
        self.assertEqual(self.where(), {self.old1: "archive", self.old2: "archive",
                                        self.mid: "sessions", self.new: "sessions"})
        adir = os.path.join(self.m.mnt, "archive", self.old1)
        self.assertTrue(os.path.isdir(adir))
        r = self.e.ctl("unlock", adir, password=sfs.PASSWORD)
        self.assertEqual(r.rc, 0, r)
        self.assertIn("metadata.json", os.listdir(adir))
        # archived sessions are not archived again
        r = self.prune("--older-than", "30d", "--yes")
        self.assertEqual((r.rc, r.out), (0, "nothing to archive: no session matches\n"), r)

    def test_other_units(self):
        for d, want in (("2w", [self.old2, self.old1]), ("1000h", [self.old1]),
                        ("90m", [self.mid, self.old2, self.old1]), ("9w", [])):
            r = self.prune("--older-than", d, "--dry-run")
            self.assertEqual(r.rc, 0, r)
            self.assertEqual(self.plan(r.out, "archive"), want, (d, r.out))

    def test_delete_locked_and_archived(self):
        os.rename(self.m.sdir(self.mid), os.path.join(self.m.mnt, "archive", self.mid))
        age(self.e.store, self.mid, 50, where="archive")
        r = self.prune("--older-than", "30d", "--delete", "--yes")
        self.assertEqual((r.rc, r.err), (0, ""), r)
        self.assertEqual(self.plan(r.out, "deleted"), [self.old2, self.mid, self.old1])
        self.assertEqual(self.where(), {self.new: "sessions"})
        self.assertEqual([s["id"] for s in self.e.list(self.m)], [self.new])
        self.assertFalse(os.path.exists(self.m.sdir(self.old1)))

    def test_keep_last(self):
        r = self.prune("--keep-last", "2", "--yes")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(self.plan(r.out, "archived"), [self.old2, self.old1])
        # left in sessions/: new and mid (10 days); both kept by --keep-last 2
        r = self.prune("--keep-last", "2", "--older-than", "5d", "--dry-run")
        self.assertEqual((r.rc, r.out), (0, "nothing to archive: no session matches\n"), r)
        r = self.prune("--keep-last", "1", "--older-than", "5d", "--dry-run")
        self.assertEqual((r.rc, self.plan(r.out, "archive")), (0, [self.mid]), r)
        r = self.prune("--keep-last", "0", "--older-than", "20d", "--dry-run")
        self.assertEqual(self.plan(r.out, "archive"), [])

    def test_status(self):
        r = self.e.ctl("status", self.m.sdir(self.new), "failed")
        self.assertEqual(r.rc, 0, r)
        r = self.prune("--status", "failed", "--yes")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(self.plan(r.out, "archived"), [self.new])
        self.assertIn("3 locked sessions not considered", r.err)
        self.assertEqual(self.where()[self.new], "archive")
        r = self.prune("--status", "failed", "--older-than", "1d", "--yes")
        self.assertEqual((r.rc, r.out), (0, "nothing to archive: no session matches\n"), r)

    def test_dry_run_changes_nothing(self):
        before = self.snapshot()
        for args in (["--older-than", "0s"], ["--older-than", "0s", "--delete"],
                     ["--keep-last", "0", "--delete", "--yes"]):
            r = self.prune("--dry-run", *args)
            self.assertEqual(r.rc, 0, r)
            self.assertEqual(len(self.plan(r.out, "delete" if "--delete" in args
                                           else "archive")), 4, r.out)
            self.assertIn("dry run: nothing changed", r.out)
            self.assertEqual(self.snapshot(), before)

    def test_no_terminal_without_yes(self):
        before = self.snapshot()
        for args in (["--older-than", "30d"], ["--older-than", "30d", "--delete"]):
            # a session of its own: no controlling terminal to ask on
            p = subprocess.run([sfs.SESSIONCTL, "prune"] + args + [self.m.mnt],
                               stdin=subprocess.DEVNULL, capture_output=True,
                               start_new_session=True, timeout=sfs.TIMEOUT)
            err = p.stderr.decode()
            self.assertEqual(p.returncode, 11, err)
            self.assertIn("sessionctl: prune: no terminal to ask on: nothing changed "
                          "(use --yes)", err)
            self.assertEqual(self.snapshot(), before)

    def test_asks_on_a_terminal(self):
        before = self.snapshot()
        args = [sfs.SESSIONCTL, "prune", "--older-than", "30d", self.m.mnt]
        p, master, slave = spawn_on_pty(args)
        try:
            out = read_until(master, rb"Archive these 2 sessions\? \[y/N\] ")
            self.assertIn(self.old1.encode(), out)
            os.write(master, b"n\n")
            self.assertEqual(p.wait(timeout=sfs.TIMEOUT), 11)
        finally:
            os.close(slave)
            os.close(master)
        self.assertEqual(self.snapshot(), before)
        p, master, slave = spawn_on_pty(args)
        try:
            read_until(master, rb"\[y/N\] ")
            os.write(master, b"y\n")
            read_until(master, ("archived %s" % self.old1).encode())
            self.assertEqual(p.wait(timeout=sfs.TIMEOUT), 0)
        finally:
            os.close(slave)
            os.close(master)
        self.assertEqual(self.where()[self.old1], "archive")

    def test_unlocked_by_another_mount_is_skipped(self):
        m2 = self.e.mount()
        self.e.unlock(m2, self.old2)
        age(self.e.store, self.old2, 40)
        r = self.prune("--older-than", "30d", "--yes")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("sessionctl: prune: skipping %s: unlocked by another mount of the store"
                      % self.old2, r.err)
        self.assertEqual(self.plan(r.out, "archived"), [self.old1])
        self.assertEqual(self.where()[self.old2], "sessions")
        r = self.prune("--older-than", "30d", "--delete", "--yes")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("skipping %s" % self.old2, r.err)
        self.assertEqual(self.where(), {self.old2: "sessions", self.mid: "sessions",
                                        self.new: "sessions"})
        # the other mount's session is whole
        self.assertIn("metadata.json", os.listdir(m2.sdir(self.old2)))

    def test_bad_input(self):
        before = self.snapshot()
        bad = [["--older-than", d, "--yes"] for d in
               ("30", "1.5d", "-1d", "30x", "", "d", "30 d", "3dd", "99999999999999w")]
        bad += [["--keep-last", k, "--yes"] for k in ("-1", "x", "", "2.5")]
        bad += [["--older-than", "1d", "--archive", "--delete", "--yes"], ["--yes"],
                ["--status", "", "--yes"]]
        for args in bad:
            r = self.prune(*args)
            self.assertEqual(r.rc, 2, (args, r))
            self.assertEqual(r.out, "", args)
            self.assertTrue(r.err.startswith("sessionctl: prune: "), r.err)
        self.assertIn("want a whole number and a unit", self.prune("--older-than", "30").err)
        self.assertEqual(self.snapshot(), before)

    def test_matches_nothing(self):
        before = self.snapshot()
        for args in (["--older-than", "90d"], ["--older-than", "90d", "--delete"],
                     ["--keep-last", "10"]):
            r = self.prune(*args)   # no --yes, no terminal: nothing to ask about
            self.assertEqual(r.rc, 0, r)
            self.assertRegex(r.out, r"^nothing to (archive|delete): no session matches\n$")
        self.assertEqual(self.snapshot(), before)


if __name__ == "__main__":
    sfs.main()
