#!/usr/bin/env bash
# compare.sh: run the same MQTT workloads against mosquitto and Sluice, in
# one run, alternating, with the same client (`sluice bench`), and print a
# table. See README.md beside this file for what the numbers mean.
#
# Environment (defaults in brackets):
#   DURATION   publishing time of each traffic workload [10s]
#   DRAIN      how long deliveries may trail the last publish; later is lost [10s]
#   HOLD       how long the idle connections are held [10s]
#   CONNS      idle connections [10000]
#   CONN_RATE  idle connections opened per second, 0 = as fast as possible [2000]
#   PUBS       fan-in publishers [50]
#   SUBS       fan-out subscribers [100]
#   SIZE       payload bytes [200]
#   INFLIGHT   QoS 1 window per publisher [64]
#   FANOUT_QOS QoS of the fan-out workload [0]
#   DURABILITY Sluice's ingest durability: spool (its default: every message
#              is written to its on-disk log) or none [spool]
#   REPEAT     runs per broker and workload; the table shows the median [1]
#   WORKLOADS  which to run, of: fanin0 fanin1 fanout conn [all four]
#   KEEP       directory to keep the raw JSON summaries and broker logs in
#   SLUICE     a prebuilt sluice binary (default: go build ./cmd/sluice)
set -euo pipefail

DURATION=${DURATION:-10s}
HOLD=${HOLD:-10s}
DRAIN=${DRAIN:-10s}
CONNS=${CONNS:-10000}
CONN_RATE=${CONN_RATE:-2000}
PUBS=${PUBS:-50}
SUBS=${SUBS:-100}
SIZE=${SIZE:-200}
INFLIGHT=${INFLIGHT:-64}
FANOUT_QOS=${FANOUT_QOS:-0}
DURABILITY=${DURABILITY:-spool}
REPEAT=${REPEAT:-1}
WORKLOADS=${WORKLOADS:-fanin0 fanin1 fanout conn}

repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-compare.XXXXXX")
pids=()

cleanup() {
	local pid
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if [ -n "${KEEP:-}" ]; then
		mkdir -p "$KEEP" && find "$work" -maxdepth 1 -type f ! -name sluice -exec cp {} "$KEEP"/ \;
		echo "raw results kept in $KEEP" >&2
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "compare: $*" >&2; }

# Idle connections need a file descriptor each, in the brokers and here.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((CONNS + 1024)) ]; then
	log "warning: ulimit -n is $(ulimit -n), below CONNS=$CONNS; connections will fail"
fi

# mosquitto, from the distribution.
mosquitto=$(command -v mosquitto || true)
[ -z "$mosquitto" ] && [ -x /usr/sbin/mosquitto ] && mosquitto=/usr/sbin/mosquitto
if [ -z "$mosquitto" ]; then
	if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
		log "installing mosquitto"
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null
		mosquitto=/usr/sbin/mosquitto
	else
		log "mosquitto not found: apt-get install mosquitto"
		exit 1
	fi
fi

# sluice, built from this checkout.
sluice=${SLUICE:-}
if [ -z "$sluice" ]; then
	log "building sluice"
	(cd "$repo" && go build -o "$work/sluice" ./cmd/sluice)
	sluice=$work/sluice
fi

# free_port prints a loopback port nothing listens on, below the usual
# ephemeral range (32768-60999) so that no outgoing connection holds it.
free_port() {
	local port
	while :; do
		port=$((20000 + RANDOM % 12000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return
		fi
	done
}

# wait_port PORT PID: wait until PORT accepts connections, or PID dies.
wait_port() {
	local i
	for i in $(seq 1 200); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
			return 0
		fi
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# start_broker NAME TAG: start a fresh broker; sets port and pid. A port
# taken in the meantime by someone else is retried with another.
start_broker() {
	local try
	for try in 1 2 3 4 5; do
		start_broker_once "$@" && return 0
		grep -qi "in use" "$work/$2.log" || break
		log "$1: port $port was taken, retrying"
	done
	log "$1 did not start; its log:"
	cat "$work/$2.log" >&2
	exit 1
}

start_broker_once() {
	local name=$1 tag=$2
	port=$(free_port)
	case $name in
	mosquitto)
		# set_tcp_nodelay: Sluice (Go) disables Nagle on every socket; without
		# it mosquitto's small deliveries can wait ~40 ms for delayed ACKs.
		cat >"$work/$tag.conf" <<-EOF
			listener $port 127.0.0.1
			allow_anonymous true
			persistence false
			set_tcp_nodelay true
			log_dest stderr
			log_type error
			log_type warning
		EOF
		"$mosquitto" -c "$work/$tag.conf" >"$work/$tag.log" 2>&1 &
		;;
	sluice)
		# Sluice's defaults, including its durable ingest spool, except the
		# admin listener (off: its fixed port could be taken) and the data
		# directory (a fresh one per run, removed after it).
		cat >"$work/$tag.yaml" <<-EOF
			log:
			  level: warn
			broker:
			  listeners:
			    - name: bench
			      address: 127.0.0.1:$port
			      allow_anonymous: true
			ingest:
			  durability: $DURABILITY
			  data_dir: $work/$tag.data
			admin:
			  address: ""
		EOF
		"$sluice" run -c "$work/$tag.yaml" >"$work/$tag.log" 2>&1 &
		;;
	esac
	pid=$!
	pids+=("$pid")
	if ! wait_port "$port" "$pid"; then
		stop_broker
		return 1
	fi
}

stop_broker() {
	local p keep=()
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	rm -rf "$work"/*.data
	for p in "${pids[@]}"; do
		[ "$p" != "$pid" ] && keep+=("$p")
	done
	pids=("${keep[@]}")
}

# workload_args NAME: the bench arguments of a workload.
workload_args() {
	case $1 in
	fanin0) echo "fanin -pubs $PUBS -subs 1 -filter # -qos 0 -size $SIZE -duration $DURATION -drain $DRAIN" ;;
	fanin1) echo "fanin -pubs $PUBS -subs 1 -filter # -qos 1 -inflight $INFLIGHT -size $SIZE -duration $DURATION -drain $DRAIN" ;;
	fanout) echo "fanout -pubs 1 -subs $SUBS -qos $FANOUT_QOS -inflight $INFLIGHT -size $SIZE -duration $DURATION -drain $DRAIN" ;;
	conn) echo "conn -clients $CONNS -connrate $CONN_RATE -duration $HOLD" ;;
	*)
		log "unknown workload $1 (want fanin0, fanin1, fanout or conn)"
		exit 2
		;;
	esac
}

# jget FILE KEY: the first numeric value of "KEY" in a one-line JSON file.
jget() {
	{ grep -o "\"$2\":[-0-9.e+]*" "$1" 2>/dev/null || true; } | head -n1 | cut -d: -f2
}

# cpu_ticks PID: user + system CPU time of PID, in clock ticks.
cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# run_one BROKER WORKLOAD N: fresh broker, one bench run; keeps the JSON
# summary and the broker's CPU seconds during the run.
run_one() {
	local broker=$1 w=$2 n=$3 tag="$2-$1-$3" args t0 t1
	start_broker "$broker" "$tag"
	args=$(workload_args "$w")
	[ "$w" = conn ] && args="$args -pid $pid"
	log "$w on $broker (run $n): sluice bench $args"
	t0=$(cpu_ticks "$pid")
	# shellcheck disable=SC2086 # word splitting of args is intended
	if ! "$sluice" bench $args -port "$port" -json >"$work/$tag.json"; then
		log "bench failed against $broker"
		: >"$work/$tag.json"
	fi
	t1=$(cpu_ticks "$pid")
	awk -v a="$t0" -v b="$t1" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "{\"cpu_s\":%.2f}\n", (b - a) / hz }' >"$work/$tag.cpu"
	stop_broker
}

# median of the numbers on stdin.
median() {
	sort -g | awk '{v[NR]=$1} END {if (NR==0) print ""; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'
}

# metric BROKER WORKLOAD KEY: median over the repeats.
metric() {
	local n f v
	for n in $(seq 1 "$REPEAT"); do
		f="$work/$2-$1-$n.json"
		[ "$3" = cpu_s ] && f="$work/$2-$1-$n.cpu"
		v=$(jget "$f" "$3")
		[ -n "$v" ] && echo "$v"
	done | median
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# Run: per workload and repeat, both brokers back to back, the order
# swapped every time so neither always runs on a warmer machine.
flip=0
for w in $WORKLOADS; do
	workload_args "$w" >/dev/null
	for n in $(seq 1 "$REPEAT"); do
		if [ $flip -eq 0 ]; then order="mosquitto sluice"; else order="sluice mosquitto"; fi
		flip=$((1 - flip))
		for b in $order; do
			run_one "$b" "$w" "$n"
		done
	done
done

# Table.
fmt_num() {
	awk -v v="$1" 'BEGIN {
		if (v == "") { print "-"; exit }
		if (v < 100) { printf "%.2f\n", v; exit }
		s = sprintf("%.0f", v); out = ""
		while (length(s) > 3) { out = "," substr(s, length(s) - 2) out; s = substr(s, 1, length(s) - 3) }
		print s out
	}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || a == 0) print "-"; else printf "%.2fx\n", b / a }'; }
loss() {
	local lost exp
	lost=$(metric "$1" "$2" lost)
	exp=$(metric "$1" "$2" expected)
	awk -v l="$lost" -v e="$exp" 'BEGIN { if (e == "" || e == 0) print "-"; else printf "%.1f%%\n", 100 * l / e }'
}
row() { printf '%-28s %-26s %12s %12s %7s  %s\n' "$@"; }
# line WORKLOAD-TITLE WORKLOAD METRIC-TITLE KEY [LOSS]
line() {
	local m s l=""
	m=$(metric mosquitto "$2" "$4")
	s=$(metric sluice "$2" "$4")
	[ -n "${5:-}" ] && l="$(loss mosquitto "$2") / $(loss sluice "$2")"
	row "$1" "$3" "$(fmt_num "$m")" "$(fmt_num "$s")" "$(ratio "$m" "$s")" "$l"
}

title() {
	case $1 in
	fanin0) echo "QoS 0 fan-in $PUBS->1, $SIZE B" ;;
	fanin1) echo "QoS 1 fan-in $PUBS->1, win $INFLIGHT" ;;
	fanout) echo "QoS $FANOUT_QOS fan-out 1->$SUBS, $SIZE B" ;;
	conn) echo "$CONNS idle connections" ;;
	esac
}

echo
echo "mosquitto $("$mosquitto" -h 2>/dev/null | head -n1 | awk '{print $3}') vs Sluice $("$sluice" version 2>/dev/null | head -n1 | awk '{print $2}'), client sluice bench, $(nproc) cores, $(date -u +%Y-%m-%d)"
echo "traffic $DURATION per run, hold $HOLD, $REPEAT run(s) per broker (median); ratio = sluice / mosquitto"
echo "Sluice ingest durability: $DURABILITY; mosquitto: no persistence"
echo "load average before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg) (other load skews every number)"
echo
row "workload" "metric" "mosquitto" "sluice" "ratio" "lost (mosquitto / sluice)"
for w in $WORKLOADS; do
	t=$(title "$w")
	if [ "$w" = conn ]; then
		line "$t" conn "RSS KiB per connection" rss_per_conn_kb
		line "" conn "connections/s" rate
		line "" conn "connect p99 ms" p99
		line "" conn "broker CPU s" cpu_s
		continue
	fi
	line "$t" "$w" "delivered msg/s" recv_rate loss
	line "" "$w" "published msg/s" sent_rate
	line "" "$w" "latency p50 ms" p50
	line "" "$w" "latency p99 ms" p99
	line "" "$w" "broker CPU s" cpu_s
done
notes=0
for f in "$work"/*.json; do
	e=$(jget "$f" errors)
	if [ ! -s "$f" ]; then
		e="no summary (bench failed)"
	elif [ -z "$e" ] || [ "$e" = 0 ]; then
		continue
	fi
	[ $notes -eq 0 ] && echo && echo "errors (the numbers of these runs are suspect):"
	notes=$((notes + 1))
	first=$(grep -o '"error_samples":\["[^"]*' "$f" | cut -d'"' -f4 | head -c 160)
	echo "  $(basename "$f" .json): $e${first:+, e.g. $first}"
done
