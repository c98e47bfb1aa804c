#!/usr/bin/python3
"""Untimed helpers of tests/bench/run.sh: input generation and output checks.

    check.py zones OUT.tif LIKE.tif N
        Writes an integer (u8 when N < 255, else i32) zones raster on LIKE's grid: an
        n x n grid of rectangular blocks (n = ceil(sqrt(N))), zone = 1 + block index,
        keeping the N first zones (cells of later blocks get zone N). Tiled 256x256.
    check.py raster REF.tif OTHER.tif [--tol T] [--border B] [--max-differ K] [--affine A,B]
        Compares band 1 cell by cell (as float64, 256 rows at a time), skipping B cells
        along every edge; with --affine, OTHER is compared with A * REF + B instead. A cell differs when |REF - OTHER| > T (default 0), or when it
        is valid (not nodata, not NaN) in one file only. Prints one line
            max |diff| = X; N of M px differ by > T[; V validity mismatches]
        and exits 1 when more than K (default 0) cells differ, or the sizes or
        geotransforms disagree (geotransform within 1e-9 of a cell).
    check.py zonal REF.json OTHER.json [--tol T]
        Compares per-zone means ({"zones": [{"zone", "mean", ...}]}, as zonal.stats and
        reference.py zonal write them): same zones, max |mean difference| <= T (default
        1e-6). Prints "max |mean diff| = X over N zones".
"""

import json
import math
import os
import sys

import numpy as np
from osgeo import gdal

gdal.UseExceptions()
gdal.SetCacheMax(64 << 20)


def opt(args, name, default, conv):
    if name in args:
        i = args.index(name)
        v = conv(args[i + 1])
        del args[i:i + 2]
        return v
    return default


def zones(out, like, n):
    n = int(n)
    src = gdal.Open(like)
    w, h = src.RasterXSize, src.RasterYSize
    side = int(math.ceil(math.sqrt(n)))
    dtype, gtype = (np.uint8, gdal.GDT_Byte) if n < 255 else (np.int32, gdal.GDT_Int32)
    col = (np.arange(w, dtype=np.int64) * side) // w
    drv = gdal.GetDriverByName("GTiff")
    ds = drv.Create(out + ".tmp", w, h, 1, gtype,
                    ["TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256", "COMPRESS=NONE"])
    ds.SetGeoTransform(src.GetGeoTransform())
    ds.SetProjection(src.GetProjection())
    band = ds.GetRasterBand(1)
    for y0 in range(0, h, 256):
        rows = np.arange(y0, min(h, y0 + 256), dtype=np.int64)
        z = 1 + ((rows * side) // h)[:, None] * side + col[None, :]
        band.WriteArray(np.minimum(z, n).astype(dtype), 0, y0)
    ds = None
    os.replace(out + ".tmp", out)
    print("%s: %dx%d, %d zones" % (out, w, h, n))
    return 0


def valid(arr, nodata):
    m = ~np.isnan(arr)
    if nodata is not None:
        m &= arr != nodata
    return m


def raster(args):
    tol = opt(args, "--tol", 0.0, float)
    border = opt(args, "--border", 0, int)
    max_differ = opt(args, "--max-differ", 0, int)
    mul, add = opt(args, "--affine", (1.0, 0.0), lambda v: tuple(float(x) for x in v.split(",")))
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    a, b = gdal.Open(args[0]), gdal.Open(args[1])
    w, h = a.RasterXSize, a.RasterYSize
    if (b.RasterXSize, b.RasterYSize) != (w, h):
        print("%s is %dx%d, %s is %dx%d" % (args[1], b.RasterXSize, b.RasterYSize, args[0], w, h))
        return 1
    ga, gb = a.GetGeoTransform(), b.GetGeoTransform()
    cell = max(abs(ga[1]), abs(ga[5]))
    if any(abs(x - y) > 1e-9 * cell for x, y in zip(ga, gb)):
        print("geotransforms differ: %s vs %s" % (ga, gb))
        return 1
    ba, bb = a.GetRasterBand(1), b.GetRasterBand(1)
    na, nb = ba.GetNoDataValue(), bb.GetNoDataValue()
    maxd, differ, vmis, total = 0.0, 0, 0, 0
    x0, x1 = border, w - border
    for y0 in range(border, h - border, 256):
        n = min(256, h - border - y0)
        ra = ba.ReadAsArray(x0, y0, x1 - x0, n).astype(np.float64)
        va = valid(ra, na)
        if (mul, add) != (1.0, 0.0):
            ra = ra * mul + add
        rb = bb.ReadAsArray(x0, y0, x1 - x0, n).astype(np.float64)
        vb = valid(rb, nb)
        both = va & vb
        d = np.abs(ra[both] - rb[both])
        if d.size:
            maxd = max(maxd, float(d.max()))
        m = int(np.count_nonzero(va != vb))
        vmis += m
        differ += int(np.count_nonzero(d > tol)) + m
        total += ra.size
    line = "max |diff| = %.4g; %d of %d px differ by > %g" % (maxd, differ, total, tol)
    if vmis:
        line += "; %d validity mismatches" % vmis
    print(line)
    return 0 if differ <= max_differ else 1


def zonal(args):
    tol = opt(args, "--tol", 1e-6, float)
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    ref, oth = (json.load(open(p)) for p in args)
    # a result may be wrapped as {"value": ...} by some clients; accept both
    ref, oth = (v.get("value", v) for v in (ref, oth))
    mr = {z["zone"]: z["mean"] for z in ref["zones"] if z.get("mean") is not None}
    mo = {z["zone"]: z["mean"] for z in oth["zones"] if z.get("mean") is not None}
    if set(mr) != set(mo):
        print("zones differ: %d vs %d zones, %s" % (len(mr), len(mo),
                                                  sorted(set(mr) ^ set(mo))[:10]))
        return 1
    d = max((abs(mr[k] - mo[k]) for k in mr), default=0.0)
    print("max |mean diff| = %.3g over %d zones" % (d, len(mr)))
    return 0 if d <= tol else 1


def main(argv):
    if len(argv) >= 2 and argv[1] == "zones" and len(argv) == 5:
        return zones(*argv[2:])
    if len(argv) >= 2 and argv[1] == "raster":
        return raster(argv[2:])
    if len(argv) >= 2 and argv[1] == "zonal":
        return zonal(argv[2:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
