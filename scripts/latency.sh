#!/usr/bin/env bash
# latency.sh - end-to-end latency of serf-hb on the real stack (serf agents,
# s6, HAProxy on 127.0.1.x), for both reload methods.
#
#   scripts/latency.sh [REPS]        (default 5 repetitions per method)
#
# Runs TestLatency in scripts/e2e (SERF_HB_LATENCY=1) and prints its
# figures: median, min and max of
#   join:serf      serf agent start -> serf-hb invoked (gossip + coalescing)
#   join:serf-hb   serf-hb's own run time (took= in its log line)
#   join:reload    serf-hb done -> first response from the new backend
#   join:total     serf agent start -> first response through HAProxy
#   kill:detect    kill -9 -> serf-hb invoked for member-failed
#   kill:serf-hb   serf-hb's run time for it
#   kill:down      kill -9 -> HAProxy's health check marks it down
#   kill:removed   kill -9 -> gone from HAProxy's show servers state
# About 1 minute per method at 5 repetitions: a killed node takes Serf
# 5 to 25 s to declare failed.
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-5}
case $reps in '' | *[!0-9]*) echo "usage: scripts/latency.sh [REPS]" >&2; exit 2 ;; esac
out=$(SERF_HB_LATENCY=1 SERF_HB_LATENCY_REPS=$reps go test -count=1 -run '^TestLatency$' -v -timeout 30m ./scripts/e2e/ 2>&1) || {
    printf '%s\n' "$out"
    exit 1
}
printf '%s\n' "$out" | grep -E 'LATENCY' | sed 's/^ *latency_test.go:[0-9]*: //'
