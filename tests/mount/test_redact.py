"""`sessionctl redact SESSIONDIR --pattern REGEX [--files] [--dry-run] [--yes]
[--json]` through a real mount (issue 18 item 5):

- the plan shows each changed line with its matches already replaced (never
  the secret) and the counts; --dry-run changes no byte of the store;
- a redaction of events.jsonl keeps every line valid JSON, changes only the
  lines that match (the others stay byte-identical), ends the log with one
  record event (counts, SHA-256 of the pattern, uid, comm, time) and writes a
  `redact` line to the audit trail (no pattern, no secret); none of the old
  log's ciphertext is left in the store;
- --files rewrites the session's other text files (mode, mtime and user.*
  attributes kept), leaves binary files and metadata.json alone;
- a file open for appending across a redact goes on appending to the new log;
  a reader holding events.jsonl open reads the new log;
- bad input: an invalid regex or one that matches the empty string is a usage
  error (2) with regerror's text; a locked session is 7; no terminal and no
  --yes is 11; none changes anything;
- kill -9 of the daemon after each of its writing calls in turn (strace holds
  each): after a remount the session opens with the old log whole or the new
  log whole (redacted, with its record), and every acknowledged line is there.
"""
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import unittest

import sfs

SECRET = "AKIAIOSFODNN7EXAMPLE"
PATTERN = "AKIA[A-Z0-9]{16}"


def snapshot(store):
    """{path: sha256} of every file in the store."""
    out = {}
    for d, dirs, files in os.walk(store):
        for n in files:
            p = os.path.join(d, n)
            out[os.path.relpath(p, store)] = sfs.sha256_file(p)
    return out


def redacted(line):
    """What redact makes of event line @line (bytes, no newline): the decoded strings
    with PATTERN's matches replaced, written compact; the line itself if none match."""
    obj = json.loads(line)
    hits = [0]

    def walk(v):
        if isinstance(v, str):
            n = re.subn(PATTERN, "[REDACTED]", v)
            hits[0] += n[1]
            return n[0]
        if isinstance(v, list):
            return [walk(x) for x in v]
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        return v
    new = walk(obj)
    if not hits[0]:
        return line
    return json.dumps(new, separators=(",", ":"), ensure_ascii=False).encode()


class RedactTest(unittest.TestCase):

    def setUp(self):
        self.e = sfs.Env()
        self.addCleanup(self.e.cleanup)
        self.m = self.e.mount(opts="xattr")
        self.sid = self.e.new(self.m)
        self.d = self.m.sdir(self.sid)
        self.ev = os.path.join(self.d, "events.jsonl")

    def redact(self, *args, yes=True):
        a = ["--pattern", PATTERN] + (["--yes"] if yes else []) + list(args) + [self.d]
        return subprocess.run([sfs.SESSIONCTL, "redact"] + a, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, start_new_session=True,
                              timeout=sfs.TIMEOUT)

    def append(self, *lines):
        with open(self.ev, "ab") as f:
            for x in lines:
                f.write(x + b"\n")

    def lines(self):
        return sfs.read_file(self.ev).split(b"\n")[:-1]

    def fill(self):
        """Lines of several shapes, some with the secret; the list of them."""
        lines = [
            b'{"type":"note","text":"nothing here"}',
            ('{"type":"cmd","text":"export KEY=%s","n":0.1,"big":1e5}' % SECRET).encode(),
            b'{ "type" : "spaced",  "x" : [1, 2, 3] }',
            ('{"type":"deep","a":[{"b":"x%sy"},"%s"],"u":"\\u00e9t\\u00e9"}'
             % (SECRET, SECRET)).encode(),
            '{"type":"utf8","text":"été 漢字 no key"}'.encode(),
            b'{"type":"esc","text":"quote \\" and \\\\ and \\/"}',
            ('{"type":"two","text":"%s and %s"}' % (SECRET, SECRET.replace("E", "F"))).encode(),
        ]
        self.append(*lines)
        return lines

    def test_plan_and_dry_run_change_nothing(self):
        self.fill()
        sfs.write_file(os.path.join(self.d, "notes.md"), "x\nkey %s\n" % SECRET)
        before = snapshot(self.e.store)
        r = self.redact("--dry-run", "--files")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn(SECRET, r.stdout + r.stderr)
        self.assertIn("events.jsonl:2: ", r.stdout)
        self.assertIn("export KEY=[REDACTED]", r.stdout)
        self.assertIn("events.jsonl: 5 matches in 3 lines", r.stdout)
        self.assertIn("notes.md:2: key [REDACTED]", r.stdout)
        self.assertIn("notes.md: 1 match in 1 line", r.stdout)
        self.assertIn("dry run: nothing changed", r.stdout)
        self.assertEqual(snapshot(self.e.store), before)
        r = self.redact("--dry-run", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        j = json.loads(r.stdout)
        self.assertEqual(j["events.jsonl"], {"matches": 5, "lines": 3, "at": [2, 4, 7]})
        self.assertFalse(j["changed"])
        self.assertEqual(snapshot(self.e.store), before)

    def test_events_redacted_valid_and_only_matched_lines_change(self):
        lines = self.fill()
        back = sfs.backing_of(self.e.store, self.sid, self.ev)
        old_cipher = sfs.read_file(back)[80:]
        r = self.redact()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("redacted 5 matches in 3 lines of events.jsonl", r.stdout)
        self.assertNotIn(SECRET, r.stdout + r.stderr)
        got = self.lines()
        self.assertEqual(len(got), len(lines) + 1)
        for old, new in zip(lines, got):
            json.loads(new)  # every line stays valid JSON
            if SECRET.encode() not in old and b"AKIA" not in old:
                self.assertEqual(new, old, "an unmatched line changed")
            else:
                self.assertEqual(new, redacted(old))
                self.assertNotIn(b"AKIA", new)
        # numbers keep their short form
        self.assertIn(b'"n":0.1,', got[1])
        rec = json.loads(got[-1])
        self.assertEqual(rec["type"], "redaction")
        self.assertEqual(rec["matches"], 5)
        self.assertEqual(rec["lines"], 3)
        self.assertEqual(rec["pattern_sha256"], hashlib.sha256(PATTERN.encode()).hexdigest())
        self.assertEqual(rec["uid"], os.getuid())
        self.assertEqual(rec["comm"], "sessionctl")
        self.assertRegex(rec["ts"], sfs.ISO_Z_RE)
        # the audit trail: a redact line with the counts, nothing else of it; not
        # the pattern's hash either: audit.jsonl lies in the store in clear, and
        # the SHA-256 of a pattern that is a literal secret (a password, a card
        # or phone number) gives the secret back to a dictionary or a search
        with open(os.path.join(self.e.store, "audit.jsonl")) as f:
            text = f.read()
        self.assertNotIn("AKIA", text)
        self.assertNotIn(rec["pattern_sha256"], text)
        a = [json.loads(x) for x in text.splitlines() if '"redact"' in x]
        self.assertEqual(len(a), 1)
        self.assertEqual((a[0]["session"], a[0]["ok"], a[0]["matches"], a[0]["lines"]),
                         (self.sid, True, 5, 3))
        self.assertNotIn("pattern_sha256", a[0])
        # the old log is gone from the store: none of its sealed bytes is left anywhere
        chunks = [old_cipher[i:i + 24] for i in range(30, len(old_cipher) - 24, 97)]
        self.assertGreater(len(chunks), 3)
        for dpath, dirs, files in os.walk(self.e.store):
            for n in files:
                data = sfs.read_file(os.path.join(dpath, n))
                for c in chunks:
                    self.assertNotIn(c, data, "old ciphertext left in %s" % n)
        root = os.path.join(self.e.store, "sessions", self.sid, "root")
        self.assertEqual([n for n in os.listdir(root) if n.startswith(".")],
                         [n for n in os.listdir(root) if n in (".sfsdir", ".sfsx", ".sfstail")])
        # it survives lock, unlock and remount; appends go on after it
        self.append(b'{"type":"after"}')
        want = self.lines()
        self.e.lock(self.m, self.sid)
        self.m = self.e.remount(self.m)  # same options
        self.e.unlock(self.m, self.sid)
        self.assertEqual(self.lines(), want)
        # nothing left to redact: says so, changes nothing
        before = snapshot(self.e.store)
        r = self.redact()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("nothing to redact", r.stdout)
        self.assertEqual(snapshot(self.e.store), before)

    def test_open_appender_and_reader_across_redact(self):
        self.append(b'{"i":0}')
        rd = open(self.ev, "rb")
        self.addCleanup(rd.close)
        # the appender is a process of its own: a close of a copy of its
        # descriptor (a fork and exec here) would flush its unterminated tail
        w = subprocess.Popen([sys.executable, "-c", WRITER, self.ev, SECRET],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.assertEqual(w.stdout.readline(), "ready\n")
        r = self.redact()
        self.assertEqual(r.returncode, 0, r.stderr)
        w.stdin.write("go\n")
        w.stdin.flush()
        self.assertEqual(w.stdout.readline(), "done\n")
        w.stdin.close()
        w.stdout.close()
        self.assertEqual(w.wait(), 0)
        got = self.lines()
        self.assertEqual(got[0], b'{"i":0}')
        self.assertEqual(got[1], b'{"i":1,"k":"[REDACTED]"}')
        self.assertEqual(json.loads(got[2])["type"], "redaction")
        self.assertEqual(got[3:], [b'{"i":2,"t":"x"}', ('{"i":3,"k":"%s"}' % SECRET).encode()])
        # the reader opened before reads the new log
        self.assertEqual(rd.read().split(b"\n")[:-1], got)
        self.assertEqual(os.stat(self.ev).st_size, sum(len(x) + 1 for x in got))

    def test_files(self):
        self.append(b'{"type":"x"}')
        os.mkdir(os.path.join(self.d, "sub"))
        notes = os.path.join(self.d, "sub", "notes.md")
        sfs.write_file(notes, "a\nAWS %s and %s\nb\n" % (SECRET, SECRET), mode=0o640)
        os.setxattr(notes, "user.tag", b"kept")
        os.utime(notes, (1000000000, 1500000000))
        binf = os.path.join(self.d, "blob.bin")
        blob = b"\0\1" + SECRET.encode() + b"\0"
        sfs.write_file(binf, blob)
        meta = sfs.read_file(os.path.join(self.d, "metadata.json"))
        r = self.redact("--files")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("0 matches in 0 lines of events.jsonl, 2 in 1 other file", r.stdout)
        self.assertEqual(sfs.read_file(notes), b"a\nAWS [REDACTED] and [REDACTED]\nb\n")
        st = os.stat(notes)
        self.assertEqual(st.st_mode & 0o7777, 0o640)
        self.assertEqual(int(st.st_mtime), 1500000000)
        self.assertEqual(os.getxattr(notes, "user.tag"), b"kept")
        self.assertEqual(sfs.read_file(binf), blob)
        self.assertEqual(sfs.read_file(os.path.join(self.d, "metadata.json")), meta)
        self.assertEqual(sorted(os.listdir(os.path.join(self.d, "sub"))), ["notes.md"])
        rec = json.loads(self.lines()[-1])
        self.assertEqual((rec["matches"], rec["file_matches"]), (0, 2))
        r = self.redact("--files", "--dry-run", "--json")
        j = json.loads(r.stdout)
        self.assertEqual(j["files"], [{"file": "blob.bin", "skipped": "not text"}])

    def test_bad_input_changes_nothing(self):
        self.fill()
        before = snapshot(self.e.store)
        for pat, why in (("a(", "Unmatched ( or \\("), ("[z-a]", "Invalid range end"),
                         ("x*", "the pattern matches the empty string"),
                         ("(.*)(.*)\\1\\2x",
                          "back-references (\\1 to \\9) are not supported")):
            r = subprocess.run([sfs.SESSIONCTL, "redact", "--yes", "--pattern", pat, self.d],
                               capture_output=True, text=True, timeout=sfs.TIMEOUT)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertEqual(r.stderr, "sessionctl: redact: invalid pattern: %s\n" % why)
        r = subprocess.run([sfs.SESSIONCTL, "redact", self.d], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("redact: give one of --pattern REGEX, --rule NAME=REGEX", r.stderr)
        # no terminal and no --yes: 11
        r = self.redact(yes=False)
        self.assertEqual(r.returncode, 11, r.stderr)
        self.assertEqual(r.stderr, "sessionctl: redact: no terminal to ask on: nothing "
                         "changed (use --yes)\n")
        self.assertEqual(snapshot(self.e.store), before)
        # the daemon refuses an invalid pattern too
        fd = os.open(os.path.join(self.m.mnt, ".sessionfs"), os.O_RDWR)
        os.write(fd, json.dumps({"op": "redact", "session": self.sid,
                                 "pattern": "a("}).encode())
        resp = json.loads(os.read(fd, 65536))
        os.close(fd)
        self.assertEqual((resp["ok"], resp["code"]), (False, "invalid"))
        # ... and a back-reference, which glibc would backtrack on without end
        # over the log's lines, appends waiting
        fd = os.open(os.path.join(self.m.mnt, ".sessionfs"), os.O_RDWR)
        os.write(fd, json.dumps({"op": "redact", "session": self.sid,
                                 "pattern": "(.*)(.*)\\1\\2x"}).encode())
        resp = json.loads(os.read(fd, 65536))
        os.close(fd)
        self.assertEqual((resp["ok"], resp["code"]), (False, "invalid"))
        self.assertEqual(snapshot(self.e.store)["audit.jsonl"], before["audit.jsonl"])
        # a locked session: 7
        self.e.lock(self.m, self.sid)
        before = snapshot(self.e.store)
        r = self.redact()
        self.assertEqual(r.returncode, 7, r.stderr)
        self.assertIn("the session is locked", r.stderr)
        fd = os.open(os.path.join(self.m.mnt, ".sessionfs"), os.O_RDWR)
        os.write(fd, json.dumps({"op": "redact", "session": self.sid,
                                 "pattern": PATTERN}).encode())
        resp = json.loads(os.read(fd, 65536))
        os.close(fd)
        self.assertEqual((resp["ok"], resp["code"]), (False, "locked"))
        b2 = snapshot(self.e.store)
        b2.pop("audit.jsonl"), before.pop("audit.jsonl")  # the refusal is audited
        self.assertEqual(b2, before)

    def test_large_files(self):
        """An events.jsonl and a text file of several hundred KiB, read and rewritten in
        buffers that grow many times: every secret goes, every other byte stays."""
        lines = []
        for i in range(4000):
            lines.append(('{"i":%d,"text":"%s"}' % (i, SECRET if i % 7 == 0 else "x" * 90))
                         .encode())
        self.append(*lines)
        notes = os.path.join(self.d, "notes.txt")
        text = "".join("line %d %s\n" % (i, SECRET if i % 5 == 0 else "y" * 80)
                       for i in range(5000))
        sfs.write_file(notes, text.encode())
        r = self.redact("--files")
        self.assertEqual(r.returncode, 0, r.stderr)
        got = sfs.read_file(self.ev).splitlines()
        self.assertEqual(got[:-1], [redacted(x) for x in lines])
        self.assertEqual(sfs.read_file(notes).decode(),
                         text.replace(SECRET, "[REDACTED]"))

    def test_pattern_file(self):
        """--pattern-file F (or - for stdin): the pattern, often the very secret, from a
        file's first line, never in argv where ps and shell history see it."""
        self.fill()
        pf = os.path.join(self.e.tmp, "pattern")
        with open(pf, "w") as f:
            f.write(SECRET + "\nignored second line\n")
        r = subprocess.run([sfs.SESSIONCTL, "redact", "--yes", "--pattern-file", pf, self.d],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=sfs.TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn(SECRET, r.stdout + r.stderr)
        got = sfs.read_file(self.ev)
        self.assertNotIn(SECRET.encode(), got)
        rec = json.loads(got.splitlines()[-1])
        self.assertEqual(rec["pattern_sha256"], hashlib.sha256(SECRET.encode()).hexdigest())
        # from standard input, a dry run: nothing left to match
        r = subprocess.run([sfs.SESSIONCTL, "redact", "--dry-run", "--pattern-file", "-",
                            self.d], input=SECRET + "\n", capture_output=True, text=True,
                           timeout=sfs.TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("events.jsonl: 0 matches in 0 lines", r.stdout)
        # bad input: both forms, an empty file, a file that is not there
        empty = os.path.join(self.e.tmp, "empty")
        open(empty, "w").close()
        for args, code, err in (
                (["--pattern", "x", "--pattern-file", pf], 2,
                 "redact: --pattern and --pattern-file exclude each other"),
                (["--pattern-file", empty], 2,
                 "redact: --pattern-file %s: empty first line" % empty),
                (["--pattern-file", empty + ".no"], 1,
                 "redact: cannot read --pattern-file %s.no: No such file or directory"
                 % empty)):
            r = subprocess.run([sfs.SESSIONCTL, "redact", "--yes"] + args + [self.d],
                               stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=sfs.TIMEOUT)
            self.assertEqual((r.returncode, r.stderr), (code, "sessionctl: %s\n" % err))


class RulesTest(unittest.TestCase):
    """Redaction rules at append time: `redact --rule NAME=REGEX`, `--builtin NAME`,
    `--list-rules`, `--remove-rule NAME`. What a rule matches never reaches the store:
    lines read back redacted through the mount, and the rule file is sealed."""

    def setUp(self):
        self.e = sfs.Env()
        self.addCleanup(self.e.cleanup)
        self.m = self.e.mount()
        self.sid = self.e.new(self.m)
        self.d = self.m.sdir(self.sid)
        self.ev = os.path.join(self.d, "events.jsonl")
        self.rules = os.path.join(self.e.store, "sessions", self.sid, "rules")

    def ctl(self, *args):
        return subprocess.run([sfs.SESSIONCTL, "redact"] + list(args) + [self.d],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=sfs.TIMEOUT)

    def append(self, text):
        with open(self.ev, "a") as f:
            f.write(text)

    def test_rules_apply_to_appends_and_survive_lock_and_remount(self):
        r = self.ctl("--list-rules")
        self.assertEqual((r.returncode, r.stdout),
                         (0, "no redaction rules: appends to events.jsonl are stored as "
                          "written\n"))
        self.assertFalse(os.path.exists(self.rules))
        self.append('{"before":"%s"}\n' % SECRET)
        for args in (["--builtin", "aws-access-key-id"], ["--builtin", "private-key"],
                     ["--rule", "pw=hunter[0-9]+"]):
            r = self.ctl(*args)
            self.assertEqual(r.returncode, 0, r.stderr)
        r = self.ctl("--list-rules", "--json")
        self.assertEqual(json.loads(r.stdout), {"id": self.sid, "rules": [
            {"name": "aws-access-key-id", "pattern": "(AKIA|ASIA)[A-Z0-9]{16}",
             "builtin": True},
            {"name": "private-key", "pattern": "-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----([^-]|\n)*"
             "-----END [A-Z0-9 ]*PRIVATE KEY-----", "builtin": True},
            {"name": "pw", "pattern": "hunter[0-9]+", "builtin": False}]})
        # the rule file is sealed: no pattern, no name in it
        raw = sfs.read_file(self.rules)
        self.assertTrue(raw.startswith(b"SFSR\x01\0\0\0"))
        for word in (b"hunter", b"AKIA", b"PRIVATE", b"pw", b"rules"):
            self.assertNotIn(word, raw)
        pem = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBs+/=\n-----END EC PRIVATE KEY-----"
        self.append('{"k":"%s","p":"hunter22","n":1}\n' % SECRET)
        self.append(json.dumps({"pem": "key:\n" + pem + "\nafter"}) + "\n")
        # an unterminated line stored at close gets the rules too
        with open(self.ev, "a") as f:
            f.write('{"tail":"hunter7"}')
        want = ['{"before":"%s"}' % SECRET,  # before the rules: as written
                '{"k":"[REDACTED]","p":"[REDACTED]","n":1}',
                json.dumps({"pem": "key:\n[REDACTED]\nafter"}, separators=(",", ":")),
                '{"tail":"[REDACTED]"}']
        self.assertEqual(sfs.read_file(self.ev).decode().splitlines(), want)
        # rules survive lock/unlock and a remount
        self.e.lock(self.m, self.sid)
        self.m = self.e.remount(self.m)
        self.e.unlock(self.m, self.sid)
        self.append('{"again":"ASIAY34FZKBOKMUTVV7A hunter9"}\n')
        want.append('{"again":"[REDACTED] [REDACTED]"}')
        self.assertEqual(sfs.read_file(self.ev).decode().splitlines(), want)
        # removing a rule: later appends keep what it matched
        r = self.ctl("--remove-rule", "pw")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("pw ", r.stdout)
        r = self.ctl("--remove-rule", "pw")
        self.assertEqual(r.returncode, 0)
        self.assertIn("no rule 'pw': nothing removed", r.stderr)
        self.append('{"last":"hunter5 %s"}\n' % SECRET)
        self.assertEqual(sfs.read_file(self.ev).decode().splitlines()[-1],
                         '{"last":"hunter5 [REDACTED]"}')
        # the audit trail: rule changes, no pattern, no name
        with open(os.path.join(self.e.store, "audit.jsonl")) as f:
            recs = [json.loads(x) for x in f if '"rules"' in x]
        self.assertEqual([(x["change"], x["ok"]) for x in recs],
                         [("set", True)] * 3 + [("remove", True)] * 2)
        self.assertNotIn("hunter", json.dumps(recs))
        self.assertNotIn("pattern_sha256", json.dumps(recs))  # no oracle for it either
        # fsck knows the rule file: no finding about it
        self.e.lock(self.m, self.sid)
        r = sfs.run([os.path.join(sfs.BUILD, "cli", "fsck.sessionfs"), "-n", "--json",
                     self.e.store])
        self.assertEqual(r.rc, 0, r)
        self.assertEqual([f for f in json.loads(r.out)["findings"] if f["state"] != "note"
                          or "rules" in f.get("path", "")], [])
        self.e.unlock(self.m, self.sid)
        # no rules left but the built-in ones; removing them all removes the file
        for n in ("aws-access-key-id", "private-key"):
            self.assertEqual(self.ctl("--remove-rule", n).returncode, 0)
        self.assertFalse(os.path.exists(self.rules))

    def test_bad_input(self):
        for args, code, err in (
                (["--rule", "x=a("], 2, "invalid rule: Unmatched ( or \\("),
                (["--rule", "x=y*"], 2, "invalid rule: the pattern matches the empty string"),
                (["--rule", "x=(a)\\1"], 2,
                 "invalid rule: back-references (\\1 to \\9) are not supported"),
                (["--rule", "x=(.{1,255}){1,255}x"], 2,
                 "invalid rule: repetition counts ({m,n}) expand the pattern too far"),
                (["--rule", "a b=x"], 2, "invalid rule: a rule name is 1 to 32"),
                (["--rule", "noequals"], 2, "--rule: want NAME=REGEX"),
                (["--builtin", "nope"], 2, "no built-in rule 'nope' (there are: "
                 "aws-access-key-id, github-token, slack-token, private-key)"),
                (["--list-rules", "--pattern", "x"], 2, "give one of"),
                (["--rule", "a=x", "--dry-run"], 2, "go with --pattern")):
            r = self.ctl(*args)
            self.assertEqual(r.returncode, code, (args, r.stderr))
            self.assertIn(err, r.stderr)
        self.assertFalse(os.path.exists(self.rules))
        self.e.lock(self.m, self.sid)
        r = self.ctl("--rule", "a=x")
        self.assertEqual(r.returncode, 7, r.stderr)
        r = self.ctl("--list-rules")
        self.assertEqual(r.returncode, 7, r.stderr)

    def test_damaged_rule_file_refuses_appends(self):
        self.assertEqual(self.ctl("--rule", "pw=hunter[0-9]+").returncode, 0)
        self.e.lock(self.m, self.sid)
        raw = bytearray(sfs.read_file(self.rules))
        raw[20] ^= 1
        with open(self.rules, "wb") as f:
            f.write(raw)
        r = self.e.unlock(self.m, self.sid)
        self.assertIn("the redaction rules (rules in the container) cannot be read", r.err)
        with self.assertRaises(OSError) as cm:
            self.append('{"p":"hunter22"}\n')
        self.assertEqual(cm.exception.errno, 5)
        self.assertEqual(sfs.read_file(self.ev), b"")
        # the way out the message names: remove the file, unlock again
        os.unlink(self.rules)
        self.e.lock(self.m, self.sid)
        self.e.unlock(self.m, self.sid)
        self.append('{"p":"x"}\n')
        self.assertEqual(sfs.read_file(self.ev), b'{"p":"x"}\n')


# An appender holding events.jsonl open across a redact: a whole line, an
# unterminated tail, then (told "go") the rest of it and another line.
WRITER = """
import os, sys
w = open(sys.argv[1], "ab", buffering=0)
w.write(('{"i":1,"k":"%s"}\\n' % sys.argv[2]).encode())
w.write(b'{"i":2,')
print("ready", flush=True)
sys.stdin.readline()
w.write(b'"t":"x"}\\n')
w.write(('{"i":3,"k":"%s"}\\n' % sys.argv[2]).encode())
w.close()
print("done", flush=True)
"""

CALLS = "pwrite64,fsync,renameat,renameat2"
DELAY_MS = 150


def have_strace():
    return subprocess.run(["strace", "-V"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


class RedactKillTest(sfs.ForegroundMountTest):
    """kill -9 of the daemon after each of its writing calls in turn during a
    redact (strace holds each for DELAY_MS after it returns); after a remount
    the log is the old one whole or the new one whole, every acknowledged line
    in it, no temporary left in the session root."""

    def setUp(self):
        if not have_strace():
            self.skipTest("strace is not installed (.ci/deps installs it)")
        super().setUp()
        self.sid = self.e.new(self.m)
        # enough lines for several batches of appends to the new log? one is
        # enough for the order of calls; more frames make the copy longer
        ev = os.path.join(self.m.sdir(self.sid), "events.jsonl")
        with open(ev, "a") as f:
            f.write("".join('{"i":%d,"pad":"%s"}\n' % (i, "p" * 100) for i in range(3000)))

    def test_kill_each_step(self):
        log = self.e.path("strace-redact.log")
        report = []
        k = 0
        n = 3000
        while True:
            k += 1
            self.assertLess(k, 60, "the redact never completed")
            d = self.m.sdir(self.sid)
            ev = os.path.join(d, "events.jsonl")
            # an acknowledged line with a fresh secret: always something to redact
            with open(ev, "a") as f:
                f.write('{"i":%d,"k":"%s"}\n' % (n, SECRET))
            n += 1
            # the "updated" refresh of this append is written now: left
            # pending, the daemon's timed work wrote it in the middle of the
            # redact (a second later), adding steps before the log's rename
            self.e.settle(self.m, self.sid)
            old = sfs.read_file(ev)
            st = subprocess.Popen(["strace", "-f", "-p", str(self.m.proc.pid), "-o", log,
                                   "-e", "trace=" + CALLS,
                                   "-e", "inject=%s:delay_exit=%dms" % (CALLS, DELAY_MS)],
                                  stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            line = st.stderr.readline()
            self.assertIn("attached", line)
            op = subprocess.Popen([sfs.SESSIONCTL, "redact", "--yes", "--pattern", PATTERN, d],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE)

            def held():
                with open(log) as f:
                    return f.read().count("(DELAYED)")
            while held() < k and op.poll() is None:
                time.sleep(0.002)
            if op.poll() is not None and held() < k:
                st.terminate()
                st.wait()
                st.stderr.close()
                self.assertEqual(op.returncode, 0, op.stderr.read())
                op.stderr.close()
                self.check(old, sfs.read_file(ev), n, "unkilled", new_only=True)
                break
            with open(log) as f:
                step = [x for x in f.read().split("\n") if "(DELAYED)" in x][k - 1]
            os.kill(self.m.proc.pid, 9)
            self.m.proc.wait(timeout=30)
            op.wait(timeout=30)
            op.stderr.close()
            st.wait(timeout=30)
            st.stderr.close()
            sfs.run(["fusermount3", "-uz", self.m.mnt])
            self.remount()
            self.e.unlock(self.m, self.sid)
            what = "killed after step %d (%s)" % (k, step)
            got = sfs.read_file(os.path.join(self.m.sdir(self.sid), "events.jsonl"))
            state = self.check(old, got, n, what)
            root = os.path.join(self.e.store, "sessions", self.sid, "root")
            self.assertEqual([x for x in os.listdir(root) if x.startswith(".new")], [], what)
            call = step.split("(", 1)[0].split(None, 1)[-1]
            report.append("killed after step %d, %s: %s" % (k, call, state))
        print("\n".join(report), file=sys.stderr)
        # kills before the rename found the old log, kills after it the new one
        # (the redact's own change of "updated" may add steps after the rename)
        self.assertIn("old log", report[0])
        self.assertIn("new log", report[-1])

    def check(self, old, got, n, what, new_only=False):
        """@got is @old whole, or @old redacted whole with its record; lines 0..n-1 all there."""
        lines = got.split(b"\n")
        self.assertEqual(lines[-1], b"", what)
        lines = lines[:-1]
        ids = [json.loads(x)["i"] for x in lines if b'"i"' in x]
        self.assertEqual(ids, list(range(n)), what)
        if got == old and not new_only:
            return "old log"
        want = [redacted(x) for x in old.split(b"\n")[:-1]]
        recs = [x for x in lines if b'"type":"redaction"' in x]
        self.assertEqual([x for x in lines if b'"type":"redaction"' not in x],
                         [x for x in want if b'"type":"redaction"' not in x], what)
        self.assertEqual(len(recs), len([x for x in want if b'"redaction"' in x]) + 1, what)
        self.assertEqual(lines[-1], recs[-1], what)
        self.assertNotIn(b"AKIA", got, what)
        return "new log"


if __name__ == "__main__":
    sfs.main()
