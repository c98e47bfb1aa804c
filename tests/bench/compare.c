/* pergola-bench-compare REF.tif OTHER.tif [MORE.tif ...]
 *
 * Checks that benchmark outputs agree: same size and geotransform as REF, and prints for
 * each OTHER the largest absolute cell difference from REF (band 1, read as float64,
 * strip by strip so that 8192x8192 rasters need only a few MB). Exits 1 when a grid
 * differs or a difference exceeds --tolerance (default 1e-3: four float32 values below
 * 1000 summed in a different order or in double differ by a few ulps of ~4000, 2.4e-4). */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cpl_conv.h>
#include <gdal.h>

#define ROWS 64

int main(int argc, char **argv)
{
    double tol = 1e-3;
    int a = 1;
    if (argc > 2 && !strcmp(argv[1], "--tolerance")) {
        tol = atof(argv[2]);
        a = 3;
    }
    if (argc - a < 2) {
        fprintf(stderr, "usage: pergola-bench-compare [--tolerance T] REF.tif OTHER.tif...\n");
        return 2;
    }
    GDALAllRegister();
    GDALSetCacheMax64((GIntBig)16 << 20);
    CPLSetConfigOption("GDAL_PAM_ENABLED", "NO");

    GDALDatasetH ref = GDALOpen(argv[a], GA_ReadOnly);
    if (!ref) {
        fprintf(stderr, "pergola-bench-compare: cannot open %s\n", argv[a]);
        return 1;
    }
    int w = GDALGetRasterXSize(ref), h = GDALGetRasterYSize(ref);
    double rgt[6];
    int rhas = GDALGetGeoTransform(ref, rgt) == CE_None;
    double *rb = malloc(sizeof(double) * (size_t)w * ROWS);
    double *ob = malloc(sizeof(double) * (size_t)w * ROWS);
    if (!rb || !ob) return 1;

    int bad = 0;
    for (int i = a + 1; i < argc; i++) {
        GDALDatasetH o = GDALOpen(argv[i], GA_ReadOnly);
        if (!o) {
            fprintf(stderr, "pergola-bench-compare: cannot open %s\n", argv[i]);
            bad = 1;
            continue;
        }
        if (GDALGetRasterXSize(o) != w || GDALGetRasterYSize(o) != h) {
            printf("%s: size %dx%d differs from %s (%dx%d)\n", argv[i], GDALGetRasterXSize(o),
                   GDALGetRasterYSize(o), argv[a], w, h);
            bad = 1;
            GDALClose(o);
            continue;
        }
        double ogt[6];
        int ohas = GDALGetGeoTransform(o, ogt) == CE_None;
        if (ohas != rhas || (rhas && memcmp(ogt, rgt, sizeof rgt))) {
            printf("%s: geotransform differs from %s\n", argv[i], argv[a]);
            bad = 1;
        }
        double maxd = 0;
        long long nan_mismatch = 0;
        for (int y0 = 0; y0 < h; y0 += ROWS) {
            int n = h - y0 < ROWS ? h - y0 : ROWS;
            if (GDALRasterIO(GDALGetRasterBand(ref, 1), GF_Read, 0, y0, w, n, rb, w, n, GDT_Float64,
                             0, 0) != CE_None ||
                GDALRasterIO(GDALGetRasterBand(o, 1), GF_Read, 0, y0, w, n, ob, w, n, GDT_Float64,
                             0, 0) != CE_None) {
                bad = 1;
                break;
            }
            for (size_t k = 0; k < (size_t)w * n; k++) {
                if (isnan(rb[k]) || isnan(ob[k])) {
                    nan_mismatch += isnan(rb[k]) != isnan(ob[k]);
                    continue;
                }
                double d = fabs(rb[k] - ob[k]);
                if (d > maxd) maxd = d;
            }
        }
        printf("max |%s - %s| = %.6g%s\n", argv[i], argv[a], maxd,
               nan_mismatch ? " (and NaN mismatches)" : "");
        if (maxd > tol || nan_mismatch) bad = 1;
        GDALClose(o);
    }
    free(rb);
    free(ob);
    GDALClose(ref);
    return bad;
}
