#!/usr/bin/env bash
# Benchmark: sum of four float32 rasters, Pergola vs gdal_calc.py vs a GDAL C loop.
#
#   tests/bench/run.sh [BUILD_DIR]        (BUILD_DIR defaults to build)
#
# Knobs (environment): BENCH_SIZE (default 8192: four 8192x8192 inputs), BENCH_WORKERS
# (pergolad --workers, default: number of cores), BENCH_REPS (default 3: best-of-3),
# BENCH_TIMEOUT (seconds allowed to any one command, default 600).
# See tests/bench/README.md for what it prints.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SIZE=${BENCH_SIZE:-8192}
WORKERS=${BENCH_WORKERS:-$(nproc)}
REPS=${BENCH_REPS:-3}
TIMEOUT=${BENCH_TIMEOUT:-600}

die() {
    echo "bench: $*" >&2
    exit 2
}

[[ $SIZE =~ ^[1-9][0-9]*$ ]] || die "BENCH_SIZE must be a positive integer (got '$SIZE')"
[[ $WORKERS =~ ^[1-9][0-9]*$ ]] || die "BENCH_WORKERS must be a positive integer"
[[ $REPS =~ ^[1-9][0-9]*$ ]] || die "BENCH_REPS must be a positive integer"
[[ $TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "BENCH_TIMEOUT must be a positive integer"
BUILD_DIR=${1:-$ROOT/build}
[[ -d $BUILD_DIR ]] || die "no build directory '$BUILD_DIR' (meson setup $BUILD_DIR && ninja -C $BUILD_DIR)"
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)

MKRASTER=$BUILD_DIR/pergola-mkraster
LOOP=$BUILD_DIR/tests/bench/pergola-bench-gdal-loop
COMPARE=$BUILD_DIR/tests/bench/pergola-bench-compare
PERGOLAD=$BUILD_DIR/pergolad
PERGOLA=$BUILD_DIR/pergola
PYTHON=/usr/bin/python3 # Debian's, which has GDAL's bindings (a pyenv python3 may not)
GDAL_CALC=/usr/bin/gdal_calc.py

# Build only the helpers this script needs, and only when missing: the build directory
# may be someone else's, and a concurrent ninja in it is not safe.
missing=()
for t in "$MKRASTER" "$LOOP" "$COMPARE"; do
    [[ -x $t ]] || missing+=("${t#"$BUILD_DIR"/}")
done
if ((${#missing[@]})); then
    echo "bench: building ${missing[*]}"
    ninja -C "$BUILD_DIR" "${missing[@]}" >/dev/null ||
        die "could not build ${missing[*]} in $BUILD_DIR"
fi
[[ -x $PYTHON && -f $GDAL_CALC ]] || die "needs $GDAL_CALC and $PYTHON (apt-get install gdal-bin python3-gdal python3-numpy)"

DATA=$ROOT/tests/bench/out/$SIZE # the daemon's data root; git-ignored
mkdir -p "$DATA"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pergola-bench.XXXXXX")
DAEMON_PID=

# shellcheck disable=SC2317 # called through the EXIT trap too
stop_daemon() {
    if [[ -n $DAEMON_PID ]]; then
        kill -TERM "$DAEMON_PID" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$DAEMON_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$DAEMON_PID" 2>/dev/null || true
        wait "$DAEMON_PID" 2>/dev/null || true
        DAEMON_PID=
    fi
}
# shellcheck disable=SC2317 # called through the EXIT trap
cleanup() {
    stop_daemon
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- inputs: generated once per size, regenerated when the generator's formulas change
seeds=(1 2 3 4)
names=(a b c d)
stamp="size=$SIZE type=f32 pattern=random seeds=${seeds[*]} block=256 compress=NONE"
stamp+=" formulas=$("$MKRASTER" --help | md5sum | cut -d' ' -f1)"
if [[ ! -f $DATA/.inputs || $(cat "$DATA/.inputs") != "$stamp" ]]; then
    rm -f "$DATA/.inputs"
    for i in 0 1 2 3; do
        echo "bench: generating $DATA/${names[i]}.tif (${SIZE}x${SIZE} f32, seed ${seeds[i]})"
        timeout "$TIMEOUT" "$MKRASTER" "$DATA/${names[i]}.tif" --size "$SIZE" --type f32 \
            --pattern random --seed "${seeds[i]}" --block 256 --compress NONE
    done
    echo "$stamp" >"$DATA/.inputs"
fi
INPUTS=("$DATA/a.tif" "$DATA/b.tif" "$DATA/c.tif" "$DATA/d.tif")

# ---- timing: best wall time of REPS runs, in nanoseconds, in the global BEST
# Runs "$@" REPS times, removing OUT before each run; output goes to LOG.
best_of() {
    local out=$1 log=$2
    shift 2
    BEST=
    for _ in $(seq "$REPS"); do
        rm -f "$out"
        # Flush dirty pages (fresh inputs, earlier outputs) first, so that no case pays
        # for the write-back of another's files.
        sync
        local t0 t1
        t0=$(date +%s%N)
        if ! timeout --kill-after=5 "$TIMEOUT" "$@" >"$log" 2>&1; then
            return 1
        fi
        t1=$(date +%s%N)
        if [[ -z $BEST ]] || ((t1 - t0 < BEST)); then BEST=$((t1 - t0)); fi
    done
    [[ -s $out ]] || {
        echo "no output file $out" >>"$log"
        return 1
    }
}

seconds() { awk -v ns="$1" 'BEGIN { printf "%.3f", ns / 1e9 }'; }

show_log() {
    echo "---- $1 (last lines) ----" >&2
    tail -n 15 "$1" >&2 || true
    echo "----" >&2
}

# ---- (a) Pergola: one daemon per repetition, so no run is answered from a previous
# run's result cache and the daemon's start-up is not timed.
cat >"$WORK/graph.json" <<'EOF'
{"nodes": {
   "s": {"op": "local.add", "args": [{"op": "io.load", "path": "a.tif"},
                                     {"op": "io.load", "path": "b.tif"},
                                     {"op": "io.load", "path": "c.tif"},
                                     {"op": "io.load", "path": "d.tif"}]},
   "out": {"op": "io.save", "path": "sum_pergola.tif", "args": [{"ref": "s"}]}},
 "result": "out"}
EOF

PERGOLA_FAIL=
start_daemon() {
    local ready=$WORK/ready.json
    rm -f "$ready"
    "$PERGOLAD" --listen 127.0.0.1:0 --ready-file "$ready" --data-root "$DATA" \
        --workers "$WORKERS" >>"$WORK/pergolad.log" 2>&1 &
    DAEMON_PID=$!
    # The ready file is {"listen":["127.0.0.1:PORT",...],"pid":N}; the first TCP
    # address is all we need, so grep is enough (no jq dependency).
    PORT=
    for _ in $(seq 200); do
        if [[ -s $ready ]]; then
            PORT=$(grep -o '127\.0\.0\.1:[0-9]\+' "$ready" | head -n1 | cut -d: -f2) || true
            [[ -n $PORT ]] && return 0
        fi
        kill -0 "$DAEMON_PID" 2>/dev/null || {
            PERGOLA_FAIL="pergolad exited before it was ready"
            DAEMON_PID=
            return 1
        }
        sleep 0.05
    done
    PERGOLA_FAIL="pergolad wrote no usable ready file within 10 s"
    return 1
}

PERGOLA_NS=
run_pergola() {
    local out=$DATA/sum_pergola.tif log=$WORK/pergola.log best=
    if [[ ! -x $PERGOLAD || ! -x $PERGOLA ]]; then
        PERGOLA_FAIL="$PERGOLAD or $PERGOLA is not built"
        return 1
    fi
    if ! timeout 10 "$PERGOLAD" --help >/dev/null 2>&1; then
        PERGOLA_FAIL="'pergolad --help' fails: the daemon is not usable yet"
        return 1
    fi
    for _ in $(seq "$REPS"); do
        start_daemon || return 1
        REPS=1 best_of "$out" "$log" "$PERGOLA" --connect "127.0.0.1:$PORT" run \
            "$WORK/graph.json" || {
            PERGOLA_FAIL="'pergola run' failed (exit status or no $out)"
            stop_daemon
            return 1
        }
        stop_daemon
        if [[ -z $best ]] || ((BEST < best)); then best=$BEST; fi
    done
    PERGOLA_NS=$best
}

echo "bench: sum of 4 rasters ${SIZE}x${SIZE} f32, best of $REPS, $(nproc) cores," \
    "pergolad --workers $WORKERS"
failed=0

echo "bench: (a) pergola run"
if ! run_pergola; then
    echo "bench: Pergola leg FAILED: $PERGOLA_FAIL" >&2
    [[ -s $WORK/pergolad.log ]] && show_log "$WORK/pergolad.log"
    [[ -s $WORK/pergola.log ]] && show_log "$WORK/pergola.log"
    failed=1
fi

echo "bench: (b) gdal_calc.py"
CALC_NS=
if best_of "$DATA/sum_calc.tif" "$WORK/calc.log" "$PYTHON" "$GDAL_CALC" \
    -A "${INPUTS[0]}" -B "${INPUTS[1]}" -C "${INPUTS[2]}" -D "${INPUTS[3]}" \
    --calc="A+B+C+D" --outfile "$DATA/sum_calc.tif" --type Float32 --overwrite --quiet; then
    CALC_NS=$BEST
else
    echo "bench: gdal_calc.py leg FAILED" >&2
    show_log "$WORK/calc.log"
    failed=1
fi

echo "bench: (c) GDAL C loop"
LOOP_NS=
if best_of "$DATA/sum_loop.tif" "$WORK/loop.log" "$LOOP" "$DATA/sum_loop.tif" "${INPUTS[@]}"; then
    LOOP_NS=$BEST
else
    echo "bench: GDAL C loop leg FAILED" >&2
    show_log "$WORK/loop.log"
    failed=1
fi

# ---- the outputs must agree (the C loop's is the reference)
echo
if [[ -n $LOOP_NS ]]; then
    others=()
    [[ -n $PERGOLA_NS ]] && others+=(sum_pergola.tif)
    [[ -n $CALC_NS ]] && others+=(sum_calc.tif)
    if ((${#others[@]})); then
        (cd "$DATA" && "$COMPARE" sum_loop.tif "${others[@]}") || {
            echo "bench: outputs DISAGREE (or could not be compared)" >&2
            failed=1
        }
    fi
fi

# ---- the table
row() { # name ns
    local s ratio
    if [[ -z $2 ]]; then
        printf '%-38s %10s %18s\n' "$1" FAILED -
        return
    fi
    s=$(seconds "$2")
    if [[ -n $PERGOLA_NS ]]; then
        ratio=$(awk -v a="$2" -v b="$PERGOLA_NS" 'BEGIN { printf "%.2fx", a / b }')
    else
        ratio=n/a
    fi
    printf '%-38s %10s %18s\n' "$1" "$s" "$ratio"
}
echo
printf '%-38s %10s %18s\n' case seconds "ratio vs Pergola"
row "pergola run (--workers $WORKERS)" "$PERGOLA_NS"
row "gdal_calc.py (numpy)" "$CALC_NS"
row "GDAL C loop (1 thread, 16 MB cache)" "$LOOP_NS"
exit "$failed"
