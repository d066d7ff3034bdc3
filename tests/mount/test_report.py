"""`sessionctl report SESSIONDIR [--format md|json|html] [-o FILE]` through a
real mount (issue 17 item 3): a session with events of several types (with
ISO, numeric and no timestamps, non-string fields, a <script> in a text) and
files in subdirectories;

- json: one document; metadata as written, every event in order with its
  line, time, type, summary and full JSON, counts by type, the time span,
  every file with its size, mtime and a sha256 equal to hashlib's;
- md: the tables, | and newlines escaped inside cells;
- html: self-contained (no http(s):// reference, a Content-Security-Policy
  forbidding the network), an inline SVG chart, the type filter, the events
  as JSON data (each with the line as written) that the page's script shows,
  every text from the session HTML-escaped in markup and \u003c-escaped in
  the data (a <script> in an event never becomes one);
- -o FILE writes there and nothing to stdout; a locked session is the locked
  exit code with one clear error, one unlocked by another mount of the store
  the busy one; a bad --format is a usage error.
"""
import hashlib
import json
import os
import re
import unittest

import sfs

EVENTS = [
    {"timestamp": "2026-03-01T10:00:00Z", "type": "user", "text": "start | the run\nline two"},
    {"timestamp": "2026-03-01T10:00:05.5Z", "type": "tool_use", "tool_name": "Bash",
     "text": "ls -l"},
    {"time": 1772359260, "type": "tool_use", "tool_name": "Read", "message": "a.txt"},
    {"ts": 1772359320000, "type": "assistant", "text": "<script>alert(1)</script> & done"},
    {"type": "note", "text": {"nested": [1, 2]}},
    {"no_type": True, "value": 3},
    {"timestamp": "2026-03-01T11:00:00+01:00", "type": 42, "message": None},
    {"timestamp": "not a time", "type": "user", "text": "bad <b>time</b>"},
]


class ReportTest(unittest.TestCase):
    def setUp(self):
        self.e = sfs.Env()
        self.addCleanup(self.e.cleanup)
        self.m = self.e.mount()
        self.sid = self.e.new(self.m, name="night <i>incident</i>")
        self.e.unlock(self.m, self.sid)
        self.sdir = self.m.sdir(self.sid)
        with open(os.path.join(self.sdir, "events.jsonl"), "a") as f:
            for ev in EVENTS:
                f.write(json.dumps(ev) + "\n")
        os.makedirs(os.path.join(self.sdir, "logs", "deep"))
        sfs.write_file(os.path.join(self.sdir, "notes.md"), b"# notes\n")
        sfs.write_file(os.path.join(self.sdir, "logs", "deep", "big.bin"),
                       os.urandom(300000))
        sfs.write_file(os.path.join(self.sdir, "logs", "empty"), b"")

    def report(self, *args):
        return self.e.ctl("report", *args, self.sdir)

    def files_on_mount(self):
        out = {}
        for root, dirs, files in os.walk(self.sdir):
            for n in files:
                p = os.path.join(root, n)
                with open(p, "rb") as f:
                    data = f.read()
                out[os.path.relpath(p, self.sdir)] = (len(data),
                                                      hashlib.sha256(data).hexdigest())
        return out

    def test_json(self):
        r = self.report("--format", "json")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.err, "")
        doc = json.loads(r.out)
        self.assertEqual(doc["report"], 1)
        self.assertEqual(doc["session"], self.sid)
        self.assertEqual(doc["where"], "sessions")
        with open(os.path.join(self.sdir, "metadata.json")) as f:
            self.assertEqual(doc["metadata"], json.load(f))
        evs = doc["events"]
        self.assertEqual([e["event"] for e in evs], EVENTS)
        self.assertEqual([e["line"] for e in evs], list(range(1, len(EVENTS) + 1)))
        self.assertEqual([e["type"] for e in evs],
                         ["user", "tool_use", "tool_use", "assistant", "note", "(no type)",
                          "42", "user"])
        self.assertEqual(evs[0]["time"], "2026-03-01T10:00:00Z")
        self.assertEqual(evs[0]["summary"], "start | the run line two")
        self.assertEqual(evs[1]["summary"], "Bash: ls -l")
        self.assertEqual(evs[2]["summary"], "Read: a.txt")
        self.assertEqual(evs[2]["time"], "2026-03-01T10:01:00Z")   # seconds
        self.assertEqual(evs[3]["time"], "2026-03-01T10:02:00Z")   # milliseconds
        self.assertEqual(evs[4]["summary"], '{"nested":[1,2]}')
        self.assertIsNone(evs[4]["time"])
        self.assertEqual(evs[5]["summary"], '{"no_type":true,"value":3}')
        self.assertEqual(evs[6]["t"], 1772359200.0)                  # +01:00
        self.assertEqual(evs[7]["time"], "not a time")
        self.assertIsNone(evs[7]["t"])
        s = doc["summary"]
        self.assertEqual(s["events"], len(EVENTS))
        self.assertEqual(s["timed"], 5)
        self.assertEqual(s["by_type"], {"user": 2, "tool_use": 2, "assistant": 1, "note": 1,
                                        "(no type)": 1, "42": 1})
        self.assertEqual(s["first"], "2026-03-01T10:00:00Z")
        self.assertEqual(s["last"], "2026-03-01T10:02:00Z")
        self.assertEqual(s["span_seconds"], 120.0)
        want = self.files_on_mount()
        self.assertEqual(s["files"], len(want))
        got = {f["path"]: (f["size"], f["sha256"]) for f in doc["files"]}
        self.assertEqual(got, want)
        self.assertEqual([f["path"] for f in doc["files"]], sorted(want))
        st = os.stat(os.path.join(self.sdir, "notes.md"))
        mt = [f["mtime"] for f in doc["files"] if f["path"] == "notes.md"][0]
        self.assertTrue(sfs.ISO_Z_RE.match(mt), mt)
        self.assertTrue(mt.startswith(
            __import__("time").strftime("%Y-%m-%dT%H:%M:%S", __import__("time").gmtime(st.st_mtime))))

    def test_markdown(self):
        r = self.report()
        self.assertEqual(r.rc, 0, r)
        md = r.out
        self.assertTrue(md.startswith("# Session %s\n" % self.sid), md[:100])
        self.assertIn("| Line | Time | Type | Summary |\n|---:|---|---|---|\n", md)
        self.assertIn("| 1 | 2026-03-01T10:00:00Z | user | start \\| the run line two |\n", md)
        self.assertIn("| 2 | 2026-03-01T10:00:05.5Z | tool_use | Bash: ls -l |\n", md)
        self.assertIn("&lt;script&gt;alert(1)&lt;/script&gt; &amp; done", md)
        self.assertNotIn("<script>", md)
        self.assertIn("| tool_use | 2 |", md)
        self.assertIn("| Path | Size | Modified | SHA-256 |", md)
        for path, (size, sha) in self.files_on_mount().items():
            self.assertRegex(md, r"\| %s \| %d \| [^|]+ \| `%s` \|" % (re.escape(path), size, sha))
        # every table row has as many cells as its header
        for line in md.splitlines():
            if line.startswith("| ") and line.count(" | ") and "Line" not in line:
                cells = re.split(r"(?<!\\)\|", line)[1:-1]
                self.assertIn(len(cells), (2, 4), line)
        self.assertEqual(self.report("--format", "md").out.split("made by")[0],
                         md.split("made by")[0])

    def test_html(self):
        r = self.report("--format", "html")
        self.assertEqual(r.rc, 0, r)
        html = r.out
        self.assertTrue(html.startswith("<!DOCTYPE html>"))
        self.assertNotRegex(html, r"https?://")
        self.assertNotRegex(html, r"(src|href)\s*=")
        self.assertIn("Content-Security-Policy", html)
        self.assertIn("default-src 'none'", html)
        # one script that runs, ours; two of data; the session's <script> and
        # other tags are text in the markup and \u003c-escaped in the data
        self.assertEqual(html.count("<script>"), 1)
        self.assertEqual(html.count('<script type="application/json"'), 2)
        self.assertEqual(html.count("</script>"), 3)
        self.assertNotIn("<script>alert", html)
        self.assertNotIn("<b>time", html)
        self.assertIn("night &lt;i&gt;incident&lt;/i&gt;", html)
        self.assertNotIn("<i>incident", html)
        self.assertIn("<svg", html)
        self.assertIn("<rect", html)
        self.assertIn('<select id="f">', html)
        self.assertIn('<option value="tool_use">tool_use (2)</option>', html)
        data = re.search(r'<script type="application/json" id="events">(.*?)</script>', html, re.S)
        rows = json.loads(data.group(1))
        self.assertEqual([json.loads(row[5]) for row in rows], EVENTS)
        self.assertEqual([row[0] for row in rows], list(range(1, len(EVENTS) + 1)))
        self.assertEqual(rows[3][3], "<script>alert(1)</script> & done")
        self.assertIn("\\u003cscript\\u003ealert(1)\\u003c/script\\u003e \\u0026 done",
                      data.group(1))
        self.assertEqual(rows[1][1:4], ["2026-03-01T10:00:05.5Z", "tool_use", "Bash: ls -l"])
        self.assertIsNone(rows[4][1])
        for path, (size, sha) in self.files_on_mount().items():
            self.assertIn(sha, html)

    def test_output_file(self):
        out = self.e.path("report.html")
        r = self.report("--format", "html", "-o", out)
        self.assertEqual((r.rc, r.out, r.err), (0, "", ""), r)
        with open(out) as f:
            self.assertIn("<svg", f.read())
        out = self.e.path("report.json")
        r = self.report("--format=json", "--output", out)
        self.assertEqual((r.rc, r.out), (0, ""), r)
        with open(out) as f:
            self.assertEqual(len(json.load(f)["events"]), len(EVENTS))
        r = self.report("-o", self.e.path("no", "such", "dir", "r.md"))
        self.assertEqual(r.rc, 1, r)
        self.assertRegex(r.err, r"^sessionctl: .*r\.md: cannot write: No such file")

    def test_locked(self):
        self.e.lock(self.m, self.sid)
        out = self.e.path("r.md")
        r = self.report("-o", out)
        self.assertEqual(r.rc, 7, r)
        self.assertEqual(r.out, "")
        self.assertEqual(r.err.splitlines(),
                         ["sessionctl: cannot report %s: the session is locked (unlock it first)"
                          % self.sid])
        self.assertFalse(os.path.exists(out))

    def test_unlocked_elsewhere(self):
        other = self.e.mount()
        r = self.e.ctl("report", other.sdir(self.sid))
        self.assertEqual(r.rc, 6, r)
        self.assertEqual(r.err.splitlines(),
                         ["sessionctl: cannot report %s: the session is unlocked by another "
                          "mount of the store (report it there)" % self.sid])

    def test_bad_format(self):
        r = self.report("--format", "pdf")
        self.assertEqual(r.rc, 2, r)
        self.assertIn("unknown format 'pdf'", r.err)
        r = self.e.ctl("report", self.m.mnt)
        self.assertEqual(r.rc, 4, r)

    def test_empty_session(self):
        sid = self.e.new(self.m)
        self.e.unlock(self.m, sid)
        r = self.e.ctl("report", "--format", "json", self.m.sdir(sid))
        self.assertEqual(r.rc, 0, r)
        doc = json.loads(r.out)
        self.assertEqual(doc["events"], [])
        self.assertIsNone(doc["summary"]["first"])
        r = self.e.ctl("report", "--format", "html", self.m.sdir(sid))
        self.assertEqual(r.rc, 0, r)
        self.assertIn("no chart", r.out)


if __name__ == "__main__":
    sfs.main()
