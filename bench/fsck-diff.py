#!/usr/bin/env python3
"""bench/fsck-diff.py - two fsck.sessionfs binaries on the same damaged stores: same reports?

    bench/fsck-diff.py BASE OLD NEW WORK

BASE is what bench/fsck-store.sh made (BASE/store, BASE/pw); a small one will
do (bench/fsck-store.sh --big 3 --events 6 DIR). For each kind of damage below
(made by flipping, zeroing, cutting, removing and adding files in a copy of
the store), each binary gets its own copy and runs -n, -y and -n again with
--json. The three reports and exit codes of OLD and NEW must be the same
(after dropping "seconds" and blanking the 16-hex-digit random parts of the
names fsck gives kept and damaged logs; the findings of the last run in any
order, as the random backing names of what -y made put them anywhere in a
directory listing), and so must the names and sizes of
the files the -y run leaves. Prints one line per kind and exits 1 on any
difference. FSCK_DIFF_ONLY=kind,kind runs only those. WORK (made, then removed) holds the copies; keep it out of the
repo.
"""
import json
import os
import random
import re
import shutil
import subprocess
import sys

if len(sys.argv) != 5:
    sys.exit(__doc__)
BASE, OLD, NEW, WORK = sys.argv[1:]
OLD, NEW = os.path.realpath(OLD), os.path.realpath(NEW)
PW = os.path.join(BASE, "pw")


def session_root(store):
    d = os.path.join(store, "sessions")
    return os.path.join(d, sorted(os.listdir(d))[0], "root")


def files(root, big=None):
    """Regular backing files of the tree (not internal), largest first if big."""
    out = []
    for dp, dns, fns in os.walk(root):
        dns[:] = [d for d in dns if not d.startswith(".")]
        for f in fns:
            if not f.startswith(".") and not f.endswith(".n"):
                p = os.path.join(dp, f)
                if os.path.isfile(p) and not os.path.islink(p):
                    out.append((os.path.getsize(p), p))
    out.sort(reverse=True)
    return out


def log_path(root):
    # The event log is the largest file whose size is no multiple of a whole block layout:
    # fsck-store.sh makes one, larger than every other file.
    return files(root)[0][1]


def flip(p, off, n=1):
    with open(p, "r+b") as f:
        f.seek(off)
        b = bytearray(f.read(n))
        for i in range(len(b)):
            b[i] ^= 0x5A
        f.seek(off)
        f.write(b)


def zero(p, off, n):
    with open(p, "r+b") as f:
        f.seek(off)
        f.write(bytes(n))


def cut(p, size):
    os.truncate(p, size)


FRAME, CHUNK, HDR = 4096, 256 * 4096, 80


def d_log_payload(root, rnd):
    log = log_path(root)
    flip(log, HDR + CHUNK + 7 * FRAME + 1234)


def d_log_spans(root, rnd):
    log = log_path(root)
    size = os.path.getsize(log)
    for k in range(4):
        flip(log, HDR + rnd.randrange(size // FRAME - 2) * FRAME + rnd.randrange(60), 3)


def d_log_zero_boundary(root, rnd):
    log = log_path(root)
    zero(log, HDR + 2 * CHUNK - 5000, 10000)


def d_log_torn(root, rnd):
    log = log_path(root)
    cut(log, os.path.getsize(log) - 777)


def d_log_cut_chunk(root, rnd):
    log = log_path(root)
    cut(log, HDR + 3 * CHUNK + 100)


def d_log_zero_end(root, rnd):
    log = log_path(root)
    size = os.path.getsize(log)
    zero(log, size - 3 * FRAME, 3 * FRAME - 10)


def d_log_frame_heads(root, rnd):
    log = log_path(root)
    for k in (1, 255, 256, 257, 511, 512):
        flip(log, HDR + k * FRAME, 2)


def d_big_content(root, rnd):
    big = files(root)[1][1]
    flip(big, HDR + 100 * 4136 + 77)
    flip(big, HDR + 500 * 4136 + 99)


def d_big_torn(root, rnd):
    big = files(root)[2][1]
    cut(big, os.path.getsize(big) - 3000)


def d_small(root, rnd):
    small = [p for s, p in files(root) if s < 20000]
    for p in rnd.sample(small, 20):
        flip(p, rnd.randrange(os.path.getsize(p)))
    for p in rnd.sample(small, 5):
        d, b = os.path.split(p)
        os.rename(p, os.path.join(d, b[:-2] + ("AA" if b[-2:] != "AA" else "BB")))
    for p in rnd.sample(small, 3):
        cut(p, max(0, os.path.getsize(p) - 100))
    side = [os.path.join(dp, f) for dp, _, fns in os.walk(root) for f in fns if f.endswith(".n")]
    for p in rnd.sample(side, min(3, len(side))):
        os.unlink(p)


def d_leftovers(root, rnd):
    sub = [os.path.join(dp, d) for dp, dns, _ in os.walk(root) for d in dns if not d.startswith(".")]
    d = rnd.choice(sub)
    with open(os.path.join(d, ".sfs-new-0123456789abcdef"), "wb") as f:
        f.write(b"x" * 100)
    x = os.path.join(root, ".sfsx")
    os.makedirs(x, exist_ok=True)
    with open(os.path.join(x, "00" * 16), "wb") as f:
        f.write(b"y" * 50)


def d_all(root, rnd):
    for fn in (d_log_spans, d_log_torn, d_big_content, d_big_torn, d_small, d_leftovers):
        fn(root, rnd)


ONLY = os.environ.get("FSCK_DIFF_ONLY")
KINDS = [("clean", lambda r, x: None), ("log-payload", d_log_payload), ("log-spans", d_log_spans),
         ("log-zero-boundary", d_log_zero_boundary), ("log-torn", d_log_torn),
         ("log-cut-chunk", d_log_cut_chunk), ("log-zero-end", d_log_zero_end),
         ("log-frame-heads", d_log_frame_heads), ("big-content", d_big_content),
         ("big-torn", d_big_torn), ("small", d_small), ("leftovers", d_leftovers), ("all", d_all)]

HEX = re.compile(r"[0-9a-f]{16}")


def norm(out, order=True):
    j = json.loads(out)
    j.pop("seconds", None)
    if not order:
        j["findings"].sort(key=lambda f: json.dumps(f, sort_keys=True))
    return HEX.sub("X", json.dumps(j, sort_keys=True, indent=1))


BASE_NAMES = set()
for dp, dns, fns in os.walk(os.path.join(BASE, "store")):
    BASE_NAMES.update(dns + fns)


def listing(store):
    """Paths and sizes; a name the base store has not (a new node's, random) is '*'."""
    out = []
    for dp, dns, fns in os.walk(store):
        for f in fns + dns:
            p = os.path.join(dp, f)
            rel = "/".join(c if c in BASE_NAMES else "*" for c in os.path.relpath(p, store).split("/"))
            out.append("%s %d" % (HEX.sub("X", rel), 0 if os.path.isdir(p) else os.lstat(p).st_size))
    return sorted(x for x in out if "audit.jsonl" not in x)


def run(binary, store):
    res = []
    for i, mode in enumerate(("-n", "-y", "-n")):
        p = subprocess.run([binary, mode, "--json", "--password-file", PW, store],
                           capture_output=True, text=True, stdin=subprocess.DEVNULL)
        # After -y the new entries' names are random, and so is where a listing puts them.
        res.append((p.returncode, norm(p.stdout, order=i < 2)))
    return res, listing(store)


bad = 0
shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
for name, fn in KINDS:
    if ONLY and name not in ONLY.split(","):
        continue
    got = []
    for b in (OLD, NEW):
        store = os.path.join(WORK, "store")
        shutil.rmtree(store, ignore_errors=True)
        shutil.copytree(os.path.join(BASE, "store"), store, symlinks=True)
        fn(session_root(store), random.Random(name))
        got.append(run(b, store))
    same = got[0] == got[1]
    codes = [c for c, _ in got[0][0]]
    nfind = [len(json.loads(r)["findings"]) for _, r in got[0][0]]
    print("%-18s %s  exit %s  findings %s" % (name, "same" if same else "DIFFERENT", codes, nfind))
    if not same:
        bad += 1
        for i, ((c0, r0), (c1, r1)) in enumerate(zip(got[0][0], got[1][0])):
            if (c0, r0) != (c1, r1):
                print("  run %d: exit %d vs %d\n--- old\n%s\n--- new\n%s" % (i, c0, c1, r0, r1))
        if got[0][1] != got[1][1]:
            print("  stores differ after -y:", set(got[0][1]) ^ set(got[1][1]))
shutil.rmtree(WORK, ignore_errors=True)
sys.exit(1 if bad else 0)
