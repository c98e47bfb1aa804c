#!/usr/bin/python3
"""The numpy and scipy legs of tests/bench/run.sh, file to file, as a user writes them.

    reference.py fused  OUT.tif A.tif B.tif C.tif D.tif   where(A > 0.5, (A + B) * C - D / 2, 0)
    reference.py focal  OUT.tif A.tif                     scipy.ndimage.uniform_filter(A, 3)
    reference.py zonal  OUT.json ZONES.tif VALUES.tif     mean per zone with numpy.bincount

Each reads its inputs whole with GDAL (band 1, ReadAsArray), computes with numpy/scipy in
the inputs' type, and writes a tiled (256x256), uncompressed GeoTIFF with the first input's
georeferencing (zonal: a JSON file {"zones": [{"zone", "count", "mean"}, ...]}). The
caller times the whole process; the script prints the time of the computation alone on
its last line, "compute_s=SECONDS", which run.sh reports as a note.

Run with Debian's /usr/bin/python3 (python3-gdal, python3-numpy, python3-scipy).
"""

import json
import sys
import time

import numpy as np
from osgeo import gdal

gdal.UseExceptions()


def read(path):
    ds = gdal.Open(path)
    return ds, ds.GetRasterBand(1).ReadAsArray()


def write(path, like, arr):
    drv = gdal.GetDriverByName("GTiff")
    out = drv.Create(path, arr.shape[1], arr.shape[0], 1, gdal.GDT_Float32,
                     ["TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256", "COMPRESS=NONE"])
    out.SetGeoTransform(like.GetGeoTransform())
    out.SetProjection(like.GetProjection())
    out.GetRasterBand(1).WriteArray(arr)
    out.FlushCache()
    out = None


def fused(out, a, b, c, d):
    ds, A = read(a)
    _, B = read(b)
    _, C = read(c)
    _, D = read(d)
    t0 = time.perf_counter()
    # float32 throughout: D / 2 and the scalar 0 keep numpy's float32 (value-based casting)
    r = np.where(A > 0.5, (A + B) * C - D / 2, 0)
    t = time.perf_counter() - t0
    assert r.dtype == np.float32, r.dtype
    write(out, ds, r)
    return t


def focal(out, a):
    from scipy import ndimage

    ds, A = read(a)
    t0 = time.perf_counter()
    r = ndimage.uniform_filter(A, size=3)  # float32 in, float32 out; edges: mode "reflect"
    t = time.perf_counter() - t0
    write(out, ds, r)
    return t


def zonal(out, zones, values):
    _, Z = read(zones)
    _, V = read(values)
    t0 = time.perf_counter()
    z = Z.ravel()
    count = np.bincount(z)
    total = np.bincount(z, weights=V.ravel())  # float64 sums
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    t = time.perf_counter() - t0
    zs = [{"zone": int(i), "count": int(count[i]), "mean": float(mean[i])}
          for i in np.nonzero(count)[0]]
    with open(out, "w") as f:
        json.dump({"zones": zs}, f)
    return t


def main(argv):
    legs = {"fused": (fused, 5), "focal": (focal, 2), "zonal": (zonal, 3)}
    if len(argv) < 2 or argv[1] not in legs or len(argv) - 2 != legs[argv[1]][1]:
        print(__doc__, file=sys.stderr)
        return 2
    fn, _ = legs[argv[1]]
    t = fn(*argv[2:])
    print("compute_s=%.6f" % t)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
