#!/usr/bin/env bash
# Benchmark: the cost of the cluster. Two pergolad nodes (a, b) on 127.0.0.1 with fresh
# CURVE keys; measures, in the same run:
#   1. the round trip of a small remote op: global.stats of a 16x16 constant computed on b
#      for a client of a, against the same graph run locally on a, and against a bare
#      libzmq CURVE round trip (pergola-bench-zmq-bare rtt);
#   2. tile transfer throughput between the nodes: a 4096x4096 f32 raster made on b and
#      answered to a client of a (64 MiB through the cluster), against the same raster made
#      on a, and against a bare libzmq CURVE stream (pergola-bench-zmq-bare stream).
# and prints the ratios. See tests/bench/README.md ("Cluster").
#
#   tests/bench/cluster.sh [BUILD_DIR]        (BUILD_DIR defaults to build)
#
# Knobs: BENCH_RTT_N (round trips, default 200), BENCH_RASTER (side of the raster, default
# 4096), BENCH_REPS (raster repetitions, best of; default 5), BENCH_WORKERS (per node,
# default 1: two nodes share this machine).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RTT_N=${BENCH_RTT_N:-200}
SIDE=${BENCH_RASTER:-4096}
REPS=${BENCH_REPS:-5}
WORKERS=${BENCH_WORKERS:-1}
die() {
    echo "bench: $*" >&2
    exit 2
}
for v in RTT_N SIDE REPS WORKERS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer"
done
BUILD_DIR=${1:-$ROOT/build}
[[ -d $BUILD_DIR ]] || die "no build directory '$BUILD_DIR'"
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)
ninja -C "$BUILD_DIR" pergolad pergola tests/bench/pergola-bench-zmq-bare > /dev/null ||
    die "cannot build in $BUILD_DIR"
PERGOLAD=$BUILD_DIR/pergolad
PERGOLA=$BUILD_DIR/pergola
BARE=$BUILD_DIR/tests/bench/pergola-bench-zmq-bare
PY=/usr/bin/python3

WORK=$(mktemp -d /tmp/pergola-bench-cluster-XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2> /dev/null || true; done
    wait 2> /dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Keys and one config for both nodes.
mkdir -p "$WORK/keys" "$WORK/data"
"$PERGOLA" keygen "$WORK/keys/a" > /dev/null
"$PERGOLA" keygen "$WORK/keys/b" > /dev/null
PA=$(free_port)
PB=$(free_port)
cat > "$WORK/cluster.json" << EOF
{"data_root": "$WORK/data", "cache_mb": 0,
 "cluster": {"nodes": [
   {"name": "a", "endpoint": "tcp://127.0.0.1:$PA", "public_key": "$(cat "$WORK/keys/a.public")"},
   {"name": "b", "endpoint": "tcp://127.0.0.1:$PB", "public_key": "$(cat "$WORK/keys/b.public")"}],
  "secret_key_file": "keys/{node}.secret"}}
EOF
for n in a b; do
    "$PERGOLAD" --config "$WORK/cluster.json" --node "$n" --listen 127.0.0.1:0 \
        --workers "$WORKERS" --ready-file "$WORK/$n.ready" 2> "$WORK/$n.log" &
    PIDS+=($!)
done
addr() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["listen"][0])' "$1"; }
for i in $(seq 200); do
    [[ -s $WORK/a.ready && -s $WORK/b.ready ]] && break
    sleep 0.05
done
[[ -s $WORK/a.ready && -s $WORK/b.ready ]] || die "the nodes did not start (logs in $WORK)"
A=$(addr "$WORK/a.ready")
for i in $(seq 200); do
    "$PERGOLA" -C "$A" status --json | grep -q '"state": *"up"' && break
    sleep 0.05
done
"$PERGOLA" -C "$A" status --json | grep -q '"state": *"up"' || die "b never came up for a"

# A client on one connection: runs a graph N times, prints the best and median seconds and
# the answer's raster bytes. Exits 3 (with the error) if the daemon answers an error.
cat > "$WORK/client.py" << 'EOF'
import json, socket, statistics, sys, time
host, port = sys.argv[1].rsplit(":", 1)
graph = json.loads(sys.argv[2])
n = int(sys.argv[3])
s = socket.create_connection((host, int(port)))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
f = s.makefile("rb")
times, nbytes = [], 0
for i in range(n):
    t0 = time.perf_counter()
    s.sendall((json.dumps({"id": i, "type": "run", "graph": graph, "progress": False}) + "\n").encode())
    while True:
        ev = json.loads(f.readline())
        if ev["event"] == "error":
            print("error", json.dumps(ev["error"]))
            sys.exit(3)
        if ev["event"] == "result":
            nbytes = ev.get("bytes", 0)
            left = nbytes
            while left:
                left -= len(f.read(min(left, 1 << 20)))
            break
    times.append(time.perf_counter() - t0)
print("%.6f %.6f %d" % (min(times), statistics.median(times), nbytes))
EOF

small() { # $1: "remote" member or ""
    echo "{\"nodes\":{\"s\":{\"op\":\"global.stats\"$1,\"args\":[{\"op\":\"raster.constant\",\"width\":16,\"height\":16,\"value\":1,\"type\":\"f32\"}]}},\"result\":\"s\"}"
}
big() {
    echo "{\"nodes\":{\"c\":{\"op\":\"raster.constant\"$1,\"width\":$SIDE,\"height\":$SIDE,\"value\":1,\"type\":\"f32\"}},\"result\":\"c\"}"
}

B=$(addr "$WORK/b.ready")
# Jobs b completed: a remote op must show up there (a build without remote execution
# would run the graph on a and ignore "remote").
b_completed() {
    "$PERGOLA" -C "$B" status --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["jobs"]["completed"])'
}

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $WORKERS worker(s) per node"
read -r BARE_LINE < <("$BARE" rtt "$RTT_N" 64)
BARE_RTT_US=$(sed -E 's/.*rtt_median_us ([0-9.]+).*/\1/' <<< "$BARE_LINE")
echo "bare libzmq CURVE round trip (64 B): median $BARE_RTT_US us   [$BARE_LINE]"
read -r L_BEST L_MED _ < <("$PY" "$WORK/client.py" "$A" "$(small '')" "$RTT_N")
echo "small op on a (local):  best $(awk "BEGIN{printf \"%.1f\", $L_BEST*1e6}") us, median $(awk "BEGIN{printf \"%.1f\", $L_MED*1e6}") us"
B0=$(b_completed)
if ! OUT=$("$PY" "$WORK/client.py" "$A" "$(small ',"remote":"b"')" "$RTT_N"); then
    echo "small op with \"remote\":\"b\": $OUT"
    echo "remote ops are not available in this build: the remote figures need them"
    REMOTE=0
elif (( $(b_completed) - B0 < RTT_N )); then
    echo "small op with \"remote\":\"b\": answered, but b ran $(( $(b_completed) - B0 )) of $RTT_N:"
    echo "remote ops are not available in this build (\"remote\" is ignored): no remote figures"
    REMOTE=0
else
    REMOTE=1
    read -r R_BEST R_MED _ <<< "$OUT"
    echo "small op on b via a:    best $(awk "BEGIN{printf \"%.1f\", $R_BEST*1e6}") us, median $(awk "BEGIN{printf \"%.1f\", $R_MED*1e6}") us"
    awk "BEGIN{printf \"  remote - local: %.1f us median = %.2f x the bare round trip\n\", ($R_MED-$L_MED)*1e6, ($R_MED-$L_MED)*1e6/$BARE_RTT_US}"
fi

MIB=$(( SIDE * SIDE * 4 / 1048576 ))
FRAME=$(( MIB > 0 ? MIB : 1 ))
read -r BARE_LINE < <("$BARE" stream $(( FRAME * REPS )) "$FRAME")
BARE_MIBS=$(sed -E 's/.*stream_mib_s ([0-9.]+).*/\1/' <<< "$BARE_LINE")
echo "bare libzmq CURVE stream ($FRAME MiB frames): $BARE_MIBS MiB/s   [$BARE_LINE]"
read -r L_BEST _ L_BYTES < <("$PY" "$WORK/client.py" "$A" "$(big '')" "$REPS")
echo "${SIDE}x$SIDE f32 raster made on a: best $L_BEST s ($L_BYTES bytes to the client)"
if [[ $REMOTE == 1 ]] && OUT=$("$PY" "$WORK/client.py" "$A" "$(big ',"remote":"b"')" "$REPS"); then
    read -r R_BEST _ R_BYTES <<< "$OUT"
    echo "${SIDE}x$SIDE f32 raster made on b via a: best $R_BEST s ($R_BYTES bytes)"
    awk "BEGIN{d=$R_BEST-$L_BEST; if (d<=0) d=1e-9; r=$R_BYTES/1048576/d;
         printf \"  transfer b -> a: %.1f MiB/s (extra time over local %.3f s) = %.2f x the bare stream\n\", r, d, r/$BARE_MIBS}"
else
    [[ $REMOTE == 1 ]] && echo "raster with \"remote\":\"b\": $OUT"
fi
