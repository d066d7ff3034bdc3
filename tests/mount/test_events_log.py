"""events.jsonl as an append-only log (doc/format.md "Event log"), by crashing
and by looking at the store:

- SIGKILL of the daemon in a loop (SFS_EVENTS_KILL_ROUNDS, default 50) while
  four processes append (two fsync every append, two do not): after every
  remount every line is a JSON object, none is duplicated or torn, every line
  whose write returned is there (kill -9 keeps the kernel's page cache, so a
  returned write must survive even without fsync), each writer's lines stay
  in order;
- a torn tail (the file cut inside a record, as a crash leaves it) is dropped
  at unlock, kept in the container (log header, u64 offset, raw bytes) and
  reported by `sessionctl unlock`; a hole followed by good records (what a
  power loss can leave) is dropped and kept too;
- damage no crash leaves (a flipped byte in a record followed by good records
  of later appends, in the last frame, an earlier one, or a frame's first
  record) is not cut: `sessionctl unlock` warns (exit 0), `list` shows the
  session damaged, reads touching the bad record fail with EIO and every
  other line reads (`tail -n 6` too), size and count stay, appends work;
- an append changes only the new tail of the backing file (nothing before it
  is rewritten), so rsync moves only the tail;
- a 1,000,000-line log (SFS_BIGLOG_LINES) is listed, stat-ed, opened and read
  at its end after unlock while the daemon reads a bounded number of bytes
  (/proc/PID/io rchar), never the whole log;
- `sessionctl list` shows the event count and size; metadata.json "updated"
  follows changes of the session, and a user's own write is not overridden.
"""
import errno
import json
import os
import random
import signal
import struct
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


FRAME = 4096
REC_HDR = 20
REC_NONCE = 24
REC_OVERHEAD = 60


def records(path):
    """The records of log @path by their clear headers: [(backing offset,
    len, flags, plaintext offset, lines)], frames' unused tails skipped."""
    data = sfs.read_file(path)
    pos, out = HDR, []
    while pos < len(data):
        room = FRAME - (pos - HDR) % FRAME
        if room < REC_OVERHEAD + 1:
            pos += room
            continue
        ln, fl, off, lines = struct.unpack_from("<HHQQ", data, pos)
        out.append((pos, ln, fl, off, lines))
        pos += REC_OVERHEAD + ln
    return out


def flip(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x01]))


def kept_files(store, sid):
    d = os.path.join(store, "sessions", sid)
    return sorted(os.path.join(d, n) for n in os.listdir(d) if n.startswith("events.kept-"))


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
            u = self.e.unlock(self.m, sid)
            torn_logged += "dropped a torn tail" in self.m.read_log()
            # a kill -9 leaves only a torn tail: cut, kept, said; never damage
            self.assertNotIn("damaged", u.err, "round %d" % r)
            for ln in u.err.splitlines():
                if "dropped a torn tail" in ln:
                    name = ln.split(" as ")[-1]
                    self.assertTrue(os.path.isfile(name), "round %d: %s" % (r, ln))
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
        torn = sfs.read_file(back)
        cut = records(back)[-1][0]
        r = self.e.unlock(self.m, sid)
        self.assertEqual(sfs.read_file(self.events(sid)).decode(), "".join(lines[:-1]))
        self.assertIn("dropped a torn tail", self.m.read_log())
        # the user is told, and the cut bytes are kept: header, u64 offset, bytes
        kept = kept_files(self.e.store, sid)
        self.assertEqual(len(kept), 1)
        self.assertIn("sessionctl: warning: %s: events.jsonl: dropped a torn tail" % sid, r.err)
        self.assertIn(kept[0], r.err)
        self.assertEqual(sfs.read_file(kept[0]),
                         torn[:HDR] + struct.pack("<Q", cut) + torn[cut:])
        self.assertEqual(os.path.getsize(back), cut)
        self.assertNotIn("damaged", self.e.list(self.m)[0])
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
        r = self.e.unlock(self.m, sid)
        data = sfs.read_file(self.events(sid))
        objs = self.check_log(data, "after the hole")
        self.assertGreater(len(objs), 200)
        self.assertEqual(data.decode(), "".join(lines[:len(objs)]))
        kept = [n for n in os.listdir(os.path.join(self.e.store, "sessions", sid))
                if n.startswith("events.kept-")]
        self.assertEqual(len(kept), 1, "the cut bytes are kept in the container")
        self.assertIn("raw bytes are kept", self.m.read_log())
        self.assertIn("power loss", r.err)
        self.assertIn(kept[0], r.err)
        self.assertNotIn("damaged", self.e.list(self.m)[0])

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


class DamageTest(sfs.ForegroundMountTest):
    """Damage no crash leaves is reported, never cut (issue 13, item 1)."""
    events = EventsLogTest.events
    locked_log = EventsLogTest.locked_log

    def unlock_damaged(self, sid, back, line_text):
        """Unlock @sid after its log @back was damaged: exit 0, a warning that
        names the file and @line_text, nothing cut or kept."""
        size = os.path.getsize(back)
        r = self.e.ctl("unlock", self.m.sdir(sid), password=sfs.PASSWORD)
        self.assertEqual(r.rc, 0, r)
        self.assertIn("sessionctl: warning: %s: events.jsonl: damaged:" % sid, r.err)
        self.assertIn(line_text, r.err)
        self.assertEqual(os.path.getsize(back), size, "unlock cut the log")
        self.assertEqual(kept_files(self.e.store, sid), [])
        self.assertIn("damaged", self.m.read_log())
        return r

    def check_lines(self, sid, lines, bad):
        """Line by line: the lines in @bad fail with EIO, every other one reads."""
        fd = os.open(self.events(sid), os.O_RDONLY)
        off = 0
        try:
            for i, ln in enumerate(lines):
                b = ln.encode()
                if i in bad:
                    with self.assertRaises(OSError, msg="line %d" % (i + 1)) as cm:
                        os.pread(fd, len(b), off)
                    self.assertEqual(cm.exception.errno, errno.EIO)
                else:
                    self.assertEqual(os.pread(fd, len(b), off), b, "line %d" % (i + 1))
                off += len(b)
        finally:
            os.close(fd)

    def check_listed_damaged(self, sid, nlines, nbytes, line_text):
        lst = {s["id"]: s for s in self.e.list(self.m)}[sid]
        self.assertEqual(lst["events"], nlines)
        self.assertEqual(lst["events_bytes"], nbytes)
        self.assertEqual(len(lst.get("damaged", [])), 1, lst)
        self.assertEqual(lst["damaged"][0]["file"], "events.jsonl")
        self.assertIn(line_text, lst["damaged"][0]["what"])
        r = self.e.ctl("list", self.m.mnt)
        self.assertEqual(r.rc, 0, r)
        row = [ln for ln in r.out.splitlines() if ln.startswith(sid)][0].split()
        self.assertEqual(row[2], "damaged")
        self.assertIn("sessionctl: warning: %s: events.jsonl: damaged" % sid, r.err)

    def test_flipped_byte_in_4th_of_10(self):
        """The issue's reproduction: 10 lines appended one by one, a byte of the
        4th record flipped while locked."""
        lines = [json.dumps({"type": "note", "n": i, "text": "line %d" % (i + 1)}) + "\n"
                 for i in range(10)]
        text = "".join(lines).encode()
        sid, back = self.locked_log(lines)
        recs = records(back)
        self.assertEqual(len(recs), 10)
        flip(back, recs[3][0] + REC_HDR + REC_NONCE + recs[3][1] // 2)
        self.unlock_damaged(sid, back, "(line 4)")
        path = self.events(sid)
        self.assertEqual(os.stat(path).st_size, len(text))
        self.check_lines(sid, lines, {3})
        # a read over all of it fails (wc -l reads it whole) ...
        r = sfs.run(["wc", "-l", path])
        self.assertNotEqual(r.rc, 0, r)
        self.assertIn("Input/output error", r.err)
        # ... a read of everything after the damaged line does not (GNU tail
        # -n 6 reads this 400-byte file in one read, line 4 included: see
        # test_tail_after_damage for tail)
        start = sum(len(x) for x in lines[:4])
        r = sfs.run(["tail", "-c", "+%d" % (start + 1), path])
        self.assertEqual((r.rc, r.out), (0, "".join(lines[4:])), r)
        self.check_listed_damaged(sid, 10, len(text), "line 4")
        # appends work, and count
        with open(path, "a") as f:
            f.write('{"after":"damage"}\n')
        lines.append('{"after":"damage"}\n')
        self.check_lines(sid, lines, {3})
        self.check_listed_damaged(sid, 11, len(text) + 19, "line 4")
        # the next unlock says it again, and still cuts nothing
        self.e.lock(self.m, sid)
        lst = {s["id"]: s for s in self.e.list(self.m)}[sid]
        self.assertTrue(lst["locked"])
        self.assertIn("line 4", lst["damaged"][0]["what"], "still known while locked")
        self.unlock_damaged(sid, back, "(line 4)")
        self.check_lines(sid, lines, {3})

    def test_tail_after_damage(self):
        """tail -n 6 reads backwards in 8 KiB chunks: with lines long enough
        that the damaged record is outside those chunks, it shows the last
        six lines."""
        lines = [json.dumps({"n": i, "pad": "p" * 2480}) + "\n" for i in range(10)]
        sid, back = self.locked_log(lines)
        rec = records(back)[3]
        ends = [sum(len(x) for x in lines[:i + 1]) for i in range(10)]
        bad = {i for i in range(10) if ends[i] > rec[3] and ends[i] - len(lines[i]) < rec[3] + rec[1]}
        self.assertTrue(bad and max(bad) < 4, bad)
        flip(back, rec[0] + REC_HDR + REC_NONCE + 7)
        self.unlock_damaged(sid, back, "line %d)" % (max(bad) + 1))
        r = sfs.run(["tail", "-n", "6", self.events(sid)])
        self.assertEqual((r.rc, r.out), (0, "".join(lines[4:])), r)
        self.check_lines(sid, lines, bad)

    def test_damage_in_an_earlier_frame(self):
        """300 lines, a byte flipped in frame 2: all 300 are counted, 299 read."""
        lines = [json.dumps({"n": i, "t": "q" * (i % 90)}) + "\n" for i in range(300)]
        text = "".join(lines).encode()
        sid, back = self.locked_log(lines)
        rec = [x for x in records(back) if x[0] > HDR + 2 * FRAME + 500][0]
        i = [k for k in range(300) if sum(len(x) for x in lines[:k]) == rec[3]][0]
        flip(back, rec[0] + REC_HDR + REC_NONCE + rec[1] + 3)   # its tag
        self.unlock_damaged(sid, back, "(line %d)" % (i + 1))
        self.assertEqual(os.stat(self.events(sid)).st_size, len(text))
        self.check_lines(sid, lines, {i})
        r = sfs.run(["tail", "-n", "6", self.events(sid)])
        self.assertEqual((r.rc, r.out), (0, "".join(lines[-6:])), r)
        self.check_listed_damaged(sid, 300, len(text), "line %d" % (i + 1))

    def test_damage_in_a_frame_header(self):
        """A byte of the clear header (its offset field) of a frame's first
        record, in the middle of a log of about 1,600 frames."""
        sid = self.e.new(self.m)
        path = self.events(sid)
        lines = [json.dumps({"n": i, "pad": "r" * (200 + i * 7919 % 3500)}) + "\n"
                 for i in range(3400)]
        with open(path, "a") as f:
            for ln in lines:
                f.write(ln)
                f.flush()
        self.e.lock(self.m, sid)
        back = events_backing(self.e.store, sid)
        nframes = (os.path.getsize(back) - HDR) // FRAME
        self.assertGreater(nframes, 1500)
        k = nframes // 2
        rec = [x for x in records(back) if x[0] == HDR + k * FRAME][0]
        starts = [sum(len(x) for x in lines[:i]) for i in range(len(lines) + 1)]
        bad = {i for i in range(len(lines))
               if starts[i + 1] > rec[3] and starts[i] < rec[3] + rec[1]}
        flip(back, rec[0] + 4 + 2)     # the offset field
        self.unlock_damaged(sid, back, "line")
        text_size = starts[-1]
        self.assertEqual(os.stat(path).st_size, text_size)
        self.check_lines(sid, lines, bad)
        r = sfs.run(["tail", "-n", "6", path])
        self.assertEqual((r.rc, r.out), (0, "".join(lines[-6:])), r)
        lst = {s["id"]: s for s in self.e.list(self.m)}[sid]
        self.assertEqual((lst["events"], lst["events_bytes"]), (len(lines), text_size))
        self.assertIn("damaged", lst)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--appender":
        appender_main(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5] == "1",
                      int(sys.argv[6]))
        sys.exit(0)
    sfs.main()
