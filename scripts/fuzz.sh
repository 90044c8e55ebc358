#!/usr/bin/env bash
# fuzz.sh: run every fuzz target in the repository for a bounded time each.
#
#   scripts/fuzz.sh            # 20 s per target (what CI runs)
#   FUZZTIME=10m FUZZMINIMIZETIME=30s scripts/fuzz.sh
#   scripts/fuzz.sh FuzzHandle # only the targets whose name matches
#
# go test -fuzz takes one target at a time, so the targets are found with
# grep (func FuzzX(f *testing.F) in *_test.go) and run one after another.
# New inputs that raise coverage go to the build cache (go clean -fuzzcache
# empties it); a failing input is written to PKG/testdata/fuzz/FuzzX/
# (commit it: it becomes a seed) and printed here, since CI's clone is
# thrown away.
#
# Minimization is off unless FUZZMINIMIZETIME says otherwise: go test
# spends up to 60 s minimizing every new interesting input by default, and
# in a fresh clone, where nearly every input is new, the targets sat at
# 0 execs/s for most of a 20 s run (docs/testing.md has the numbers). A
# failing input is then written as found, not minimized.
#
# Every input in the cache is run once before fuzzing starts, inside the
# budget (FuzzHandle: ~50 a second on a busy machine), and the cache grows
# with every run on a machine that CI keeps. So each target's cache is cut
# to its FUZZCACHEKEEP (default 100) newest inputs before it runs.
set -eu
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-20s}
minimizetime=${FUZZMINIMIZETIME:-0}
cachekeep=${FUZZCACHEKEEP:-100}
only=${1:-}
fuzzcache=$(go env GOCACHE)/fuzz

targets=$(grep -rlE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' . |
	while read -r file; do
		dir=$(dirname "$file")
		sed -nE 's/^func (Fuzz[A-Za-z0-9_]*)\(f \*testing\.F\).*/\1/p' "$file" |
			while read -r name; do echo "$dir $name"; done
	done | sort)

if [ -z "$targets" ]; then
	echo "fuzz.sh: no fuzz targets found" >&2
	exit 1
fi

# show_new DIR NAME BEFORE prints the inputs written to DIR's testdata/fuzz
# for NAME that were not in the listing BEFORE.
show_new() {
	local dir=$1 name=$2 before=$3 f
	for f in "$dir/testdata/fuzz/$name"/*; do
		[ -f "$f" ] || continue
		grep -qxF "$f" "$before" && continue
		echo "----- failing input $f -----"
		cat "$f"
	done
}

# prune_cache DIR NAME keeps the newest $cachekeep inputs of the target's
# fuzz cache.
prune_cache() {
	local d
	d=$fuzzcache/$(go list "$1")/$2
	[ -d "$d" ] || return 0
	ls -t "$d" | tail -n +$((cachekeep + 1)) | while read -r f; do rm -f "$d/$f"; done
}

# summary LOG prints the last progress line and how many of the 3 s
# progress lines showed no execution at all.
summary() {
	local last idle
	last=$(grep -E '^fuzz: elapsed: [0-9]+s, ' "$1" | tail -n 1)
	idle=$(grep -cE '^fuzz: elapsed: [0-9]+s, execs: [0-9]+ \(0/sec\)' "$1" || true)
	echo "fuzz.sh: ${last#fuzz: } [progress lines at 0 execs/s: $idle]"
}

# fuzz_one DIR NAME fuzzes one target. Go 1.26's fuzz coordinator can end a
# duration-bounded run with a bare "context deadline exceeded" failure when
# a worker is mid-call as -fuzztime expires (golang/go#75804, fixed in Go
# 1.27): no input failed, none is written. Such a run is tried once more;
# a run that writes a failing input, panics or fails otherwise fails at once.
fuzz_one() {
	local dir=$1 name=$2 log before attempt rc=1
	log=$(mktemp)
	before=$(mktemp)
	ls -d "$dir/testdata/fuzz/$name"/* >"$before" 2>/dev/null || true
	prune_cache "$dir" "$name"
	for attempt in 1 2; do
		if go test -run '^$' -fuzz "^$name\$" -fuzztime "$fuzztime" -fuzzminimizetime "$minimizetime" "$dir" 2>&1 | tee "$log"; [ "${PIPESTATUS[0]}" = 0 ]; then
			summary "$log"
			rc=0
			break
		fi
		if ! grep -q 'context deadline exceeded' "$log" || grep -qE 'Failing input written|panic:|_test\.go:[0-9]+:' "$log"; then
			show_new "$dir" "$name" "$before"
			break
		fi
		echo "fuzz.sh: $dir $name: bare 'context deadline exceeded' at the -fuzztime boundary (golang/go#75804), no failing input; attempt $attempt" >&2
	done
	rm -f "$log" "$before"
	return $rc
}

failed=0
ran=0
echo "$targets" | {
	while read -r dir name; do
		case $name in *"$only"*) ;; *) continue ;; esac
		ran=$((ran + 1))
		echo "== $dir $name ($fuzztime, minimize $minimizetime)"
		if ! fuzz_one "$dir" "$name"; then
			echo "fuzz.sh: $dir $name FAILED" >&2
			failed=$((failed + 1))
		fi
	done
	echo "fuzz.sh: $ran target(s) run, $failed failed"
	[ "$failed" = 0 ] && [ "$ran" -gt 0 ]
}
