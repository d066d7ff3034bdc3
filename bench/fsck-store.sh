#!/usr/bin/env bash
# bench/fsck-store.sh - make a store with one ~1 GB session to time fsck.sessionfs on.
#
#   bench/fsck-store.sh [-b BUILD] [--big N] [--events MB] DIR
#
# Makes DIR/store (mkfs.sessionfs --kdf=interactive, default cipher) and
# DIR/pw, mounts it, makes one session and fills it through the mount with
# ordinary tools: 4 files of N MiB (default 150) written by dd bs=1M, a copy
# of /usr/include (about 8,000 small files, 130 MB) by cp -r, and an
# events.jsonl of about MB megabytes (default 200) of typical one-line JSON
# events, each appended by its own write(2) as an agent appends them (one
# record per line). Then locks the session and unmounts. DIR must not exist
# (keep it out of the repo: /var/tmp/...). Root only (no: any user who can
# mount FUSE). See bench/PROFILE-fsck.md; bench/fsck-ab.sh times fsck on it.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
BUILD=${BUILD:-$(dirname "$here")/build}
BIG=150
EVENTS=200

while [[ $# -gt 1 ]]; do
	case $1 in
	-b) BUILD=$2; shift 2 ;;
	--big) BIG=$2; shift 2 ;;
	--events) EVENTS=$2; shift 2 ;;
	*) echo "fsck-store.sh: unknown option $1" >&2; exit 2 ;;
	esac
done
[[ $# -eq 1 ]] || { echo "Usage: bench/fsck-store.sh [-b BUILD] [--big N] [--events MB] DIR" >&2; exit 2; }
DIR=$1
[[ ! -e $DIR ]] || { echo "fsck-store.sh: $DIR exists" >&2; exit 2; }

mkdir -p "$DIR/mnt"
echo "fsck-bench-password" >"$DIR/pw"
"$BUILD/cli/mkfs.sessionfs" --kdf=interactive "$DIR/store" >/dev/null
"$BUILD/fs/sessionfs" "$DIR/store" "$DIR/mnt" </dev/null
trap 'fusermount3 -u "$DIR/mnt" 2>/dev/null || umount -l "$DIR/mnt" 2>/dev/null || true' EXIT
sid=$("$BUILD/cli/sessionctl" new --name fsck-bench --password-file "$DIR/pw" "$DIR/mnt" </dev/null)
s=$DIR/mnt/sessions/$sid
echo "session $sid" >&2

for i in 1 2 3 4; do
	dd if=/dev/urandom of="$s/big$i.bin" bs=1M count="$BIG" status=none
done
cp -r /usr/include "$s/include"
python3 - "$s/events.jsonl" "$EVENTS" <<'EOF'
import json, os, random, sys
path, mb = sys.argv[1], int(sys.argv[2])
rnd = random.Random(16)
tools = ["bash", "read_file", "write_file", "grep", "http_get", "python"]
cmds = ["ls -la /var/log", "systemctl status nginx", "journalctl -u api --since -1h",
        "curl -s http://10.0.0.7:8080/health", "df -h", "grep -r OOM /var/log/syslog"]
fd = os.open(path, os.O_WRONLY | os.O_APPEND)
total, seq = 0, 0
while total < mb * 1000000:
    seq += 1
    ev = {"ts": "2026-12-05T%02d:%02d:%02d.%03dZ" % (seq // 3600000 % 24, seq // 60000 % 60,
                                                      seq // 1000 % 60, seq % 1000),
          "seq": seq, "type": rnd.choice(["tool_call", "tool_result", "note", "message"]),
          "tool": rnd.choice(tools), "args": {"cmd": rnd.choice(cmds)},
          "status": rnd.choice(["ok", "ok", "ok", "error"]),
          "duration_ms": rnd.randint(1, 5000), "host": "web-%02d" % rnd.randint(1, 40)}
    if rnd.random() < 0.2:
        ev["output"] = "x" * rnd.randint(50, 600)
    line = (json.dumps(ev, separators=(",", ":")) + "\n").encode()
    os.write(fd, line)
    total += len(line)
os.close(fd)
print("events: %d lines, %d bytes" % (seq, total), file=sys.stderr)
EOF
"$BUILD/cli/sessionctl" lock "$s" >/dev/null
fusermount3 -u "$DIR/mnt"
trap - EXIT
du -sh "$DIR/store" >&2
