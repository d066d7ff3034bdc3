#!/usr/bin/env python3
"""
test_current.py - MOUNTPOINT/current (sessionctl(1) use): `sessionctl use
SESSIONDIR` shows a symlink current -> sessions/ID at the mount root, `use`
prints it, `use --none` removes it. A hook's `echo "$json" >>
MOUNTPOINT/current/events.jsonl` appends while the session is unlocked, and
fails at once with a clear errno (EACCES locked, ENOENT unmounted, ENOTCONN a
dead daemon) instead of hanging: every append runs in a child with a timeout
that only guards against a hang. It follows the session to archive/, goes
with a deleted session, is per mount (a remount has none), cannot be removed
or replaced by hand, and bad operands get documented exit codes.
"""
import errno
import json
import os
import signal
import subprocess
import unittest

import sfs

HOOK = 'echo "$1" >> "$2"/current/events.jsonl'


def hook(mnt, line):
    """The hook as an agent runs it (sh, >>); -> (rc, stderr). The timeout is
    a hang guard only: a hang fails the test, no figure is checked."""
    try:
        p = subprocess.run(["sh", "-c", HOOK, "hook", line, mnt], capture_output=True,
                           text=True, timeout=30)
    except subprocess.TimeoutExpired:
        raise AssertionError("the hook's append hung")
    return p.returncode, p.stderr


def append_errno(mnt, line):
    """open(O_APPEND) and write in a child (hang guard); -> 0 or the errno."""
    code = ("import os,sys\n"
            "try:\n"
            "    fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)\n"
            "    os.write(fd, sys.argv[2].encode()); os.close(fd)\n"
            "except OSError as e:\n"
            "    print(e.errno); sys.exit(0)\n"
            "print(0)\n")
    try:
        p = subprocess.run(["python3", "-c", code,
                            os.path.join(mnt, "current", "events.jsonl"), line],
                           capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        raise AssertionError("the append hung")
    return int(p.stdout.strip())


class CurrentTest(sfs.ForegroundMountTest):
    def events(self, sid, where="sessions"):
        return sfs.read_file(os.path.join(self.m.mnt, where, sid, "events.jsonl")).decode()

    def test_use_prints_and_none(self):
        sid = self.e.new(self.m)
        cur = os.path.join(self.m.mnt, "current")
        self.assertFalse(os.path.lexists(cur))
        self.assertNotIn("current", os.listdir(self.m.mnt))
        r = self.e.ctl("use", self.m.mnt)
        self.assertEqual(r.rc, 4, r)
        self.assertIn("no current session", r.err)
        r = self.e.ctl("use", self.m.sdir(sid))
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out, "%s/current -> sessions/%s\n" % (self.m.mnt, sid))
        self.assertEqual(os.readlink(cur), "sessions/" + sid)
        self.assertIn("current", os.listdir(self.m.mnt))
        self.assertEqual(os.path.realpath(cur), os.path.realpath(self.m.sdir(sid)))
        r = self.e.ctl("use", self.m.mnt)
        self.assertEqual((r.rc, r.out), (0, "%s/sessions/%s\n" % (self.m.mnt, sid)))
        r = self.e.ctl("use", "--json", self.m.mnt)
        self.assertEqual(json.loads(r.out),
                         {"current": sid, "path": "%s/sessions/%s" % (self.m.mnt, sid)})
        # from inside the mount, no operand: the mount of the working directory
        p = subprocess.run([sfs.SESSIONCTL, "use"], cwd=os.path.join(self.m.mnt, "archive"),
                           capture_output=True, text=True, timeout=sfs.TIMEOUT)
        self.assertEqual((p.returncode, p.stdout),
                         (0, "%s/sessions/%s\n" % (self.m.mnt, sid)))
        # another session replaces it
        sid2 = self.e.new(self.m)
        self.assertEqual(self.e.ctl("use", self.m.sdir(sid2)).rc, 0)
        self.assertEqual(os.readlink(cur), "sessions/" + sid2)
        r = self.e.ctl("use", "--none", self.m.mnt)
        self.assertEqual((r.rc, r.out), (0, ""))
        self.assertFalse(os.path.lexists(cur))
        self.assertNotIn("current", os.listdir(self.m.mnt))
        self.assertEqual(self.e.ctl("use", "--none", self.m.mnt).rc, 0)   # again: fine

    def test_hook_appends_while_unlocked_fails_at_once_when_locked(self):
        sid = self.e.new(self.m)
        self.assertEqual(self.e.ctl("use", self.m.sdir(sid)).rc, 0)
        line = '{"type":"tool_use","tool_name":"Bash"}'
        self.assertEqual(hook(self.m.mnt, line), (0, ""))
        self.assertEqual(hook(self.m.mnt, line), (0, ""))
        self.assertEqual(self.events(sid), (line + "\n") * 2)
        # an invalid line is still refused as in the session itself
        rc, err = hook(self.m.mnt, "not json")
        self.assertNotEqual(rc, 0)   # dash says "I/O error" for any failed write
        self.assertEqual(append_errno(self.m.mnt, "not json\n"), errno.EINVAL)
        self.e.lock(self.m, sid)
        rc, err = hook(self.m.mnt, line)
        self.assertNotEqual(rc, 0)
        self.assertIn("Permission denied", err)
        self.assertEqual(append_errno(self.m.mnt, line + "\n"), errno.EACCES)
        self.e.unlock(self.m, sid)
        self.assertEqual(append_errno(self.m.mnt, line + "\n"), 0)
        self.assertEqual(self.events(sid), (line + "\n") * 3)

    def test_mount_gone_fails_at_once(self):
        sid = self.e.new(self.m)
        self.assertEqual(self.e.ctl("use", self.m.sdir(sid)).rc, 0)
        self.e.assert_umount(self.m)
        rc, err = hook(self.m.mnt, '{"a":1}')
        self.assertNotEqual(rc, 0)
        self.assertIn("nonexistent", err)   # dash's words for ENOENT
        self.assertEqual(append_errno(self.m.mnt, '{"a":1}\n'), errno.ENOENT)

    def test_dead_daemon_fails_at_once(self):
        sid = self.e.new(self.m)
        self.assertEqual(self.e.ctl("use", self.m.sdir(sid)).rc, 0)
        self.assertEqual(append_errno(self.m.mnt, '{"a":1}\n'), 0)
        self.m.proc.send_signal(signal.SIGKILL)
        self.m.proc.wait(timeout=sfs.TIMEOUT)
        rc, err = hook(self.m.mnt, '{"a":2}')
        self.assertNotEqual(rc, 0)
        self.assertIn("not connected", err)
        self.assertEqual(append_errno(self.m.mnt, '{"a":2}\n'), errno.ENOTCONN)

    def test_follows_archive_and_delete_and_is_per_mount(self):
        sid = self.e.new(self.m)
        cur = os.path.join(self.m.mnt, "current")
        self.assertEqual(self.e.ctl("use", self.m.sdir(sid)).rc, 0)
        os.rename(self.m.sdir(sid), os.path.join(self.m.mnt, "archive", sid))
        self.assertEqual(os.readlink(cur), "archive/" + sid)
        self.assertEqual(hook(self.m.mnt, '{"in":"archive"}'), (0, ""))
        self.assertEqual(self.events(sid, "archive"), '{"in":"archive"}\n')
        os.rename(os.path.join(self.m.mnt, "archive", sid), self.m.sdir(sid))
        self.assertEqual(os.readlink(cur), "sessions/" + sid)
        # a remount starts without one: it lives in the mount, not in the store
        self.e.assert_umount(self.m)
        self.remount()
        self.assertFalse(os.path.lexists(cur))
        self.assertEqual(sorted(os.listdir(self.e.store)),
                         ["archive", "audit.jsonl", "sessionfs.conf", "sessions"])
        # a locked session can be named; a deleted one takes current with it
        self.assertEqual(self.e.ctl("use", self.m.sdir(sid)).rc, 0)
        self.assertEqual(os.readlink(cur), "sessions/" + sid)
        self.e.unlock(self.m, sid)
        r = self.e.ctl("delete", "--yes", self.m.sdir(sid))
        self.assertEqual(r.rc, 0, r)
        self.assertFalse(os.path.lexists(cur))

    def test_not_changed_by_hand(self):
        sid = self.e.new(self.m)
        cur = os.path.join(self.m.mnt, "current")
        self.assertEqual(self.e.ctl("use", self.m.sdir(sid)).rc, 0)
        for fn in (lambda: os.unlink(cur), lambda: os.symlink("sessions", cur),
                   lambda: os.rename(cur, os.path.join(self.m.mnt, "x")),
                   lambda: os.lchown(cur, os.getuid(), os.getgid())):
            with self.assertRaises(OSError):
                fn()
        self.assertEqual(os.readlink(cur), "sessions/" + sid)
        # and with none set, nothing can be made there
        self.assertEqual(self.e.ctl("use", "--none", self.m.mnt).rc, 0)
        with self.assertRaises(OSError):
            os.symlink("sessions/" + sid, cur)
        self.assertFalse(os.path.lexists(cur))

    def test_bad_operands(self):
        sid = self.e.new(self.m)
        r = self.e.ctl("use", os.path.join(self.m.mnt, "sessions", "INC-0000"))
        self.assertEqual(r.rc, 4, r)
        self.assertIn("no such session", r.err)
        r = self.e.ctl("use", os.path.join(self.m.mnt, "sessions"))
        self.assertEqual(r.rc, 4, r)
        plain = self.e.path("plain")
        os.mkdir(plain)
        r = self.e.ctl("use", plain)
        self.assertEqual(r.rc, 5, r)
        self.assertIn("not a sessionfs mount", r.err)
        r = self.e.ctl("use", "--none", plain)
        self.assertEqual(r.rc, 5, r)
        r = self.e.ctl("use", self.m.sdir(sid), self.m.sdir(sid))
        self.assertEqual(r.rc, 2, r)
        r = self.e.ctl("use", "--bogus", self.m.sdir(sid))
        self.assertEqual(r.rc, 2, r)
        self.assertFalse(os.path.lexists(os.path.join(self.m.mnt, "current")))


if __name__ == "__main__":
    sfs.main()
