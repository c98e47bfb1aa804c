/* Check suite for pergola-mkraster: runs the executable (PERGOLA_MKRASTER), reads the
 * rasters back with GDAL and compares every cell with the formulas documented in its
 * --help, recomputed here independently, plus nodata, layout, CRS and geotransform.
 * Other suites and benchmarks trust these rasters, so the formulas are the contract. */

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cpl_conv.h>
#include <cpl_string.h>
#include <gdal.h>
#include <ogr_srs_api.h>

static char tmpdir[256];

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void setup(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/pergola-mkraster-XXXXXX", base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    GDALAllRegister();
    /* Reading must not leave .aux.xml files behind (the temp dir is removed anyway, but
     * the leftover-file test below counts files). */
    CPLSetConfigOption("GDAL_PAM_ENABLED", "NO");
}

static void teardown(void)
{
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *path_in_tmp(const char *name)
{
    static char buf[4][512];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", tmpdir, name);
    return p;
}

/* Runs pergola-mkraster with the NULL-terminated arguments; returns its exit status
 * (or -1 if it did not exit normally). Its output goes to tmpdir/mk.log. */
static int run_mk(const char *arg0, ...)
{
    const char *exe = getenv("PERGOLA_MKRASTER");
    ck_assert_msg(exe != NULL, "PERGOLA_MKRASTER is not set (tests/meson.build sets it)");
    const char *argv[64];
    int n = 0;
    argv[n++] = exe;
    va_list ap;
    va_start(ap, arg0);
    for (const char *a = arg0; a; a = va_arg(ap, const char *)) {
        ck_assert_int_lt(n, 63);
        argv[n++] = a;
    }
    va_end(ap);
    argv[n] = NULL;

    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int fd = open(path_in_tmp("mk.log"), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        ck_assert_int_eq(errno, EINTR);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- the documented formulas, written out again from the --help text ---- */

enum { U8, I8, U16, I16, U32, I32, F32, F64, NTYPES };
static const char *const TYPE_NAMES[NTYPES] = {"u8",  "i8",  "u16", "i16",
                                               "u32", "i32", "f32", "f64"};
static const GDALDataType GDAL_TYPES[NTYPES] = {GDT_Byte,   GDT_Byte,  GDT_UInt16,  GDT_Int16,
                                                GDT_UInt32, GDT_Int32, GDT_Float32, GDT_Float64};
static const double TYPE_MIN[NTYPES] = {0, -128, 0, -32768, 0, -2147483648.0};
static const double TYPE_MAX[NTYPES] = {255, 127, 65535, 32767, 4294967295.0, 2147483647.0};

static bool is_float(int t)
{
    return t == F32 || t == F64;
}

static double gradient(int t, int x, int y, int b)
{
    static const uint64_t mod[] = {251, 251, 65521, 65521, 4294967291u, 2147483647u};
    static const int64_t off[] = {0, -125, 0, -32760, 0, -1073741823};
    uint64_t s = (uint64_t)x + 2 * (uint64_t)y + 7 * (uint64_t)b;
    if (t == F32) return (float)(s / 4.0);
    if (t == F64) return s / 4.0;
    return (double)((int64_t)(s % mod[t]) + off[t]);
}

static uint64_t splitmix(uint64_t seed, uint64_t i)
{
    uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15u;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

static double random_cell(int t, uint64_t seed, int W, int H, int x, int y, int b)
{
    uint64_t r = splitmix(seed, ((uint64_t)b * H + y) * W + x);
    switch (t) {
    case U8:
        return (double)(r >> 56);
    case I8:
        return (double)(int8_t)(uint8_t)(r >> 56);
    case U16:
        return (double)(r >> 48);
    case I16:
        return (double)(int16_t)(uint16_t)(r >> 48);
    case U32:
        return (double)(r >> 32);
    case I32:
        return (double)(int32_t)(uint32_t)(r >> 32);
    case F32:
        return (float)((double)(r >> 40) * 1000.0 / 16777216.0);
    default:
        return (double)(r >> 24) * 1000.0 / 1099511627776.0;
    }
}

static double checker(int x, int y, int b)
{
    return ((x / 16 + y / 16 + b) % 2) ? 100 : 0;
}

static double dem(int t, double cell, int x, int y, int b)
{
    const double pi = 3.14159265358979323846;
    double u = (x + 0.5) * cell, w = (y + 0.5) * cell;
    double h =
        950 + 450 * sin(2 * pi * u / 20000) * cos(2 * pi * w / 26000) +
        550 * exp(-((u - 7000) * (u - 7000) + (w - 9000) * (w - 9000)) / (2 * 3000.0 * 3000)) -
        350 * exp(-((u - 15000) * (u - 15000) + (w - 4000) * (w - 4000)) / (2 * 2500.0 * 2500)) +
        40 * sin(2 * pi * (u + w) / 1700) + 10 * b;
    if (t == F64) return h;
    if (t == F32) return (float)h;
    h = round(h);
    return h < TYPE_MIN[t] ? TYPE_MIN[t] : h > TYPE_MAX[t] ? TYPE_MAX[t] : h;
}

/* ---- reading back ---- */

struct raster {
    GDALDatasetH ds;
    int w, h, bands;
};

static struct raster open_raster(const char *path)
{
    struct raster r = {GDALOpen(path, GA_ReadOnly), 0, 0, 0};
    ck_assert_msg(r.ds != NULL, "GDAL cannot open %s", path);
    r.w = GDALGetRasterXSize(r.ds);
    r.h = GDALGetRasterYSize(r.ds);
    r.bands = GDALGetRasterCount(r.ds);
    return r;
}

/* Band b (1-based) as doubles; i8 is stored as a SIGNEDBYTE Byte band (GDAL 3.6) and is
 * reinterpreted here, which also checks that the PIXELTYPE tag is present. */
static double *read_band(struct raster *r, int b, int t)
{
    GDALRasterBandH band = GDALGetRasterBand(r->ds, b);
    ck_assert_int_eq(GDALGetRasterDataType(band), GDAL_TYPES[t]);
    const char *pt = GDALGetMetadataItem(band, "PIXELTYPE", "IMAGE_STRUCTURE");
    if (t == I8) ck_assert_msg(pt && !strcmp(pt, "SIGNEDBYTE"), "i8 band lacks SIGNEDBYTE");
    size_t n = (size_t)r->w * r->h;
    double *v = malloc(n * sizeof *v);
    ck_assert_ptr_nonnull(v);
    if (t == I8) {
        int8_t *raw = malloc(n);
        ck_assert_ptr_nonnull(raw);
        ck_assert_int_eq(
            GDALRasterIO(band, GF_Read, 0, 0, r->w, r->h, raw, r->w, r->h, GDT_Byte, 0, 0),
            CE_None);
        for (size_t i = 0; i < n; i++)
            v[i] = raw[i];
        free(raw);
    } else {
        ck_assert_int_eq(
            GDALRasterIO(band, GF_Read, 0, 0, r->w, r->h, v, r->w, r->h, GDT_Float64, 0, 0),
            CE_None);
    }
    return v;
}

static int type_of(const char *name)
{
    for (int t = 0; t < NTYPES; t++)
        if (!strcmp(TYPE_NAMES[t], name)) return t;
    ck_abort_msg("bad type %s", name);
    return -1;
}

/* ---- cell-by-cell checks for each pattern and type ---- */

enum pat { GRADIENT, RANDOM, CHECKER, CONST, DEM };

struct cell_case {
    const char *type;
    enum pat pat;
    const char *pattern_arg;
    int w, h, bands;
    const char *block; /* "--block N" value, or NULL for --striped */
};

static const struct cell_case CELL_CASES[] = {
    {"u8", GRADIENT, "gradient", 300, 70, 2, "16"},
    {"i8", GRADIENT, "gradient", 300, 70, 2, "32"},
    {"u16", GRADIENT, "gradient", 37, 23, 3, "16"},
    {"i16", GRADIENT, "gradient", 37, 23, 1, NULL},
    {"u32", GRADIENT, "gradient", 37, 23, 2, "16"},
    {"i32", GRADIENT, "gradient", 37, 23, 2, "256"},
    {"f32", GRADIENT, "gradient", 37, 23, 2, "16"},
    {"f64", GRADIENT, "gradient", 37, 23, 2, NULL},
    {"u8", RANDOM, "random", 41, 29, 2, "16"},
    {"i8", RANDOM, "random", 41, 29, 2, NULL},
    {"u16", RANDOM, "random", 41, 29, 2, "32"},
    {"i16", RANDOM, "random", 41, 29, 2, "16"},
    {"u32", RANDOM, "random", 41, 29, 2, "16"},
    {"i32", RANDOM, "random", 41, 29, 2, NULL},
    {"f32", RANDOM, "random", 41, 29, 2, "16"},
    {"f64", RANDOM, "random", 41, 29, 2, "16"},
    {"u8", CHECKER, "checker", 50, 40, 2, "16"},
    {"f32", CHECKER, "checker", 50, 40, 1, NULL},
    {"i16", CONST, "const:-5", 20, 10, 2, "16"},
    {"f64", CONST, "const:3.25", 20, 10, 1, "16"},
    {"u32", CONST, "const:4294967295", 20, 10, 1, NULL},
    {"f32", DEM, "dem", 64, 48, 2, "16"},
    {"f64", DEM, "dem", 64, 48, 1, "16"},
    {"i16", DEM, "dem", 64, 48, 1, NULL},
    {"u8", DEM, "dem", 64, 48, 1, "16"}, /* clamps at 255 */
};

static double expected(const struct cell_case *c, int t, int x, int y, int b)
{
    switch (c->pat) {
    case GRADIENT:
        return gradient(t, x, y, b);
    case RANDOM:
        return random_cell(t, 42, c->w, c->h, x, y, b);
    case CHECKER:
        return checker(x, y, b);
    case CONST:
        return strtod(c->pattern_arg + 6, NULL);
    default:
        /* A big cell size so that the small raster spans the terrain's features. */
        return dem(t, 250, x, y, b);
    }
}

START_TEST(cells_match_formula)
{
    const struct cell_case *c = &CELL_CASES[_i];
    int t = type_of(c->type);
    char size[32];
    snprintf(size, sizeof size, "%dx%d", c->w, c->h);
    char bands[16];
    snprintf(bands, sizeof bands, "%d", c->bands);
    const char *out = path_in_tmp("r.tif");
    int rc =
        c->block
            ? run_mk(out, "--size", size, "--type", c->type, "--bands", bands, "--pattern",
                     c->pattern_arg, "--seed", "42", "--cell", "250", "--block", c->block, NULL)
            : run_mk(out, "--size", size, "--type", c->type, "--bands", bands, "--pattern",
                     c->pattern_arg, "--seed", "42", "--cell", "250", "--striped", NULL);
    ck_assert_int_eq(rc, 0);

    struct raster r = open_raster(out);
    ck_assert_int_eq(r.w, c->w);
    ck_assert_int_eq(r.h, c->h);
    ck_assert_int_eq(r.bands, c->bands);
    double lo = INFINITY, hi = -INFINITY;
    for (int b = 0; b < c->bands; b++) {
        double *v = read_band(&r, b + 1, t);
        for (int y = 0; y < c->h; y++)
            for (int x = 0; x < c->w; x++) {
                double got = v[(size_t)y * c->w + x], want = expected(c, t, x, y, b);
                /* dem goes through sin/exp: allow last-bit differences in libm, and a
                 * rounding step either way for integer types. */
                double tol = c->pat != DEM ? 0 : is_float(t) ? 1e-9 * fabs(want) : 1;
                if (fabs(got - want) > tol)
                    ck_abort_msg("%s %s: cell (%d,%d) band %d = %.17g, want %.17g", c->pattern_arg,
                                 c->type, x, y, b + 1, got, want);
                lo = fmin(lo, got);
                hi = fmax(hi, got);
            }
        free(v);
    }
    /* The value ranges the --help promises. */
    if (c->pat == RANDOM && is_float(t)) ck_assert(lo >= 0 && hi < 1000 && hi > lo);
    if (c->pat == RANDOM && !is_float(t)) ck_assert(hi > lo);
    if (c->pat == DEM && is_float(t)) ck_assert(lo > 0 && hi < 2100 && hi - lo > 100);
    if (c->pat == DEM && t == U8) ck_assert(hi == 255);
    GDALClose(r.ds);
}
END_TEST

START_TEST(random_is_reproducible_and_seeded)
{
    const char *a = path_in_tmp("a.tif"), *b = path_in_tmp("b.tif"), *c = path_in_tmp("c.tif");
    ck_assert_int_eq(run_mk(a, "--size", "64", "--pattern", "random", "--seed", "7", NULL), 0);
    ck_assert_int_eq(run_mk(b, "--size", "64", "--pattern", "random", "--seed", "7", NULL), 0);
    ck_assert_int_eq(run_mk(c, "--size", "64", "--pattern", "random", "--seed", "8", NULL), 0);
    struct raster ra = open_raster(a), rb = open_raster(b), rc = open_raster(c);
    double *va = read_band(&ra, 1, F32), *vb = read_band(&rb, 1, F32), *vc = read_band(&rc, 1, F32);
    size_t same_ab = 0, same_ac = 0, n = 64 * 64;
    for (size_t i = 0; i < n; i++) {
        same_ab += va[i] == vb[i];
        same_ac += va[i] == vc[i];
    }
    ck_assert_uint_eq(same_ab, n);
    ck_assert_uint_lt(same_ac, 4);
    free(va);
    free(vb);
    free(vc);
    GDALClose(ra.ds);
    GDALClose(rb.ds);
    GDALClose(rc.ds);
}
END_TEST

/* ---- nodata ---- */

struct nodata_case {
    const char *type, *nodata, *every;
};

static const struct nodata_case NODATA_CASES[] = {
    {"f32", "-9999", "7"}, {"u16", "65535", "5"}, {"i8", "-128", "3"},
    {"f64", "nan", "10"},  {"i32", "0", "1"},
};

START_TEST(nodata_every_kth_cell)
{
    const struct nodata_case *c = &NODATA_CASES[_i];
    int t = type_of(c->type);
    const int W = 45, H = 31;
    const char *out = path_in_tmp("n.tif");
    ck_assert_int_eq(run_mk(out, "--size", "45x31", "--type", c->type, "--bands", "2", "--pattern",
                            "gradient", "--nodata", c->nodata, "--nodata-every", c->every,
                            "--block", "16", NULL),
                     0);
    struct raster r = open_raster(out);
    double nd = strtod(c->nodata, NULL);
    long k = strtol(c->every, NULL, 10);
    for (int b = 0; b < 2; b++) {
        int has = 0;
        double got_nd = GDALGetRasterNoDataValue(GDALGetRasterBand(r.ds, b + 1), &has);
        ck_assert(has);
        ck_assert(isnan(nd) ? isnan(got_nd) : got_nd == nd);
        double *v = read_band(&r, b + 1, t);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                double got = v[(size_t)y * W + x];
                bool is_nd = ((long)y * W + x) % k == 0;
                double want = is_nd ? nd : gradient(t, x, y, b);
                bool ok = isnan(want) ? isnan(got) : got == want;
                if (!ok)
                    ck_abort_msg("%s cell (%d,%d) band %d = %g, want %g", c->type, x, y, b + 1, got,
                                 want);
            }
        free(v);
    }
    GDALClose(r.ds);
}
END_TEST

START_TEST(no_nodata_by_default)
{
    const char *out = path_in_tmp("d.tif");
    ck_assert_int_eq(run_mk(out, "--size", "8", NULL), 0);
    struct raster r = open_raster(out);
    int has = 1;
    GDALGetRasterNoDataValue(GDALGetRasterBand(r.ds, 1), &has);
    ck_assert(!has);
    GDALClose(r.ds);
}
END_TEST

/* ---- layout, georeferencing, format ---- */

START_TEST(defaults_layout_crs_geotransform)
{
    const char *out = path_in_tmp("g.tif");
    ck_assert_int_eq(run_mk(out, "--size", "300x200", NULL), 0);
    struct raster r = open_raster(out);
    GDALRasterBandH band = GDALGetRasterBand(r.ds, 1);
    ck_assert_int_eq(GDALGetRasterDataType(band), GDT_Float32);
    int bx, by;
    GDALGetBlockSize(band, &bx, &by);
    ck_assert_int_eq(bx, 256);
    ck_assert_int_eq(by, 256);
    double gt[6];
    ck_assert_int_eq(GDALGetGeoTransform(r.ds, gt), CE_None);
    const double want[6] = {500000, 10, 0, 5000000, 0, -10};
    for (int i = 0; i < 6; i++)
        ck_assert_double_eq(gt[i], want[i]);
    OGRSpatialReferenceH srs = GDALGetSpatialRef(r.ds);
    ck_assert_ptr_nonnull(srs);
    ck_assert_str_eq(OSRGetAuthorityName(srs, NULL), "EPSG");
    ck_assert_str_eq(OSRGetAuthorityCode(srs, NULL), "32633");
    const char *comp = GDALGetMetadataItem(r.ds, "COMPRESSION", "IMAGE_STRUCTURE");
    ck_assert_ptr_null(comp);
    GDALClose(r.ds);
    /* Written to OUT.tmp and renamed: nothing else is left in the directory. */
    ck_assert_int_ne(access(path_in_tmp("g.tif.tmp"), F_OK), 0);
}
END_TEST

START_TEST(custom_block_crs_origin_cell_compress)
{
    const char *out = path_in_tmp("c.tif");
    ck_assert_int_eq(run_mk(out, "--size", "100x70", "--type", "u16", "--block", "32", "--crs",
                            "EPSG:4326", "--origin", "-10.5,45.25", "--cell", "0.125", "--compress",
                            "DEFLATE", NULL),
                     0);
    struct raster r = open_raster(out);
    int bx, by;
    GDALGetBlockSize(GDALGetRasterBand(r.ds, 1), &bx, &by);
    ck_assert_int_eq(bx, 32);
    ck_assert_int_eq(by, 32);
    double gt[6];
    ck_assert_int_eq(GDALGetGeoTransform(r.ds, gt), CE_None);
    const double want[6] = {-10.5, 0.125, 0, 45.25, 0, -0.125};
    for (int i = 0; i < 6; i++)
        ck_assert_double_eq(gt[i], want[i]);
    ck_assert_str_eq(OSRGetAuthorityCode(GDALGetSpatialRef(r.ds), NULL), "4326");
    ck_assert_str_eq(GDALGetMetadataItem(r.ds, "COMPRESSION", "IMAGE_STRUCTURE"), "DEFLATE");
    GDALClose(r.ds);
}
END_TEST

START_TEST(striped_layout)
{
    const char *out = path_in_tmp("s.tif");
    ck_assert_int_eq(run_mk(out, "--size", "100x70", "--striped", "--compress", "LZW", NULL), 0);
    struct raster r = open_raster(out);
    int bx, by;
    GDALGetBlockSize(GDALGetRasterBand(r.ds, 1), &bx, &by);
    ck_assert_int_eq(bx, 100); /* a strip spans the full width */
    ck_assert_int_lt(by, 70);
    ck_assert_str_eq(GDALGetMetadataItem(r.ds, "COMPRESSION", "IMAGE_STRUCTURE"), "LZW");
    GDALClose(r.ds);
}
END_TEST

START_TEST(cog_format)
{
    const char *out = path_in_tmp("cog.tif");
    ck_assert_int_eq(run_mk(out, "--size", "600x500", "--type", "i16", "--format", "COG", "--block",
                            "128", "--compress", "ZSTD", "--pattern", "gradient", NULL),
                     0);
    struct raster r = open_raster(out);
    ck_assert_str_eq(GDALGetMetadataItem(r.ds, "LAYOUT", "IMAGE_STRUCTURE"), "COG");
    ck_assert_str_eq(GDALGetMetadataItem(r.ds, "COMPRESSION", "IMAGE_STRUCTURE"), "ZSTD");
    int bx, by;
    GDALGetBlockSize(GDALGetRasterBand(r.ds, 1), &bx, &by);
    ck_assert_int_eq(bx, 128);
    ck_assert_int_eq(by, 128);
    double *v = read_band(&r, 1, I16);
    for (int y = 0; y < r.h; y++)
        for (int x = 0; x < r.w; x++)
            ck_assert_double_eq(v[(size_t)y * r.w + x], gradient(I16, x, y, 0));
    free(v);
    GDALClose(r.ds);
    /* The intermediate GTiff and OUT.tmp are gone. */
    ck_assert_int_ne(access(path_in_tmp("cog.tif.tmp"), F_OK), 0);
    ck_assert_int_ne(access(path_in_tmp("cog.tif.tmp.src"), F_OK), 0);
}
END_TEST

/* ---- usage ---- */

START_TEST(help_documents_formulas)
{
    ck_assert_int_eq(run_mk("--help", NULL), 0);
    FILE *f = fopen(path_in_tmp("mk.log"), "r");
    ck_assert_ptr_nonnull(f);
    char text[16384];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    ck_assert_ptr_nonnull(strstr(text, "x + 2*y + 7*b"));
    ck_assert_ptr_nonnull(strstr(text, "0x9E3779B97F4A7C15"));
    ck_assert_ptr_nonnull(strstr(text, "floor(x/16)"));
    ck_assert_ptr_nonnull(strstr(text, "(y*W + x) mod K"));
}
END_TEST

static const char *const BAD_ARGS[][8] = {
    {NULL},                         /* no output, no size */
    {"OUT", NULL},                  /* no --size */
    {"OUT", "--size", "0", NULL},   /* empty */
    {"OUT", "--size", "10x", NULL}, /* malformed */
    {"OUT", "--size", "10", "--type", "u64", NULL},
    {"OUT", "--size", "10", "--pattern", "noise", NULL},
    {"OUT", "--size", "10", "--pattern", "const:abc", NULL},
    {"OUT", "--size", "10", "--type", "u8", "--pattern", "const:256", NULL},
    {"OUT", "--size", "10", "--type", "i16", "--nodata", "1.5", NULL},
    {"OUT", "--size", "10", "--nodata-every", "3", NULL}, /* needs --nodata */
    {"OUT", "--size", "10", "--block", "20", NULL},       /* not a multiple of 16 */
    {"OUT", "--size", "10", "--block", "32", "--striped", NULL},
    {"OUT", "--size", "10", "--compress", "JPEG2000", NULL},
    {"OUT", "--size", "10", "--crs", "WGS84", NULL},
    {"OUT", "--size", "10", "--origin", "5", NULL},
    {"OUT", "--size", "10", "--cell", "-1", NULL},
    {"OUT", "--size", "10", "--format", "PNG", NULL},
    {"OUT", "--size", "10", "--bands", "0", NULL},
    {"OUT", "--size", "10", "--frobnicate", NULL},
    {"OUT", "OTHER", "--size", "10", NULL},
};

START_TEST(bad_usage_exits_2)
{
    const char *const *a = BAD_ARGS[_i];
    const char *out = path_in_tmp("bad.tif");
    const char *v[8] = {NULL};
    for (int i = 0; i < 7 && a[i]; i++)
        v[i] = !strcmp(a[i], "OUT") ? out : a[i];
    int rc = run_mk(v[0], v[1], v[2], v[3], v[4], v[5], v[6], NULL);
    ck_assert_msg(rc == 2, "case %d: exit %d, want 2", _i, rc);
    ck_assert_int_ne(access(out, F_OK), 0);
    ck_assert_int_ne(access(path_in_tmp("bad.tif.tmp"), F_OK), 0);
}
END_TEST

START_TEST(unwritable_output_exits_1)
{
    const char *out = path_in_tmp("no/such/dir/x.tif");
    ck_assert_int_eq(run_mk(out, "--size", "10", NULL), 1);
}
END_TEST

static Suite *mkraster_suite(void)
{
    Suite *s = suite_create("mkraster");
    TCase *tc = tcase_create("cells");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, cells_match_formula, 0, sizeof CELL_CASES / sizeof CELL_CASES[0]);
    tcase_add_test(tc, random_is_reproducible_and_seeded);
    suite_add_tcase(s, tc);

    tc = tcase_create("nodata");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, nodata_every_kth_cell, 0, sizeof NODATA_CASES / sizeof NODATA_CASES[0]);
    tcase_add_test(tc, no_nodata_by_default);
    suite_add_tcase(s, tc);

    tc = tcase_create("layout");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, defaults_layout_crs_geotransform);
    tcase_add_test(tc, custom_block_crs_origin_cell_compress);
    tcase_add_test(tc, striped_layout);
    tcase_add_test(tc, cog_format);
    suite_add_tcase(s, tc);

    tc = tcase_create("usage");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, help_documents_formulas);
    tcase_add_loop_test(tc, bad_usage_exits_2, 0, sizeof BAD_ARGS / sizeof BAD_ARGS[0]);
    tcase_add_test(tc, unwritable_output_exits_1);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(mkraster_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
