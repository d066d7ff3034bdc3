"""The two special files at a session's root: events.jsonl (append-only, one
JSON object per line) and metadata.json (a JSON object, validated, replaced
atomically), driven the way people and tools edit them: shell redirections,
jq + mv, sed -i, vim/ex, python. Files with those names in subdirectories are
ordinary files."""
import errno
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import sfs

EV = "events.jsonl"
MD = "metadata.json"

# One appender process for test_events_concurrent_appenders: argv = path,
# writer number, lines, mode ("each": open/write/close per line; "keep": one
# fd for all lines), seed. Line lengths vary 20..3000 bytes so lines cross
# 4096-byte blocks.
APPENDER = r"""
import os, random, sys
path, w, n, mode, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
rnd = random.Random(seed)
fd = os.open(path, os.O_WRONLY | os.O_APPEND) if mode == "keep" else None
for i in range(n):
    head = '{"w":%d,"i":%d,"pad":"' % (w, i)
    want = rnd.randrange(20, 3001)
    pad = "x" * max(0, want - len(head) - 3)
    line = (head + pad + '"}\n').encode()
    f = fd if fd is not None else os.open(path, os.O_WRONLY | os.O_APPEND)
    k = os.write(f, line)
    if k != len(line):
        sys.exit("short write %d of %d at w=%d i=%d" % (k, len(line), w, i))
    if fd is None:
        os.close(f)
if fd is not None:
    os.close(fd)
"""

# Reader for test_metadata_atomic_under_rewrites: reads and parses the file
# until the stop file exists; prints a JSON summary.
READER = r"""
import json, os, sys, time
path, stop, sid = sys.argv[1], sys.argv[2], sys.argv[3]
reads, bad, seen = 0, [], set()
t0 = time.monotonic()
open(stop + ".ready", "w").close()
while not os.path.exists(stop) and time.monotonic() - t0 < 20:
    with open(path, "rb") as f:
        data = f.read()
    reads += 1
    try:
        d = json.loads(data)
        if not isinstance(d, dict) or d.get("id") != sid:
            raise ValueError("not the session's object")
        seen.add(d.get("n"))
    except Exception as e:
        if len(bad) < 5:
            bad.append("%s: %r" % (e, data[:200]))
        else:
            bad.append("...")
print(json.dumps({"reads": reads, "bad": bad, "versions": len(seen)}))
"""


class SessionFilesTest(unittest.TestCase):
    def setUp(self):
        self.e = sfs.Env()
        self.addCleanup(self.e.cleanup)
        self.m = self.e.mount()
        self.sid = self.e.new(self.m)
        self.d = self.m.sdir(self.sid)

    def p(self, *parts):
        return os.path.join(self.d, *parts)

    def sh(self, script, *args):
        """sh -c SCRIPT in the session dir -> Result."""
        return sfs.run(["sh", "-c", 'cd "$1" && shift && ' + script, "sh", self.d] + list(args))

    def assertErrno(self, err, fn, *args, **kw):
        with self.assertRaises(OSError) as cm:
            fn(*args, **kw)
        self.assertEqual(cm.exception.errno, err,
                         "%s%r: want %s, got %r" % (fn.__name__, args, errno.errorcode[err],
                                                    cm.exception))
        return cm.exception

    def events(self):
        return sfs.read_file(self.p(EV))

    def meta(self):
        return json.loads(sfs.read_file(self.p(MD)))

    def remount_unlock(self):
        self.m = self.e.remount(self.m)
        self.e.unlock(self.m, self.sid)
        self.d = self.m.sdir(self.sid)

    # ---- events.jsonl ------------------------------------------------------

    def test_events_shell_append(self):
        before = self.events()
        for line in before.splitlines():
            self.assertIsInstance(json.loads(line), dict, before)
        r = self.sh("echo '{\"type\":\"note\",\"text\":\"db restarted\"}' >> events.jsonl && "
                    "printf '%s\\n' '{\"type\":\"note\",\"n\":2}' >> events.jsonl")
        self.assertEqual(r.rc, 0, r)
        want = before + b'{"type":"note","text":"db restarted"}\n{"type":"note","n":2}\n'
        self.assertEqual(self.events(), want)
        r = sfs.run(["cat", self.p(EV)])
        self.assertEqual(r.out.encode(), want)
        r = sfs.run(["jq", "-c", ".", self.p(EV)])
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out.splitlines()[-2:],
                         ['{"type":"note","text":"db restarted"}', '{"type":"note","n":2}'])
        self.assertEqual(os.stat(self.p(EV)).st_size, len(want))

    def test_events_invalid_lines_refused(self):
        r = self.sh("echo '{\"ok\":1}' >> events.jsonl")
        self.assertEqual(r.rc, 0, r)
        before = self.events()
        for bad in (b"not json\n", b"[1]\n", b"\n", b'"str"\n', b"42\n", b"null\n",
                    b'{"a":1\n', b'{"a":1}{"b":2}\n',
                    b'{"good":1}\nnot json\n',           # one bad line: none of it stored
                    b'not json\n{"good":2}\n',
                    b'{"good":3}\n\n'):
            fd = os.open(self.p(EV), os.O_WRONLY | os.O_APPEND)
            try:
                self.assertErrno(errno.EINVAL, os.write, fd, bad)
            finally:
                try:
                    os.close(fd)
                except OSError as e:  # nothing is pending: close must not fail
                    self.fail("close after refused write %r: %r" % (bad, e))
            self.assertEqual(self.events(), before, "after %r" % bad)
        for bad in ("not json", "[1]", ""):
            r = self.sh("echo '%s' >> events.jsonl" % bad)
            self.assertNotEqual(r.rc, 0, "echo %r >> events.jsonl: %r" % (bad, r))
            self.assertEqual(self.events(), before, "after echo %r" % bad)
        # and it still takes good lines afterwards
        r = self.sh("echo '{\"ok\":2}' >> events.jsonl")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(self.events(), before + b'{"ok":2}\n')

    def test_events_partial_lines(self):
        before = self.events()
        fd = os.open(self.p(EV), os.O_WRONLY | os.O_APPEND)
        os.write(fd, b'{"a":')
        self.assertEqual(self.events(), before, "an unterminated line is not stored yet")
        os.write(fd, b'1}\n')
        self.assertEqual(self.events(), before + b'{"a":1}\n')
        os.write(fd, b'{"b":2}')
        self.assertEqual(self.events(), before + b'{"a":1}\n')
        os.close(fd)
        before += b'{"a":1}\n{"b":2}\n'
        self.assertEqual(self.events(), before, "the tail is stored at close, with a newline")

        fd = os.open(self.p(EV), os.O_WRONLY | os.O_APPEND)
        os.write(fd, b'{"c":')
        self.assertErrno(errno.EINVAL, os.close, fd)
        self.assertEqual(self.events(), before, "an invalid tail at close is not stored")

        # several lines and a tail in one write, the rest in the next
        fd = os.open(self.p(EV), os.O_WRONLY | os.O_APPEND)
        os.write(fd, b'{"d":1}\n{"d":2}\n{"d"')
        self.assertEqual(self.events(), before + b'{"d":1}\n{"d":2}\n')
        os.write(fd, b':3}\n')
        os.close(fd)
        before += b'{"d":1}\n{"d":2}\n{"d":3}\n'
        self.assertEqual(self.events(), before)

        # the partial line belongs to its open file: two fds interleaved
        f1 = os.open(self.p(EV), os.O_WRONLY | os.O_APPEND)
        f2 = os.open(self.p(EV), os.O_WRONLY | os.O_APPEND)
        try:
            os.write(f1, b'{"fd":1,')
            os.write(f2, b'{"fd":2,')
            os.write(f1, b'"x":"one"')
            os.write(f2, b'"x":"two"}\n')
            os.write(f1, b'}\n')
            os.write(f2, b'{"fd":2,"y":')
            os.write(f1, b'{"fd":1,"y":1}\n')
            os.write(f2, b'2}\n')
        finally:
            os.close(f1)
            os.close(f2)
        self.assertEqual(self.events(), before + b'{"fd":2,"x":"two"}\n{"fd":1,"x":"one"}\n'
                         b'{"fd":1,"y":1}\n{"fd":2,"y":2}\n')
        for line in self.events().splitlines():
            self.assertIsInstance(json.loads(line), dict)

    def test_events_append_only(self):
        r = self.sh("echo '{\"keep\":1}' >> events.jsonl")
        self.assertEqual(r.rc, 0, r)
        before = self.events()
        self.assertTrue(before)
        fd = os.open(self.p(EV), os.O_WRONLY)
        try:
            self.assertErrno(errno.EPERM, os.pwrite, fd, b'{"over":1}\n', 0)
            self.assertErrno(errno.EPERM, os.pwrite, fd, b'{"over":1}\n', 1)
            self.assertErrno(errno.EPERM, os.ftruncate, fd, 0)
        finally:
            os.close(fd)
        self.assertEqual(self.events(), before)
        self.assertErrno(errno.EPERM, os.open, self.p(EV), os.O_WRONLY | os.O_TRUNC)
        self.assertErrno(errno.EPERM, os.open, self.p(EV),
                         os.O_WRONLY | os.O_APPEND | os.O_TRUNC)
        with self.assertRaises(PermissionError):
            open(self.p(EV), "w")
        self.assertErrno(errno.EPERM, os.truncate, self.p(EV), 0)
        self.assertErrno(errno.EPERM, os.truncate, self.p(EV), len(before) + 10)
        self.assertErrno(errno.EPERM, os.unlink, self.p(EV))
        self.assertErrno(errno.EPERM, os.rename, self.p(EV), self.p("x"))
        os.mkdir(self.p("sub"))
        self.assertErrno(errno.EPERM, os.rename, self.p(EV), self.p("sub", EV))
        sfs.write_file(self.p("some"), '{"other":1}\n')
        self.assertErrno(errno.EPERM, os.rename, self.p("some"), self.p(EV))
        sfs.write_file(self.p("sub", EV), '{"other":2}\n')
        self.assertErrno(errno.EPERM, os.rename, self.p("sub", EV), self.p(EV))
        self.assertErrno(errno.EPERM, os.link, self.p(EV), self.p("y"))
        self.assertFalse(os.path.exists(self.p("x")))
        self.assertFalse(os.path.exists(self.p("y")))
        self.assertTrue(os.path.exists(self.p("some")))
        r = self.sh("echo '{\"x\":1}' > events.jsonl")
        self.assertNotEqual(r.rc, 0, "> events.jsonl (O_TRUNC): %r" % r)
        r = self.sh("truncate -s 0 events.jsonl")
        self.assertNotEqual(r.rc, 0, r)
        r = self.sh("rm -f events.jsonl")
        self.assertNotEqual(r.rc, 0, r)
        r = self.sh("mv some events.jsonl")
        self.assertNotEqual(r.rc, 0, r)
        self.assertEqual(self.events(), before)
        # still appendable after all that
        r = self.sh("echo '{\"after\":1}' >> events.jsonl")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(self.events(), before + b'{"after":1}\n')

    def test_rm_rf_session_stops_at_events(self):
        r = self.sh("echo '{\"keep\":1}' >> events.jsonl && mkdir -p data/logs && "
                    "echo x > data/logs/a.log && echo y > notes.md")
        self.assertEqual(r.rc, 0, r)
        before = self.events()
        r = sfs.run(["rm", "-rf", self.d])
        self.assertNotEqual(r.rc, 0, "rm -rf of a session succeeded: %r" % r)
        self.assertTrue(os.path.isdir(self.d))
        self.assertEqual(self.events(), before)
        self.assertIn(self.sid, os.listdir(self.m.sessions()))
        r = self.sh("echo '{\"after\":1}' >> events.jsonl")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(self.events(), before + b'{"after":1}\n')

    def test_events_concurrent_appenders(self):
        before = self.events()
        writers, n = 8, 500
        procs = []
        for w in range(writers):
            mode = "keep" if w % 2 else "each"
            procs.append(subprocess.Popen(
                [sys.executable, "-c", APPENDER, self.p(EV), str(w), str(n), mode, str(w + 1)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
        for w, pr in enumerate(procs):
            try:
                out, _ = pr.communicate(timeout=sfs.TIMEOUT)
            except subprocess.TimeoutExpired:
                for q in procs:
                    q.kill()
                self.fail("appender %d timed out" % w)
            self.assertEqual(pr.returncode, 0, "appender %d: %r" % (w, out))
        data = self.events()
        self.assertTrue(data.startswith(before), "the old lines changed")
        self.assertTrue(data.endswith(b"\n"))
        lines = data[len(before):].split(b"\n")[:-1]
        self.assertEqual(len(lines), writers * n)
        last = [-1] * writers
        seen = set()
        for k, line in enumerate(lines):
            try:
                d = json.loads(line)
            except ValueError as e:
                self.fail("line %d is not JSON (%s): %r" % (k, e, line[:120]))
            self.assertIsInstance(d, dict, line[:120])
            w, i = d["w"], d["i"]
            self.assertNotIn((w, i), seen, "line %d duplicated" % k)
            seen.add((w, i))
            self.assertGreater(i, last[w], "writer %d out of order at line %d" % (w, k))
            last[w] = i
        self.assertEqual(len(seen), writers * n)
        self.assertEqual(os.stat(self.p(EV)).st_size, len(data))

    def test_same_names_in_subdirectories_are_ordinary(self):
        os.makedirs(self.p("data", "sub"))
        for d in (self.p("data"), self.p("data", "sub")):
            ev, md = os.path.join(d, EV), os.path.join(d, MD)
            sfs.write_file(ev, "not json\n")
            with open(ev, "ab") as f:
                f.write(b"[1]\n")
            self.assertEqual(sfs.read_file(ev), b"not json\n[1]\n")
            fd = os.open(ev, os.O_WRONLY)
            os.pwrite(fd, b"NOT", 0)
            os.close(fd)
            self.assertEqual(sfs.read_file(ev), b"NOT json\n[1]\n")
            os.truncate(ev, 3)
            self.assertEqual(sfs.read_file(ev), b"NOT")
            with open(ev, "wb") as f:
                f.write(b"partial")
            self.assertEqual(sfs.read_file(ev), b"partial")
            os.rename(ev, os.path.join(d, "moved"))
            os.link(os.path.join(d, "moved"), ev)
            os.unlink(os.path.join(d, "moved"))
            os.unlink(ev)
            self.assertFalse(os.path.exists(ev))

            sfs.write_file(md, "garbage")
            self.assertEqual(sfs.read_file(md), b"garbage")
            sfs.write_file(md, "[1]")
            self.assertEqual(sfs.read_file(md), b"[1]")
            r = sfs.run(["truncate", "-s", "0", md])
            self.assertEqual(r.rc, 0, r)
            self.assertEqual(sfs.read_file(md), b"")
            os.unlink(md)
        r = sfs.run(["rm", "-rf", self.p("data")])
        self.assertEqual(r.rc, 0, r)
        self.assertFalse(os.path.exists(self.p("data")))

    # ---- metadata.json -----------------------------------------------------

    def check_meta(self, orig, status, how):
        r = sfs.run(["jq", "-r", ".status", self.p(MD)])
        self.assertEqual((r.rc, r.out), (0, status + "\n"), "after %s: %r" % (how, r))
        d = self.meta()
        for k in ("id", "created"):
            self.assertEqual(d.get(k), orig[k], "after %s: %s changed: %r" % (how, k, d))
        self.assertEqual(d["id"], self.sid)
        return d

    def test_metadata_editing_styles(self):
        orig = self.meta()
        self.assertEqual(orig.get("id"), self.sid)
        self.assertIn("created", orig)
        self.assertEqual(orig.get("status"), "active")

        r = self.sh("jq '.status=\"completed\"' metadata.json > t && mv t metadata.json")
        self.assertEqual(r.rc, 0, r)
        self.assertFalse(os.path.exists(self.p("t")))
        self.check_meta(orig, "completed", "jq + mv")

        r = self.sh("sed -i 's/completed/paused/' metadata.json")
        self.assertEqual(r.rc, 0, r)
        self.check_meta(orig, "paused", "sed -i")

        vim = ["vim", "-u", "NONE", "-N", "-n", "-es"]
        for status, old, extra in (("failed", "paused", []),
                                   ("active", "failed", ["-c", "set backupcopy=no"]),
                                   ("completed", "active", ["-c", "set backupcopy=yes"]),
                                   ("paused", "completed",
                                    ["-c", "set backupcopy=no", "-c", "set backup"])):
            r = sfs.run(vim + extra + ["-c", "%%s/\"%s\"/\"%s\"/" % (old, status),
                                       "-c", "wq", self.p(MD)])
            self.assertEqual(r.rc, 0, r)
            self.check_meta(orig, status, "vim %r" % extra)
        for f in os.listdir(self.d):  # vim's backup (set backup) may stay: it is its own file
            if f.startswith(MD) and f != MD:
                os.unlink(self.p(f))

        # the plain vim command the brief names, without -u NONE
        r = sfs.run(["vim", "-es", "-c", "%s/paused/failed/", "-c", "wq", self.p(MD)])
        self.assertEqual(r.rc, 0, r)
        self.check_meta(orig, "failed", "vim -es")

        d = self.meta()
        d["status"] = "paused"
        d["owner"] = "alice"
        d["tags"] = ["db", "sev2"]
        with open(self.p(MD), "w") as f:
            json.dump(d, f, indent=2)
        got = self.check_meta(orig, "paused", "python open('w')")
        self.assertEqual((got.get("owner"), got.get("tags")), ("alice", ["db", "sev2"]))

        if sfs.shutil.which("ex"):
            r = sfs.run(["ex", "-s", "-c", "%s/paused/failed/", "-c", "wq", self.p(MD)])
            self.assertEqual(r.rc, 0, r)
            self.check_meta(orig, "failed", "ex")

        # python writing in place without truncating first (r+): same length doc
        d = self.meta()
        d["status"] = "active"
        data = json.dumps(d).encode()
        with open(self.p(MD), "wb") as f:
            f.write(data)
        self.check_meta(orig, "active", "python wb")

        # no stray temp files left behind by any of these
        self.assertEqual(sorted(f for f in os.listdir(self.d) if f.startswith(MD)), [MD])
        self.assertNotIn("t", os.listdir(self.d))

    def write_meta_expect_einval(self, data, how):
        """Write @data over metadata.json with os.open(O_WRONLY|O_TRUNC)/write/
        close: EINVAL at write or close (fsync also allowed), old document kept."""
        before = sfs.read_file(self.p(MD))
        fd = os.open(self.p(MD), os.O_WRONLY | os.O_TRUNC)
        err = None
        try:
            if data:
                os.write(fd, data)
        except OSError as e:
            err = e
        try:
            os.close(fd)
        except OSError as e:
            err = err or e
        self.assertIsNotNone(err, "%s: no error at write or close" % how)
        self.assertEqual(err.errno, errno.EINVAL, "%s: %r" % (how, err))
        self.assertEqual(sfs.read_file(self.p(MD)), before, "%s: document changed" % how)

    def test_metadata_refused(self):
        orig = self.meta()
        before = sfs.read_file(self.p(MD))
        changed_id = dict(orig, id="INC-ffff" if self.sid != "INC-ffff" else "INC-eeee")
        changed_created = dict(orig, created="2001-01-01T00:00:00Z")
        no_created = {k: v for k, v in orig.items() if k != "created"}
        no_id = {k: v for k, v in orig.items() if k != "id"}
        cases = [("garbage", b"garbage\n"), ("array", b"[1]\n"), ("string", b'"x"'),
                 ("truncated", json.dumps(orig).encode()[:-1]),
                 ("two objects", json.dumps(orig).encode() * 2),
                 ("id changed", json.dumps(changed_id).encode()),
                 ("id removed", json.dumps(no_id).encode()),
                 ("created changed", json.dumps(changed_created).encode()),
                 ("created removed", json.dumps(no_created).encode()),
                 ("empty", b"")]
        for how, data in cases:
            self.write_meta_expect_einval(data, how)

        # python's buffered file: the error surfaces at close
        with self.assertRaises(OSError) as cm:
            with open(self.p(MD), "w") as f:
                f.write("garbage\n")
        self.assertEqual(cm.exception.errno, errno.EINVAL, cm.exception)
        self.assertEqual(sfs.read_file(self.p(MD)), before)

        # fsync reports it too
        fd = os.open(self.p(MD), os.O_WRONLY | os.O_TRUNC)
        try:
            os.write(fd, b"[1]\n")
            self.assertErrno(errno.EINVAL, os.fsync, fd)
            self.assertEqual(sfs.read_file(self.p(MD)), before)
        finally:
            try:
                os.close(fd)
            except OSError as e:
                self.assertEqual(e.errno, errno.EINVAL, e)
        self.assertEqual(sfs.read_file(self.p(MD)), before)

        # the shell: `echo garbage > metadata.json` may exit 0 (sh ignores close
        # errors) but must not store anything
        self.sh("echo garbage > metadata.json")
        self.assertEqual(sfs.read_file(self.p(MD)), before)
        r = self.sh("printf '[1]' > metadata.json")
        self.assertEqual(sfs.read_file(self.p(MD)), before)

        # via rename: mv of an invalid document over metadata.json fails
        for how, data in cases[:2] + cases[5:]:
            sfs.write_file(self.p("t"), data)
            r = self.sh("mv t metadata.json")
            self.assertNotEqual(r.rc, 0, "mv t metadata.json (%s) succeeded: %r" % (how, r))
            # EPERM, which mv reports as it is (EINVAL would read "cannot move 't'
            # to a subdirectory of itself")
            self.assertIn("Operation not permitted", r.err, how)
            self.assertNotIn("subdirectory", r.err, how)
            self.assertEqual(sfs.read_file(self.p(MD)), before, "mv (%s)" % how)
            self.assertEqual(sfs.read_file(self.p("t")), data, "mv (%s): t changed" % how)
            self.assertErrno(errno.EPERM, os.rename, self.p("t"), self.p(MD))
            self.assertEqual(sfs.read_file(self.p(MD)), before)
            os.unlink(self.p("t"))

        r = self.sh("truncate -s 0 metadata.json")
        self.assertNotEqual(r.rc, 0, "truncate -s 0 metadata.json: %r" % r)
        self.assertEqual(sfs.read_file(self.p(MD)), before)
        with self.assertRaises(OSError):
            os.truncate(self.p(MD), 0)
        self.assertEqual(sfs.read_file(self.p(MD)), before)
        r = self.sh("jq '.id=\"INC-0bad\"' metadata.json > t && mv t metadata.json")
        self.assertNotEqual(r.rc, 0, r)
        self.assertEqual(sfs.read_file(self.p(MD)), before)
        r = self.sh("sed -i 's/\"created\"/\"made\"/' metadata.json")
        self.assertNotEqual(r.rc, 0, "sed -i renaming created away: %r" % r)
        self.assertEqual(sfs.read_file(self.p(MD)), before)

        # a good write still works afterwards
        with open(self.p(MD), "w") as f:
            json.dump(dict(orig, status="paused"), f)
        self.check_meta(orig, "paused", "good write after refusals")

    def test_metadata_atomic_under_rewrites(self):
        orig = self.meta()
        stop = self.e.path("stop-reader")
        reader = subprocess.Popen([sys.executable, "-c", READER, self.p(MD), stop, self.sid],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 10
            while not os.path.exists(stop + ".ready"):
                self.assertIsNone(reader.poll(), "reader died")
                self.assertLess(time.monotonic(), deadline, "reader did not start")
                time.sleep(0.01)
            t0 = time.monotonic()
            errors = []
            for n in range(200):
                doc = dict(orig, n=n, status=("active", "paused")[n % 2],
                           pad="p" * (n * 37 % 3000))
                data = json.dumps(doc, indent=1).encode()
                half = len(data) // 2
                try:
                    with open(self.p(MD), "wb", buffering=0) as f:
                        f.write(data[:half])
                        time.sleep(0.001)
                        f.write(data[half:])
                except OSError as e:
                    errors.append("rewrite %d: %r" % (n, e))
            # keep the reader going for about 3 s in all
            while time.monotonic() - t0 < 3:
                time.sleep(0.05)
            open(stop, "w").close()
            out, err = reader.communicate(timeout=sfs.TIMEOUT)
        finally:
            if reader.poll() is None:
                reader.kill()
                reader.wait()
        self.assertEqual(errors, [])
        self.assertEqual(reader.returncode, 0, err)
        res = json.loads(out)
        self.assertEqual(res["bad"], [], "reader saw a torn/empty document (%d reads)"
                         % res["reads"])
        self.assertGreater(res["reads"], 50, res)
        self.assertGreater(res["versions"], 1, "the reader never saw a rewrite: %r" % res)
        d = self.check_meta(orig, "paused", "200 rewrites")
        self.assertEqual(d.get("n"), 199)

    def test_metadata_reader_closes_after_replacement(self):
        """A read-only close of metadata.json is served by the request
        loop's reader (fs/loop.c). One that finds its file replaced tells
        the kernel to forget the old name, which takes the session root's
        lock; a process looking a name up in the root holds that lock while
        it waits for its reply, which only the reader would read: so the
        close passes the reading on first (sfs_loop_pass). Without that the
        loop stalls until its watchdog passes the place on a second later,
        and says so in the daemon's log. Readers opened before each
        replacement keep the document they opened; later opens see the new
        one."""
        # In the foreground, where the daemon's log is its stderr (Mount.read_log).
        self.e.assert_umount(self.m)
        self.m = self.e.mount(foreground=True, mnt=self.m.mnt)
        self.e.unlock(self.m, self.sid)
        orig = self.meta()
        stop = threading.Event()
        misses = [0]

        def look_up():
            while not stop.is_set():
                for i in range(50):
                    try:
                        os.stat(self.p("missing-%d" % i))
                    except FileNotFoundError:
                        misses[0] += 1

        t = threading.Thread(target=look_up)
        t.start()
        try:
            for n in range(20):
                held = [open(self.p(MD), "rb") for _ in range(3)]
                before = self.meta()
                doc = dict(orig, n=n, status=("active", "paused")[n % 2])
                with open(self.p(MD), "w") as f:
                    json.dump(doc, f)
                for h in held:
                    self.assertEqual(json.loads(h.read()), before)
                    h.close()
                self.assertIn(MD, os.listdir(self.d))
                self.check_meta(orig, doc["status"], "replacement %d" % n)
                self.assertEqual(self.meta()["n"], n)
        finally:
            stop.set()
            t.join()
        self.assertGreater(misses[0], 0)
        self.assertNotIn("held the request loop's reader", self.m.read_log())

    def test_metadata_read_beside_growing_write(self):
        """One open metadata.json, read and written by several threads at
        once: preads of its unsaved document run beside pwrites that grow
        it (each past a power of two: its buffer is reallocated), then a
        valid document is written and closed. The kernel serialises the
        writes of a file, not its direct_io reads, and reads over 128 KiB
        run on a thread of their own (loop.c): before the handle had a
        mutex of its own, a read could copy from the buffer a write had
        just freed (ASan: heap-use-after-free in sfs_meta_read; TSan: a
        race on the handle's buf and len)."""
        orig = self.meta()
        rounds = int(os.environ.get("SFS_META_GROW_ROUNDS", "25"))
        errors = []
        reads = [0]
        for n in range(rounds):
            fd = os.open(self.p(MD), os.O_RDWR | os.O_TRUNC)
            done = threading.Event()

            def reader(seed):
                rnd = random.Random(seed)
                try:
                    while not done.is_set():
                        os.pread(fd, 1 << rnd.randrange(18, 21), rnd.randrange(0, 1 << 19))
                        reads[0] += 1
                except OSError as e:
                    errors.append("round %d: pread: %r" % (n, e))

            readers = [threading.Thread(target=reader, args=(n * 10 + i,)) for i in range(3)]
            for t in readers:
                t.start()
            try:
                # Each write ends past the next power of two: the buffer
                # grows 4 KiB -> 1 MiB, one reallocation per write.
                for k in range(12, 20):
                    os.pwrite(fd, b" " * 3000, (1 << k) - 1000)
                    os.pread(fd, 4096, (1 << k) - 4096)
            finally:
                done.set()
                for t in readers:
                    t.join()
            doc = json.dumps(dict(orig, n=n, status="grown"), indent=1).encode()
            os.pwrite(fd, doc, 0)
            os.ftruncate(fd, len(doc))
            self.assertEqual(os.pread(fd, len(doc) + 10, 0), doc, "round %d" % n)
            os.close(fd)  # commits: the document is valid
        self.assertEqual(errors, [])
        self.assertGreater(reads[0], rounds, "the readers hardly ran")
        d = self.check_meta(orig, "grown", "%d rounds of reads beside growing writes" % rounds)
        self.assertEqual(d.get("n"), rounds - 1)

    # ---- metadata.json never vanishes, never empties -------------------------

    def assertMetaIs(self, before, how):
        """metadata.json is listed and holds @before (size included: never a
        0-byte file, not even in the kernel's cached attributes)."""
        self.assertIn(MD, os.listdir(self.d), how)
        self.assertEqual(os.stat(self.p(MD)).st_size, len(before), how)
        self.assertEqual(sfs.read_file(self.p(MD)), before, how)

    def other_fs_file(self, data):
        """A file outside the mount (another file system): its path."""
        fd, t = tempfile.mkstemp(prefix="sfs-md-", dir="/tmp")
        self.addCleanup(lambda: os.path.exists(t) and os.unlink(t))
        os.write(fd, data)
        os.close(fd)
        return t

    def test_metadata_mv_from_other_fs(self):
        before = sfs.read_file(self.p(MD))
        orig = self.meta()
        # jq into /tmp, then mv: mv unlinks the target, then copies. The
        # unlink is refused (EPERM): mv fails loudly, the document stays.
        bad = self.other_fs_file(b"")
        r = sfs.run(["sh", "-c", 'jq \'.id="INC-ffff"\' "$1" > "$2" && mv "$2" "$1"', "sh",
                     self.p(MD), bad])
        self.assertNotEqual(r.rc, 0, "mv of a document with another id: %r" % r)
        self.assertIn("Operation not permitted", r.err)
        self.assertMetaIs(before, "mv from /tmp, bad id")
        good = self.other_fs_file(json.dumps(dict(orig, status="completed")).encode())
        r = sfs.run(["mv", good, self.p(MD)])
        self.assertNotEqual(r.rc, 0, "mv from another file system: %r" % r)
        self.assertIn("Operation not permitted", r.err)
        self.assertMetaIs(before, "mv from /tmp, valid document")
        self.assertTrue(os.path.exists(good), "mv removed its source after failing")
        # what README says to do instead: copy it in, or mv within the session
        r = sfs.run(["cp", good, self.p(MD)])
        self.assertEqual(r.rc, 0, r)
        self.check_meta(orig, "completed", "cp from /tmp")
        sfs.write_file(good, json.dumps(dict(orig, status="paused")))
        r = sfs.run(["sh", "-c", 'cat "$1" > "$2"', "sh", good, self.p(MD)])
        self.assertEqual(r.rc, 0, r)
        self.check_meta(orig, "paused", "cat > metadata.json")
        r = self.sh('jq \'.status="failed"\' metadata.json > t && mv t metadata.json')
        self.assertEqual(r.rc, 0, r)
        self.check_meta(orig, "failed", "jq > t && mv t (in the session)")
        now = sfs.read_file(self.p(MD))
        self.remount_unlock()
        self.assertMetaIs(now, "after remount")

    def test_metadata_never_removed(self):
        sfs.write_file(self.p("notes.md"), "n\n")
        before = sfs.read_file(self.p(MD))
        self.assertErrno(errno.EPERM, os.unlink, self.p(MD))
        r = self.sh("rm -f metadata.json")
        self.assertNotEqual(r.rc, 0, r)
        self.assertIn("Operation not permitted", r.err)
        self.assertMetaIs(before, "rm")
        # renamed away, it would be gone just the same
        os.mkdir(self.p("sub"))
        for to in ("old.json", "sub/metadata.json", EV):
            self.assertErrno(errno.EPERM, os.rename, self.p(MD), self.p(to))
            self.assertMetaIs(before, "rename to %s" % to)
        self.assertFalse(os.path.exists(self.p("old.json")))
        os.rename(self.p(MD), self.p(MD))  # onto itself: nothing happens, as anywhere
        self.assertMetaIs(before, "rename onto itself")
        # rm -rf of the session stops at both special files
        r = sfs.run(["rm", "-rf", self.d])
        self.assertNotEqual(r.rc, 0, "rm -rf of a session succeeded: %r" % r)
        self.assertEqual(sorted(os.listdir(self.d)), [EV, MD])
        self.assertMetaIs(before, "rm -rf")
        self.remount_unlock()
        self.assertMetaIs(before, "rm -rf, after remount")

    def test_metadata_cut_without_write(self):
        before = sfs.read_file(self.p(MD))
        # ftruncate to 0, then close without writing: refused, the old stays
        fd = os.open(self.p(MD), os.O_WRONLY)
        os.ftruncate(fd, 0)
        self.assertErrno(errno.EINVAL, os.close, fd)
        self.assertMetaIs(before, "ftruncate(0) + close")
        fd = os.open(self.p(MD), os.O_RDWR)
        try:
            os.ftruncate(fd, 0)
            self.assertErrno(errno.EINVAL, os.fsync, fd)
            self.assertMetaIs(before, "ftruncate(0) + fsync")
        finally:
            try:
                os.close(fd)
            except OSError as e:
                self.assertEqual(e.errno, errno.EINVAL, e)
        self.assertMetaIs(before, "ftruncate(0) + fsync + close")
        # O_TRUNC open, close without a write
        for flags in (os.O_WRONLY | os.O_TRUNC, os.O_RDWR | os.O_TRUNC,
                      os.O_WRONLY | os.O_CREAT | os.O_TRUNC):
            fd = os.open(self.p(MD), flags, 0o644)
            self.assertErrno(errno.EINVAL, os.close, fd)
            self.assertMetaIs(before, "open(%#o) + close" % flags)
        self.sh(": > metadata.json")  # sh may ignore the close error; nothing is stored
        self.assertMetaIs(before, ": > metadata.json")
        self.remount_unlock()
        self.assertMetaIs(before, "after remount")

    def test_metadata_rm_then_create(self):
        before = sfs.read_file(self.p(MD))
        orig = self.meta()
        other = json.dumps(dict(orig, created="2001-01-01T00:00:00Z")).encode()
        self.assertErrno(errno.EPERM, os.unlink, self.p(MD))
        self.assertErrno(errno.EEXIST, os.open, self.p(MD),
                         os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        fd = os.open(self.p(MD), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, other)
        self.assertErrno(errno.EINVAL, os.close, fd)
        self.assertMetaIs(before, "rm, then create with another created")
        t = self.other_fs_file(other)
        r = sfs.run(["sh", "-c", 'rm -f "$2"; cp "$1" "$2"', "sh", t, self.p(MD)])
        self.assertNotEqual(r.rc, 0, r)
        self.assertMetaIs(before, "rm -f; cp with another created")
        self.remount_unlock()
        self.assertMetaIs(before, "after remount")

    def test_metadata_types(self):
        orig = self.meta()
        before = sfs.read_file(self.p(MD))
        cases = [("id a number", dict(orig, id=1234)),
                 ("id an array", dict(orig, id=[self.sid])),
                 ("created not ISO", dict(orig, created="yesterday")),
                 ("updated not ISO", dict(orig, updated="2026-01-01 00:00:00")),
                 ("updated a number", dict(orig, updated=1767225600)),
                 ("updated not UTC", dict(orig, updated="2026-01-01T00:00:00+02:00")),
                 ("updated no such day", dict(orig, updated="2026-02-30T00:00:00Z")),
                 ("tags a string", dict(orig, tags="db,sev2")),
                 ("tags not strings", dict(orig, tags=["db", 2])),
                 ("tags nested", dict(orig, tags=[["db"]])),
                 ("status a number", dict(orig, status=1)),
                 ("status null", dict(orig, status=None)),
                 ("name a number", dict(orig, name=5))]
        for how, doc in cases:
            data = json.dumps(doc).encode()
            self.write_meta_expect_einval(data, how)
            sfs.write_file(self.p("t"), data)
            r = self.sh("mv t metadata.json")
            self.assertNotEqual(r.rc, 0, "mv (%s): %r" % (how, r))
            self.assertMetaIs(before, "mv (%s)" % how)
            os.unlink(self.p("t"))
        # users' own members are free; the typed ones take what sessionfs writes
        doc = dict(orig, status="paused", name="db outage", tags=["db", "sev2"],
                   updated="2026-03-01T12:00:00.250Z", owner="alice", priority=3,
                   links=[{"url": "https://x", "n": 1}], extra=None, tagsx=5, counts=[1, 2])
        with open(self.p(MD), "w") as f:
            json.dump(doc, f)
        got = self.check_meta(orig, "paused", "users' own members")
        for k in ("owner", "priority", "links", "extra", "tagsx", "counts", "tags", "name"):
            self.assertEqual(got.get(k), doc[k], k)
        r = self.sh("jq '.tags += [\"p1\"] | .custom = {\"a\": [1, null]}' metadata.json > t && "
                    "mv t metadata.json")
        self.assertEqual(r.rc, 0, r)
        got = self.meta()
        self.assertEqual((got["tags"], got["custom"]), (["db", "sev2", "p1"], {"a": [1, None]}))
        # sessionfs's own "updated" refresh still lands, in its format
        stamp = "2000-01-01T00:00:00Z"
        r = self.sh("jq '.updated=\"%s\"' metadata.json > t && mv t metadata.json" % stamp)
        self.assertEqual(r.rc, 0, r)
        sfs.write_file(self.p("notes.md"), "a change\n")
        deadline = time.monotonic() + 15
        while self.meta()["updated"] == stamp:
            self.assertLess(time.monotonic(), deadline, "updated not refreshed")
            time.sleep(0.2)
        self.assertRegex(self.meta()["updated"], sfs.ISO_Z_RE)
        self.check_meta(orig, "paused", "after the refresh")

    def test_metadata_missing_is_made_whole(self):
        """A session whose metadata.json is not stored (an older build let rm
        take it): a create stores nothing until a valid document commits."""
        orig = self.meta()
        # a size no other backing file has: 80-byte header + text + 40
        pad = dict(orig, pad="p" * 1500)
        with open(self.p(MD), "w") as f:
            json.dump(pad, f)
        size = len(sfs.read_file(self.p(MD)))
        self.e.lock(self.m, self.sid)
        root = os.path.join(self.e.store, "sessions", self.sid, "root")
        hits = [n for n in os.listdir(root) if os.path.getsize(os.path.join(root, n))
                == 80 + size + 40]
        self.assertEqual(len(hits), 1, hits)
        os.unlink(os.path.join(root, hits[0]))
        self.e.unlock(self.m, self.sid)
        self.assertNotIn(MD, os.listdir(self.d))
        names = set(os.listdir(root))
        # a refused create leaves no file, in the mount or the store
        for how, data in (("another id", dict(orig, id="INC-ffff")),
                          ("not an object", [1]), ("empty", None)):
            fd = os.open(self.p(MD), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            if data is not None:
                os.write(fd, json.dumps(data).encode())
            self.assertErrno(errno.EINVAL, os.close, fd)
            self.assertFalse(os.path.exists(self.p(MD)), how)
            self.assertNotIn(MD, os.listdir(self.d), how)
            self.assertEqual(set(os.listdir(root)), names, how)
        # a valid one is stored whole
        t = self.other_fs_file(json.dumps(dict(orig, status="completed")).encode())
        r = sfs.run(["cp", t, self.p(MD)])
        self.assertEqual(r.rc, 0, r)
        self.check_meta(orig, "completed", "cp into a session without metadata.json")
        now = sfs.read_file(self.p(MD))
        self.remount_unlock()
        self.assertMetaIs(now, "after remount")

    def test_metadata_second_name_refused(self):
        """A file with a second name renamed over metadata.json would leave
        that name writing the document unchecked (after a remount the inode
        is found by either name): EPERM."""
        before = sfs.read_file(self.p(MD))
        sfs.write_file(self.p("t"), json.dumps(dict(self.meta(), status="paused")))
        os.link(self.p("t"), self.p("t2"))
        with self.assertRaises(OSError) as cm:
            os.rename(self.p("t"), self.p(MD))
        self.assertEqual(cm.exception.errno, errno.EPERM, cm.exception)
        self.assertMetaIs(before, "rename of a file with two names")
        os.unlink(self.p("t2"))
        os.rename(self.p("t"), self.p(MD))
        self.assertEqual(self.meta()["status"], "paused")

    def test_metadata_rename_never_reverted_by_refresh(self):
        """A rename over metadata.json while the daemon refreshes "updated"
        (a second after changes settle): the refresh must never write back
        the document it read before the rename returned. Each round appends
        an event, lets the session settle, and renames a document with a new
        marker over metadata.json the moment the refresh's new file shows in
        the store (so the refresh has read the old document and not yet
        renamed its own); once the refresh is done, metadata.json must hold
        the rename's marker, with a refreshed "updated". SFS_RACE_ROUNDS
        (default 6)."""
        orig = self.meta()
        rounds = int(os.environ.get("SFS_RACE_ROUNDS", "6"))
        root = os.path.join(self.e.store, "sessions", self.sid, "root")

        def refreshing():
            return any(n.startswith(".sfs-meta-") for n in os.listdir(root))

        for mark in range(1, rounds + 1):
            sfs.write_file(self.p("t"), json.dumps(dict(orig, mark=mark)))
            for attempt in range(4):
                # a change for the refresh (one may have started already, for t)
                with open(self.p(EV), "a") as f:
                    f.write('{"type":"note","text":"round %d"}\n' % mark)
                deadline = time.monotonic() + 3
                while not refreshing() and time.monotonic() < deadline:
                    pass
                if refreshing():
                    break
            else:
                self.fail("round %d: no refresh of updated seen" % mark)
            # the refresh has read the document and not yet renamed its own
            os.rename(self.p("t"), self.p(MD))
            self.assertEqual(self.meta().get("mark"), mark, "round %d: right after the rename"
                             % mark)
            deadline = time.monotonic() + 5
            while refreshing():
                self.assertLess(time.monotonic(), deadline, "round %d: refresh stuck" % mark)
                time.sleep(0.001)
            self.assertEqual(self.meta().get("mark"), mark, "round %d: the refresh of updated "
                             "wrote back the document the rename replaced" % mark)
        # and the refresh the renames are due settles on the last one
        end = time.monotonic() + 3
        while time.monotonic() < end:
            self.assertEqual(self.meta().get("mark"), rounds, "after the last refresh")
            time.sleep(0.1)
        self.assertRegex(self.meta()["updated"], sfs.ISO_Z_RE)
        self.check_meta(orig, orig["status"], "after the races")

    def test_metadata_rename_storm_never_reverted(self):
        """`mv t metadata.json` in a storm while events are appended: the
        refresh of "updated" (every five seconds while changes go on) must
        never write back a document older than a rename that has returned.
        metadata.json is read just before each next rename, so a reverted
        document is seen; after the storm, while the last refresh settles, it
        holds the last marker. SFS_RACE_SECONDS (default 8)."""
        orig = self.meta()
        secs = float(os.environ.get("SFS_RACE_SECONDS", "8"))
        stop = threading.Event()
        appended = [0]

        def appender():
            fd = os.open(self.p(EV), os.O_WRONLY | os.O_APPEND)
            try:
                while not stop.is_set():
                    os.write(fd, b'{"type":"note","text":"tick %d"}\n' % appended[0])
                    appended[0] += 1
                    time.sleep(0.01)
            finally:
                os.close(fd)

        th = threading.Thread(target=appender)
        th.start()
        stale = []
        mark = 1
        try:
            sfs.write_file(self.p("t"), json.dumps(dict(orig, mark=mark)))
            t0 = time.monotonic()
            while time.monotonic() - t0 < secs:
                os.rename(self.p("t"), self.p(MD))
                sfs.write_file(self.p("t"), json.dumps(dict(orig, mark=mark + 1)))
                got = self.meta().get("mark")
                if got != mark:
                    stale.append((mark, got))
                mark += 1
        finally:
            stop.set()
            th.join()
        last = mark - 1
        self.assertGreater(appended[0], 10)
        self.assertEqual(stale, [], "after %d renames, metadata.json held an older "
                         "rename's marker (rename, found)" % last)
        end = time.monotonic() + 3
        while time.monotonic() < end:
            self.assertEqual(self.meta().get("mark"), last, "a refresh after the storm "
                             "reverted the last rename")
            time.sleep(0.1)
        self.assertRegex(self.meta()["updated"], sfs.ISO_Z_RE)
        self.check_meta(orig, orig["status"], "after the storm")

    def test_persist_lock_unlock_remount(self):
        orig = self.meta()
        r = self.sh("echo '{\"type\":\"note\",\"text\":\"db restarted\"}' >> events.jsonl && "
                    "jq '.status=\"completed\" | .owner=\"bob\"' metadata.json > t && "
                    "mv t metadata.json")
        self.assertEqual(r.rc, 0, r)
        fd = os.open(self.p(EV), os.O_WRONLY | os.O_APPEND)
        os.write(fd, b'{"tail":')
        os.write(fd, b'1}')
        os.close(fd)
        ev = self.events()
        self.assertTrue(ev.endswith(b'{"type":"note","text":"db restarted"}\n{"tail":1}\n'), ev)
        md = self.meta()
        self.assertEqual((md["status"], md["owner"]), ("completed", "bob"))

        def same_meta(d, how):
            self.assertEqual({k: v for k, v in d.items() if k != "updated"},
                             {k: v for k, v in md.items() if k != "updated"}, how)

        self.e.lock(self.m, self.sid)
        self.assertFalse(os.path.exists(self.p(EV)) and os.access(self.p(EV), os.R_OK)
                         and self._readable(self.p(EV)), "events.jsonl readable while locked")
        self.e.unlock(self.m, self.sid)
        self.assertEqual(self.events(), ev)
        same_meta(self.meta(), "after lock/unlock")

        self.remount_unlock()
        self.assertEqual(self.events(), ev)
        same_meta(self.meta(), "after remount")
        self.check_meta(orig, "completed", "remount")
        # the rules still hold after the remount
        self.assertErrno(errno.EPERM, os.unlink, self.p(EV))
        self.write_meta_expect_einval(b"[1]", "array after remount")
        r = self.sh("echo '{\"after\":\"remount\"}' >> events.jsonl && "
                    "sed -i 's/completed/paused/' metadata.json")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(self.events(), ev + b'{"after":"remount"}\n')
        self.check_meta(orig, "paused", "sed -i after remount")
        self.e.lock(self.m, self.sid)
        self.e.unlock(self.m, self.sid)
        self.check_meta(orig, "paused", "second lock/unlock")

    @staticmethod
    def _readable(path):
        try:
            with open(path, "rb") as f:
                f.read(1)
            return True
        except OSError:
            return False


if __name__ == "__main__":
    sfs.main()
