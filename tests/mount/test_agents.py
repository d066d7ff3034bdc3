"""Agents' own transcripts inside a session (doc/agents.md): the write patterns
Claude Code and Codex use, through a real mount, and contrib/claude-code-hook.sh.

- JSON lines appended by several processes at once, to events.jsonl and to an
  ordinary .jsonl file (a transcript), some writers holding the file open, some
  opening it for each line as Node's fs.appendFile does, some lines longer
  than a page and some cut into two writes: every line is there once, whole,
  and each writer's lines are in order;
- a JSON index rewritten by write-temp-then-rename, by two writers, many times,
  while two readers read it: every read is one whole document;
- SQLite in WAL mode (python3's sqlite3): two processes insert in
  transactions, checkpoint, close, lock, unlock, reopen: integrity_check ok and
  every row there; a writer killed with WAL frames not yet checkpointed loses
  no committed row; a process that holds the database open when the session
  locks can change nothing while it is locked (it gets an error or SIGBUS,
  its shared-memory index being unreadable then) and every committed row is
  there after unlock;
- the hook script appends one valid line while the session is unlocked (with
  jq, and with python3 where jq is missing), and exits 0 without writing when
  the session is locked, the path is missing, the mount is gone, or the daemon
  hangs (SIGSTOP; its timeout kills the append).
"""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import unittest

import sfs

HOOK = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                    "contrib", "claude-code-hook.sh"))
WRITERS = int(os.environ.get("SFS_AGENTS_WRITERS", "6"))
LINES = int(os.environ.get("SFS_AGENTS_LINES", "300"))
RENAMES = int(os.environ.get("SFS_AGENTS_RENAMES", "400"))
ROWS = int(os.environ.get("SFS_AGENTS_ROWS", "200"))


def line_for(wid, seq):
    """Writer @wid's line @seq: a JSON object whose size varies from tens of
    bytes to over two pages, and checks itself (n = len(pad))."""
    n = (seq * 7919 + wid * 104729) % 9000 if seq % 5 == 0 else (seq * 31) % 200
    return (json.dumps({"w": wid, "s": seq, "n": n, "pad": chr(97 + wid % 26) * n})
            + "\n").encode()


def append_main(path, wid, mode):
    """Append LINES lines to @path (from writer @wid). mode "hold": one O_APPEND descriptor,
    one write per line; "each": open, write, close per line (fs.appendFile);
    "split": one descriptor, every line cut into two writes (a small stdio
    buffer)."""
    wid = int(wid)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND) if mode != "each" else -1
    for seq in range(LINES):
        data = line_for(wid, seq)
        if mode == "each":
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        parts = [data[:len(data) // 2], data[len(data) // 2:]] if mode == "split" else [data]
        for p in parts:
            if os.write(fd, p) != len(p):
                raise SystemExit("short write")
        if mode == "each":
            os.close(fd)
    if mode != "each":
        os.close(fd)


def index_doc(wid, gen):
    """A self-checking index document, as an agent's sessions index."""
    n = (gen * 613 + wid * 97) % 12000
    return json.dumps({"version": 1, "writer": wid, "gen": gen, "n": n,
                       "entries": [{"id": "%d-%d" % (wid, i)} for i in range(n % 50)],
                       "pad": "p" * n}).encode()


def check_index(raw):
    """Raises unless @raw is one whole document index_doc wrote."""
    d = json.loads(raw)
    if (len(d["pad"]) != d["n"] or len(d["entries"]) != d["n"] % 50
            or raw != index_doc(d["writer"], d["gen"])):
        raise ValueError("not a whole document: %r" % raw[:80])
    return d


def rename_writer_main(path, wid):
    """Write the index RENAMES times as agents do: a temp file named after
    the writer, write, fsync every tenth time, rename over the index."""
    wid = int(wid)
    for gen in range(RENAMES):
        tmp = "%s.tmp.%d.%d" % (path, os.getpid(), gen)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, index_doc(wid, gen))
        if gen % 10 == 0:
            os.fsync(fd)
        os.close(fd)
        os.rename(tmp, path)


def rename_reader_main(path, stop):
    """Read @path and check it until the file @stop exists; print the number
    of reads; exit 1 at the first read that is not a whole document."""
    reads = 0
    while True:
        done = os.path.exists(stop)
        with open(path, "rb") as f:
            raw = f.read()
        try:
            check_index(raw)
        except ValueError as e:
            print("read %d: %s" % (reads, e))
            sys.exit(1)
        reads += 1
        if done:
            break
    print(reads)


SQL_WRITER = r'''
import sqlite3, sys
db, wid, rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
c = sqlite3.connect(db, timeout=60, isolation_level=None)
c.execute("pragma journal_mode=wal")
for i in range(0, rows, 10):
    c.execute("begin immediate")
    for j in range(i, min(i + 10, rows)):
        c.execute("insert into t(w, i, body) values(?, ?, ?)", (wid, j, "x" * (j * 37 % 3000)))
    c.execute("commit")
c.close()
'''

SQL_HOLDER = r'''
import os, sqlite3, sys
db = sys.argv[1]
c = sqlite3.connect(db, timeout=5, isolation_level=None)
c.execute("pragma journal_mode=wal")
c.execute("pragma wal_autocheckpoint=0")
c.execute("create table if not exists t(w, i, body)")
c.execute("begin")
for j in range(50):
    c.execute("insert into t values(?, ?, ?)", (9, j, "committed"))
c.execute("commit")
print("ready", flush=True)
cmd = sys.stdin.readline().strip()
if cmd == "exit":
    os._exit(0)
try:
    c.execute("insert into t values(9, 999, 'while locked')")
    print("inserted", flush=True)
except Exception as e:
    print("error %r" % e, flush=True)
'''


class AgentsTest(unittest.TestCase):
    def setUp(self):
        sfs.need_binaries()
        self.e = sfs.Env()
        self.addCleanup(self.e.cleanup)
        self.m = self.e.mount()
        self.sid = self.e.new(self.m)
        self.sdir = self.m.sdir(self.sid)

    def relock(self):
        r = self.e.lock(self.m, self.sid)
        self.assertIn("locked", r.out)
        self.e.unlock(self.m, self.sid)

    # -- JSON lines by several processes ---------------------------------

    def appenders(self, path, modes):
        procs = [subprocess.Popen([sys.executable, __file__, "append", path, str(w),
                                   modes[w % len(modes)]]) for w in range(WRITERS)]
        for p in procs:
            self.assertEqual(p.wait(timeout=sfs.TIMEOUT * 4), 0)

    def check_lines(self, raw, skip=0):
        lines = raw.split(b"\n")
        self.assertEqual(lines[-1], b"", "the file does not end with a newline")
        seen = {}
        for k, ln in enumerate(lines[skip:-1]):
            d = json.loads(ln)  # a torn or interleaved line does not parse
            self.assertEqual(ln + b"\n", line_for(d["w"], d["s"]), "line %d" % k)
            self.assertEqual(seen.get(d["w"], -1) + 1, d["s"], "writer %d out of order" % d["w"])
            seen[d["w"]] = d["s"]
        self.assertEqual(seen, {w: LINES - 1 for w in range(WRITERS)})

    def test_jsonl_appends_by_several_processes(self):
        """events.jsonl and a transcript .jsonl (an ordinary file), appended
        by WRITERS processes at once, hold every line once, whole, in each
        writer's order; also after a lock and unlock."""
        events = os.path.join(self.sdir, "events.jsonl")
        before = sfs.read_file(events).count(b"\n")
        proj = os.path.join(self.sdir, "claude", "projects", "-home-u-repo")
        os.makedirs(proj)
        transcript = os.path.join(proj, "0f3c9a11-7b2e-4a8d-9f10-2c6b1d4e8a77.jsonl")
        sfs.write_file(transcript, b"")
        # A line cut into two writes interleaves in an ordinary file on any
        # file system (O_APPEND makes each write atomic, not each line);
        # events.jsonl puts each open file's lines together.
        for path, skip, modes in ((events, before, ["hold", "each", "split"]),
                                  (transcript, 0, ["hold", "each"])):
            self.appenders(path, modes)
            self.check_lines(sfs.read_file(path), skip)
        self.relock()
        self.check_lines(sfs.read_file(events), before)
        self.check_lines(sfs.read_file(transcript), 0)

    def test_transcript_open_across_lock(self):
        """A transcript held open (one O_APPEND descriptor, as a long-running
        agent keeps it) across a lock: appends fail with EACCES while the
        session is locked, none of them is stored, and after the unlock the
        same descriptor appends again."""
        path = os.path.join(self.sdir, "rollout-2026-12-05T10-00-00-0193.jsonl")
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line_for(0, 0))
            self.e.lock(self.m, self.sid)
            with self.assertRaises(PermissionError):
                os.write(fd, line_for(0, 1))
            self.e.unlock(self.m, self.sid)
            os.write(fd, line_for(0, 2))
        finally:
            os.close(fd)
        self.assertEqual(sfs.read_file(path), line_for(0, 0) + line_for(0, 2))

    # -- write-temp-then-rename ----------------------------------------------

    def test_index_rewritten_by_rename(self):
        """Two writers replace index.json by rename RENAMES times each while
        two readers read it: every read is one whole document, and no temp
        file is left."""
        idx = os.path.join(self.sdir, "sessions-index.json")
        sfs.write_file(idx, index_doc(0, 0))
        stop = self.e.path("stop")
        readers = [subprocess.Popen([sys.executable, __file__, "read-index", idx, stop],
                                    stdout=subprocess.PIPE, text=True) for _ in range(2)]
        writers = [subprocess.Popen([sys.executable, __file__, "rename", idx, str(w)])
                   for w in range(2)]
        try:
            for w in writers:
                self.assertEqual(w.wait(timeout=sfs.TIMEOUT * 4), 0)
        finally:
            sfs.write_file(stop, b"")
        for r in readers:
            out, _ = r.communicate(timeout=sfs.TIMEOUT)
            self.assertEqual(r.returncode, 0, out)
            print("reader: %s whole reads" % out.strip(), file=sys.stderr)
            self.assertGreater(int(out), 0)
        d = check_index(sfs.read_file(idx))
        self.assertEqual(d["gen"], RENAMES - 1)
        self.assertEqual(sorted(os.listdir(self.sdir)),
                         ["events.jsonl", "metadata.json", "sessions-index.json"])
        self.relock()
        self.assertEqual(check_index(sfs.read_file(idx))["gen"], RENAMES - 1)

    # -- SQLite in WAL mode ----------------------------------------------------

    def sql_rows(self, db):
        c = sqlite3.connect(db)
        try:
            self.assertEqual(c.execute("pragma integrity_check").fetchall(), [("ok",)])
            return c.execute("select w, i, length(body) from t order by w, i").fetchall()
        finally:
            c.close()

    def test_sqlite_wal(self):
        """Two processes insert in transactions into one WAL database; a
        checkpoint, close, lock, unlock and reopen find every row."""
        db = os.path.join(self.sdir, "state_5.sqlite")
        c = sqlite3.connect(db, isolation_level=None)
        self.assertEqual(c.execute("pragma journal_mode=wal").fetchone(), ("wal",))
        c.execute("create table t(w, i, body)")
        procs = [subprocess.Popen([sys.executable, "-c", SQL_WRITER, db, str(w), str(ROWS)])
                 for w in range(2)]
        for p in procs:
            self.assertEqual(p.wait(timeout=sfs.TIMEOUT * 4), 0)
        self.assertEqual(c.execute("select count(*) from t").fetchone(), (2 * ROWS,))
        busy, _, _ = c.execute("pragma wal_checkpoint(TRUNCATE)").fetchone()
        self.assertEqual(busy, 0)
        self.assertEqual(os.path.getsize(db + "-wal"), 0)
        c.close()
        self.relock()
        want = [(w, i, i * 37 % 3000) for w in range(2) for i in range(ROWS)]
        self.assertEqual(self.sql_rows(db), want)
        c = sqlite3.connect(db)
        self.assertEqual(c.execute("pragma journal_mode").fetchone(), ("wal",))
        c.close()

    def test_sqlite_wal_writer_killed(self):
        """A writer killed (SIGKILL) with its commits only in the -wal file:
        after lock and unlock, a reopen replays the WAL and every committed
        row is there."""
        db = os.path.join(self.sdir, "state.sqlite")
        p = subprocess.Popen([sys.executable, "-c", SQL_HOLDER, db], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
        self.assertEqual(p.stdout.readline(), "ready\n")
        self.assertGreater(os.path.getsize(db + "-wal"), 0)
        p.kill()
        p.wait()
        self.relock()
        self.assertEqual(self.sql_rows(db), [(9, j, 9) for j in range(50)])

    def test_sqlite_open_across_lock(self):
        """A process holding a WAL database open when the session locks
        changes nothing while it is locked: its insert fails, or it dies of
        SIGBUS (the -shm mapping reads through the locked mount); after
        unlock the database is whole with every committed row."""
        db = os.path.join(self.sdir, "state.sqlite")
        p = subprocess.Popen([sys.executable, "-c", SQL_HOLDER, db], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
        self.assertEqual(p.stdout.readline(), "ready\n")
        r = self.e.lock(self.m, self.sid)
        self.assertRegex(r.out, r"\(\d+ open files?\)")
        out, _ = p.communicate("insert\n", timeout=sfs.TIMEOUT)
        print("holder across lock: rc %d, %r" % (p.returncode, out), file=sys.stderr)
        self.assertNotIn("inserted", out)
        self.assertTrue(p.returncode == -signal.SIGBUS or out.startswith("error"),
                        (p.returncode, out))
        self.e.unlock(self.m, self.sid)
        self.assertEqual(self.sql_rows(db), [(9, j, 9) for j in range(50)])

    # -- the hook ----------------------------------------------------------

    HOOK_INPUT = {"session_id": "8c35adc1-0000-4000-8000-000000000001",
                  "transcript_path": "/home/u/.claude/projects/-home-u-repo/8c35adc1.jsonl",
                  "cwd": "/home/u/repo", "permission_mode": "default",
                  "hook_event_name": "PostToolUse", "tool_name": "Bash",
                  "tool_input": {"command": "ls -l /var/log", "description": "list"},
                  "tool_response": {"stdout": "secret-ish output", "stderr": ""},
                  "tool_use_id": "toolu_01ABC"}

    def hook(self, env=None, path=None, input=None):
        """Run the hook with @env added (and PATH=@path if given); the
        Result and the seconds it took."""
        e = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONFS_")}
        e.update(env or {})
        if path is not None:
            e["PATH"] = path
        t0 = time.monotonic()
        r = sfs.run([HOOK], input=json.dumps(input or self.HOOK_INPUT), env=e)
        return r, time.monotonic() - t0

    def fake_mount(self, target):
        """A directory with `current` -> @target, standing in for MOUNTPOINT
        until `sessionctl use` makes MOUNTPOINT/current."""
        d = self.e.path("fakemnt")
        os.makedirs(d, exist_ok=True)
        cur = os.path.join(d, "current")
        if os.path.lexists(cur):
            os.unlink(cur)
        os.symlink(target, cur)
        return d

    def events(self):
        return sfs.read_file(os.path.join(self.sdir, "events.jsonl")).splitlines()

    def check_hook_line(self, ln):
        d = json.loads(ln)
        self.assertEqual(d["type"], "tool_call")
        self.assertRegex(d["timestamp"], sfs.ISO_Z_RE)
        self.assertEqual(d["tool_name"], "Bash")
        self.assertEqual(d["hook_event_name"], "PostToolUse")
        self.assertEqual(d["tool_use_id"], "toolu_01ABC")
        self.assertEqual(d["session_id"], self.HOOK_INPUT["session_id"])
        self.assertEqual(d["text"], "Bash: ls -l /var/log")
        self.assertNotIn("tool_response", d)

    def test_hook_appends_while_unlocked(self):
        """With jq (SESSIONFS_MOUNT/current and SESSIONFS_EVENTS) and with
        python3 alone (no jq on PATH): one valid line per call, exit 0."""
        mnt = self.fake_mount(self.sdir)
        n0 = len(self.events())
        r, secs = self.hook({"SESSIONFS_MOUNT": mnt})
        self.assertEqual((r.rc, r.err), (0, ""))
        print("hook, unlocked (jq): %.3f s" % secs, file=sys.stderr)
        r, _ = self.hook({"SESSIONFS_EVENTS": os.path.join(self.sdir, "events.jsonl"),
                          "SESSIONFS_MOUNT": self.e.path("nowhere")})
        self.assertEqual((r.rc, r.err), (0, ""))
        bindir = self.e.path("bin-nojq")
        os.mkdir(bindir)
        for b in ("date", "timeout", "cat"):
            os.symlink(subprocess.check_output(["sh", "-c", "command -v " + b],
                                               text=True).strip(), os.path.join(bindir, b))
        os.symlink(os.path.realpath(sys.executable), os.path.join(bindir, "python3"))
        r, secs = self.hook({"SESSIONFS_MOUNT": mnt}, path=bindir)
        self.assertEqual((r.rc, r.err), (0, ""))
        print("hook, unlocked (python3): %.3f s" % secs, file=sys.stderr)
        new = self.events()[n0:]
        self.assertEqual(len(new), 3, new)
        for ln in new:
            self.check_hook_line(ln)
        # odd input still logs what it can; input that is not JSON logs nothing
        r, _ = self.hook({"SESSIONFS_MOUNT": mnt}, input={"tool_name": "Read",
                                                          "tool_input": "odd"})
        self.assertEqual(r.rc, 0)
        self.assertEqual(json.loads(self.events()[-1])["text"], "Read")
        n1 = len(self.events())
        e = dict(os.environ, SESSIONFS_MOUNT=mnt)
        r = sfs.run([HOOK], input="not json", env=e)
        self.assertEqual(r.rc, 0)
        self.assertEqual(len(self.events()), n1)

    def test_hook_fails_open(self):
        """Locked session, no `current`, a dangling `current`, nothing set, a
        bad timeout, the mount gone: exit 0, nothing written anywhere, and it
        returns."""
        mnt = self.fake_mount(self.sdir)
        n0 = len(self.events())
        self.e.lock(self.m, self.sid)
        r, secs = self.hook({"SESSIONFS_MOUNT": mnt})
        self.assertEqual(r.rc, 0, r)
        print("hook, locked: %.3f s (%s)" % (secs, r.err.strip()), file=sys.stderr)
        r, _ = self.hook({"SESSIONFS_EVENTS": os.path.join(self.sdir, "events.jsonl")})
        self.assertEqual(r.rc, 0, r)
        self.e.unlock(self.m, self.sid)
        self.assertEqual(len(self.events()), n0)

        os.unlink(os.path.join(mnt, "current"))
        r, _ = self.hook({"SESSIONFS_MOUNT": mnt})
        self.assertEqual(r.rc, 0, r)
        self.fake_mount(os.path.join(self.m.sessions(), "INC-ffff"))
        r, _ = self.hook({"SESSIONFS_MOUNT": mnt})
        self.assertEqual(r.rc, 0, r)
        r, _ = self.hook({})
        self.assertEqual((r.rc, r.err), (0, ""))
        r, _ = self.hook({"SESSIONFS_EVENTS": os.path.join(self.sdir, "events.jsonl"),
                          "SESSIONFS_HOOK_TIMEOUT": "soon"})
        self.assertEqual(r.rc, 0, r)
        self.assertIn("bad SESSIONFS_HOOK_TIMEOUT", r.err)
        self.assertEqual(len(self.events()), n0)

        self.fake_mount(self.sdir)
        self.e.assert_umount(self.m)
        r, secs = self.hook({"SESSIONFS_MOUNT": mnt})
        self.assertEqual(r.rc, 0, r)
        print("hook, mount gone: %.3f s" % secs, file=sys.stderr)
        r, _ = self.hook({"SESSIONFS_MOUNT": self.m.mnt})
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(os.listdir(self.m.mnt), [], "the hook wrote under a bare mount point")

    def test_hook_hung_daemon(self):
        """The daemon stopped (SIGSTOP) as a hung mount: the hook's timeout
        kills its append and it exits 0; nothing is written."""
        m = self.e.mount(foreground=True)
        sid = self.e.new(m)
        sdir = m.sdir(sid)
        n0 = len(sfs.read_file(os.path.join(sdir, "events.jsonl")).splitlines())
        mnt = self.fake_mount(sdir)
        os.kill(m.proc.pid, signal.SIGSTOP)
        try:
            r, secs = self.hook({"SESSIONFS_MOUNT": mnt, "SESSIONFS_HOOK_TIMEOUT": "1"})
        finally:
            os.kill(m.proc.pid, signal.SIGCONT)
        self.assertEqual(r.rc, 0, r)
        self.assertIn("gave up after 1s", r.err)
        print("hook, daemon stopped: %.3f s" % secs, file=sys.stderr)
        self.assertEqual(len(sfs.read_file(os.path.join(sdir, "events.jsonl")).splitlines()),
                         n0)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "append":
        append_main(*sys.argv[2:5])
    elif len(sys.argv) > 1 and sys.argv[1] == "rename":
        rename_writer_main(*sys.argv[2:4])
    elif len(sys.argv) > 1 and sys.argv[1] == "read-index":
        rename_reader_main(*sys.argv[2:4])
    else:
        sfs.main()
