/* The writer actor: one output file of a job (see io.h). */
#include "actors/io.h"

#include "actors/job.h"
#include "bufpool.h"
#include "log.h"
#include "ops/io.h"
#include "util.h"

#include <cpl_error.h>
#include <cpl_string.h>
#include <gdal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { W_OPEN = 1, W_WRITE, W_CLOSE, W_COMMIT, W_ABORT };

typedef struct wmsg {
    pg_msg base;
    int64_t k;
    size_t bytes;  /* W_WRITE: the tile's budget, handed back to the job */
    pg_tile *tile; /* NULL: tile K failed or was skipped (ERR says why) */
    pg_error err;
} wmsg;

/* A tile that arrived before its turn. */
typedef struct early {
    int64_t k;
    pg_tile *tile;
    pg_error err;
    size_t bytes;
} early;

struct pg_writer {
    pg_actor actor; /* first */
    /* Not a counted reference: the job outlives every message we send it,
     * since it ends only after our answer to its last message. */
    pg_actor *job;
    int sweep;
    const pg_node *node; /* the io.save node (the job's plan outlives us) */
    const pg_save_state *st;
    pg_tiling tiling;
    char tmp[4096];   /* where tiles are written */
    char final[4096]; /* what COMMIT renames (== tmp, or the COG copy) */
    GDALDatasetH ds;
    /* Whole blocks of the file's type can be written straight to the file
     * (GDALWriteBlock) instead of through GDAL's block cache, whose fresh
     * blocks cost a page fault per 4 KiB: GTiff only, one band or band
     * interleaved, so that a band's block stands alone. */
    bool direct;
    int block_w, block_h;
    pg_celltype file_type;
    void *block; /* one block of the file's type: padding edge tiles, converting */
    /* Tiles are written in tile order, whatever order they are computed
     * in, so the file's bytes (block offsets included) do not depend on the
     * number of workers. At most the job's in-flight tiles wait here. */
    int64_t next_k;
    early *early;
    int nearly, capearly;
    pg_error err; /* the first failure; later writes are dropped */
};

static int w_fail(pg_writer *w, int code, const char *what)
{
    if (w->err.code == 0) {
        pg_error_set(&w->err, code, "%s '%s': %s", what, w->st->relpath, CPLGetLastErrorMsg());
        pg_error_node(&w->err, w->node->name);
    }
    return code;
}

static int w_open(pg_writer *w)
{
    const pg_raster_info *ri = &w->node->info;
    GDALDriverH drv = GDALGetDriverByName("GTiff");
    if (drv == NULL) return w_fail(w, PG_EIO, "GTiff driver missing for");
    char **opt = NULL;
    /* The tile grid is the file's block grid when GTiff allows it (blocks
     * are multiples of 16), so every tile write is whole blocks. */
    if (w->tiling.tile_w == ri->width && w->tiling.tile_w != w->tiling.tile_h) {
        opt = CSLSetNameValue(opt, "TILED", "NO");
        char rows[32];
        snprintf(rows, sizeof rows, "%lld", (long long)w->tiling.tile_h);
        opt = CSLSetNameValue(opt, "ROWSPERSTRIP", rows);
    } else {
        char bw[32], bh[32];
        int64_t tw = w->tiling.tile_w % 16 == 0 ? w->tiling.tile_w : 256;
        int64_t th = w->tiling.tile_h % 16 == 0 ? w->tiling.tile_h : 256;
        snprintf(bw, sizeof bw, "%lld", (long long)tw);
        snprintf(bh, sizeof bh, "%lld", (long long)th);
        opt = CSLSetNameValue(opt, "TILED", "YES");
        opt = CSLSetNameValue(opt, "BLOCKXSIZE", bw);
        opt = CSLSetNameValue(opt, "BLOCKYSIZE", bh);
    }
    opt = CSLSetNameValue(opt, "BIGTIFF", "IF_SAFER");
    if (ri->bands > 1) opt = CSLSetNameValue(opt, "INTERLEAVE", "BAND");
    if (ri->type == PG_I8) opt = CSLSetNameValue(opt, "PIXELTYPE", "SIGNEDBYTE");
    /* For COG, PNG and JPEG the user's options are that driver's, applied
     * on copy. */
    if (strcmp(w->st->format, "GTiff") == 0)
        for (char **o = w->st->options; o && *o; o++) {
            char *key = NULL;
            const char *val = CPLParseNameValue(*o, &key);
            if (key && val) opt = CSLSetNameValue(opt, key, val);
            CPLFree(key);
        }
    CPLErrorReset();
    w->ds = GDALCreate(drv, w->tmp, (int)ri->width, (int)ri->height, ri->bands,
                       pg_celltype_to_gdal(ri->type), opt);
    CSLDestroy(opt);
    if (w->ds == NULL) return w_fail(w, PG_EIO, "cannot create");
    if (ri->has_geotransform) GDALSetGeoTransform(w->ds, (double *)ri->geotransform);
    if (ri->crs_wkt && *ri->crs_wkt) GDALSetProjection(w->ds, ri->crs_wkt);
    if (ri->has_nodata)
        for (int b = 1; b <= ri->bands; b++)
            GDALSetRasterNoDataValue(GDALGetRasterBand(w->ds, b), ri->nodata);
    GDALGetBlockSize(GDALGetRasterBand(w->ds, 1), &w->block_w, &w->block_h);
    const char *il = GDALGetMetadataItem(w->ds, "INTERLEAVE", "IMAGE_STRUCTURE");
    w->file_type = ri->type;
    /* Direct block writes need tiles that are the file's blocks (the job's
     * tiling: 16-multiples or whole strips) and bands stored apart. */
    w->direct = (ri->bands == 1 || (il != NULL && strcmp(il, "BAND") == 0)) &&
                w->block_w == w->tiling.tile_w && w->block_h == w->tiling.tile_h;
    if (w->direct) {
        w->block = malloc((size_t)w->block_w * (size_t)w->block_h * pg_celltype_size(ri->type));
        if (w->block == NULL) w->direct = false;
    }
    return 0;
}

/* Writes T as whole blocks with GDALWriteBlock: straight to the file, past
 * GDAL's block cache (whose fresh blocks cost a page fault per 4 KiB, and
 * whose flushes would come in an order set by other threads). A tile that
 * is not one whole block of the file's type (an edge tile, or one to
 * convert) goes through W->block, padded with nodata. */
static CPLErr w_write_blocks(pg_writer *w, const pg_tile *t)
{
    const pg_raster_info *ri = &w->node->info;
    size_t cs = pg_celltype_size(t->type), fcs = pg_celltype_size(w->file_type);
    size_t plane = cs * (size_t)t->win.w * (size_t)t->win.h;
    int bx = (int)(t->win.x / w->block_w), by = (int)(t->win.y / w->block_h);
    bool whole = t->win.w == w->block_w && t->win.h == w->block_h && t->type == w->file_type;
    for (int b = 0; b < t->bands; b++) {
        const char *src = (const char *)t->data + plane * (size_t)b;
        if (!whole) {
            double fill = ri->has_nodata ? ri->nodata : 0;
            size_t n = (size_t)w->block_w * (size_t)w->block_h;
            GDALCopyWords64(&fill, GDT_Float64, 0, w->block, pg_celltype_to_gdal(w->file_type),
                            (int)fcs, (GPtrDiff_t)n);
            for (int64_t y = 0; y < t->win.h; y++)
                GDALCopyWords64(src + (size_t)y * (size_t)t->win.w * cs,
                                pg_celltype_to_gdal(t->type), (int)cs,
                                (char *)w->block + (size_t)y * (size_t)w->block_w * fcs,
                                pg_celltype_to_gdal(w->file_type), (int)fcs, (GPtrDiff_t)t->win.w);
            src = w->block;
        }
        CPLErr rc = GDALWriteBlock(GDALGetRasterBand(w->ds, b + 1), bx, by, (void *)src);
        if (rc != CE_None) return rc;
    }
    return CE_None;
}

/* Tile K's turn has come: write it (unless something failed), answer. */
static void w_write_now(pg_writer *w, int64_t k, pg_tile *t, const pg_error *terr, size_t bytes)
{
    if (w->err.code == 0 && w->ds && t != NULL && terr->code == 0) {
        size_t cs = pg_celltype_size(t->type);
        CPLErrorReset();
        CPLErr rc;
        if (w->direct)
            rc = w_write_blocks(w, t);
        else
            rc = GDALDatasetRasterIOEx(w->ds, GF_Write, (int)t->win.x, (int)t->win.y, (int)t->win.w,
                                       (int)t->win.h, t->data, (int)t->win.w, (int)t->win.h,
                                       pg_celltype_to_gdal(t->type), t->bands, NULL, (GSpacing)cs,
                                       (GSpacing)(cs * (size_t)t->win.w),
                                       (GSpacing)(cs * (size_t)t->win.w * (size_t)t->win.h), NULL);
        if (rc != CE_None) w_fail(w, PG_EIO, "writing");
    }
    pg_error e = {0};
    if (terr->code)
        e = *terr;
    else if (w->err.code)
        e = w->err;
    pg_tile_unref(&t);
    pg_job_send(w->job, PG_JOB_TILE_DONE, w->sweep, k, &e, bytes);
}

static void w_write(pg_writer *w, int64_t k, pg_tile *t, const pg_error *terr, size_t bytes)
{
    if (k != w->next_k) {
        if (w->nearly == w->capearly) {
            int cap = w->capearly ? 2 * w->capearly : 16;
            early *e = realloc(w->early, sizeof *e * (size_t)cap);
            if (e == NULL) { /* cannot wait: write out of order, correct all the same */
                w_write_now(w, k, t, terr, bytes);
                return;
            }
            w->early = e;
            w->capearly = cap;
        }
        w->early[w->nearly++] = (early){k, t, *terr, bytes};
        return;
    }
    w_write_now(w, k, t, terr, bytes);
    w->next_k++;
    for (int i = 0; i < w->nearly;) {
        if (w->early[i].k != w->next_k) {
            i++;
            continue;
        }
        early e = w->early[i];
        w->early[i] = w->early[--w->nearly];
        w_write_now(w, e.k, e.tile, &e.err, e.bytes);
        w->next_k++;
        i = 0;
    }
}

static int w_close(pg_writer *w)
{
    if (w->err.code) return w->err.code;
    if (w->ds == NULL) return w_fail(w, PG_EIO, "nothing was opened for");
    /* GDAL 3.6's GDALClose returns nothing: a failed flush shows as the
     * last error. */
    CPLErrorReset();
    GDALClose(w->ds);
    w->ds = NULL;
    if (CPLGetLastErrorType() >= CE_Failure) return w_fail(w, PG_EIO, "cannot finish writing");
    if (strcmp(w->st->format, "GTiff") != 0) {
        /* COG, PNG and JPEG drivers only copy: turn the tiled temporary
         * GeoTIFF into the final file under a second name. PNG and JPEG
         * would put the georeferencing in a .aux.xml beside the temporary
         * name, which the rename would orphan: they go without. */
        char copy[4200];
        snprintf(copy, sizeof copy, "%s.copy", w->tmp);
        GDALDriverH drv = GDALGetDriverByName(w->st->format);
        bool pic = strcmp(w->st->format, "COG") != 0;
        if (pic) CPLSetThreadLocalConfigOption("GDAL_PAM_ENABLED", "NO");
        GDALDatasetH src = GDALOpen(w->tmp, GA_ReadOnly);
        GDALDatasetH dst = NULL;
        CPLErrorReset();
        if (drv && src) dst = GDALCreateCopy(drv, copy, src, FALSE, w->st->options, NULL, NULL);
        int ok = dst != NULL;
        if (dst) {
            CPLErrorReset();
            GDALClose(dst);
            if (CPLGetLastErrorType() >= CE_Failure) ok = 0;
        }
        if (src) GDALClose(src);
        if (pic) CPLSetThreadLocalConfigOption("GDAL_PAM_ENABLED", NULL);
        unlink(w->tmp);
        if (!ok) {
            unlink(copy);
            return w_fail(w, PG_EIO, "cannot write");
        }
        if (pg_strlcpy(w->tmp, copy, sizeof w->tmp) >= sizeof w->tmp) {
            unlink(copy);
            return w_fail(w, PG_EIO, "path too long for");
        }
    }
    return 0;
}

static void w_discard(pg_writer *w)
{
    if (w->ds) {
        GDALClose(w->ds);
        w->ds = NULL;
    }
    if (w->tmp[0]) unlink(w->tmp);
    char copy[4200];
    snprintf(copy, sizeof copy, "%s.copy", w->tmp);
    unlink(copy);
}

static void w_behave(pg_actor *self, pg_msg *m)
{
    pg_writer *w = (pg_writer *)self;
    wmsg *wm = (wmsg *)m;
    pg_error none = {0};
    switch (m->type) {
    case W_OPEN:
        w_open(w);
        break;
    case W_WRITE:
        w_write(w, wm->k, wm->tile, &wm->err, wm->bytes);
        break;
    case W_CLOSE:
        w_close(w);
        pg_job_send(w->job, PG_JOB_WRITER_CLOSED, w->sweep, 0, w->err.code ? &w->err : &none, 0);
        break;
    case W_COMMIT:
        if (w->err.code == 0 && rename(w->tmp, w->st->path) != 0) {
            pg_error_set(&w->err, PG_EIO, "cannot rename the output into place: '%s'",
                         w->st->relpath);
            pg_error_node(&w->err, w->node->name);
            w_discard(w);
        } else {
            w->tmp[0] = '\0';
        }
        pg_job_send(w->job, PG_JOB_WRITER_ENDED, w->sweep, 0, w->err.code ? &w->err : &none, 0);
        break;
    case W_ABORT:
        w_discard(w);
        w->tmp[0] = '\0';
        pg_job_send(w->job, PG_JOB_WRITER_ENDED, w->sweep, 0, &none, 0);
        break;
    }
    free(m);
}

static void w_free(pg_actor *a)
{
    pg_writer *w = (pg_writer *)a;
    w_discard(w); /* only does something if the job never ended us */
    for (int i = 0; i < w->nearly; i++)
        pg_tile_unref(&w->early[i].tile);
    free(w->early);
    free(w->block);
    free(w);
}

pg_writer *pg_writer_new(pg_actor *job, int sweep, const pg_node *node, const pg_tiling *tiling,
                         uint64_t job_seq)
{
    pg_writer *w = calloc(1, sizeof *w);
    if (w == NULL) return NULL;
    pg_actor_init(&w->actor, w_behave, w_free);
    w->job = job;
    w->sweep = sweep;
    w->node = node;
    w->st = node->state;
    w->tiling = *tiling;
    /* A hidden name in the destination directory: rename() is then atomic
     * and never crosses a file system. */
    const char *slash = strrchr(w->st->path, '/');
    int dirlen = slash ? (int)(slash - w->st->path) : 0;
    snprintf(w->tmp, sizeof w->tmp, "%.*s/.%s.pergola-%ld-%llu.tmp", dirlen, w->st->path,
             slash ? slash + 1 : w->st->path, (long)getpid(), (unsigned long long)job_seq);
    return w;
}

static void w_send(pg_writer *w, int type, int64_t k, pg_tile *t, const pg_error *err, size_t bytes)
{
    wmsg *m = calloc(1, sizeof *m);
    if (m == NULL) {
        pg_log_error("out of memory sending a message to a writer");
        abort();
    }
    m->base.type = type;
    m->k = k;
    m->tile = t;
    m->bytes = bytes;
    if (err) m->err = *err;
    pg_actor_send(&w->actor, &m->base);
}

void pg_writer_open(pg_writer *w)
{
    w_send(w, W_OPEN, 0, NULL, NULL, 0);
}

void pg_writer_write(pg_writer *w, int64_t k, pg_tile *tile, const pg_error *err, size_t bytes)
{
    w_send(w, W_WRITE, k, tile, err, bytes);
}

void pg_writer_close(pg_writer *w)
{
    w_send(w, W_CLOSE, 0, NULL, NULL, 0);
}

void pg_writer_commit(pg_writer *w)
{
    w_send(w, W_COMMIT, 0, NULL, NULL, 0);
}

void pg_writer_abort(pg_writer *w)
{
    w_send(w, W_ABORT, 0, NULL, NULL, 0);
}

void pg_writer_release(pg_writer **wp)
{
    pg_writer *w = *wp;
    *wp = NULL;
    if (w) pg_actor_unref(&w->actor);
}
