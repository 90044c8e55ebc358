#!/usr/bin/env bash
# bench.sh - whole-process benchmark of one Serf member-join event.
#
# Usage: scripts/bench.sh [options] [-- harness flags]
#
# Times one handler process (a join line on stdin, reload command `true`, no
# check) against registries of 0, 100, 1,000 and 10,000 nodes, for serf-hb
# and, in the same run and alternating with it, for the lab's member-join.sh
# with handlebars-cmd; next to both, the exec of a static Go binary that does
# nothing (the floor). Prints medians, min-max, CPU time, the lab/serf-hb
# ratios, the serf-hb/floor ratio and peak RSS (/usr/bin/time -v). What it
# measures and why: docs/performance.md.
#
# Options:
#   --smoke         sizes 0 and 100, 2 runs each; the lab only if handlebars-cmd
#                   is installed already; nothing installed; then the Go
#                   benchmarks once each, -short (CI; < 30 s; no thresholds)
#   --cgo           build serf-hb the default way (cgo, dynamically linked)
#                   instead of CGO_ENABLED=0 (a static binary, like the floor)
#   --no-lab        serf-hb and the floor only
#   --least         also run scripts/bench/least alongside (as -compare): the
#                   least a handler can do with serf-hb's durability (same
#                   fsyncs, same exec, no CLI library, no template engine),
#                   to tell serf-hb's own time from the job's
#   --markdown      print the table as Markdown
#   --reps N        timed runs of serf-hb and the floor per size (default 21)
#   --lab-reps N    timed runs of the lab per size under 1,000 nodes (default 9)
#   --lab-reps-big N  ... from 1,000 nodes (default 3; the lab takes ~2 s there)
#   --sizes LIST    registry sizes (default 0,100,1000,10000)
#   --lab-sizes LIST  sizes the lab runs at (default 0,100,1000: above ~3,300
#                   nodes it fails with E2BIG, and 10,000 would take ~30 s a run)
#   --batch N       instead, time a start-up event: N members in one member-join
#                   into an empty registry (scripts/bench/batch), two line
#                   shapes, wall and peak RSS, next to the floor (N node files
#                   written atomically and durably, nothing else); with
#                   --compare-rev, against that build in the same runs
#   --compare-rev REV  also build REV of this repository (git worktree in the
#                   scratch directory) and run it alongside (-compare)
#   --keep          keep the scratch directory (its path is printed)
#   -- FLAGS        passed on to the Go harness (go run ./scripts/bench -h)
#
# Environment:
#   SERF_HB_BASELINE  the lab scripts (member-join.sh, haproxy.cfg.hb,
#                     install-handlebars.sh); default ../shared/baseline
#                     relative to the repository. Never copied into it.
#   HB_PREFIX         npm prefix holding handlebars-cmd; default: installed once
#                     with install-handlebars.sh (from the npm registry) into
#                     ${XDG_CACHE_HOME:-~/.cache}/serf-hb-bench/handlebars-cmd-0.1.4
#   TMPDIR            where the scratch directory goes (registries, binaries);
#                     its file system is part of what is measured (fsync)

set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd -- "$SCRIPT_DIR/.." && pwd)

smoke=0 cgo=0 lab=1 keep=0 least=0 batch=0 rev=
harness=()
while [ $# -gt 0 ]; do
	case $1 in
	--smoke) smoke=1 ;;
	--cgo) cgo=1 ;;
	--no-lab) lab=0 ;;
	--least) least=1 ;;
	--markdown) harness+=(-markdown) ;;
	--reps) harness+=(-reps "${2:?--reps needs a number}"); shift ;;
	--lab-reps) harness+=(-lab-reps "${2:?--lab-reps needs a number}"); shift ;;
	--lab-reps-big) harness+=(-lab-reps-big "${2:?--lab-reps-big needs a number}"); shift ;;
	--sizes) harness+=(-sizes "${2:?--sizes needs a list}"); shift ;;
	--lab-sizes) harness+=(-lab-sizes "${2:?--lab-sizes needs a list}"); shift ;;
	--keep) keep=1 ;;
	--batch) batch=${2:?--batch needs a member count}; shift ;;
	--compare-rev) rev=${2:?--compare-rev needs a git revision}; shift ;;
	--) shift; harness+=("$@"); break ;;
	-h | --help) sed -n '2,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
	*) echo "bench.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done
if [ "$smoke" = 1 ]; then
	# Later flags win in Go's flag package, so explicit options still apply.
	harness=(-sizes 0,100 -lab-sizes 0,100 -reps 2 -lab-reps 2 "${harness[@]}")
fi

note() { echo "bench.sh: $*" >&2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/serf-hb-bench.XXXXXX")
cleanup() {
	if [ "$keep" = 1 ]; then note "scratch directory kept: $work"; else rm -rf -- "$work"; fi
}
trap cleanup EXIT

# Peak RSS comes from GNU time (Debian package "time").
timebin=/usr/bin/time
if ! "$timebin" -v true >/dev/null 2>&1; then
	if [ "$smoke" = 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		note "installing Debian's time package for /usr/bin/time -v"
		apt-get install -y -qq time >/dev/null
	fi
	if ! "$timebin" -v true >/dev/null 2>&1; then
		note "no GNU time at $timebin: peak RSS not measured (hint: apt-get install time)"
		timebin=
	fi
fi

# The lab scripts and handlebars-cmd.
baseline=${SERF_HB_BASELINE:-$REPO_DIR/../shared/baseline}
hbprefix=
if [ "$lab" = 1 ]; then
	if [ ! -f "$baseline/member-join.sh" ] || [ ! -f "$baseline/haproxy.cfg.hb" ]; then
		note "lab scripts not found in $baseline (set SERF_HB_BASELINE): comparison with the lab skipped"
		lab=0
	else
		baseline=$(cd -- "$baseline" && pwd)
		hbprefix=${HB_PREFIX:-${XDG_CACHE_HOME:-$HOME/.cache}/serf-hb-bench/handlebars-cmd-0.1.4}
		if [ ! -x "$hbprefix/bin/handlebars" ]; then
			if [ "$smoke" = 1 ]; then
				note "handlebars-cmd not installed in $hbprefix: lab skipped in smoke mode"
				lab=0
			elif [ -n "${HB_PREFIX:-}" ]; then
				note "HB_PREFIX=$HB_PREFIX holds no bin/handlebars: comparison with the lab skipped"
				lab=0
			elif ! command -v npm >/dev/null; then
				note "npm not found, cannot install handlebars-cmd: comparison with the lab skipped"
				lab=0
			else
				note "installing handlebars-cmd into $hbprefix (npm registry, once)"
				mkdir -p -- "$hbprefix"
				if ! "$baseline/install-handlebars.sh" "$hbprefix" >/dev/null; then
					note "handlebars-cmd install failed: comparison with the lab skipped"
					lab=0
				fi
			fi
		fi
	fi
fi

# Binaries: serf-hb as a release would be built, the floor, the harness.
mkdir -p "$work/bin"
(
	cd "$REPO_DIR"
	if [ "$cgo" = 1 ]; then
		go build -o "$work/bin/serf-hb" .
	else
		CGO_ENABLED=0 go build -o "$work/bin/serf-hb" .
	fi
	CGO_ENABLED=0 go build -o "$work/bin/floor" ./scripts/bench/floor
	if [ "$least" = 1 ]; then
		CGO_ENABLED=0 go build -o "$work/bin/least" ./scripts/bench/least
	fi
	go build -o "$work/bin/bench" ./scripts/bench
	go build -o "$work/bin/batch" ./scripts/bench/batch
	if [ -n "$rev" ]; then
		git worktree add -q --detach "$work/rev" "$rev"
		(cd "$work/rev" && CGO_ENABLED=0 go build -o "$work/bin/serf-hb-rev" .)
		git worktree remove --force "$work/rev"
	fi
)
if [ -n "$rev" ]; then
	harness+=(-compare "$work/bin/serf-hb-rev")
fi

# The machine, for the record.
fs=$(findmnt -n -o FSTYPE --target "$work" 2>/dev/null || stat -f -c %T "$work" 2>/dev/null || echo unknown)
echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.0f GiB RAM", $2/1048576}' /proc/meminfo 2>/dev/null)"
echo "kernel:  $(uname -sr); scratch file system: $fs ($work)"
echo "go:      $(go version | cut -d' ' -f3-); serf-hb built with $([ "$cgo" = 1 ] && echo cgo || echo CGO_ENABLED=0)"
if [ "$lab" = 1 ]; then
	echo "lab:     $baseline/member-join.sh, handlebars-cmd in $hbprefix, node $(node --version 2>/dev/null || echo '?')"
fi
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) at start"

if [ "$batch" != 0 ]; then
	batchflags=(-members "$batch")
	if [ "$smoke" = 1 ]; then
		batchflags+=(-reps 1 -shapes small)
	fi
	if [ -n "$rev" ]; then
		batchflags+=(-compare "$work/bin/serf-hb-rev")
	fi
	mkdir -p "$work/batch"
	"$work/bin/batch" -serf-hb "$work/bin/serf-hb" -work "$work/batch" -time "${timebin:-/usr/bin/time}" "${batchflags[@]}"
	echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) at end"
	exit 0
fi

labflags=()
if [ "$lab" = 1 ]; then
	labflags=(-baseline "$baseline" -hb-prefix "$hbprefix")
fi
if [ "$least" = 1 ]; then
	labflags+=(-compare "$work/bin/least")
fi
"$work/bin/bench" -serf-hb "$work/bin/serf-hb" -floor "$work/bin/floor" -work "$work" \
	-time "$timebin" "${labflags[@]}" "${harness[@]}"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) at end"

if [ "$smoke" = 1 ]; then
	# The in-process benchmarks, once each: they must still build and run.
	echo "== go test -short -bench . -benchtime 1x (smoke)"
	(cd "$REPO_DIR" && go test -short -run '^$' -bench . -benchtime 1x ./handler ./nodestore ./render)
fi
