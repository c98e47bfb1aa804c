#!/usr/bin/env bash
# Pergola's benchmark suite: every case of issue 5 against its reference, measured in the
# same run, with the outputs checked against each other.
#
#   tests/bench/run.sh [BUILD_DIR]                          (BUILD_DIR defaults to build)
#   PERGOLA_BENCH_SIZE=2048 tests/bench/run.sh              (quick run, under 2 minutes)
#
# Knobs (environment; the BENCH_* names of the first version work too):
#   PERGOLA_BENCH_SIZE     width = height of the generated rasters (default 8192)
#   PERGOLA_BENCH_REPS     repetitions per timed command; the best is reported (default 3)
#   PERGOLA_BENCH_WORKERS  pergolad --workers (default: nproc)
#   PERGOLA_BENCH_CASES    which cases to run, e.g. "1 2 7" (default: 1 to 10)
#   PERGOLA_BENCH_MEM_SIZE size of case 9's raster (default 16384 at size >= 8192, else
#                          4096); its memory budget is a quarter of its bytes (>= 16 MiB)
#   PERGOLA_BENCH_TIMEOUT  seconds any one command may take (default 600)
# It generates its data once per size in tests/bench/out/SIZE/ (git-ignored), starts its
# own pergolad daemons on 127.0.0.1 port 0, prints machine facts and a table, and writes
# the table to tests/bench/out/results.txt. Exit status: 0 when every leg ran and every
# output check passed (targets missed do not fail the run), 1 otherwise, 2 on bad usage.
# tests/bench/README.md describes every case, its reference and its tolerance.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH=$ROOT/tests/bench
SIZE=${PERGOLA_BENCH_SIZE:-${BENCH_SIZE:-8192}}
REPS=${PERGOLA_BENCH_REPS:-${BENCH_REPS:-3}}
WORKERS=${PERGOLA_BENCH_WORKERS:-${BENCH_WORKERS:-$(nproc)}}
TIMEOUT=${PERGOLA_BENCH_TIMEOUT:-${BENCH_TIMEOUT:-600}}
CASES=" ${PERGOLA_BENCH_CASES:-1 2 3 4 5 6 7 8 9 10} "

die() {
    echo "bench: $*" >&2
    exit 2
}
for v in SIZE REPS WORKERS TIMEOUT; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done
((SIZE >= 64)) || die "PERGOLA_BENCH_SIZE must be at least 64"
if ((SIZE >= 8192)); then MEM_SIZE=${PERGOLA_BENCH_MEM_SIZE:-16384}; else MEM_SIZE=${PERGOLA_BENCH_MEM_SIZE:-4096}; fi
[[ $MEM_SIZE =~ ^[1-9][0-9]*$ ]] || die "PERGOLA_BENCH_MEM_SIZE must be a positive integer"
MEM_BUDGET=$((MEM_SIZE * MEM_SIZE * 4 / 4 / 1048576))
((MEM_BUDGET >= 16)) || MEM_BUDGET=16

BUILD_DIR=${1:-$ROOT/build}
[[ -d $BUILD_DIR ]] || die "no build directory '$BUILD_DIR' (meson setup $BUILD_DIR && ninja -C $BUILD_DIR)"
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)
MKRASTER=$BUILD_DIR/pergola-mkraster
PERGOLAD=$BUILD_DIR/pergolad
PERGOLA=$BUILD_DIR/pergola
LOOP=$BUILD_DIR/tests/bench/pergola-bench-gdal-loop
COMPARE=$BUILD_DIR/tests/bench/pergola-bench-compare
LATENCY=$BUILD_DIR/tests/bench/pergola-bench-latency
SCHED=$BUILD_DIR/tests/bench/pergola-bench-sched
PYTHON=/usr/bin/python3 # Debian's, which has GDAL's bindings (a pyenv python3 may not)
GDAL_CALC=/usr/bin/gdal_calc.py

# Build what is missing, and only that: the build directory may be someone else's, and a
# concurrent ninja in it is not safe.
missing=()
for t in "$PERGOLAD" "$PERGOLA" "$MKRASTER" "$LOOP" "$COMPARE" "$LATENCY" "$SCHED"; do
    [[ -x $t ]] || missing+=("${t#"$BUILD_DIR"/}")
done
if ((${#missing[@]})); then
    echo "bench: building ${missing[*]}"
    ninja -C "$BUILD_DIR" "${missing[@]}" >/dev/null || die "could not build ${missing[*]} in $BUILD_DIR"
fi
[[ -x $PYTHON && -f $GDAL_CALC ]] ||
    die "needs $GDAL_CALC and $PYTHON (apt-get install gdal-bin python3-gdal python3-numpy python3-scipy)"
if ! command -v gdaldem >/dev/null || ! command -v gdalwarp >/dev/null; then
    die "needs gdaldem and gdalwarp (gdal-bin)"
fi
"$PYTHON" -c 'import numpy, scipy.ndimage; from osgeo import gdal' 2>/dev/null ||
    die "$PYTHON lacks numpy, scipy or GDAL's bindings (apt-get install python3-numpy python3-scipy python3-gdal)"

DATA=$BENCH/out/$SIZE # the daemons' data root
OUTDIR=$BENCH/out
mkdir -p "$DATA"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pergola-bench.XXXXXX")
DAEMON_PID=
ADDR=
PG=()
FAILED=0

# ---------------------------------------------------------------- daemon

# shellcheck disable=SC2317 # also called through the EXIT trap
stop_daemon() {
    [[ -n $DAEMON_PID ]] || return 0
    kill -TERM "$DAEMON_PID" 2>/dev/null
    for _ in $(seq 100); do
        kill -0 "$DAEMON_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$DAEMON_PID" 2>/dev/null
    wait "$DAEMON_PID" 2>/dev/null
    DAEMON_PID=
    ADDR=
}
# shellcheck disable=SC2317
cleanup() {
    stop_daemon
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_daemon [GDAL_CACHE_MB] [FLAGS...]: a fresh pergolad on 127.0.0.1, port 0, with
# the result cache off (every run computes; the cache is measured elsewhere), warnings
# only in its log, and FLAGS; sets DAEMON_PID and ADDR (HOST:PORT from its ready file).
start_daemon() {
    stop_daemon
    local gcache=${1:-64} ready=$WORK/ready.json
    shift
    rm -f "$ready"
    printf '{"gdal_cache_mb": %d, "log_level": "warn"}\n' "$gcache" >"$WORK/pergola.json"
    "$PERGOLAD" --config "$WORK/pergola.json" --listen 127.0.0.1:0 --ready-file "$ready" \
        --data-root "$DATA" --cache-mb 0 "$@" >>"$WORK/pergolad.log" 2>&1 &
    DAEMON_PID=$!
    for _ in $(seq 200); do
        if [[ -s $ready ]]; then
            ADDR=$(grep -o '127\.0\.0\.1:[0-9]\+' "$ready" | head -n1)
            PG=("$PERGOLA" --connect "$ADDR" run -q) # the CLI, talking to this daemon
            [[ -n $ADDR ]] && return 0
        fi
        if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
            DAEMON_PID=
            echo "bench: pergolad $* exited before it was ready" >&2
            tail -n 5 "$WORK/pergolad.log" >&2
            return 1
        fi
        sleep 0.05
    done
    echo "bench: pergolad wrote no usable ready file within 10 s" >&2
    return 1
}

# ---------------------------------------------------------------- timing and results

declare -A T   # KEY -> best wall time (ns)
declare -A CS  # KEY -> best "compute_s=" a command printed (seconds)

# timed KEY OUT CMD...: runs CMD REPS times (OUT, when not "-", is removed before each
# run and must exist after), keeps the best wall time in T[KEY]. Dirty pages are flushed
# before every run (untimed), so no run pays for another's write-back. CMD's stdout of
# the last run is in $WORK/KEY.out, its stderr in $WORK/KEY.err.
timed() {
    local key=$1 out=$2 best='' cbest='' t0 t1 cs
    shift 2
    for _ in $(seq "$REPS"); do
        [[ $out == - ]] || rm -f "$out"
        sync
        t0=$(date +%s%N)
        if ! timeout --kill-after=5 "$TIMEOUT" "$@" >"$WORK/$key.out" 2>"$WORK/$key.err"; then
            leg_failed "$key" "$*"
            return 1
        fi
        t1=$(date +%s%N)
        if [[ -z $best ]] || ((t1 - t0 < best)); then best=$((t1 - t0)); fi
        cs=$(sed -n 's/^compute_s=\([0-9.]*\)$/\1/p' "$WORK/$key.out" | tail -n1)
        if [[ -n $cs ]] && { [[ -z $cbest ]] || awk -v a="$cs" -v b="$cbest" 'BEGIN { exit !(a < b) }'; }; then
            cbest=$cs
        fi
    done
    if [[ $out != - && ! -s $out ]]; then
        echo "no output file $out" >>"$WORK/$key.err"
        leg_failed "$key" "$*"
        return 1
    fi
    T[$key]=$best
    [[ -n $cbest ]] && CS[$key]=$(awk -v s="$cbest" 'BEGIN { printf "%.3f", s }')
    return 0
}

leg_failed() {
    FAILED=1
    echo "bench: FAILED: $2" >&2
    tail -n 8 "$WORK/$1.err" "$WORK/$1.out" 2>/dev/null | sed 's/^/    /' >&2
    [[ -s $WORK/pergolad.log ]] && tail -n 5 "$WORK/pergolad.log" | sed 's/^/    pergolad: /' >&2
}

sec() { [[ -n ${1:-} ]] && awk -v ns="$1" 'BEGIN { printf "%.3f", ns / 1e9 }' || echo FAILED; }
# ratio A B: A / B as "N.NNx" ("-" when either is missing)
ratio() { [[ -n ${1:-} && -n ${2:-} ]] && awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }' || echo -; }
# meets RATIO_TEXT OP LIMIT: "ok" or "MISSED" ("-" when there is no ratio)
meets() {
    [[ $1 == - ]] && {
        echo -
        return
    }
    awk -v r="${1%x}" -v op="$2" -v l="$3" 'BEGIN { ok = op == ">=" ? r >= l : r <= l; print ok ? "ok" : "MISSED" }'
}

# check KEY CMD...: runs an output check; its last line goes into CHECK[KEY], with
# "FAILED: " in front when the check fails (which fails the run).
declare -A CHECK
check() {
    local key=$1 line
    shift
    if line=$("$@" 2>&1); then
        CHECK[$key]=$(tail -n1 <<<"$line")
    else
        CHECK[$key]="FAILED: $(tail -n1 <<<"$line")"
        FAILED=1
        echo "bench: output check FAILED: $*" >&2
        printf '    %s\n' "$line" >&2
    fi
}

ROWS=()
NOTES=()
# row CASE PERGOLA_TEXT REFERENCE REF_TEXT RATIO TARGET CHECK
row() {
    local c=() x
    for x in "$@"; do c+=("${x//|/\\|}"); done # a | inside a cell would end it
    ROWS+=("| ${c[0]} | ${c[1]} | ${c[2]} | ${c[3]} | ${c[4]} | ${c[5]} | ${c[6]} |")
}
note() { NOTES+=("$*"); }
# versus CASE PKEY REFERENCE RKEY LIMIT CHECK: a row "reference time / Pergola time,
# at least LIMIT"
versus() {
    local r
    r=$(ratio "${T[$4]:-}" "${T[$2]:-}")
    row "$1" "$(sec "${T[$2]:-}")" "$3" "$(sec "${T[$4]:-}")" "$r" ">= ${5}x $(meets "$r" ">=" "$5")" "$6"
}
want() { [[ $CASES == *" $1 "* ]]; }

graph() { # graph NAME JSON: writes $WORK/NAME.json
    printf '%s\n' "$2" >"$WORK/$1.json"
}
load() { printf '{"op": "io.load", "path": "%s"}' "$1"; }

# ---------------------------------------------------------------- machine facts

CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
FACTS=("machine: $(nproc) cores ($CPU), $(awk '/MemTotal/ { printf "%.1f GiB RAM", $2 / 1048576 }' /proc/meminfo), $(uname -sr)"
    "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min)"
    "size ${SIZE}x${SIZE}, best of $REPS, pergolad --workers $WORKERS --cache-mb 0, gdal $(gdal-config --version 2>/dev/null || gdalinfo --version | cut -d' ' -f2 | tr -d ,)")
printf 'bench: %s\n' "${FACTS[@]}"
START=$(date +%s)

# ---------------------------------------------------------------- data (once per size)

# gen FILE STAMP CMD...: runs CMD to make FILE unless FILE exists with the same stamp
# (the stamp holds the generator's --help digest, which documents its formulas).
FORMULAS=$("$MKRASTER" --help | md5sum | cut -d' ' -f1)
gen() {
    local file=$1 stamp="$2 formulas=$FORMULAS"
    shift 2
    [[ -f $file && -f $file.stamp && $(cat "$file.stamp") == "$stamp" ]] && return 0
    rm -f "$file" "$file.stamp"
    echo "bench: generating $file"
    timeout "$TIMEOUT" "$@" >/dev/null || die "could not generate $file"
    echo "$stamp" >"$file.stamp"
}
names=(a b c d)
for i in 0 1 2 3; do
    gen "$DATA/${names[i]}.tif" "random f32 seed $((i + 1)) size $SIZE" \
        "$MKRASTER" "$DATA/${names[i]}.tif" --size "$SIZE" --type f32 --pattern random \
        --seed $((i + 1)) --block 256 --compress NONE
done
if want 4 || want 5; then
    gen "$DATA/dem.tif" "dem f32 size $SIZE" "$MKRASTER" "$DATA/dem.tif" --size "$SIZE" \
        --type f32 --pattern dem --block 256 --compress NONE
fi
if want 6; then
    gen "$DATA/zones.tif" "zones 100 size $SIZE v1" "$PYTHON" "$BENCH/check.py" zones \
        "$DATA/zones.tif" "$DATA/a.tif" 100
fi
if want 9; then
    gen "$DATA/big.tif" "random f32 seed 5 size $MEM_SIZE" "$MKRASTER" "$DATA/big.tif" \
        --size "$MEM_SIZE" --type f32 --pattern random --seed 5 --block 256 --compress NONE
fi
cd "$DATA" || die "cannot enter $DATA"

start_daemon 64 --workers "$WORKERS" || die "cannot start pergolad"

# ---------------------------------------------------------------- 1. sum of four rasters
if want 1; then
    echo "bench: 1. sum of four rasters"
    graph sum "{\"nodes\": {\"s\": {\"op\": \"local.add\", \"args\": [$(load a.tif), $(load b.tif), $(load c.tif), $(load d.tif)]},
      \"out\": {\"op\": \"io.save\", \"path\": \"sum_pergola.tif\", \"args\": [{\"ref\": \"s\"}]}}, \"result\": \"out\"}"
    timed sum_p sum_pergola.tif "${PG[@]}" "$WORK/sum.json"
    timed sum_calc sum_calc.tif "$PYTHON" "$GDAL_CALC" -A a.tif -B b.tif -C c.tif -D d.tif \
        --calc="A+B+C+D" --outfile sum_calc.tif --type Float32 --overwrite --quiet
    timed sum_loop sum_loop.tif "$LOOP" sum_loop.tif a.tif b.tif c.tif d.tif
    [[ -n ${T[sum_p]:-} && -n ${T[sum_loop]:-} ]] && check sum_p "$COMPARE" sum_loop.tif sum_pergola.tif
    [[ -n ${T[sum_calc]:-} && -n ${T[sum_loop]:-} ]] && check sum_calc "$COMPARE" sum_loop.tif sum_calc.tif
    versus "1a sum of 4, file to file" sum_p "gdal_calc.py" sum_calc 10 "${CHECK[sum_p]:-}"
    versus "1b sum of 4, file to file" sum_p "GDAL C loop, 1 thread, GDAL_CACHEMAX=16" sum_loop 2 "${CHECK[sum_calc]:-} (gdal_calc.py vs loop)"
fi

# ---------------------------------------------------------------- 2. fused expression
FUSED_GRAPH="{\"nodes\": {\"A\": $(load a.tif), \"B\": $(load b.tif), \"C\": $(load c.tif), \"D\": $(load d.tif),
  \"e\": {\"op\": \"local.where\", \"args\": [
    {\"op\": \"local.gt\", \"args\": [{\"ref\": \"A\"}, 0.5]},
    {\"op\": \"local.subtract\", \"args\": [
      {\"op\": \"local.multiply\", \"args\": [{\"op\": \"local.add\", \"args\": [{\"ref\": \"A\"}, {\"ref\": \"B\"}]}, {\"ref\": \"C\"}]},
      {\"op\": \"local.divide\", \"args\": [{\"ref\": \"D\"}, 2]}]},
    0]},
  \"out\": {\"op\": \"io.save\", \"path\": \"OUT\", \"args\": [{\"ref\": \"e\"}]}}, \"result\": \"out\"}"
if want 2; then
    echo "bench: 2. fused expression"
    graph fused "${FUSED_GRAPH/OUT/fused_pergola.tif}"
    timed fused_p fused_pergola.tif "${PG[@]}" "$WORK/fused.json"
    timed fused_np fused_numpy.tif "$PYTHON" "$BENCH/reference.py" fused fused_numpy.tif a.tif b.tif c.tif d.tif
    # (A + B) * C reaches 2e6, where a float32 ulp is 0.25: the tolerance is two ulps.
    [[ -n ${T[fused_p]:-} && -n ${T[fused_np]:-} ]] &&
        check fused_p "$PYTHON" "$BENCH/check.py" raster fused_numpy.tif fused_pergola.tif --tol 0.5
    versus "2a where(A > 0.5, (A + B) * C - D / 2, 0)" fused_p "numpy (GDAL read, np.where, GDAL write)" fused_np 10 "${CHECK[fused_p]:-}"
    [[ -n ${CS[fused_np]:-} ]] && note "2a: numpy's computation alone (no I/O) took ${CS[fused_np]} s."
    if want 1; then
        r=$(ratio "${T[fused_p]:-}" "${T[sum_p]:-}")
        row "2b fused expression vs the sum" "$(sec "${T[fused_p]:-}")" "Pergola sum of 4 (1a)" \
            "$(sec "${T[sum_p]:-}")" "$r (fused/sum)" "<= 1.1x $(meets "$r" "<=" 1.1)" "as 1a and 2a"
    fi
    if "$PERGOLAD" --help | grep -q -- '--fusion'; then
        graph unfused "${FUSED_GRAPH/OUT/fused_unfused.tif}"
        start_daemon 64 --workers "$WORKERS" --fusion off &&
            timed fused_off fused_unfused.tif "${PG[@]}" "$WORK/unfused.json"
        [[ -n ${T[fused_off]:-} && -n ${T[fused_np]:-} ]] &&
            check fused_off "$PYTHON" "$BENCH/check.py" raster fused_numpy.tif fused_unfused.tif --tol 0.5
        r=$(ratio "${T[fused_off]:-}" "${T[fused_p]:-}")
        row "2c same, pergolad --fusion off" "$(sec "${T[fused_off]:-}")" "the fused run (2a)" \
            "$(sec "${T[fused_p]:-}")" "$r (off/on)" "-" "${CHECK[fused_off]:-}"
        start_daemon 64 --workers "$WORKERS" || die "cannot restart pergolad"
    fi
fi

# ---------------------------------------------------------------- 3. focal mean 3x3
if want 3; then
    echo "bench: 3. focal mean 3x3"
    graph focal "{\"nodes\": {\"m\": {\"op\": \"focal.mean\", \"radius\": 1, \"args\": [$(load a.tif)]},
      \"out\": {\"op\": \"io.save\", \"path\": \"focal_pergola.tif\", \"args\": [{\"ref\": \"m\"}]}}, \"result\": \"out\"}"
    timed focal_p focal_pergola.tif "${PG[@]}" "$WORK/focal.json"
    timed focal_sp focal_scipy.tif "$PYTHON" "$BENCH/reference.py" focal focal_scipy.tif a.tif
    # Edges differ by definition (Pergola averages the cells inside the raster, scipy
    # reflects): the interior is compared. Means of values < 1000 in float32: 1e-3.
    [[ -n ${T[focal_p]:-} && -n ${T[focal_sp]:-} ]] &&
        check focal_p "$PYTHON" "$BENCH/check.py" raster focal_scipy.tif focal_pergola.tif --border 1 --tol 1e-3
    versus "3 focal.mean 3x3" focal_p "scipy.ndimage.uniform_filter (GDAL I/O)" focal_sp 10 "${CHECK[focal_p]:-} (interior)"
    [[ -n ${CS[focal_sp]:-} ]] && note "3: scipy's uniform_filter alone (no I/O) took ${CS[focal_sp]} s."
fi

# ---------------------------------------------------------------- 4. hillshade
if want 4; then
    echo "bench: 4. hillshade"
    graph hs "{\"nodes\": {\"h\": {\"op\": \"focal.hillshade\", \"azimuth\": 315, \"altitude\": 45, \"z_factor\": 1, \"args\": [$(load dem.tif)]},
      \"out\": {\"op\": \"io.save\", \"path\": \"hs_pergola.tif\", \"args\": [{\"ref\": \"h\"}]}}, \"result\": \"out\"}"
    timed hs_p hs_pergola.tif "${PG[@]}" "$WORK/hs.json"
    timed hs_gd hs_gdaldem.tif gdaldem hillshade dem.tif hs_gdaldem.tif -az 315 -alt 45 -z 1 \
        -compute_edges -co TILED=YES -q
    [[ -n ${T[hs_p]:-} && -n ${T[hs_gd]:-} ]] &&
        check hs_p "$PYTHON" "$BENCH/check.py" raster hs_gdaldem.tif hs_pergola.tif --tol 1
    versus "4 focal.hillshade" hs_p "gdaldem hillshade -compute_edges" hs_gd 2 "${CHECK[hs_p]:-}"
fi

# ---------------------------------------------------------------- 5. reproject
if want 5; then
    echo "bench: 5. reproject to EPSG:4326"
    graph rp "{\"nodes\": {\"r\": {\"op\": \"transform.reproject\", \"crs\": \"EPSG:4326\", \"method\": \"bilinear\", \"error_threshold\": 0.125, \"args\": [$(load dem.tif)]},
      \"out\": {\"op\": \"io.save\", \"path\": \"rp_pergola.tif\", \"args\": [{\"ref\": \"r\"}]}}, \"result\": \"out\"}"
    timed rp_p rp_pergola.tif "${PG[@]}" "$WORK/rp.json"
    timed rp_gw rp_gdalwarp.tif gdalwarp -q -overwrite -multi -wo NUM_THREADS=ALL_CPUS -r bilinear \
        -t_srs EPSG:4326 -et 0.125 -dstnodata nan -co TILED=YES dem.tif rp_gdalwarp.tif
    # Both interpolate source positions within 1/8 cell (-et 0.125) along different
    # segments; on this terrain (up to ~2 m of height per 10 m cell) that is < 0.5 m.
    # Cells on the footprint's edge may be covered in one output only: up to 0.1%.
    [[ -n ${T[rp_p]:-} && -n ${T[rp_gw]:-} ]] &&
        check rp_p "$PYTHON" "$BENCH/check.py" raster rp_gdalwarp.tif rp_pergola.tif --tol 0.5 \
            --max-differ $((SIZE * SIZE / 1000))
    versus "5 reproject to EPSG:4326, bilinear" rp_p "gdalwarp -multi -wo NUM_THREADS=ALL_CPUS" rp_gw 1.5 "${CHECK[rp_p]:-}"
fi

# ---------------------------------------------------------------- 6. zonal mean
if want 6; then
    echo "bench: 6. zonal mean over 100 zones"
    graph zonal "{\"nodes\": {\"z\": {\"op\": \"zonal.stats\", \"args\": [$(load zones.tif), $(load a.tif)]}}, \"result\": \"z\"}"
    timed zonal_p - "${PG[@]}" --json "$WORK/zonal.json"
    cp "$WORK/zonal_p.out" zonal_pergola.json 2>/dev/null
    timed zonal_np zonal_numpy.json "$PYTHON" "$BENCH/reference.py" zonal zonal_numpy.json zones.tif a.tif
    [[ -n ${T[zonal_p]:-} && -n ${T[zonal_np]:-} ]] &&
        check zonal_p "$PYTHON" "$BENCH/check.py" zonal zonal_numpy.json zonal_pergola.json --tol 1e-6
    versus "6 zonal.stats mean, 100 zones" zonal_p "numpy bincount (GDAL read)" zonal_np 4 "${CHECK[zonal_p]:-}"
    [[ -n ${CS[zonal_np]:-} ]] && note "6: numpy's bincount alone (no I/O) took ${CS[zonal_np]} s."
fi

# ---------------------------------------------------------------- 7. latency
if want 7; then
    echo "bench: 7. latency"
    n=2000
    if timeout "$TIMEOUT" "$LATENCY" "$ADDR" "$n" >"$WORK/lat.out" 2>"$WORK/lat.err"; then
        for what in ping graph; do
            read -r mn md p99 < <(awk -v w="$what" '$2 == w {
                for (i = 3; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
                print v["min_us"], v["median_us"], v["p99_us"] }' "$WORK/lat.out")
            if [[ $what == ping ]]; then
                label="7a ping round trip (us)"
                chk="pong"
            else
                label="7b raster.constant 64x64 + global.stats (us)"
                chk="count 4096, mean 1 every time"
            fi
            r=$(awk -v m="$md" 'BEGIN { print (m < 100 ? "ok" : "MISSED") }')
            row "$label" "median $md (min $mn, p99 $p99)" "- (n = $n over loopback)" "-" "-" \
                "tens of us $r" "$chk"
        done
    else
        leg_failed lat "$LATENCY $ADDR $n"
        row "7 latency" FAILED - - - - -
    fi
fi

# ---------------------------------------------------------------- 8. per-tile overhead
if want 8; then
    echo "bench: 8. per-tile scheduling overhead"
    graph tiny '{"nodes": {"c": {"op": "raster.constant", "width": 4096, "height": 4096, "value": 1, "type": "u8"},
      "s": {"op": "global.stats", "args": [{"ref": "c"}]}}, "result": "s"}'
    tiny_ok() { # the answer must be 4096 * 4096 cells of mean 1
        grep -q '"count": *16777216' "$WORK/$1.out" && grep -q '"mean": *1\(\.0\)\?[,}]' "$WORK/$1.out"
    }
    timed tiny256 - "${PG[@]}" --json "$WORK/tiny.json"
    tiny_ok tiny256 || T[tiny256]=
    if start_daemon 64 --workers "$WORKERS" --tile-size 16; then
        timed tiny16 - "${PG[@]}" --json "$WORK/tiny.json"
        tiny_ok tiny16 || T[tiny16]=
    fi
    start_daemon 64 --workers "$WORKERS" || die "cannot restart pergolad"
    if [[ -n ${T[tiny16]:-} && -n ${T[tiny256]:-} ]]; then
        tiles16=65536 tiles256=256
        per=$(awk -v a="${T[tiny16]}" -v b="${T[tiny256]}" -v n=$((tiles16 - tiles256)) \
            'BEGIN { printf "%.2f", (a - b) / n / 1000 }')
        raw=$(awk -v a="${T[tiny16]}" 'BEGIN { printf "%.2f", a / 65536 / 1000 }')
        r=$(awk -v p="$per" 'BEGIN { print (p <= 10 ? "ok" : "MISSED") }')
        row "8a tile overhead: 4096^2 u8 stats, 16x16 tiles (us/tile)" "$per" \
            "Dask, documented (not measured)" "200-300 us/task" "-" "a few us $r" \
            "count 16777216, mean 1"
        note "8a: 65536 tiles of 16x16 in $(sec "${T[tiny16]}") s ($raw us/tile all in), 256 tiles of 256x256 in $(sec "${T[tiny256]}") s; the row is the difference per extra tile (workers $WORKERS, so a tile costs about $WORKERS x that in CPU time)."
    else
        FAILED=1
        row "8a tile overhead (us/tile)" FAILED - - - - "wrong or no answer"
    fi
    if timeout "$TIMEOUT" "$SCHED" 1000000 "$WORKERS" >"$WORK/sched.out" 2>&1; then
        for how in batch chain; do
            ns=$(awk -v h="$how" '$2 == h { sub("ns_per_task=", "", $5); print $5 }' "$WORK/sched.out")
            label="8b runtime: 1M empty tasks, pg_schedule from the main thread (ns/task)"
            [[ $how == chain ]] && label="8c runtime: 1M empty tasks, rescheduled from workers (ns/task)"
            row "$label" "$ns" "Dask, documented (not measured)" "200000-300000 ns/task" "-" "-" "-"
        done
    else
        leg_failed sched "$SCHED"
    fi
fi

# ---------------------------------------------------------------- 9. peak memory
if want 9; then
    echo "bench: 9. peak memory, ${MEM_SIZE}x${MEM_SIZE} f32 with a ${MEM_BUDGET} MiB budget"
    graph mem "{\"nodes\": {\"x\": {\"op\": \"local.multiply\", \"args\": [{\"op\": \"local.add\", \"args\": [$(load big.tif), 1]}, 2]},
      \"out\": {\"op\": \"io.save\", \"path\": \"mem_pergola.tif\", \"args\": [{\"ref\": \"x\"}]}}, \"result\": \"out\"}"
    if start_daemon 16 --workers "$WORKERS" --memory-budget-mb "$MEM_BUDGET"; then
        idle=$(awk '/VmHWM/ { print $2 }' "/proc/$DAEMON_PID/status")
        if REPS=1 timed mem_p mem_pergola.tif "${PG[@]}" "$WORK/mem.json"; then
            hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$DAEMON_PID/status")
            check mem_p "$PYTHON" "$BENCH/check.py" raster big.tif mem_pergola.tif --affine 2,2 --tol 1e-3
            mib=$((hwm / 1024))
            lim=$((MEM_BUDGET + 64))
            r=$( ((mib <= lim)) && echo ok || echo MISSED)
            bytes=$((MEM_SIZE * MEM_SIZE * 4 / 1048576))
            row "9 peak RSS (VmHWM), (x + 1) * 2 of a $bytes MiB raster, saved" "$mib MiB" \
                "budget $MEM_BUDGET MiB + 64" "$lim MiB" "-" "<= $lim MiB $r" "${CHECK[mem_p]:-}"
            note "9: pergolad --memory-budget-mb $MEM_BUDGET with gdal_cache_mb 16 (GDAL's block cache is outside the budget); VmHWM $((idle / 1024)) MiB before the job; the job took $(sec "${T[mem_p]}") s."
        else
            row "9 peak RSS" FAILED - - - - -
        fi
        rm -f mem_pergola.tif
    fi
    start_daemon 64 --workers "$WORKERS" || die "cannot restart pergolad"
fi

# ---------------------------------------------------------------- 10. 2 workers over 1
if want 10; then
    echo "bench: 10. speedup of 2 workers over 1 (focal.median 5x5)"
    graph med "{\"nodes\": {\"m\": {\"op\": \"focal.median\", \"radius\": 2, \"args\": [$(load a.tif)]},
      \"s\": {\"op\": \"global.stats\", \"args\": [{\"ref\": \"m\"}]}}, \"result\": \"s\"}"
    start_daemon 64 --workers 1 && timed med1 - "${PG[@]}" --json "$WORK/med.json"
    start_daemon 64 --workers 2 && timed med2 - "${PG[@]}" --json "$WORK/med.json"
    if [[ -n ${T[med1]:-} && -n ${T[med2]:-} ]]; then
        if cmp -s "$WORK/med1.out" "$WORK/med2.out"; then
            CHECK[med]="same global.stats with 1 and 2 workers"
        else
            CHECK[med]="FAILED: global.stats differ between 1 and 2 workers"
            FAILED=1
        fi
    fi
    r=$(ratio "${T[med1]:-}" "${T[med2]:-}")
    row "10 focal.median 5x5 + global.stats, 2 workers" "$(sec "${T[med2]:-}")" "same, --workers 1" \
        "$(sec "${T[med1]:-}")" "$r" ">= 1.85x $(meets "$r" ">=" 1.85)" "${CHECK[med]:-}"
fi
stop_daemon

# ---------------------------------------------------------------- the table
{
    echo "# tests/bench/run.sh $(date -u +%Y-%m-%dT%H:%MZ), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
    printf '# %s\n' "${FACTS[@]}"
    echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg); the run took $(($(date +%s) - START)) s"
    echo
    echo "| case | Pergola s | reference | reference s | ratio | target | output check |"
    echo "|---|---|---|---|---|---|---|"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "ratio: reference time / Pergola time (above 1x Pergola is faster) unless the row says otherwise."
    echo "Times are the best wall time of $REPS runs, process start-up included, inputs in the page cache."
    ((${#NOTES[@]})) && printf -- '- %s\n' "${NOTES[@]}"
    awk -v n="$(nproc)" '{ if ($1 > n) printf "- The machine was loaded (1-minute load average %s on %d cores at the end): timings are noisy, and case 10 cannot show a 2-worker speedup while other processes hold the cores.\n", $1, n }' /proc/loadavg
} >"$OUTDIR/results.txt"
echo
cat "$OUTDIR/results.txt"
exit "$FAILED"
