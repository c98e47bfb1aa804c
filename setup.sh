#!/usr/bin/env bash
# Pergola quick start, on Debian 12:
#   1. installs the Debian packages that are missing (apt-get; uses sudo when not root),
#   2. builds everything with meson into ./build,
#   3. runs the main job: generates sample rasters in ./data/sample, starts pergolad on the
#      default config (conf/pergola.json), submits conf/examples/ndvi.json with the pergola
#      CLI, shows the results, and stops the daemon.
# Options: --no-demo (steps 1-2 only), --no-install (steps 2-3 only).
# Environment: PERGOLA_NATIVE=0 to build without -march=native (for images).
set -euo pipefail
cd "$(dirname "$0")"

# The one package list (docker/Dockerfile installs the same).
PACKAGES=(gcc meson ninja-build pkg-config libuv1-dev libzmq3-dev libgdal-dev libjansson-dev
          check gdal-bin python3-gdal python3-numpy python3-scipy)

demo=1 install=1
for arg in "$@"; do
  case "$arg" in
    --no-demo) demo=0 ;;
    --no-install) install=0 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $arg (try --help)" >&2; exit 2 ;;
  esac
done

if [ "$install" = 1 ]; then
  missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "==> installing Debian packages: ${missing[*]}"
    SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
fi

echo "==> building (meson, ./build)"
# PERGOLA_NATIVE=0 builds for any x86-64 (images); the default tunes for this CPU.
native=true; [ "${PERGOLA_NATIVE:-1}" = 1 ] || native=false
[ -f build/build.ninja ] || meson setup build --buildtype=release -Dnative_arch=$native \
  > /tmp/pergola-meson-setup.log || { cat /tmp/pergola-meson-setup.log; exit 1; }
meson compile -C build > /tmp/pergola-meson-compile.log 2>&1 ||
  { cat /tmp/pergola-meson-compile.log; exit 1; }
echo "    built: build/pergolad build/pergola build/libpergola.so build/pergola-mkraster"

[ "$demo" = 1 ] || exit 0

echo "==> generating sample rasters in data/sample (2048x2048, EPSG:32633)"
mkdir -p data/sample
mk=build/pergola-mkraster
# A smooth gradient and the synthetic terrain as two "bands" (same grid),
# so that NDVI has structure to look at.
[ -f data/sample/red.tif ] || $mk data/sample/red.tif --size 2048 --type u16 --pattern gradient
[ -f data/sample/nir.tif ] || $mk data/sample/nir.tif --size 2048 --type u16 --pattern dem

echo "==> starting pergolad with conf/pergola.json"
ready=$(mktemp -u /tmp/pergola-ready.XXXXXX)
build/pergolad --config conf/pergola.json --ready-file "$ready" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$ready"' EXIT
for _ in $(seq 100); do [ -s "$ready" ] && break; kill -0 $pid 2>/dev/null || exit 1; sleep 0.1; done
[ -s "$ready" ] || { echo "pergolad did not start" >&2; exit 1; }
# Talk to the address it actually bound (the config may name another port).
PERGOLA_CONNECT=$(grep -o '"listen":\["[^"]*' "$ready" | cut -d'"' -f4)
export PERGOLA_CONNECT

echo "==> pergola ping; pergola run conf/examples/ndvi.json"
build/pergola ping
build/pergola run conf/examples/ndvi.json
echo "==> outputs (under data/):"
ls -l data/results/
gdalinfo -stats data/results/ndvi.tif | grep -E "Size is|Type=|STATISTICS_(MIN|MAX|MEAN)" || true
echo "    open data/results/ndvi.png to look at the result"
rm -f data/results/*.aux.xml
echo "==> stopping pergolad"
