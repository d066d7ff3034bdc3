#!/usr/bin/env bash
# bench/fsck-ab.sh - time two fsck.sessionfs binaries side by side against reading the store.
#
#   bench/fsck-ab.sh [-r R] DIR OLD NEW
#
# DIR is what bench/fsck-store.sh made (DIR/store, DIR/pw). Each of R rounds
# (default 3) times, with a cold page cache (sync; echo 3 >
# /proc/sys/vm/drop_caches before each) and then warm (after one untimed run
# of the same command): `OLD -n --password-file DIR/pw DIR/store`, the same
# with NEW, and `cat` of every backing file of the store (find -exec cat {} +:
# what the disk needs to read it). The three alternate, in an order that
# rotates each round, so drift of a shared machine hits them alike. Wall,
# user and system seconds come from /usr/bin/time; the medians go to stdout
# as a markdown table, every figure to DIR/ab-raw.tsv. Root only (drop_caches).
set -euo pipefail
export LC_ALL=C

R=3
if [[ ${1:-} == -r ]]; then
	R=$2
	shift 2
fi
[[ $# -eq 3 ]] || { echo "Usage: bench/fsck-ab.sh [-r R] DIR OLD NEW" >&2; exit 2; }
DIR=$(cd "$1" && pwd)
OLD=$(realpath "$2")
NEW=$(realpath "$3")
RAW=$DIR/ab-raw.tsv
[[ -d $DIR/store && -f $DIR/pw ]] || { echo "fsck-ab.sh: $DIR has no store and pw" >&2; exit 2; }
command -v /usr/bin/time >/dev/null || apt-get install -y time >/dev/null

cmd() {
	case $1 in
	old) "$OLD" -n --password-file "$DIR/pw" "$DIR/store" ;;
	new) "$NEW" -n --password-file "$DIR/pw" "$DIR/store" ;;
	cat) find "$DIR/store" -type f -exec cat {} + ;;
	esac
}

# one ROUND CACHE WHAT: a line of raw.tsv
one() {
	local t rc=0
	t=$(mktemp)
	if [[ $2 == cold ]]; then
		sync
		echo 3 >/proc/sys/vm/drop_caches
	else
		cmd "$3" >/dev/null 2>&1 || true
	fi
	/usr/bin/time -f "%e %U %S" -o "$t" bash -c "$(declare -f cmd); OLD='$OLD' NEW='$NEW' DIR='$DIR' cmd $3" \
		>/dev/null 2>&1 || rc=$?
	# fsck's exit status 0 (clean) is expected; anything else is a fault of the bench.
	if [[ $rc -ne 0 ]]; then
		echo "fsck-ab.sh: $3 exited $rc" >&2
		exit 1
	fi
	read -r wall user sys <"$(tail -n 1 "$t" >"$t.l"; echo "$t.l")"
	rm -f "$t" "$t.l"
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$wall" "$user" "$sys" >>"$RAW"
	printf 'round %s %-4s %-3s wall %6.2f s  user %6.2f s  sys %5.2f s\n' "$1" "$2" "$3" "$wall" "$user" "$sys" >&2
}

printf 'round\tcache\twhat\twall\tuser\tsys\n' >"$RAW"
orders=("old new cat" "new cat old" "cat old new")
for ((r = 1; r <= R; r++)); do
	order=${orders[$(((r - 1) % 3))]}
	for cache in cold warm; do
		for w in $order; do
			one "$r" "$cache" "$w"
		done
	done
done

python3 - "$RAW" "$(du -sb "$DIR/store" | cut -f1)" <<'EOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])][1:]
mb = int(sys.argv[2]) / 1e6
names = {"old": "fsck -n, before", "new": "fsck -n, after", "cat": "cat of the backing files"}
print("| %s | cache | wall s (median) | wall s (min-max) | CPU s user+sys (median) | MB/s (median wall) |" % "what")
print("|---|---|---|---|---|---|")
for cache in ("cold", "warm"):
    for w in ("old", "new", "cat"):
        r = [x for x in rows if x[1] == cache and x[2] == w]
        wall = [float(x[3]) for x in r]
        cpu = [float(x[4]) + float(x[5]) for x in r]
        m = statistics.median(wall)
        print("| %s | %s | %.2f | %.2f-%.2f | %.2f | %.0f |" % (names[w], cache, m, min(wall), max(wall),
                                                             statistics.median(cpu), mb / m))
print("\nstore: %.0f MB stored; %d rounds" % (mb, max(int(x[0]) for x in rows)))
EOF
