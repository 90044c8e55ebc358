#!/usr/bin/env bash
# fuzz.sh: run every fuzz target in the repository for a bounded time each.
#
#   scripts/fuzz.sh            # 20 s per target (what CI runs)
#   FUZZTIME=10m scripts/fuzz.sh
#   scripts/fuzz.sh FuzzHandle # only the targets whose name matches
#
# go test -fuzz takes one target at a time, so the targets are found with
# grep (func FuzzX(f *testing.F) in *_test.go) and run one after another.
# New inputs that raise coverage go to the build cache; a failing input is
# written to PKG/testdata/fuzz/FuzzX/ (commit it: it becomes a seed).
set -eu
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-20s}
only=${1:-}

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

# fuzz_one DIR NAME fuzzes one target. Go 1.26's fuzz coordinator can end a
# duration-bounded run with a bare "context deadline exceeded" failure when
# a worker is mid-call as -fuzztime expires (golang/go#75804, fixed in Go
# 1.27): no input failed, none is written. Such a run is tried once more;
# a run that writes a failing input, panics or fails otherwise fails at once.
fuzz_one() {
	local dir=$1 name=$2 log attempt
	log=$(mktemp)
	for attempt in 1 2; do
		if go test -run '^$' -fuzz "^$name\$" -fuzztime "$fuzztime" "$dir" 2>&1 | tee "$log"; [ "${PIPESTATUS[0]}" = 0 ]; then
			rm -f "$log"
			return 0
		fi
		if ! grep -q 'context deadline exceeded' "$log" || grep -qE 'Failing input written|panic:|_test\.go:[0-9]+:' "$log"; then
			rm -f "$log"
			return 1
		fi
		echo "fuzz.sh: $dir $name: bare 'context deadline exceeded' at the -fuzztime boundary (golang/go#75804), no failing input; attempt $attempt" >&2
	done
	rm -f "$log"
	return 1
}

failed=0
ran=0
echo "$targets" | {
	while read -r dir name; do
		case $name in *"$only"*) ;; *) continue ;; esac
		ran=$((ran + 1))
		echo "== $dir $name ($fuzztime)"
		if ! fuzz_one "$dir" "$name"; then
			echo "fuzz.sh: $dir $name FAILED" >&2
			failed=$((failed + 1))
		fi
	done
	echo "fuzz.sh: $ran target(s) run, $failed failed"
	[ "$failed" = 0 ] && [ "$ran" -gt 0 ]
}
