/* pergola-bench-gdal-loop OUT.tif IN1.tif [IN2.tif ...]
 *
 * The baseline Pergola's local.add is measured against: what a careful programmer writes
 * with GDAL's C API in one thread. It walks the output's 256x256 blocks in row-major
 * order, reads the same window of every input (band 1) into buffers allocated once, sums
 * them in float32 left to right (((a + b) + c) + d, the same order numpy uses for
 * A+B+C+D), and writes a tiled, uncompressed Float32 GeoTIFF with the first input's
 * georeferencing. GDAL's block cache is limited to 16 MB: with the default (5% of RAM)
 * the loop spends most of its time faulting in fresh cache pages (DESIGN.md, Memory). */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <gdal.h>

#define BLOCK 256

int main(int argc, char **argv)
{
    if (argc < 3 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fprintf(stderr, "usage: pergola-bench-gdal-loop OUT.tif IN1.tif [IN2.tif ...]\n"
                        "Sums band 1 of the inputs cell by cell (float32) into OUT.tif.\n");
        return 2;
    }
    GDALAllRegister();
    GDALSetCacheMax64((GIntBig)16 << 20);
    CPLSetConfigOption("GDAL_PAM_ENABLED", "NO");

    int n = argc - 2;
    GDALDatasetH *in = calloc((size_t)n, sizeof *in);
    float **buf = calloc((size_t)n, sizeof *buf);
    if (!in || !buf) return 1;
    int w = 0, h = 0;
    for (int i = 0; i < n; i++) {
        in[i] = GDALOpen(argv[i + 2], GA_ReadOnly);
        if (!in[i]) {
            fprintf(stderr, "pergola-bench-gdal-loop: cannot open %s\n", argv[i + 2]);
            return 1;
        }
        int iw = GDALGetRasterXSize(in[i]), ih = GDALGetRasterYSize(in[i]);
        if (i == 0) {
            w = iw;
            h = ih;
        } else if (iw != w || ih != h) {
            fprintf(stderr, "pergola-bench-gdal-loop: %s is %dx%d, %s is %dx%d\n", argv[2], w, h,
                    argv[i + 2], iw, ih);
            return 1;
        }
        buf[i] = malloc(sizeof(float) * BLOCK * BLOCK);
        if (!buf[i]) return 1;
    }

    char **co = NULL;
    co = CSLSetNameValue(co, "TILED", "YES");
    co = CSLSetNameValue(co, "BLOCKXSIZE", "256");
    co = CSLSetNameValue(co, "BLOCKYSIZE", "256");
    co = CSLSetNameValue(co, "COMPRESS", "NONE");
    GDALDatasetH out = GDALCreate(GDALGetDriverByName("GTiff"), argv[1], w, h, 1, GDT_Float32, co);
    CSLDestroy(co);
    if (!out) return 1;
    double gt[6];
    if (GDALGetGeoTransform(in[0], gt) == CE_None) GDALSetGeoTransform(out, gt);
    OGRSpatialReferenceH srs = GDALGetSpatialRef(in[0]);
    if (srs) GDALSetSpatialRef(out, srs);
    GDALRasterBandH ob = GDALGetRasterBand(out, 1);

    int ok = 1;
    for (int y0 = 0; ok && y0 < h; y0 += BLOCK) {
        int bh = h - y0 < BLOCK ? h - y0 : BLOCK;
        for (int x0 = 0; ok && x0 < w; x0 += BLOCK) {
            int bw = w - x0 < BLOCK ? w - x0 : BLOCK;
            for (int i = 0; ok && i < n; i++)
                ok = GDALRasterIO(GDALGetRasterBand(in[i], 1), GF_Read, x0, y0, bw, bh, buf[i], bw,
                                  bh, GDT_Float32, 0, 0) == CE_None;
            size_t cells = (size_t)bw * bh;
            float *acc = buf[0];
            for (int i = 1; i < n; i++) {
                const float *b = buf[i];
                for (size_t k = 0; k < cells; k++)
                    acc[k] += b[k];
            }
            ok = ok && GDALRasterIO(ob, GF_Write, x0, y0, bw, bh, acc, bw, bh, GDT_Float32, 0, 0) ==
                           CE_None;
        }
    }
    GDALClose(out);
    for (int i = 0; i < n; i++) {
        GDALClose(in[i]);
        free(buf[i]);
    }
    free(in);
    free(buf);
    if (!ok || CPLGetLastErrorType() >= CE_Failure) {
        fprintf(stderr, "pergola-bench-gdal-loop: failed writing %s\n", argv[1]);
        return 1;
    }
    return 0;
}
