"""events.jsonl as an append-only log (doc/format.md "Event log"), by crashing
and by looking at the store:

- SIGKILL of the daemon in a loop (SFS_EVENTS_KILL_ROUNDS, default 50) while
  four processes append (two fsync every append, two do not): after every
  remount every line is a JSON object, none is duplicated or torn, every line
  whose write returned is there (kill -9 keeps the kernel's page cache, so a
  returned write must survive even without fsync), each writer's lines stay
  in order;
- a torn tail (the file cut inside a record, as a crash leaves it) is dropped
  at unlock and logged; a hole followed by good records (what a power loss
  can leave) is dropped too, its raw bytes kept in the container;
- an append changes only the new tail of the backing file (nothing before it
  is rewritten), so rsync moves only the tail;
- a 1,000,000-line log (SFS_BIGLOG_LINES) is listed, stat-ed, opened and read
  at its end after unlock while the daemon reads a bounded number of bytes
  (/proc/PID/io rchar), never the whole log;
- `sessionctl list` shows the event count and size; metadata.json "updated"
  follows changes of the session, and a user's own write is not overridden.
"""
import json
import os
import random
import signal
import subprocess
import sys
import time

import sfs

SEED = int(os.environ.get("SFS_EVENTS_SEED", "4242"))
ROUNDS = int(os.environ.get("SFS_EVENTS_KILL_ROUNDS", "50"))
BIG_LINES = int(os.environ.get("SFS_BIGLOG_LINES", "1000000"))
HDR = 80


def appender_main(path, side, wid, use_fsync, seed):
    """Append JSON lines {"w": wid, "s": seq, "pad": ...} to @path until the
    mount dies; after each append returns (and its fsync, if @use_fsync),
    log 'ack WID SEQ N' to @side (outside the mount)."""
    rnd = random.Random(seed)
    sfd = os.open(side, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    seq = 0
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        os.write(sfd, b"ready\n")
        while True:
            n = rnd.choice([1, 1, 1, 2, 5])
            lines = [json.dumps({"w": wid, "s": seq + i,
                                 "pad": "x" * rnd.choice([0, 20, 200, 3000])})
                     for i in range(n)]
            data = ("\n".join(lines) + "\n").encode()
            if rnd.random() < 0.1:
                cut = rnd.randrange(1, len(data))  # a line held across two writes
                parts = [data[:cut], data[cut:]]
            else:
                parts = [data]
            for p in parts:
                if os.write(fd, p) != len(p):
                    raise OSError(0, "short write")
            if use_fsync:
                os.fsync(fd)
            os.write(sfd, ("ack %s %d %d\n" % (wid, seq, n)).encode())
            seq += n
    except OSError as e:
        os.write(sfd, ("error %s\n" % e.errno).encode())


def events_backing(store, sid):
    """Path of the backing file of @sid's events.jsonl: the file in the
    session's root whose clear header says kind 1 (a log)."""
    root = os.path.join(store, "sessions", sid, "root")
    found = []
    for n in os.listdir(root):
        p = os.path.join(root, n)
        if n.startswith(".") or not os.path.isfile(p):
            continue
        with open(p, "rb") as f:
            h = f.read(8)
        if len(h) == 8 and h[:4] == b"SFSF" and h[6:8] == b"\x01\x00":
            found.append(p)
    assert len(found) == 1, "want one log in %s, found %r" % (root, found)
    return found[0]


def load(path):
    with open(path) as f:
        return json.load(f)


def rchar(pid):
    with open("/proc/%d/io" % pid) as f:
        for line in f:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    raise AssertionError("no rchar in /proc/%d/io" % pid)


class EventsLogTest(sfs.ForegroundMountTest):
    def events(self, sid):
        return os.path.join(self.m.sdir(sid), "events.jsonl")

    def locked_log(self, lines):
        """A new session whose events.jsonl got @lines, one append each, then
        locked: (id, path of the log's backing file)."""
        sid = self.e.new(self.m)
        with open(self.events(sid), "a") as f:
            for ln in lines:
                f.write(ln)
                f.flush()
        self.e.lock(self.m, sid)
        return sid, events_backing(self.e.store, sid)

    def check_log(self, data, what):
        """Every line of @data a JSON object; returns the parsed objects."""
        self.assertTrue(data == b"" or data.endswith(b"\n"), "%s: unterminated tail" % what)
        objs = []
        for i, line in enumerate(data.split(b"\n")[:-1]):
            try:
                o = json.loads(line)
            except ValueError:
                self.fail("%s: line %d is not JSON: %r" % (what, i, line[:200]))
            self.assertIsInstance(o, dict, "%s: line %d" % (what, i))
            objs.append(o)
        return objs

    def test_sigkill_loop_during_appends(self):
        rnd = random.Random(SEED)
        sid = self.e.new(self.m)
        acked = []      # (wid, seq) whose append returned
        torn_logged = 0
        total = 0
        for r in range(ROUNDS):
            side = self.e.path("side-%d.log" % r)
            open(side, "w").close()
            ws = []
            for k in range(4):
                ws.append(subprocess.Popen(
                    [sys.executable, os.path.abspath(__file__), "--appender",
                     self.events(sid), side, "r%dw%d" % (r, k), "1" if k < 2 else "0",
                     str(SEED * 1000 + r * 10 + k)],
                    stdin=subprocess.DEVNULL, env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1")))
            deadline = time.monotonic() + 30
            while sfs.read_file(side).count(b"ready") < 4:
                self.assertLess(time.monotonic(), deadline, "appenders not ready")
                self.assertTrue(all(w.poll() is None for w in ws),
                                "an appender died before the crash: %s" % sfs.read_file(side))
                time.sleep(0.01)
            time.sleep(rnd.uniform(0.02, 0.4))
            os.kill(self.m.proc.pid, signal.SIGKILL)
            self.m.proc.wait(timeout=30)
            for w in ws:
                try:
                    w.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    w.kill()
                    w.wait()
                    self.fail("an appender hung in the dead mount")
            self.assertEqual(sfs.run(["fusermount3", "-uz", self.m.mnt]).rc, 0)
            with open(side) as f:
                for line in f:
                    p = line.split()
                    if p and p[0] == "ack":
                        acked += [(p[1], int(p[2]) + i) for i in range(int(p[3]))]
            self.remount()
            self.e.unlock(self.m, sid)
            torn_logged += "dropped a torn tail" in self.m.read_log()
            data = sfs.read_file(self.events(sid))
            objs = self.check_log(data, "round %d" % r)
            seen = [(o["w"], o["s"]) for o in objs]
            self.assertEqual(len(seen), len(set(seen)), "round %d: a line twice" % r)
            have = set(seen)
            lost = [a for a in acked if a not in have]
            self.assertEqual(lost, [], "round %d: %d acknowledged lines lost, e.g. %r"
                             % (r, len(lost), lost[:5]))
            last = {}
            for w, s in seen:
                self.assertGreater(s, last.get(w, -1), "round %d: %s out of order" % (r, w))
                last[w] = s
            self.assertEqual(os.stat(self.events(sid)).st_size, len(data))
            total = len(objs)
        lst = {s["id"]: s for s in self.e.list(self.m)}
        self.assertEqual(lst[sid]["events"], total)
        print("\n%d rounds: %d lines, %d acknowledged, torn tail dropped and logged in %d "
              "unlocks" % (ROUNDS, total, len(acked), torn_logged), file=sys.stderr)

    def test_torn_tail_dropped_at_unlock(self):
        lines = [json.dumps({"n": i, "t": "x" * (i % 300)}) + "\n" for i in range(400)]
        sid, back = self.locked_log(lines)
        size = os.path.getsize(back)
        os.truncate(back, size - 10)   # inside the last record, as a crash leaves it
        self.e.unlock(self.m, sid)
        self.assertEqual(sfs.read_file(self.events(sid)).decode(), "".join(lines[:-1]))
        self.assertIn("dropped a torn tail", self.m.read_log())
        # the mended log takes appends again, and keeps them
        with open(self.events(sid), "a") as f:
            f.write('{"after":"repair"}\n')
        self.e.lock(self.m, sid)
        self.e.unlock(self.m, sid)
        self.assertEqual(sfs.read_file(self.events(sid)).decode(),
                         "".join(lines[:-1]) + '{"after":"repair"}\n')

    def test_hole_dropped_and_kept(self):
        lines = [json.dumps({"n": i, "t": "y" * 100}) + "\n" for i in range(300)]
        sid, back = self.locked_log(lines)
        size = os.path.getsize(back)
        with open(back, "r+b") as f:   # a never-written page in the middle of the tail
            f.seek(size - 9000)
            f.write(b"\0" * 4096)
        self.e.unlock(self.m, sid)
        data = sfs.read_file(self.events(sid))
        objs = self.check_log(data, "after the hole")
        self.assertGreater(len(objs), 200)
        self.assertEqual(data.decode(), "".join(lines[:len(objs)]))
        kept = [n for n in os.listdir(os.path.join(self.e.store, "sessions", sid))
                if n.startswith("events.kept-")]
        self.assertEqual(len(kept), 1, "the cut bytes are kept in the container")
        self.assertIn("raw bytes are kept", self.m.read_log())

    def test_append_changes_only_the_tail(self):
        sid = self.e.new(self.m)
        with open(self.events(sid), "a") as f:
            for i in range(5000):
                f.write(json.dumps({"i": i, "pad": "z" * 150}) + "\n")
        back = events_backing(self.e.store, sid)
        before = sfs.read_file(back)
        snap = self.e.path("snap")
        os.mkdir(snap)
        sfs.run(["cp", "-a", os.path.join(self.e.store, "sessions", sid), snap])
        line = json.dumps({"type": "note", "text": "one more line of about two hundred bytes",
                           "pad": "p" * 130}) + "\n"
        self.assertLess(abs(len(line) - 200), 20)
        with open(self.events(sid), "a") as f:
            f.write(line)
        after = sfs.read_file(back)
        self.assertEqual(after[:len(before)], before, "an append rewrote stored bytes")
        grown = len(after) - len(before)
        self.assertLessEqual(grown, len(line) + 60 + 60, "record overhead 60 (+ frame gap)")
        self.assertGreater(grown, len(line))
        # rsync of the store moves only the tail
        r = sfs.run(["rsync", "-a", "--no-whole-file", "--stats",
                     os.path.join(self.e.store, "sessions", sid) + "/",
                     os.path.join(snap, sid) + "/"])
        self.assertEqual(r.rc, 0, r)
        literal = int([ln for ln in r.out.splitlines() if ln.startswith("Literal data")][0]
                      .split(":")[1].split()[0].replace(",", ""))
        self.assertLess(literal, 16384, "rsync sent %d literal bytes for a %d-byte log:\n%s"
                        % (literal, len(after), r.out))

    def test_big_log_is_not_scanned(self):
        sid = self.e.new(self.m)
        path = self.events(sid)
        per_write = 10000
        written = 0
        with open(path, "ab", buffering=0) as f:
            while written < BIG_LINES:
                n = min(per_write, BIG_LINES - written)
                f.write("".join('{"i":%d,"type":"tick","v":"abcdefghijklmnop"}\n' % (written + k)
                                for k in range(n)).encode())
                written += n
        size = os.stat(path).st_size
        last = '{"i":%d,"type":"tick","v":"abcdefghijklmnop"}\n' % (BIG_LINES - 1)
        self.e.lock(self.m, sid)
        pid = self.m.proc.pid
        r0 = rchar(pid)
        self.e.unlock(self.m, sid)
        r1 = rchar(pid)
        lst = {s["id"]: s for s in self.e.list(self.m)}
        self.assertEqual(lst[sid]["events"], BIG_LINES)
        self.assertEqual(lst[sid]["events_bytes"], size)
        st = os.stat(path)
        with open(path, "rb") as f:
            f.seek(-len(last), os.SEEK_END)
            tail = f.read()
            f.seek(size // 2)
            mid = f.read(4096)
        r2 = rchar(pid)
        self.assertEqual(st.st_size, size)
        self.assertEqual(tail.decode(), last)
        self.assertIn(b'"type":"tick"', mid)
        backing = os.path.getsize(events_backing(self.e.store, sid))
        print("\n%d lines, %d bytes (%d stored): unlock read %d bytes, list+stat+open+2 reads "
              "%d bytes" % (BIG_LINES, size, backing, r1 - r0, r2 - r1), file=sys.stderr)
        # unlock checks a bounded window at the end; nothing reads the whole log
        self.assertLess(r1 - r0, 6 << 20)
        self.assertLess(r2 - r1, 1 << 20)
        if BIG_LINES >= 1000000:
            self.assertGreater(backing, 4 * (6 << 20), "the log is big enough to tell")

    def test_list_counts_and_size(self):
        sid = self.e.new(self.m, name="counted")
        with open(self.events(sid), "a") as f:
            f.write('{"a":1}\n{"b":2}\n')
        with open(self.events(sid), "a") as f:
            f.write('{"c":3}')     # completed with a newline at close
        lst = {s["id"]: s for s in self.e.list(self.m)}
        self.assertEqual(lst[sid]["events"], 3)
        self.assertEqual(lst[sid]["events_bytes"], len('{"a":1}\n{"b":2}\n{"c":3}\n'))
        self.assertRegex(lst[sid]["created"], sfs.ISO_Z_RE)
        out = self.e.ctl("list", self.m.mnt).out
        row = [ln for ln in out.splitlines() if ln.startswith(sid)][0].split()
        self.assertIn("3", row)
        self.assertIn(str(lst[sid]["events_bytes"]), row)
        self.assertEqual(row[-1], "counted")
        self.e.lock(self.m, sid)
        lst = {s["id"]: s for s in self.e.list(self.m)}
        self.assertNotIn("events", lst[sid])

    def test_updated_follows_changes(self):
        sid = self.e.new(self.m)
        meta = os.path.join(self.m.sdir(sid), "metadata.json")
        doc = load(meta)
        doc["updated"] = "2000-01-01T00:00:00Z"
        doc["status"] = "paused"
        with open(meta, "w") as f:
            json.dump(doc, f)
        time.sleep(2.5)
        # the user's own write is theirs: not overridden
        self.assertEqual(load(meta)["updated"], "2000-01-01T00:00:00Z")
        t0 = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
        with open(self.events(sid), "a") as f:
            f.write('{"type":"note"}\n')
        deadline = time.monotonic() + 15
        while load(meta)["updated"] == "2000-01-01T00:00:00Z":
            self.assertLess(time.monotonic(), deadline, "updated not refreshed")
            time.sleep(0.2)
        got = load(meta)
        self.assertGreaterEqual(got["updated"], t0)
        self.assertEqual(got["status"], "paused")   # the rest of the document kept
        self.assertEqual(got["id"], sid)
        # a change right before lock is written at lock
        doc = load(meta)
        doc["updated"] = "2001-01-01T00:00:00Z"
        with open(meta, "w") as f:
            json.dump(doc, f)
        sfs.write_file(os.path.join(self.m.sdir(sid), "notes.md"), "x\n")
        self.e.lock(self.m, sid)
        self.e.unlock(self.m, sid)
        self.assertGreaterEqual(load(meta)["updated"], t0)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--appender":
        appender_main(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5] == "1",
                      int(sys.argv[6]))
        sys.exit(0)
    sfs.main()
