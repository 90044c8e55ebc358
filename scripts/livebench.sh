#!/usr/bin/env bash
# livebench.sh - figures of serf-hb's live HAProxy updates (--haproxy-socket)
# against reloads, on real HAProxy under s6 on 127.0.25.0/24: $HAPROXY_BIN,
# or haproxy from $PATH (Debian's 2.6).
#
# Usage: scripts/livebench.sh [--big] [--reps N] [--bench REGEXP]
#
#   HAPROXY_BIN3=$(scripts/haproxy3.sh) scripts/livebench.sh
#                runs every benchmark on both HAProxys in the same run
#                (first the default one, then HAPROXY_BIN3) and prints a
#                column of medians for each
#
#   SERF_HB_BIN_OLD=/path/to/old/serf-hb scripts/livebench.sh --bench Events
#                BenchmarkEvents for this tree's serf-hb and that build in
#                the same run (metrics -old: builds taking turns), e.g. cbfa8c2's for the
#                before/after table of docs/performance.md
#
#   --big        also 10,000 registered nodes (SERF_HB_LIVE_BIG=1; adds
#                about 5 minutes)
#   --reps N     iterations per benchmark (default 5): each is a whole
#                serf-hb process against a running HAProxy
#   --bench RE   only the benchmarks matching RE (go test -bench), e.g.
#                'Join/live' or 'S6Reload'
#
# Runs the benchmarks of scripts/live (bench_test.go says what each
# measures) and prints their lines, then a Markdown table of the medians:
#   Join            serf-hb start -> first answer of a new backend, live,
#                   reload, and reload with the server states kept; failed
#                   requests meanwhile (1,000 requests/s, open loop)
#   Events          a join, a tag update, a leave with a request open on
#                   the leaving server, a failure: serf-hb's whole process
#                   (wall and CPU) and the join's first answer
#   Floor           serf-hb alone (no check, no socket, no reload), and the
#                   runtime API's round trips
#   Remove          a leave and a failure applied live
#   HundredChanges  100 changes under load: failed requests, reloads,
#                   HAProxy processes
#   S6Reload        the whole process with s6-svc done in process, against
#                   the exec of s6-svc, alternating in one run
# What they mean and the last figures: docs/performance.md, "Live updates".
set -euo pipefail
cd "$(dirname "$0")/.."

big="" reps=5 bench=.
while [ $# -gt 0 ]; do
	case $1 in
	--big) big=1 ;;
	--reps) reps=${2:?--reps needs a number}; shift ;;
	--bench) bench=${2:?--bench needs a regexp}; shift ;;
	*) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
	esac
	shift
done
case $reps in '' | *[!0-9]*) echo "livebench.sh: --reps $reps: not a number" >&2; exit 2 ;; esac

# bench [VAR=VALUE...]: the benchmarks' output, with the environment given.
bench() {
	env "$@" SERF_HB_LIVE_BIG=$big go test -count=1 -run '^$' -bench "$bench" -benchtime "${reps}x" -timeout 60m ./scripts/live 2>&1
}
# medians: "NAME<TAB>unit value, unit value" per benchmark line.
medians() {
	awk '/^Benchmark/ {
		name = $1; sub(/^Benchmark/, "", name); sub(/-[0-9]+$/, "", name)
		row = ""
		for (i = 5; i < NF; i += 2) row = row (row == "" ? "" : ", ") $(i+1) " " $i
		printf "%s\t%s\n", name, row
	}'
}
version() { "${1:-$(command -v haproxy)}" -v 2>/dev/null | awk 'NR == 1 { print $3 }'; }

out=$(bench) || {
	printf '%s\n' "$out" >&2
	exit 1
}
printf '%s\n' "$out" | grep '^Benchmark'
if [ -z "${HAPROXY_BIN3:-}" ]; then
	echo
	echo "| benchmark | medians |"
	echo "|---|---|"
	printf '%s\n' "$out" | medians | awk -F '\t' '{ printf "| %s | %s |\n", $1, $2 }'
	exit 0
fi
out3=$(bench HAPROXY_BIN="$HAPROXY_BIN3") || {
	printf '%s\n' "$out3" >&2
	exit 1
}
echo "# HAProxy $(version "$HAPROXY_BIN3") ($HAPROXY_BIN3)"
printf '%s\n' "$out3" | grep '^Benchmark'
echo
echo "| benchmark | HAProxy $(version "${HAPROXY_BIN:-}") | HAProxy $(version "$HAPROXY_BIN3") |"
echo "|---|---|---|"
join -t "$(printf '\t')" -a 1 -a 2 -e - -o 0,1.2,2.2 \
	<(printf '%s\n' "$out" | medians | sort -t "$(printf '\t')" -k 1,1) \
	<(printf '%s\n' "$out3" | medians | sort -t "$(printf '\t')" -k 1,1) |
	awk -F '\t' '{ printf "| %s | %s | %s |\n", $1, $2, $3 }'
