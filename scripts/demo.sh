#!/usr/bin/env bash
# demo.sh - serf-hb in the deployment it is made for, live, on this machine.
#
#   scripts/demo.sh [--backends N] [--keep] [--method master-worker|lab]
#   HAPROXY_BIN=$(scripts/haproxy3.sh) scripts/demo.sh   # on HAProxy 3.0
#
# One command on a Debian machine with Go: installs serf, haproxy and s6
# when they are missing (apt-get update; apt-get install -y), builds
# serf-hb, and starts, on loopback addresses 127.0.5.x only:
#
#   - s6-svscan on a scan directory of its own, supervising
#       haproxy  frontend 127.0.5.1:8080, stats page 127.0.5.1:8404
#       serf     the balancer's agent (node lb, role=balancer), with
#                serf-hb as its event handler: membership changes applied
#                live through HAProxy's runtime API (--haproxy-socket: no
#                reload, result=applied), check 'haproxy -c -f {}', reload
#                's6-svc -2 <scan>/haproxy' when one is needed, verified on
#                the master CLI (HAProxy in master-worker mode; --method lab
#                uses the lab's run script and s6-svc -h, unverified),
#                --reconcile (each event also syncs with the agent's list)
#   (the run scripts and the HAProxy template are scripts/e2e/services/*
#   and scripts/e2e/haproxy.cfg.tmpl, shared with the end-to-end test);
#   - N backends (default 3): web1..webN, each a tiny HTTP server on
#     127.0.5.1X:3000 answering its own name, plus a serf agent with
#     role=backend on the same address;
#
# then walks through the lab's story: the backends join, one leaves
# gracefully, one is killed (kill -9), a new one joins, a role change takes
# one out. After each step it shows serf members, the registry, the server
# lines of the rendered haproxy.cfg, HAProxy's view of its servers and which
# backends answer through the frontend.
#
# At the end, or on Ctrl-C, it stops every process it started (by PID) and
# removes its temporary directory. With --keep it leaves everything running
# for exploration and prints how to look around and how to stop it.
# Nothing outside its temporary directory is touched (apart from apt-get
# installing missing packages).
#
# Serf coalesces member events (1 s of quiet, 3 s at most) and needs a few
# seconds (5 to 25) to declare a killed node failed: every wait below polls a
# condition, bounded in time.

set -uo pipefail

NET=127.0.5
LB_IP=$NET.1
FRONT_PORT=8080
STATS_PORT=8404
SERF_PORT=7946
RPC_PORT=7373
HTTP_PORT=3000

BACKENDS=3
KEEP=0
METHOD=master-worker

usage() { sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case $1 in
    --backends) BACKENDS=${2-}; shift 2 || { usage >&2; exit 2; } ;;
    --backends=*) BACKENDS=${1#*=}; shift ;;
    --keep) KEEP=1; shift ;;
    --method) METHOD=${2-}; shift 2 || { usage >&2; exit 2; } ;;
    --method=*) METHOD=${1#*=}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "demo.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
done
case $BACKENDS in '' | *[!0-9]*) echo "demo.sh: --backends takes a number from 2 to 8" >&2; exit 2 ;; esac
if [ "$BACKENDS" -lt 2 ] || [ "$BACKENDS" -gt 8 ]; then
    echo "demo.sh: --backends takes a number from 2 to 8" >&2
    exit 2
fi
case $METHOD in
master-worker) HA_SERVICE=haproxy-master-worker RELOAD_OPT=-2 VERIFY=1 ;;
lab) HA_SERVICE=haproxy-lab RELOAD_OPT=-h VERIFY=0 ;;
*) echo "demo.sh: --method is master-worker or lab" >&2; exit 2 ;;
esac

REPO=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
E2E=$REPO/scripts/e2e
T0=$EPOCHREALTIME

# ------------------------------------------------------------- output ---

if [ -t 1 ]; then B=$'\e[1m' D=$'\e[2m' G=$'\e[32m' R=$'\e[31m' N=$'\e[0m'; else B= D= G= R= N=; fi
elapsed() { awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%6.1fs", b - a }'; }
say() { printf '%s %s\n' "${D}$(elapsed)${N}" "$*"; }
step() { printf '\n%s %s\n' "${D}$(elapsed)${N}" "${B}== $*${N}"; }
die() { printf '%sdemo.sh: %s%s\n' "$R" "$*" "$N" >&2; exit 1; }

# --------------------------------------------------------- dependencies ---

need=()
command -v serf >/dev/null 2>&1 || need+=(serf)
[ -n "${HAPROXY_BIN:-}" ] || command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
command -v s6-svscan >/dev/null 2>&1 || need+=(s6)
if [ ${#need[@]} -gt 0 ]; then
    sudo=
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "missing ${need[*]}; hint: run as root, or apt-get install -y ${need[*]}"
        sudo=sudo
    fi
    say "installing ${need[*]}: apt-get update; apt-get install -y ${need[*]}"
    $sudo apt-get update -qq || die "apt-get update failed"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null ||
        die "apt-get install ${need[*]} failed"
fi
command -v go >/dev/null 2>&1 || die "go not found; hint: serf-hb is built from source here, install Go first"

# Refuse to start on top of another demo (or anything else) on our ports.
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
for p in "$LB_IP:$FRONT_PORT" "$LB_IP:$STATS_PORT" "$LB_IP:$RPC_PORT"; do
    port_open "${p%:*}" "${p#*:}" && die "$p is already in use (another demo running? it prints how to stop it)"
done

# ------------------------------------------------------------- layout ---

RUN=$(mktemp -d "${TMPDIR:-/tmp}/serf-hb-demo.XXXXXX") || die "mktemp failed"
SCAN=$RUN/scan
CFG=$RUN/haproxy/haproxy.cfg
TMPL=$RUN/haproxy/haproxy.cfg.tmpl
NODES=$RUN/nodes
LOGS=$RUN/logs
HBCONF=$RUN/serf-hb.json
SERFHB=$RUN/bin/serf-hb
LB_RPC=$LB_IP:$RPC_PORT
mkdir -p "$RUN"/{bin,haproxy,nodes,logs,backends} "$SCAN"/{haproxy,serf}

# HAPROXY_BIN (e.g. $(scripts/haproxy3.sh), HAProxy 3.0) instead of haproxy
# from $PATH: linked as $RUN/bin/haproxy, first on the $PATH everything the
# demo starts inherits (the s6 run script and the check run it by name).
if [ -n "${HAPROXY_BIN:-}" ]; then
    hb=$(command -v "$HAPROXY_BIN") || die "HAPROXY_BIN=$HAPROXY_BIN not found; hint: unset it to use haproxy from \$PATH"
    ln -s "$(readlink -f "$hb")" "$RUN/bin/haproxy" || die "ln -s $hb failed"
    export PATH=$RUN/bin:$PATH
fi

declare -A HTTP_PID AGENT_PID IP # per backend name
SVSCAN_PID=

# Every process this script starts gets DEMO_RUN_DIR=$RUN in its
# environment (s6 passes it on to HAProxy and serf, serf to serf-hb), so
# that it can be found again by PID, and nothing else can be mistaken for
# it (a PID recorded earlier may have been reused since).
MARK=(env "DEMO_RUN_DIR=$RUN")
is_ours() {
    { tr '\0' '\n' <"/proc/$1/environ"; } 2>/dev/null | grep -qxF -- "DEMO_RUN_DIR=$RUN"
}

# leftovers prints the PIDs of every process marked as ours.
leftovers() {
    local d
    for d in /proc/[0-9]*; do
        ! is_ours "${d#/proc/}" || echo "${d#/proc/}"
    done
}

# stop_all stops everything this script started, by PID: the backends,
# s6-svscan with its services, then anything still running from $RUN
# (HAProxy processes the lab's run script may have orphaned).
stop_all() {
    local pid i left
    for pid in "${AGENT_PID[@]}" "${HTTP_PID[@]}"; do
        is_ours "$pid" && kill -KILL "$pid" 2>/dev/null
    done
    if [ -n "$SVSCAN_PID" ]; then
        s6-svscanctl -t "$SCAN" 2>/dev/null
        for ((i = 0; i < 50; i++)); do is_ours "$SVSCAN_PID" || break; sleep 0.1; done
    fi
    for ((i = 0; i < 30; i++)); do
        left=$(leftovers)
        [ -z "$left" ] && break
        # shellcheck disable=SC2086 # a list of PIDs
        kill -KILL $left 2>/dev/null
        sleep 0.1
    done
    rm -rf -- "$RUN"
}

on_exit() {
    local rc=$?
    trap - EXIT INT TERM
    if [ "$KEEP" = 1 ] && [ "$rc" = 0 ]; then return; fi
    say "stopping everything (by PID) and removing $RUN"
    stop_all
    exit "$rc"
}
trap on_exit EXIT
trap 'echo; say "interrupted"; exit 130' INT TERM

# since START: seconds elapsed since START (an $EPOCHREALTIME value).
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# wait_until TIMEOUT_S DESCRIPTION COMMAND...: poll COMMAND every 0.2 s,
# for at most TIMEOUT_S seconds (and as many tries).
wait_until() {
    local timeout=$1 what=$2 i start=$EPOCHREALTIME
    shift 2
    for ((i = 0; i < timeout * 5 + 1; i++)); do
        if "$@"; then
            say "ok: $what ($(since "$start") s)"
            return 0
        fi
        awk -v e="$(since "$start")" -v t="$timeout" 'BEGIN { exit !(e >= t) }' && break
        sleep 0.2
    done
    say "${R}gave up after ${timeout}s: $what${N}"
    show_logs
    return 1
}

show_logs() {
    local f
    for f in "$LOGS"/*.log; do
        [ -s "$f" ] || continue
        printf '%s----- %s (last lines)%s\n' "$D" "${f##*/}" "$N"
        grep -v 'agent.ipc' "$f" | tail -n 8
    done
}

# ------------------------------------------------------------ HTTP ---

# http_get HOST PORT PATH: one request on a new connection; sets STATUS
# (000 when the connection failed) and BODY. Plain bash (/dev/tcp), so the
# demo needs no curl.
http_get() {
    local fd line inbody=0
    STATUS=000 BODY=
    exec {fd}<>"/dev/tcp/$1/$2" 2>/dev/null || return 1
    printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$3" "$1" >&"$fd"
    if IFS= read -r -t 3 -u "$fd" line; then
        line=${line%$'\r'}
        STATUS=${line#* }
        STATUS=${STATUS%% *}
        while IFS= read -r -t 3 -u "$fd" line || [ -n "$line" ]; do
            line=${line%$'\r'}
            if [ "$inbody" = 1 ]; then BODY+=$line$'\n'; elif [ -z "$line" ]; then inbody=1; fi
            line=
        done
    fi
    exec {fd}>&-
    [ "$STATUS" != 000 ]
}

# frontend_answers N: which backends answer N requests through the
# frontend (a new connection each): "web1 x3, web2 x3".
frontend_answers() {
    local i
    for ((i = 0; i < $1; i++)); do
        if ! http_get "$LB_IP" "$FRONT_PORT" /; then
            echo "(failed)"
        elif [ "$STATUS" = 200 ]; then
            echo "${BODY%$'\n'}"
        else
            echo "(HTTP $STATUS)"
        fi
    done | sort | uniq -c | awk '{ printf "%s%s x%d", sep, $2 ($3 ? " " $3 : ""), $1; sep = ", " } END { print "" }'
}

# answering_set: the sorted, comma-separated set of backends answering.
answering_set() {
    frontend_answers $((3 * BACKENDS + 3)) | tr ',' '\n' | awk '{ print $1 }' | grep -v '^(' | sort | paste -sd, -
}

# config_set: the servers in the rendered haproxy.cfg.
config_set() { awk '$1 == "server" { print $2 }' "$CFG" | sort | paste -sd, -; }

# routed_is SET: config, HAProxy and the frontend all agree on SET.
routed_is() { [ "$(config_set)" = "$1" ] && [ "$(answering_set)" = "$1" ]; }

# haproxy_view: HAProxy's own status of each server (stats page, CSV).
haproxy_view() {
    http_get "$LB_IP" "$STATS_PORT" '/;csv' || { echo "(stats page unreachable)"; return; }
    printf '%s' "$BODY" |
        awk -F, '$1 == "nodes" && $2 != "BACKEND" { printf "%s%s %s", sep, $2, $18; sep = ", " }
                 END { print (sep ? "" : "(no servers)") }'
}

member_status() {
    serf members -rpc-addr "$LB_RPC" -name "$1" 2>/dev/null | awk '{ print $3 }'
}
member_is() { [ "$(member_status "$1")" = "$2" ]; }

# show: everything a reader wants to see after a step.
show() {
    printf '%s\n' "${B}serf members${N} (serf members -rpc-addr $LB_RPC)"
    serf members -rpc-addr "$LB_RPC" | sed 's/^/    /'
    printf '%s\n' "${B}registry${N} (serf-hb nodes)"
    "$SERFHB" --config "$HBCONF" nodes | sed 's/^/    /'
    printf '%s\n' "${B}rendered haproxy.cfg${N} (server lines)"
    grep '^ *server ' "$CFG" | sed 's/^ */    /' || echo "    (none)"
    printf '%s %s\n' "${B}HAProxy's view${N} (stats CSV):" "$(haproxy_view)"
    printf '%s %s\n' "${B}frontend${N} http://$LB_IP:$FRONT_PORT/ answered by:" "$(frontend_answers $((3 * BACKENDS)))"
    printf '%s\n' "${B}serf-hb's last run${N}"
    tail -n 1 "$LOGS/serf-hb.log" 2>/dev/null | sed 's/^/    /'
}

# ------------------------------------------------------------ backends ---

start_backend() { # NAME HOST_NUMBER
    local name=$1 ip=$NET.$2 dir=$RUN/backends/$1
    mkdir -p "$dir"
    IP[$name]=$ip
    # Own session: a Ctrl-C in the terminal reaches this script only,
    # which then stops everything in order.
    (cd "$dir" && exec "${MARK[@]}" setsid "$RUN/bin/backend" -name "$name" -listen "$ip:$HTTP_PORT") >>"$LOGS/$name.http.log" 2>&1 &
    HTTP_PID[$name]=$!
    disown "$!" # no "Killed" job reports: this script stops them itself
    wait_until 10 "$name's HTTP server listens on $ip:$HTTP_PORT" port_open "$ip" "$HTTP_PORT" || exit 1
    (cd "$dir" && exec "${MARK[@]}" setsid serf agent -node "$name" -bind "$ip:$SERF_PORT" -rpc-addr "$ip:$RPC_PORT" \
        -tag role=backend -join "$LB_IP:$SERF_PORT") >>"$LOGS/$name.serf.log" 2>&1 &
    AGENT_PID[$name]=$!
    disown "$!"
    say "started $name: HTTP server pid ${HTTP_PID[$name]}, serf agent pid ${AGENT_PID[$name]} on $ip"
}

# ------------------------------------------------------------- build ---

step "build serf-hb and the demo backend"
(cd "$REPO" && CGO_ENABLED=0 go build -o "$SERFHB" . && go build -o "$RUN/bin/backend" ./scripts/e2e/backend) ||
    die "go build failed"
say "built into $RUN/bin"

# ------------------------------------------------------ the balancer ---

step "start s6-svscan: HAProxy ($METHOD) and the balancer's serf agent"
sed -e "s|@FRONTEND@|$LB_IP:$FRONT_PORT|" -e "s|@STATS@|$LB_IP:$STATS_PORT|" \
    -e "s|@ADMIN_SOCK@|$RUN/haproxy/admin.sock|" "$E2E/haproxy.cfg.tmpl" >"$TMPL"
# Membership changes go live through HAProxy's runtime API (no reload);
# reloads (template changes) are verified on the master CLI, which only
# master-worker mode has.
MASTER_OPT=""
if [ "$VERIFY" = 1 ]; then
    MASTER_OPT=$'\n  "haproxy-master-socket": "'"$RUN/haproxy/master.sock"'",'
fi
cat >"$HBCONF" <<EOF
{
  "nodes-dir": "$NODES",
  "template": "$TMPL",
  "output": "$CFG",
  "check": "haproxy -c -f {}",
  "reload": "s6-svc $RELOAD_OPT $SCAN/haproxy",
  "haproxy-socket": "$RUN/haproxy/admin.sock",$MASTER_OPT
  "log-file": "$LOGS/serf-hb.log",
  "role": "backend",
  "rpc-addr": "$LB_RPC",
  "reconcile": true
}
EOF
# HAProxy needs a config before it starts: render the empty registry.
"$SERFHB" --config "$HBCONF" --reload '' --haproxy-master-socket '' render 2>/dev/null || die "initial render failed"

cp "$E2E/services/$HA_SERVICE/"* "$SCAN/haproxy/"
cat >"$SCAN/haproxy/conf" <<EOF
CFG='$CFG'
MASTER_SOCK='$RUN/haproxy/master.sock'
PIDFILE='$RUN/haproxy/haproxy.pid'
PIDLOG='$RUN/haproxy/haproxy.pids'
LOG='$LOGS/haproxy.log'
EOF
cp "$E2E/services/serf-balancer/"* "$SCAN/serf/"
cat >"$SCAN/serf/conf" <<EOF
NODE=lb
BIND='$LB_IP:$SERF_PORT'
RPC='$LB_RPC'
SNAPSHOT='$RUN/serf.snapshot'
HANDLER="'$SERFHB' --config '$HBCONF'"
LOG='$LOGS/serf-balancer.log'
EOF
chmod +x "$SCAN"/*/run
say "serf-hb config $HBCONF:"
sed 's/^/    /' "$HBCONF"

# --default-signal: a run script that inherits an ignored signal would
# ignore s6-svc's too.
setsid env --default-signal "DEMO_RUN_DIR=$RUN" s6-svscan "$SCAN" >>"$LOGS/svscan.log" 2>&1 &
SVSCAN_PID=$!
disown "$!"
say "s6-svscan pid $SVSCAN_PID on $SCAN; haproxy is $(command -v haproxy): $(haproxy -v 2>&1 | head -n 1)"
wait_until 15 "HAProxy listens on $LB_IP:$FRONT_PORT" port_open "$LB_IP" "$FRONT_PORT" || exit 1
serf_up() { serf members -rpc-addr "$LB_RPC" >/dev/null 2>&1; }
wait_until 15 "the balancer's serf agent answers on $LB_RPC" serf_up || exit 1
show

# -------------------------------------------------------------- story ---

names=()
for ((i = 1; i <= BACKENDS; i++)); do names+=("web$i"); done
# rest: the backends that should be in rotation; set_of prints them the
# way config_set and answering_set do.
rest=("${names[@]}")
set_of() { [ ${#rest[@]} -gt 0 ] && printf '%s\n' "${rest[@]}" | sort | paste -sd, -; }
drop() {
    local x keep=()
    for x in "${rest[@]}"; do [ "$x" = "$1" ] || keep+=("$x"); done
    rest=("${keep[@]}")
}

step "$BACKENDS backends join"
for ((i = 1; i <= BACKENDS; i++)); do start_backend "web$i" $((10 + i)); done
wait_until 30 "the frontend answers from $(set_of)" routed_is "$(set_of)" || exit 1
show

step "web1 leaves gracefully (SIGINT to its serf agent)"
kill -INT "${AGENT_PID[web1]}"
drop web1
wait_until 20 "web1 is out of haproxy.cfg and gets no traffic" routed_is "$(set_of)" || exit 1
kill -TERM "${HTTP_PID[web1]}"
say "web1's HTTP server stopped once it was drained"
show

step "web2 is killed: kill -9 of its serf agent and HTTP server"
kill -KILL "${AGENT_PID[web2]}" "${HTTP_PID[web2]}"
drop web2
say "HAProxy's health check stops sending it traffic within ~2 s; Serf declares it failed within 5-25 s"
wait_until 60 "serf reports web2 failed" member_is web2 failed || exit 1
wait_until 20 "web2 is out of haproxy.cfg" routed_is "$(set_of)" || exit 1
show

new=web$((BACKENDS + 1))
step "a new backend, $new, joins"
start_backend "$new" $((10 + BACKENDS + 1))
rest+=("$new")
wait_until 30 "the frontend answers from $new too" routed_is "$(set_of)" || exit 1
show

step "web3 changes role: serf tags -set role=maintenance takes it out"
serf tags -rpc-addr "${IP[web3]}:$RPC_PORT" -set role=maintenance >/dev/null || die "serf tags failed"
drop web3
wait_until 20 "web3 is out of rotation" routed_is "$(set_of)" || exit 1
show

if [ "$KEEP" = 1 ]; then
    {
        echo "#!/usr/bin/env bash"
        echo "# Stops the demo running from $RUN, then removes that directory."
        echo "# Every process whose environment holds DEMO_RUN_DIR=$RUN is stopped by PID."
        printf 'RUN=%q SCAN=%q SVSCAN_PID=%q\n' "$RUN" "$SCAN" "$SVSCAN_PID"
        echo "AGENT_PID=() HTTP_PID=()"
        declare -f is_ours leftovers stop_all
        echo 'stop_all && echo "demo stopped"'
    } >"$RUN/stop.sh"
    step "left running (--keep)"
    cat <<EOF
Look around:
    export SERF_RPC_ADDR=$LB_RPC
    serf members
    $SERFHB --config $HBCONF nodes
    cat $CFG
    tail -f $LOGS/serf-hb.log
    stats page: http://$LB_IP:$STATS_PORT/   frontend: http://$LB_IP:$FRONT_PORT/
    serf tags -rpc-addr ${IP[web3]}:$RPC_PORT -set role=backend     # put web3 back
Stop it:
    bash $RUN/stop.sh
EOF
    exit 0
fi
step "done"
