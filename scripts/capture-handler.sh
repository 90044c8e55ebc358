#!/usr/bin/env bash
# capture-handler.sh - Serf event handler that records one invocation verbatim.
#
# Usage (as a Serf handler for all events):
#   CAPTURE_DIR=/some/dir serf agent -event-handler="bash /path/to/capture-handler.sh" ...
#
# For every invocation it writes, into $CAPTURE_DIR:
#   NNN.env    the SERF_* environment variables, NUL-separated KEY=VALUE records,
#              sorted bytewise (LC_ALL=C), each record terminated by a NUL byte
#   NNN.stdin  the exact bytes Serf wrote to the handler's stdin
# NNN is a zero-padded 3-digit sequence number (001, 002, ...) kept in
# $CAPTURE_DIR/.counter. Serf runs handlers one at a time per agent; a flock
# on $CAPTURE_DIR/.lock guards the counter anyway.
#
# Both files are first written under temporary dot-names and then renamed, so
# a watcher that sees NNN.stdin knows NNN.env is complete too (env is renamed
# first). The handler prints nothing (a query's response is therefore empty)
# and always exits 0 so Serf never logs an error for it.

dir=${CAPTURE_DIR:-}
if [ -z "$dir" ]; then
    # Nothing to record into; drain stdin so Serf's write never blocks.
    cat >/dev/null
    exit 0
fi
mkdir -p -- "$dir" 2>/dev/null

{
    if command -v flock >/dev/null 2>&1; then
        exec 9>>"$dir/.lock" && flock 9
    fi

    n=0
    if [ -r "$dir/.counter" ]; then
        read -r n <"$dir/.counter" || true
        case $n in ''|*[!0-9]*) n=0 ;; esac
    fi
    n=$((10#$n + 1))
    printf -v nnn '%03d' "$n"
    printf '%s\n' "$n" >"$dir/.counter"

    # SERF_* variables, NUL-separated, sorted bytewise. grep -z keeps values
    # with embedded newlines/tabs intact.
    env -0 | LC_ALL=C grep -z -a '^SERF_' | LC_ALL=C sort -z >"$dir/.$nnn.env.tmp"
    # Exact stdin bytes.
    cat >"$dir/.$nnn.stdin.tmp"

    mv -f -- "$dir/.$nnn.env.tmp" "$dir/$nnn.env"
    mv -f -- "$dir/.$nnn.stdin.tmp" "$dir/$nnn.stdin"
} >/dev/null 2>&1

exit 0
