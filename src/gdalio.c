/* Raster reads through GDAL, with per-thread dataset handles (gdalio.h). */
#include "gdalio.h"

#include "log.h"
#include "util.h"

#include <cpl_conv.h>
#include <cpl_error.h>
#include <gdal.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define HANDLES_PER_THREAD 16

typedef struct handle {
    char *path;
    pg_file_id id;
    GDALDatasetH ds;
    uint64_t used; /* LRU clock */
} handle;

static _Thread_local handle cache[HANDLES_PER_THREAD];
static _Thread_local uint64_t clock_;

static void CPL_STDCALL gdal_log(CPLErr cls, CPLErrorNum num, const char *msg)
{
    /* GDAL reports failures through CPLGetLastErrorMsg as well, which is
     * what our errors carry; here it only feeds the debug log. */
    if (cls >= CE_Failure)
        pg_log_debug("gdal error %d: %s", (int)num, msg);
    else
        pg_log_debug("gdal: %s", msg);
}

void pg_gdalio_init(int64_t cache_bytes)
{
    GDALAllRegister();
    GDALSetCacheMax64(cache_bytes);
    CPLSetErrorHandler(gdal_log);
    /* Never let a file name reach GDAL's network or archive layers by
     * accident, and never let it go looking for sidecar files it does not
     * need on every open. */
    CPLSetConfigOption("GDAL_DISABLE_READDIR_ON_OPEN", "EMPTY_DIR");
    CPLSetConfigOption("CPL_VSIL_CURL_ALLOWED_EXTENSIONS", "none");
}

void pg_gdalio_thread_exit(void)
{
    for (int i = 0; i < HANDLES_PER_THREAD; i++) {
        if (cache[i].ds) GDALClose(cache[i].ds);
        free(cache[i].path);
        memset(&cache[i], 0, sizeof cache[i]);
    }
}

int pg_file_identify(const char *path, pg_file_id *id)
{
    struct stat st;
    if (stat(path, &st) != 0) return PG_ENOTFOUND;
    id->dev = (uint64_t)st.st_dev;
    id->ino = (uint64_t)st.st_ino;
    id->size = (int64_t)st.st_size;
    id->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    return 0;
}

static int same_id(const pg_file_id *a, const pg_file_id *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime_ns == b->mtime_ns;
}

void *pg_gdalio_open(const char *path, const pg_file_id *id, pg_error *err)
{
    int victim = 0;
    for (int i = 0; i < HANDLES_PER_THREAD; i++) {
        if (cache[i].ds && same_id(&cache[i].id, id) && strcmp(cache[i].path, path) == 0) {
            cache[i].used = ++clock_;
            return cache[i].ds;
        }
        if (cache[i].used < cache[victim].used) victim = i;
    }
    CPLErrorReset();
    GDALDatasetH ds = GDALOpenEx(path, GDAL_OF_RASTER | GDAL_OF_READONLY | GDAL_OF_VERBOSE_ERROR,
                                 NULL, NULL, NULL);
    if (ds == NULL) {
        pg_error_set(err, PG_EFORMAT, "cannot read as a raster: %s", CPLGetLastErrorMsg());
        return NULL;
    }
    /* Formats that point at other files or at the network (a VRT inside
     * the data root can name /etc/shadow or a URL) would let a graph read
     * past the data root: refuse them. */
    static const char *const refused[] = {"VRT",    "WMS",  "WMTS",   "WCS",           "HTTP",
                                          "EEDAI",  "DAAS", "OGCAPI", "PLMOSAIC",      "STACTA",
                                          "STACIT", "GTI",  "ESRIC",  "PostGISRaster", NULL};
    const char *drv = GDALGetDriverShortName(GDALGetDatasetDriver(ds));
    for (const char *const *r = refused; drv && *r; r++)
        if (strcmp(drv, *r) == 0) {
            GDALClose(ds);
            pg_error_set(err, PG_EPATH,
                         "the %s format can refer to other files or to the network; it is "
                         "not allowed",
                         drv);
            return NULL;
        }
    handle *h = &cache[victim];
    if (h->ds) GDALClose(h->ds);
    free(h->path);
    h->path = strdup(path);
    if (h->path == NULL) {
        GDALClose(ds);
        memset(h, 0, sizeof *h);
        pg_error_set(err, PG_ENOMEM, "out of memory");
        return NULL;
    }
    h->id = *id;
    h->ds = ds;
    h->used = ++clock_;
    return ds;
}

static void fill_cells(pg_tile *t, double v)
{
    size_t n = t->nbytes / pg_celltype_size(t->type);
    GDALCopyWords64(&v, GDT_Float64, 0, t->data, pg_celltype_to_gdal(t->type),
                    (int)pg_celltype_size(t->type), (GPtrDiff_t)n);
}

int pg_gdalio_read(const char *path, const pg_file_id *id, const int *bands, int nbands,
                   pg_tile *out, double fill, pg_error *err)
{
    GDALDatasetH ds = pg_gdalio_open(path, id, err);
    if (ds == NULL) return err ? err->code : PG_EFORMAT;
    int64_t W = GDALGetRasterXSize(ds), H = GDALGetRasterYSize(ds);
    pg_window w = out->win;
    /* The part of the window inside the raster. */
    int64_t x0 = w.x < 0 ? 0 : w.x, y0 = w.y < 0 ? 0 : w.y;
    int64_t x1 = w.x + w.w > W ? W : w.x + w.w, y1 = w.y + w.h > H ? H : w.y + w.h;
    if (x0 != w.x || y0 != w.y || x1 != w.x + w.w || y1 != w.y + w.h) fill_cells(out, fill);
    if (x1 <= x0 || y1 <= y0) return 0;
    size_t cs = pg_celltype_size(out->type);
    /* A window that is exactly one block of the file, in the file's type:
     * read the blocks straight into the tile (GDALReadBlock decodes into our
     * buffer) rather than through GDAL's block cache, which would allocate
     * fresh blocks (a page fault per 4 KiB) and copy them again. */
    GDALRasterBandH b0 = GDALGetRasterBand(ds, bands[0]);
    int bw = 0, bh = 0;
    GDALGetBlockSize(b0, &bw, &bh);
    const char *il = GDALGetMetadataItem(ds, "INTERLEAVE", "IMAGE_STRUCTURE");
    if (w.w == bw && w.h == bh && w.x % bw == 0 && w.y % bh == 0 && x1 - x0 == w.w &&
        y1 - y0 == w.h && (GDALGetRasterCount(ds) == 1 || (il && strcmp(il, "BAND") == 0))) {
        size_t plane = cs * (size_t)w.w * (size_t)w.h;
        int direct = 1;
        for (int i = 0; i < nbands && direct; i++) {
            GDALRasterBandH b = GDALGetRasterBand(ds, bands[i]);
            int tw = 0, th = 0;
            GDALGetBlockSize(b, &tw, &th);
            direct = tw == bw && th == bh &&
                     (int)GDALGetRasterDataType(b) == pg_celltype_to_gdal(out->type);
        }
        if (direct) {
            CPLErrorReset();
            for (int i = 0; i < nbands; i++)
                if (GDALReadBlock(GDALGetRasterBand(ds, bands[i]), (int)(w.x / bw), (int)(w.y / bh),
                                  (char *)out->data + plane * (size_t)i) != CE_None)
                    return pg_error_set(err, PG_EIO, "reading block %lld,%lld failed: %s",
                                        (long long)(w.x / bw), (long long)(w.y / bh),
                                        CPLGetLastErrorMsg());
            return 0;
        }
    }
    char *dst = (char *)out->data + ((size_t)(y0 - w.y) * (size_t)w.w + (size_t)(x0 - w.x)) * cs;
    CPLErrorReset();
    CPLErr e = GDALDatasetRasterIOEx(
        ds, GF_Read, (int)x0, (int)y0, (int)(x1 - x0), (int)(y1 - y0), dst, (int)(x1 - x0),
        (int)(y1 - y0), pg_celltype_to_gdal(out->type), nbands, (int *)bands, (GSpacing)cs,
        (GSpacing)(cs * (size_t)w.w), (GSpacing)(cs * (size_t)w.w * (size_t)w.h), NULL);
    if (e != CE_None)
        return pg_error_set(err, PG_EIO, "reading window %lld,%lld %lldx%lld failed: %s",
                            (long long)x0, (long long)y0, (long long)(x1 - x0),
                            (long long)(y1 - y0), CPLGetLastErrorMsg());
    return 0;
}
