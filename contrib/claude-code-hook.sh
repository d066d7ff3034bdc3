#!/bin/sh
# claude-code-hook.sh - a Claude Code hook (PostToolUse, PreToolUse or any
# other event) that appends one JSON line per call to the events.jsonl of the
# sessionfs session in use, and fails open.
#
# Where the line goes, first match wins:
#   $SESSIONFS_EVENTS                      an events.jsonl path, as given
#   $SESSIONFS_MOUNT/current/events.jsonl  the session `sessionctl use` picked
# Neither set, or the file not there (no session in use, the session locked,
# the mount gone): nothing is written.
#
# The line: {"type":"tool_call","timestamp":"2026-12-05T18:57:40.123Z",
# "agent":"claude-code","hook_event_name":..,"tool_name":..,"tool_use_id":..,
# "session_id":..,"cwd":..,"text":"Bash: ls -l"} (absent fields left out;
# "text" is the tool name and its command, file, pattern or URL, cut at 300
# characters). Built by jq, or by python3 where jq is missing; the hook's
# input is read from stdin and never written elsewhere.
#
# Fails open: whatever goes wrong (the session locked: EACCES; the mount
# gone: ENOENT or ENOTCONN; a hung daemon; bad input; no jq nor python3) it
# exits 0, and everything that touches the mount runs under timeout(1), killed
# after $SESSIONFS_HOOK_TIMEOUT seconds (default 2), so the agent is never
# blocked. A failure prints one `claude-code-hook: ...` line on stderr, which
# Claude Code shows only in its debug output. Installation: doc/agents.md.

prog=claude-code-hook

if [ -z "$SESSIONFS_HOOK_INNER" ]; then
	t=${SESSIONFS_HOOK_TIMEOUT:-2}
	SESSIONFS_HOOK_INNER=1 timeout -k 1 "$t" /bin/sh "$0" "$@"
	rc=$?
	case $rc in
	124 | 137) echo "$prog: gave up after ${t}s (a hung mount?)" >&2 ;;
	125 | 126 | 127) echo "$prog: timeout $t failed (bad SESSIONFS_HOOK_TIMEOUT?)" >&2 ;;
	esac
	exit 0
fi

if [ -n "$SESSIONFS_EVENTS" ]; then
	events=$SESSIONFS_EVENTS
elif [ -n "$SESSIONFS_MOUNT" ]; then
	events=$SESSIONFS_MOUNT/current/events.jsonl
else
	exit 0
fi

ts=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ) || exit 0

if command -v jq >/dev/null 2>&1; then
	line=$(jq -c --arg ts "$ts" '
		.tool_input as $in
		| (if ($in | type) == "object"
		   then ($in | .command // .file_path // .notebook_path
			 // .pattern // .url // .query // .description)
		   else null end) as $what
		| {type: "tool_call", timestamp: $ts, agent: "claude-code",
		   hook_event_name, tool_name, tool_use_id, session_id, cwd,
		   text: ((.tool_name // .hook_event_name // "hook")
			  + (if ($what | type) == "string"
			     then ": " + ($what | .[0:300]) else "" end))}
		| with_entries(select(.value != null))' 2>/dev/null) || exit 0
elif command -v python3 >/dev/null 2>&1; then
	line=$(python3 -c '
import json, sys
h = json.load(sys.stdin)
if not isinstance(h, dict):
    sys.exit(1)
i = h.get("tool_input")
what = None
if isinstance(i, dict):
    for k in ("command", "file_path", "notebook_path", "pattern", "url", "query",
              "description"):
        if i.get(k) is not None:
            what = i[k]
            break
text = h.get("tool_name") or h.get("hook_event_name") or "hook"
if isinstance(text, str) and isinstance(what, str):
    text += ": " + what[:300]
e = {"type": "tool_call", "timestamp": sys.argv[1], "agent": "claude-code"}
for k in ("hook_event_name", "tool_name", "tool_use_id", "session_id", "cwd"):
    if h.get(k) is not None:
        e[k] = h[k]
e["text"] = text
print(json.dumps(e, separators=(",", ":")))
' "$ts" 2>/dev/null) || exit 0
else
	echo "$prog: neither jq nor python3 found; nothing logged" >&2
	exit 0
fi

case $line in
'{'*'}') ;;
*) exit 0 ;;
esac

# Only an existing events.jsonl: never create one in a place that is not a
# session (a missing `current`, an unmounted mount point).
if [ ! -f "$events" ]; then
	echo "$prog: $events: not reachable (no session in use, locked, or not mounted)" >&2
	exit 0
fi
# One printf of the whole line through one open file: sessionfs keeps the
# lines of each open file apart (a line cut into two writes by a small stdio
# buffer is put together before it is stored), so appends of several
# processes never interleave.
if ! printf '%s\n' "$line" >>"$events"; then
	echo "$prog: $events: append failed (session locked?)" >&2
fi
exit 0
