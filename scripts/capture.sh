#!/usr/bin/env bash
# capture.sh - record real Serf event-handler invocations as test fixtures.
#
# Usage: bash scripts/capture.sh [OUTDIR]        (default: testdata/captures)
#
# For every scenario it starts fresh agents on loopback (own temp dirs, own
# 127.77.S.H addresses; the ipv6 scenario uses ::1 with its own ports): one
# balancer (node "lb", tag role=balancer, scripts/capture-handler.sh for all
# events, CAPTURE_DIR=OUTDIR/<scenario>) and some backends (tag role=backend,
# port=3000, ...). It drives the scenario, waits until the balancer's handler
# has recorded what is expected, waits for a quiet period, stops every agent
# by PID (SIGINT, then SIGKILL after a bounded wait) and moves on.
#
# Each OUTDIR/<scenario>/ then holds NNN.env (SERF_* variables, NUL-separated
# KEY=VALUE records, sorted) and NNN.stdin (raw stdin bytes) per invocation.
#
# Environment knobs:
#   SERF=/usr/bin/serf    serf binary
#   CAPTURE_NET=127.77    first two octets of the IPv4 loopback addresses used
#   CAPTURE_V6_PORT=47900 first port used on ::1
#   SCENARIOS="a b"       run only these scenarios (default: all)
#   KEEP_TMP=1            keep agent logs/state (temp dir path is printed)
#
# Every wait is bounded in time and iterations; the script never sleeps a fixed
# time to "let things happen" except the short quiet-period checks.

set -uo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd -- "$SCRIPT_DIR/.." && pwd)
HANDLER=$SCRIPT_DIR/capture-handler.sh
OUTDIR=${1:-$REPO_DIR/testdata/captures}
SERF=${SERF:-serf}
NET=${CAPTURE_NET:-127.77}
V6_PORT=${CAPTURE_V6_PORT:-47900}
QUIET_SECS=${CAPTURE_QUIET_SECS:-2.5}

ALL_SCENARIOS="self-join join-many join-sequential leave-graceful failed reap
update-tags update-role user-event query ipv6 names join-leave-coalesced
restart-balancer"
SCENARIOS=${SCENARIOS:-$ALL_SCENARIOS}

# The agents inherit our environment and the handler records every SERF_*
# variable: make sure none leak in from the caller.
while IFS= read -r v; do unset "$v"; done < <(compgen -e | grep '^SERF_' || true)
unset CAPTURE_DIR

log() { printf '%s [capture] %s\n' "$(date +%H:%M:%S.%3N)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

command -v "$SERF" >/dev/null 2>&1 || die "serf binary not found ($SERF)"
[ -r "$HANDLER" ] || die "handler not found: $HANDLER"
case $HANDLER in *=*) die "handler path must not contain '=' (Serf would parse it as TYPE=SCRIPT)";; esac
# Serf runs the handler string with /bin/sh -c; quote the path for sh.
HANDLER_CMD="bash '${HANDLER//\'/\'\\\'\'}'"

mkdir -p -- "$OUTDIR" || die "cannot create $OUTDIR"
OUTDIR=$(cd -- "$OUTDIR" && pwd)
TMPROOT=$(mktemp -d "${TMPDIR:-/tmp}/serf-capture.XXXXXX") || die "mktemp failed"

declare -a ALL_PIDS=()      # every agent we started (for the exit trap)
declare -a SCEN_PIDS=()     # agents of the current scenario, balancer first
declare -a WARNINGS=()
AGENT_SEQ=0

now_ms() { date +%s%3N; }

cleanup() {
    local pid
    for pid in "${ALL_PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            log "cleanup: stopping leftover agent pid $pid"
            stop_pid "$pid"
        fi
    done
    if [ "${KEEP_TMP:-0}" = 1 ]; then
        log "agent logs kept in $TMPROOT"
    else
        rm -rf -- "$TMPROOT"
    fi
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

warn() { log "WARNING: $*"; WARNINGS+=("[$SCEN] $*"); }

# wait_for TIMEOUT_SECS DESCRIPTION CMD...: poll CMD every 0.1 s until it
# succeeds; give up after TIMEOUT_SECS (both wall clock and iteration count).
wait_for() {
    local timeout=$1 desc=$2; shift 2
    local start end max i=0
    start=$(now_ms); end=$((start + timeout * 1000)); max=$((timeout * 10 + 10))
    while :; do
        if "$@"; then
            log "ok: $desc ($(( $(now_ms) - start )) ms)"
            return 0
        fi
        i=$((i + 1))
        if [ "$i" -ge "$max" ] || [ "$(now_ms)" -ge "$end" ]; then
            warn "timeout after ${timeout}s waiting for: $desc"
            return 1
        fi
        sleep 0.1
    done
}

# stop_pid PID: SIGINT (graceful leave), wait up to 10 s, then SIGKILL.
stop_pid() {
    local pid=$1 i
    kill -INT "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "pid $pid ignored SIGINT for 10 s, sending SIGKILL"
        kill -9 "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    return 0
}

# wait_exit PID TIMEOUT: wait for an agent that was told to stop some other way.
pid_gone() { ! kill -0 "$1" 2>/dev/null; }
wait_exit() {
    wait_for "$2" "pid $1 exited" pid_gone "$1"
    kill -0 "$1" 2>/dev/null && { kill -9 "$1" 2>/dev/null; }
    wait "$1" 2>/dev/null
    return 0
}

# start_agent NAME BIND RPC CAPDIR [serf agent args...]; sets LAST_PID.
# CAPDIR empty = no CAPTURE_DIR in the agent's environment.
start_agent() {
    local name=$1 bind=$2 rpc=$3 capdir=$4; shift 4
    AGENT_SEQ=$((AGENT_SEQ + 1))
    local adir=$SCEN_TMP/agent-$AGENT_SEQ
    mkdir -p -- "$adir"
    printf '%s\n' "$name" >"$adir/node-name"
    if [ -n "$capdir" ]; then
        ( cd -- "$adir" && exec env CAPTURE_DIR="$capdir" "$SERF" agent \
            -node="$name" -bind="$bind" -rpc-addr="$rpc" -log-level=debug "$@" ) \
            </dev/null >"$adir/log" 2>&1 &
    else
        ( cd -- "$adir" && exec "$SERF" agent \
            -node="$name" -bind="$bind" -rpc-addr="$rpc" -log-level=debug "$@" ) \
            </dev/null >"$adir/log" 2>&1 &
    fi
    LAST_PID=$!
    ALL_PIDS+=("$LAST_PID")
    SCEN_PIDS+=("$LAST_PID")
    log "started agent $(printf '%q' "$name") bind=$bind rpc=$rpc pid=$LAST_PID log=$adir/log"
}

rpc_up() { kill -0 "$1" 2>/dev/null && "$SERF" members -rpc-addr="$2" >/dev/null 2>&1; }
wait_up() { wait_for 15 "agent pid $1 answers on $2" rpc_up "$1" "$2"; }

# Serf's escaping of NAME/ROLE/TAGS in member-event lines: TAB -> \t, LF -> \n.
esc() { local s=$1; s=${s//$'\t'/\\t}; s=${s//$'\n'/\\n}; printf '%s' "$s"; }

ncaps() { local f n=0; for f in "$CAP"/[0-9][0-9][0-9].stdin; do [ -e "$f" ] && n=$((n + 1)); done; echo "$n"; }

# has_event MIN EVENT [NAME]: an invocation numbered > MIN with SERF_EVENT=EVENT
# (and, if NAME is given, a stdin line whose first field is esc(NAME)).
has_event() {
    local min=$1 ev=$2 f base num
    for f in "$CAP"/[0-9][0-9][0-9].stdin; do
        [ -e "$f" ] || continue
        base=${f%.stdin}; num=${base##*/}
        [ $((10#$num)) -gt "$min" ] || continue
        LC_ALL=C grep -q -z -a -x -F "SERF_EVENT=$ev" "$base.env" || continue
        if [ $# -ge 3 ]; then
            WANT=$(esc "$3") LC_ALL=C awk -F'\t' '$1 == ENVIRON["WANT"] { found = 1 } END { exit !found }' "$f" || continue
        fi
        return 0
    done
    return 1
}
# expect MIN TIMEOUT EVENT [NAME]
expect() {
    local min=$1 timeout=$2; shift 2
    wait_for "$timeout" "$SCEN: $1 ${2+$(printf '%q' "$2")} (after #$min)" has_event "$min" "$@"
}

# quiet: wait until no new invocation has appeared for QUIET_SECS (max 20 s).
quiet() {
    local last cur since start i
    start=$(now_ms); last=$(ncaps); since=$(now_ms)
    local quiet_ms
    quiet_ms=$(awk -v s="$QUIET_SECS" 'BEGIN { printf "%d", s * 1000 }')
    for ((i = 0; i < 400; i++)); do
        sleep 0.1
        cur=$(ncaps)
        if [ "$cur" != "$last" ]; then last=$cur; since=$(now_ms); fi
        [ $(( $(now_ms) - since )) -ge "$quiet_ms" ] && return 0
        [ $(( $(now_ms) - start )) -ge 20000 ] && { warn "never quiet"; return 1; }
    done
    return 1
}

# ---------------------------------------------------------------- agents ---

ip4() { printf '%s.%s.%s' "$NET" "$SCEN_NO" "$1"; }   # ip4 HOST
LB_NAME=lb

# start_balancer [extra args]: node lb on ip4 1 with the capture handler.
start_balancer() {
    LB_IP=$(ip4 1); LB_BIND=$LB_IP:7946; LB_RPC=$LB_IP:7373
    start_agent "$LB_NAME" "$LB_BIND" "$LB_RPC" "$CAP" \
        -tag role=balancer -event-handler="$HANDLER_CMD" "$@"
    LB_PID=$LAST_PID
    wait_up "$LB_PID" "$LB_RPC"
}

# start_backend NAME HOST [args...]: joins the balancer. Default tags
# role=backend port=3000 unless args are given. Sets B_PID, B_RPC.
start_backend() {
    local name=$1 host=$2; shift 2
    [ $# -eq 0 ] && set -- -tag role=backend -tag port=3000
    B_IP=$(ip4 "$host"); B_RPC=$B_IP:7373
    start_agent "$name" "$B_IP:7946" "$B_RPC" "" -join="$LB_BIND" "$@"
    B_PID=$LAST_PID
}

# wait_handlers: the agent does not wait for a running handler when it shuts
# down (the handler of the balancer's own member-leave can outlive it, with
# its stdin cut short). Give such a handler time to start, then wait until it
# releases the capture lock and no temp file is left (max ~5 s).
handler_idle() {
    local t
    for t in "$CAP"/.[0-9][0-9][0-9].*.tmp; do [ -e "$t" ] && return 1; done
    [ -e "$CAP/.lock" ] || return 0
    flock -n "$CAP/.lock" true
}
wait_handlers() {
    sleep 0.5
    wait_for 5 "$SCEN: no handler still running" handler_idle
}

stop_scenario_agents() {
    local pid
    # Balancer first, so the backends' departures are not recorded.
    for pid in "${SCEN_PIDS[@]}"; do
        kill -0 "$pid" 2>/dev/null && stop_pid "$pid"
        break
    done
    wait_handlers
    for pid in "${SCEN_PIDS[@]:1}"; do kill -INT "$pid" 2>/dev/null; done
    for pid in "${SCEN_PIDS[@]:1}"; do stop_pid "$pid"; done
    SCEN_PIDS=()
}

# ------------------------------------------------------------- scenarios ---

# balancer_and_web1: the balancer, then backend web-1 joined and handled:
# the start of most scenarios.
balancer_and_web1() {
    start_balancer
    expect 0 10 member-join "$LB_NAME"
    local n; n=$(ncaps)
    start_backend web-1 11
    wait_up "$B_PID" "$B_RPC"
    expect "$n" 15 member-join web-1
    quiet
}

sc_self_join() {
    start_balancer
    expect 0 10 member-join "$LB_NAME"
}

sc_join_many() {
    start_balancer
    expect 0 10 member-join "$LB_NAME"
    local n; n=$(ncaps)
    # Three backends started at the same moment: their joins reach the
    # balancer within one coalesce window (1 s quiet / 3 s max).
    start_backend web-1 11; local p1=$B_PID r1=$B_RPC
    start_backend web-2 12; local p2=$B_PID r2=$B_RPC
    start_backend web-3 13 -tag role=backend -tag port=3001; local p3=$B_PID r3=$B_RPC
    wait_up "$p1" "$r1"; wait_up "$p2" "$r2"; wait_up "$p3" "$r3"
    expect "$n" 15 member-join web-1
    expect "$n" 15 member-join web-2
    expect "$n" 15 member-join web-3
}

sc_join_sequential() {
    start_balancer
    expect 0 10 member-join "$LB_NAME"
    local i n
    for i in 1 2 3; do
        n=$(ncaps)
        start_backend "web-$i" $((10 + i)) -tag role=backend -tag "port=300$i"
        wait_up "$B_PID" "$B_RPC"
        expect "$n" 15 member-join "web-$i"
    done
}

sc_leave_graceful() {
    start_balancer
    expect 0 10 member-join "$LB_NAME"
    local n
    n=$(ncaps)
    start_backend web-1 11; local p1=$B_PID r1=$B_RPC
    start_backend web-2 12; local p2=$B_PID r2=$B_RPC
    wait_up "$p1" "$r1"; wait_up "$p2" "$r2"
    expect "$n" 15 member-join web-1
    expect "$n" 15 member-join web-2
    quiet
    # web-1: "serf leave" over RPC.
    n=$(ncaps)
    log "serf leave -rpc-addr=$r1"
    "$SERF" leave -rpc-addr="$r1" >&2
    expect "$n" 15 member-leave web-1
    wait_exit "$p1" 15
    quiet
    # web-2: SIGINT to the agent (graceful leave on interrupt).
    n=$(ncaps)
    log "kill -INT $p2 (web-2)"
    kill -INT "$p2"
    expect "$n" 15 member-leave web-2
    wait_exit "$p2" 15
}

sc_failed() {
    start_balancer
    expect 0 10 member-join "$LB_NAME"
    local n t0
    n=$(ncaps)
    start_backend web-1 11
    local p1=$B_PID
    wait_up "$p1" "$B_RPC"
    expect "$n" 15 member-join web-1
    quiet
    n=$(ncaps)
    log "kill -9 $p1 (web-1)"
    t0=$(now_ms)
    kill -9 "$p1"; wait "$p1" 2>/dev/null
    expect "$n" 40 member-failed web-1
    log "member-failed arrived $(( $(now_ms) - t0 )) ms after kill -9"
}

sc_reap() {
    local cfg=$SCEN_TMP/lb-reap.json
    printf '{"reconnect_timeout":"1s","tombstone_timeout":"1s"}\n' >"$cfg"
    start_balancer -config-file="$cfg"
    expect 0 10 member-join "$LB_NAME"
    local n t0
    n=$(ncaps)
    start_backend web-1 11; local p1=$B_PID r1=$B_RPC
    start_backend web-2 12; local p2=$B_PID r2=$B_RPC
    wait_up "$p1" "$r1"; wait_up "$p2" "$r2"
    expect "$n" 15 member-join web-1
    expect "$n" 15 member-join web-2
    quiet
    n=$(ncaps)
    t0=$(now_ms)
    log "kill -9 $p1 (web-1) and serf leave web-2"
    kill -9 "$p1"; wait "$p1" 2>/dev/null
    "$SERF" leave -rpc-addr="$r2" >&2
    wait_exit "$p2" 15
    expect "$n" 15 member-leave web-2
    expect "$n" 40 member-failed web-1
    # Reaper runs every 15 s (not configurable in the agent).
    expect "$n" 60 member-reap web-1
    expect "$n" 60 member-reap web-2
    log "reap of both seen $(( $(now_ms) - t0 )) ms after kill/leave"
}

# tag_step RPC DESCRIPTION serf-tags-args...: change tags, wait for the update.
tag_step() {
    local rpc=$1 name=$2 n; shift 2
    n=$(ncaps)
    log "serf tags -rpc-addr=$rpc $*"
    "$SERF" tags -rpc-addr="$rpc" "$@" >&2
    expect "$n" 15 member-update "$name"
    quiet
}

sc_update_tags() {
    balancer_and_web1
    tag_step "$B_RPC" web-1 -set port=4000
    tag_step "$B_RPC" web-1 -set weight=5
    tag_step "$B_RPC" web-1 -delete weight
    # Another member's event after an update: Serf's member coalescer never
    # forgets web-1's last member-update and flushes it again (serf#555).
    local n; n=$(ncaps)
    start_backend web-2 12
    wait_up "$B_PID" "$B_RPC"
    expect "$n" 15 member-join web-2
}

sc_update_role() {
    balancer_and_web1
    tag_step "$B_RPC" web-1 -set role=maintenance
    tag_step "$B_RPC" web-1 -set role=backend
    tag_step "$B_RPC" web-1 -delete role
    tag_step "$B_RPC" web-1 -set role=backend
}

# user_step RPC EVENTNAME PAYLOAD [event args]: fire a user event, wait for it.
user_step() {
    local rpc=$1 name=$2 payload=$3 n; shift 3
    n=$(ncaps)
    log "serf event $* $(printf '%q %q' "$name" "$payload")"
    "$SERF" event -rpc-addr="$rpc" "$@" "$name" "$payload" >&2
    expect "$n" 15 user
    quiet
}

sc_user_event() {
    balancer_and_web1
    # Sent from the backend's agent, received by the balancer.
    user_step "$B_RPC" deploy payload-text
    user_step "$B_RPC" deploy ''
    user_step "$B_RPC" deploy $'line1\nline2\twith tab\n'
    user_step "$B_RPC" 'cache flush' 'x' -coalesce=false
}

sc_query() {
    balancer_and_web1
    local n
    # 1: from the backend, addressed to the balancer only.
    n=$(ncaps)
    log "serf query -rpc-addr=$B_RPC -node=lb -timeout=2s ping payload-q"
    "$SERF" query -rpc-addr="$B_RPC" -node="$LB_NAME" -timeout=2s ping payload-q >&2
    expect "$n" 10 query
    quiet
    # 2: from the balancer itself, to everybody, empty payload.
    n=$(ncaps)
    log "serf query -rpc-addr=$LB_RPC -timeout=2s status ''"
    "$SERF" query -rpc-addr="$LB_RPC" -timeout=2s status '' >&2
    expect "$n" 10 query
}

sc_ipv6() {
    local lbp=$V6_PORT bp=$((V6_PORT + 1))
    LB_BIND="[::1]:$lbp"; LB_RPC="[::1]:$((V6_PORT + 10))"
    start_agent "$LB_NAME" "$LB_BIND" "$LB_RPC" "$CAP" \
        -tag role=balancer -event-handler="$HANDLER_CMD"
    LB_PID=$LAST_PID
    wait_up "$LB_PID" "$LB_RPC"
    expect 0 10 member-join "$LB_NAME"
    local n; n=$(ncaps)
    B_RPC="[::1]:$((V6_PORT + 11))"
    start_agent web6-1 "[::1]:$bp" "$B_RPC" "" -join="$LB_BIND" -tag role=backend -tag port=3000
    wait_up "$LAST_PID" "$B_RPC"
    expect "$n" 15 member-join web6-1
}

sc_names() {
    # The balancer gets an extra tag whose key is outside [A-Z0-9_] to show
    # how SERF_TAG_<NAME> is derived.
    start_balancer -tag 'odd-key.v2=va lue'
    expect 0 10 member-join "$LB_NAME"
    local long n h=10 name
    long=$(printf 'long-%0195d' 0)    # 200 characters
    local -a names=(
        'web 1' 'a/b' '../evil' 'amp&<lt>"q"' 'wéb-ü' "$long" '-dash'
        $'tab\tname' $'nl\nname' $'cr\rname' 'back\tslash' '$(touch pwned)*'
    )
    for name in "${names[@]}"; do
        h=$((h + 1)); n=$(ncaps)
        start_backend "$name" "$h"
        wait_up "$B_PID" "$B_RPC"
        expect "$n" 15 member-join "$name"
    done
    h=$((h + 1)); n=$(ncaps)
    start_backend canary "$h" -tag 'role=backend canary' -tag port=3000
    wait_up "$B_PID" "$B_RPC"; expect "$n" 15 member-join canary
    h=$((h + 1)); n=$(ncaps)
    start_backend tagged "$h" -tag role=backend -tag port=3000 -tag 'note=a,b=c' -tag $'tv=x\ty'
    wait_up "$B_PID" "$B_RPC"; expect "$n" 15 member-join tagged
    h=$((h + 1)); n=$(ncaps)
    start_backend notags "$h" -tag port=3000
    wait_up "$B_PID" "$B_RPC"; expect "$n" 15 member-join notags
    [ -e "$SCEN_TMP/pwned" ] && warn "a file named pwned appeared (should never happen)"
    return 0
}

lb_sees_alive() {
    "$SERF" members -rpc-addr="$LB_RPC" -name="$1" -status=alive 2>/dev/null | grep -q .
}

sc_join_leave_coalesced() {
    start_balancer
    expect 0 10 member-join "$LB_NAME"
    quiet
    local n t0 t1; n=$(ncaps)
    start_backend web-1 11
    local p1=$B_PID r1=$B_RPC
    # Poll the balancer's member list (not its handler) until web-1 is
    # alive there, then leave at once: both inside one coalesce window.
    local i
    for ((i = 0; i < 200; i++)); do
        lb_sees_alive web-1 && break
        sleep 0.05
    done
    t0=$(now_ms)
    log "serf leave -rpc-addr=$r1 (web-1 alive at the balancer after ~$((i * 50)) ms of polling)"
    "$SERF" leave -rpc-addr="$r1" >&2
    t1=$(now_ms)
    log "serf leave returned after $((t1 - t0)) ms"
    wait_exit "$p1" 15
    expect "$n" 15 member-leave web-1 || expect "$n" 5 member-join web-1
}

sc_restart_balancer() {
    local snap=$SCEN_TMP/lb.snapshot
    start_balancer -snapshot="$snap"
    expect 0 10 member-join "$LB_NAME"
    local n; n=$(ncaps)
    start_backend web-1 11; local p1=$B_PID r1=$B_RPC
    start_backend web-2 12; local p2=$B_PID r2=$B_RPC
    wait_up "$p1" "$r1"; wait_up "$p2" "$r2"
    expect "$n" 15 member-join web-1
    expect "$n" 15 member-join web-2
    quiet
    log "stopping the balancer (SIGINT, pid $LB_PID)"
    stop_pid "$LB_PID"
    wait_handlers
    local before; before=$(ncaps)
    log "web-1 leaves while the balancer is down"
    "$SERF" leave -rpc-addr="$r1" >&2
    wait_exit "$p1" 15
    # Let web-2 notice web-1's leave and the balancer's departure.
    wait_for 10 "web-2 sees web-1 left" web2_sees_left "$r2"
    # Same name, same snapshot file (-rejoin ignores the previous leave),
    # plus an explicit -join to web-2.
    log "restarting the balancer with the same snapshot and -rejoin"
    start_agent "$LB_NAME" "$LB_BIND" "$LB_RPC" "$CAP" \
        -tag role=balancer -event-handler="$HANDLER_CMD" \
        -snapshot="$snap" -rejoin -join="$(ip4 12):7946"
    LB_PID=$LAST_PID
    SCEN_PIDS=("$LB_PID" "${SCEN_PIDS[@]}")
    wait_up "$LB_PID" "$LB_RPC"
    expect "$before" 15 member-join "$LB_NAME"
    expect "$before" 15 member-join web-2
}
web2_sees_left() { "$SERF" members -rpc-addr="$1" -name=web-1 -status=left 2>/dev/null | grep -q .; }

# ------------------------------------------------------------ summary -------

summarize() {
    local f base ev lines bytes names
    for f in "$CAP"/[0-9][0-9][0-9].env; do
        [ -e "$f" ] || continue
        base=${f%.env}
        ev=$(LC_ALL=C grep -z -a '^SERF_EVENT=' "$f" | tr -d '\0'); ev=${ev#SERF_EVENT=}
        lines=$(wc -l <"$base.stdin"); bytes=$(wc -c <"$base.stdin")
        case $ev in
            member-*) names=$(LC_ALL=C cut -f1 "$base.stdin" | LC_ALL=C sort | tr '\n' ' ' | cut -c1-100) ;;
            *) names=$(LC_ALL=C grep -z -a -E '^SERF_(USER_EVENT|QUERY_NAME)=' "$f" | tr '\0' ' ') ;;
        esac
        printf '  %s %-14s lines=%-2s bytes=%-4s %s\n' "${base##*/}" "$ev" "$lines" "$bytes" "$names"
    done
}

# ------------------------------------------------------------------ main ---

run_scenario() {
    SCEN=$1; SCEN_NO=$2
    CAP=$OUTDIR/$SCEN
    SCEN_TMP=$TMPROOT/$SCEN
    mkdir -p -- "$CAP" "$SCEN_TMP"
    # Clear previous captures of this scenario (only files we create).
    rm -f -- "$CAP"/[0-9][0-9][0-9].env "$CAP"/[0-9][0-9][0-9].stdin \
        "$CAP"/.[0-9][0-9][0-9].*.tmp "$CAP/.counter" "$CAP/.lock"
    SCEN_PIDS=()
    local t0; t0=$(now_ms)
    log "=== scenario $SCEN (addresses $NET.$SCEN_NO.*) ==="
    "sc_${SCEN//-/_}"
    quiet
    stop_scenario_agents
    rm -f -- "$CAP/.counter" "$CAP/.lock"
    log "=== $SCEN done in $(( $(now_ms) - t0 )) ms, $(ncaps) invocations ==="
    SUMMARY+="$SCEN ($(( $(now_ms) - t0 )) ms):"$'\n'"$(summarize)"$'\n'
}

SUMMARY=
T_START=$(now_ms)
log "serf: $("$SERF" version | head -1); output: $OUTDIR; temp: $TMPROOT"
no=0
for s in $ALL_SCENARIOS; do
    no=$((no + 1))
    case " $(echo $SCENARIOS) " in *" $s "*) run_scenario "$s" "$no" ;; esac
done
printf '%s' "$SUMMARY"
log "total time: $(( ($(now_ms) - T_START) / 1000 )) s"
if [ ${#WARNINGS[@]} -gt 0 ]; then
    log "${#WARNINGS[@]} warning(s):"
    printf '  %s\n' "${WARNINGS[@]}" >&2
    exit 1
fi
exit 0
