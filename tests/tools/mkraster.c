/* pergola-mkraster: deterministic sample and test rasters.
 *
 * Every cell value is a pure function of (pattern, type, seed, x, y, band), documented in
 * --help, so that tests can recompute any cell independently of how the file was written
 * (block size, strip order, format). The raster is produced one strip of block-height rows
 * at a time into a single reused buffer, so memory stays bounded for any size and the hot
 * loop does not page-fault on fresh allocations. */

#include <errno.h>
#include <float.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <gdal.h>
#include <ogr_srs_api.h>

#define EXIT_USAGE 2
#define EXIT_FAIL 1

enum cell_type { T_U8, T_I8, T_U16, T_I16, T_U32, T_I32, T_F32, T_F64 };
enum pattern { P_GRADIENT, P_RANDOM, P_CHECKER, P_CONST, P_DEM };

struct type_info {
    const char *name;
    GDALDataType gdal;
    int size;
    bool is_float;
    double min, max;
    /* gradient: v = ((x + 2*y + 7*b) mod grad_mod) + grad_off */
    uint64_t grad_mod;
    int64_t grad_off;
};

/* The moduli are primes just under each type's span so the gradient wraps visibly
 * (exercises the whole value range in small rasters) without ever overflowing. */
static const struct type_info TYPES[] = {
    [T_U8] = {"u8", GDT_Byte, 1, false, 0, 255, 251, 0},
    /* GDAL 3.6 has no GDT_Int8: a Byte band tagged PIXELTYPE=SIGNEDBYTE. */
    [T_I8] = {"i8", GDT_Byte, 1, false, -128, 127, 251, -125},
    [T_U16] = {"u16", GDT_UInt16, 2, false, 0, 65535, 65521, 0},
    [T_I16] = {"i16", GDT_Int16, 2, false, -32768, 32767, 65521, -32760},
    [T_U32] = {"u32", GDT_UInt32, 4, false, 0, 4294967295.0, 4294967291u, 0},
    [T_I32] = {"i32", GDT_Int32, 4, false, -2147483648.0, 2147483647.0, 2147483647u, -1073741823},
    [T_F32] = {"f32", GDT_Float32, 4, true, -HUGE_VAL, HUGE_VAL, 0, 0},
    [T_F64] = {"f64", GDT_Float64, 8, true, -HUGE_VAL, HUGE_VAL, 0, 0},
};

struct opts {
    const char *out;
    int width, height, bands;
    enum cell_type type;
    enum pattern pattern;
    double const_value;
    uint64_t seed;
    bool has_nodata;
    double nodata;
    uint64_t nodata_every;
    int block; /* 0 = striped */
    const char *compress;
    int epsg;
    double origin_x, origin_y, cell;
    bool cog;
};

static const char USAGE[] =
    "usage: pergola-mkraster OUT.tif --size W[xH] [options]\n"
    "\n"
    "Writes a deterministic raster with GDAL (to OUT.tmp, renamed to OUT when complete).\n"
    "\n"
    "options:\n"
    "  --size W[xH]        width and height in cells (H defaults to W); required\n"
    "  --type T            u8|i8|u16|i16|u32|i32|f32|f64 (default f32)\n"
    "  --bands N           number of bands (default 1)\n"
    "  --pattern P         gradient|random|checker|const:V|dem (default gradient)\n"
    "  --seed N            seed of the random pattern (default 0)\n"
    "  --nodata V          band nodata value (must be representable in the type)\n"
    "  --nodata-every K    set every K-th cell to the nodata value (needs --nodata)\n"
    "  --block N           tiled GeoTIFF with NxN blocks, N a multiple of 16 (default 256)\n"
    "  --striped           striped GeoTIFF instead of tiled\n"
    "  --compress C        NONE|DEFLATE|LZW|ZSTD (default NONE)\n"
    "  --crs EPSG:N        coordinate reference system (default EPSG:32633)\n"
    "  --origin X,Y        map coordinates of the top-left corner (default 500000,5000000)\n"
    "  --cell SIZE         square cell size in CRS units (default 10)\n"
    "  --format F          GTiff|COG (default GTiff; a COG uses --block as its tile size)\n"
    "  -h, --help          this text\n"
    "\n"
    "Georeferencing: geotransform = (X, SIZE, 0, Y, 0, -SIZE).\n"
    "\n"
    "Cell formulas. x = column, y = row, b = band - 1 (all 0-based), W and H the size.\n"
    "All arithmetic below is exact unless it says otherwise.\n"
    "\n"
    "  gradient  integer types: v = ((x + 2*y + 7*b) mod M) + OFF with\n"
    "              u8:  M = 251,        OFF = 0          i8:  M = 251,        OFF = -125\n"
    "              u16: M = 65521,      OFF = 0          i16: M = 65521,      OFF = -32760\n"
    "              u32: M = 4294967291, OFF = 0\n"
    "              i32: M = 2147483647, OFF = -1073741823\n"
    "            f32, f64: v = (x + 2*y + 7*b) / 4  (exact while x + 2*y + 7*b < 2^24)\n"
    "  random    r = splitmix64 output number i+1 for seed S, i = (b*H + y)*W + x, i.e.\n"
    "              z = S + (i + 1) * 0x9E3779B97F4A7C15                  (mod 2^64)\n"
    "              z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9; z = (z ^ (z >> 27)) *\n"
    "              0x94D049BB133111EB; r = z ^ (z >> 31)\n"
    "            u8: r >> 56    u16: r >> 48    u32: r >> 32\n"
    "            i8, i16, i32: the u8, u16, u32 value read as two's complement\n"
    "            f32: v = (r >> 40) * 1000 / 2^24 rounded to nearest float, in [0, 1000)\n"
    "            f64: v = (r >> 24) * 1000 / 2^40, in [0, 1000)\n"
    "  checker   v = 100 if (floor(x/16) + floor(y/16) + b) is odd, else 0\n"
    "  const:V   v = V (must be representable in the type; f32 rounds V to nearest float)\n"
    "  dem       a smooth terrain in metres, from the cell centre's offset from the top-left\n"
    "            corner u = (x + 0.5)*SIZE, w = (y + 0.5)*SIZE, computed in double:\n"
    "              h = 950 + 450*sin(2*pi*u/20000)*cos(2*pi*w/26000)\n"
    "                      + 550*exp(-((u - 7000)^2 + (w - 9000)^2) / (2*3000^2))\n"
    "                      - 350*exp(-((u - 15000)^2 + (w - 4000)^2) / (2*2500^2))\n"
    "                      + 40*sin(2*pi*(u + w)/1700) + 10*b\n"
    "            (range about 110..2000); f32 rounds h to nearest float, integer types\n"
    "            round half away from zero and clamp to the type's range\n"
    "  nodata    with --nodata-every K, cell (x, y) of every band is the nodata value\n"
    "            when (y*W + x) mod K == 0 (so cell (0,0) always is)\n"
    "\n"
    "exit status: 0 success, 1 GDAL or I/O failure, 2 bad usage\n";

static void usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "pergola-mkraster: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(try pergola-mkraster --help)\n");
    exit(EXIT_USAGE);
}

/* Whole-string numeric parsers: a trailing "x" or "," is a usage error, not silently
 * ignored, so typos cannot produce a plausible but wrong raster. */
static bool parse_u64(const char *s, uint64_t *out)
{
    if (!*s || *s == '-' || *s == '+') return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return false;
    *out = v;
    return true;
}

static bool parse_double(const char *s, double *out)
{
    if (!*s) return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end) return false;
    *out = v;
    return true;
}

static int parse_dim(const char *s, const char *what)
{
    uint64_t v;
    if (!parse_u64(s, &v) || v < 1 || v > 1000000) usage_error(what, s);
    return (int)v;
}

static void parse_size(const char *arg, struct opts *o)
{
    char buf[64];
    if (strlen(arg) >= sizeof buf) usage_error("bad --size '%s' (want W or WxH)", arg);
    strcpy(buf, arg);
    char *x = strchr(buf, 'x');
    if (x) *x = '\0';
    o->width = parse_dim(buf, "bad --size '%s' (want W or WxH, 1..1000000)");
    o->height = x ? parse_dim(x + 1, "bad --size height '%s' (want 1..1000000)") : o->width;
}

static bool representable(enum cell_type t, double v)
{
    const struct type_info *ti = &TYPES[t];
    if (ti->is_float) return t == T_F64 || isnan(v) || isinf(v) || fabs(v) <= FLT_MAX;
    return v == floor(v) && v >= ti->min && v <= ti->max;
}

static void parse_args(int argc, char **argv, struct opts *o)
{
    enum {
        O_SIZE = 1000,
        O_TYPE,
        O_BANDS,
        O_PATTERN,
        O_SEED,
        O_NODATA,
        O_NODATA_EVERY,
        O_BLOCK,
        O_STRIPED,
        O_COMPRESS,
        O_CRS,
        O_ORIGIN,
        O_CELL,
        O_FORMAT
    };
    static const struct option longopts[] = {
        {"size", required_argument, NULL, O_SIZE},
        {"type", required_argument, NULL, O_TYPE},
        {"bands", required_argument, NULL, O_BANDS},
        {"pattern", required_argument, NULL, O_PATTERN},
        {"seed", required_argument, NULL, O_SEED},
        {"nodata", required_argument, NULL, O_NODATA},
        {"nodata-every", required_argument, NULL, O_NODATA_EVERY},
        {"block", required_argument, NULL, O_BLOCK},
        {"striped", no_argument, NULL, O_STRIPED},
        {"compress", required_argument, NULL, O_COMPRESS},
        {"crs", required_argument, NULL, O_CRS},
        {"origin", required_argument, NULL, O_ORIGIN},
        {"cell", required_argument, NULL, O_CELL},
        {"format", required_argument, NULL, O_FORMAT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *o = (struct opts){.bands = 1,
                       .type = T_F32,
                       .pattern = P_GRADIENT,
                       .block = 256,
                       .compress = "NONE",
                       .epsg = 32633,
                       .origin_x = 500000,
                       .origin_y = 5000000,
                       .cell = 10};
    bool striped = false, block_given = false;
    const char *const_arg = NULL;

    opterr = 0; /* our own messages, with exit status 2 */
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        uint64_t u;
        switch (c) {
        case 'h':
            fputs(USAGE, stdout);
            exit(0);
        case O_SIZE:
            parse_size(optarg, o);
            break;
        case O_TYPE: {
            size_t i;
            for (i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++)
                if (!strcmp(optarg, TYPES[i].name)) break;
            if (i == sizeof TYPES / sizeof TYPES[0])
                usage_error("unknown --type '%s' (want u8|i8|u16|i16|u32|i32|f32|f64)", optarg);
            o->type = (enum cell_type)i;
            break;
        }
        case O_BANDS:
            if (!parse_u64(optarg, &u) || u < 1 || u > 1000)
                usage_error("bad --bands '%s' (want 1..1000)", optarg);
            o->bands = (int)u;
            break;
        case O_PATTERN:
            if (!strcmp(optarg, "gradient"))
                o->pattern = P_GRADIENT;
            else if (!strcmp(optarg, "random"))
                o->pattern = P_RANDOM;
            else if (!strcmp(optarg, "checker"))
                o->pattern = P_CHECKER;
            else if (!strcmp(optarg, "dem"))
                o->pattern = P_DEM;
            else if (!strncmp(optarg, "const:", 6)) {
                o->pattern = P_CONST;
                const_arg = optarg + 6;
                if (!parse_double(const_arg, &o->const_value))
                    usage_error("bad const value in --pattern '%s'", optarg);
            } else
                usage_error("unknown --pattern '%s' (want gradient|random|checker|const:V|dem)",
                            optarg);
            break;
        case O_SEED:
            if (!parse_u64(optarg, &o->seed))
                usage_error("bad --seed '%s' (want an integer 0..2^64-1)", optarg);
            break;
        case O_NODATA:
            if (!parse_double(optarg, &o->nodata)) usage_error("bad --nodata '%s'", optarg);
            o->has_nodata = true;
            break;
        case O_NODATA_EVERY:
            if (!parse_u64(optarg, &o->nodata_every) || o->nodata_every < 1)
                usage_error("bad --nodata-every '%s' (want an integer >= 1)", optarg);
            break;
        case O_BLOCK:
            if (!parse_u64(optarg, &u) || u < 16 || u > 4096 || u % 16)
                usage_error("bad --block '%s' (want a multiple of 16 in 16..4096)", optarg);
            o->block = (int)u;
            block_given = true;
            break;
        case O_STRIPED:
            striped = true;
            break;
        case O_COMPRESS:
            if (strcmp(optarg, "NONE") && strcmp(optarg, "DEFLATE") && strcmp(optarg, "LZW") &&
                strcmp(optarg, "ZSTD"))
                usage_error("unknown --compress '%s' (want NONE|DEFLATE|LZW|ZSTD)", optarg);
            o->compress = optarg;
            break;
        case O_CRS:
            if (strncmp(optarg, "EPSG:", 5) || !parse_u64(optarg + 5, &u) || u < 1 || u > 999999)
                usage_error("bad --crs '%s' (want EPSG:N)", optarg);
            o->epsg = (int)u;
            break;
        case O_ORIGIN: {
            char buf[128];
            char *comma;
            if (strlen(optarg) >= sizeof buf) usage_error("bad --origin '%s'", optarg);
            strcpy(buf, optarg);
            comma = strchr(buf, ',');
            if (!comma) usage_error("bad --origin '%s' (want X,Y)", optarg);
            *comma = '\0';
            if (!parse_double(buf, &o->origin_x) || !parse_double(comma + 1, &o->origin_y) ||
                !isfinite(o->origin_x) || !isfinite(o->origin_y))
                usage_error("bad --origin '%s' (want X,Y)", optarg);
            break;
        }
        case O_CELL:
            if (!parse_double(optarg, &o->cell) || !(o->cell > 0) || !isfinite(o->cell))
                usage_error("bad --cell '%s' (want a positive number)", optarg);
            break;
        case O_FORMAT:
            if (!strcmp(optarg, "GTiff"))
                o->cog = false;
            else if (!strcmp(optarg, "COG"))
                o->cog = true;
            else
                usage_error("unknown --format '%s' (want GTiff|COG)", optarg);
            break;
        default:
            usage_error("bad option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        usage_error("%s", optind >= argc ? "missing OUT.tif" : "exactly one OUT.tif expected");
    o->out = argv[optind];
    if (!o->width) usage_error("%s", "--size is required");
    if (striped && block_given) usage_error("%s", "--block and --striped exclude each other");
    if (striped && o->cog) usage_error("%s", "a COG is always tiled: drop --striped");
    if (striped) o->block = 0;
    if (o->nodata_every && !o->has_nodata) usage_error("%s", "--nodata-every needs --nodata");
    if (o->has_nodata && !representable(o->type, o->nodata))
        usage_error("--nodata is not representable in type %s", TYPES[o->type].name);
    if (o->pattern == P_CONST && !representable(o->type, o->const_value))
        usage_error("const value is not representable in type %s", TYPES[o->type].name);
}

/* splitmix64 (Steele, Lea, Flood 2014) in counter form: the i-th output depends only on
 * (seed, i), so cells can be generated in any order and recomputed by a test. */
static inline uint64_t splitmix64_at(uint64_t seed, uint64_t i)
{
    uint64_t z = seed + (i + 1) * UINT64_C(0x9E3779B97F4A7C15);
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static double dem_height(double u, double w, int b)
{
    const double two_pi = 6.283185307179586;
    double du1 = u - 7000, dw1 = w - 9000, du2 = u - 15000, dw2 = w - 4000;
    return 950 + 450 * sin(two_pi * u / 20000) * cos(two_pi * w / 26000) +
           550 * exp(-(du1 * du1 + dw1 * dw1) / (2 * 3000.0 * 3000.0)) -
           350 * exp(-(du2 * du2 + dw2 * dw2) / (2 * 2500.0 * 2500.0)) +
           40 * sin(two_pi * (u + w) / 1700) + 10 * b;
}

/* One cell, stored at p in the band's native type. Integers travel as int64 so that u32
 * and the two's complement reinterpretation of the random pattern are exact. */
static void store_int(enum cell_type t, void *p, int64_t v)
{
    switch (t) {
    case T_U8:
    case T_I8:
        *(uint8_t *)p = (uint8_t)v; /* i8: two's complement byte (SIGNEDBYTE) */
        break;
    case T_U16:
    case T_I16:
        *(uint16_t *)p = (uint16_t)v;
        break;
    case T_U32:
    case T_I32:
        *(uint32_t *)p = (uint32_t)v;
        break;
    default:
        break;
    }
}

static void store_double(enum cell_type t, void *p, double v)
{
    if (t == T_F32)
        *(float *)p = (float)v;
    else if (t == T_F64)
        *(double *)p = v;
    else
        store_int(t, p, (int64_t)v);
}

static int64_t clamp_round(enum cell_type t, double v)
{
    const struct type_info *ti = &TYPES[t];
    double r = round(v);
    if (r < ti->min) r = ti->min;
    if (r > ti->max) r = ti->max;
    return (int64_t)r;
}

/* Fills one row of band b (0-based) at row y, W cells of the band's type. */
static void fill_row(const struct opts *o, int b, int y, unsigned char *row)
{
    const struct type_info *ti = &TYPES[o->type];
    const int W = o->width, sz = ti->size;
    enum cell_type t = o->type;

    switch (o->pattern) {
    case P_GRADIENT:
        for (int x = 0; x < W; x++) {
            uint64_t s = (uint64_t)x + 2 * (uint64_t)y + 7 * (uint64_t)b;
            if (ti->is_float)
                store_double(t, row + (size_t)x * sz, (double)s / 4);
            else
                store_int(t, row + (size_t)x * sz, (int64_t)(s % ti->grad_mod) + ti->grad_off);
        }
        break;
    case P_RANDOM: {
        uint64_t i0 = ((uint64_t)b * (uint64_t)o->height + (uint64_t)y) * (uint64_t)W;
        for (int x = 0; x < W; x++) {
            uint64_t r = splitmix64_at(o->seed, i0 + (uint64_t)x);
            void *p = row + (size_t)x * sz;
            switch (t) {
            case T_U8:
            case T_I8:
                *(uint8_t *)p = (uint8_t)(r >> 56);
                break;
            case T_U16:
            case T_I16:
                *(uint16_t *)p = (uint16_t)(r >> 48);
                break;
            case T_U32:
            case T_I32:
                *(uint32_t *)p = (uint32_t)(r >> 32);
                break;
            case T_F32:
                *(float *)p = (float)((double)(r >> 40) * 1000.0 / 16777216.0);
                break;
            case T_F64:
                *(double *)p = (double)(r >> 24) * 1000.0 / 1099511627776.0;
                break;
            }
        }
        break;
    }
    case P_CHECKER:
        for (int x = 0; x < W; x++) {
            int odd = (x / 16 + y / 16 + b) & 1;
            store_double(t, row + (size_t)x * sz, odd ? 100 : 0);
        }
        break;
    case P_CONST:
        for (int x = 0; x < W; x++)
            store_double(t, row + (size_t)x * sz, o->const_value);
        break;
    case P_DEM: {
        double w = (y + 0.5) * o->cell;
        for (int x = 0; x < W; x++) {
            double h = dem_height((x + 0.5) * o->cell, w, b);
            if (ti->is_float)
                store_double(t, row + (size_t)x * sz, h);
            else
                store_int(t, row + (size_t)x * sz, clamp_round(t, h));
        }
        break;
    }
    }

    if (o->nodata_every) {
        /* First x >= 0 in this row with (y*W + x) mod K == 0, then every K-th. */
        uint64_t K = o->nodata_every, base = (uint64_t)y * (uint64_t)W % K;
        uint64_t x0 = base ? K - base : 0;
        for (uint64_t x = x0; x < (uint64_t)W; x += K) {
            if (ti->is_float)
                store_double(t, row + x * sz, o->nodata);
            else
                store_int(t, row + x * sz, (int64_t)o->nodata);
        }
    }
}

static bool set_georef(GDALDatasetH ds, const struct opts *o)
{
    double gt[6] = {o->origin_x, o->cell, 0, o->origin_y, 0, -o->cell};
    if (GDALSetGeoTransform(ds, gt) != CE_None) return false;
    OGRSpatialReferenceH srs = OSRNewSpatialReference(NULL);
    bool ok =
        OSRImportFromEPSG(srs, o->epsg) == OGRERR_NONE && GDALSetSpatialRef(ds, srs) == CE_None;
    OSRDestroySpatialReference(srs);
    return ok;
}

/* Creates the GeoTIFF at path and writes every cell. For a COG this is the intermediate
 * the COG driver copies from (COG has no Create()). */
static bool write_gtiff(const struct opts *o, const char *path, bool for_cog)
{
    GDALDriverH drv = GDALGetDriverByName("GTiff");
    if (!drv) {
        fprintf(stderr, "pergola-mkraster: GDAL has no GTiff driver\n");
        return false;
    }
    char **co = NULL;
    char num[32];
    if (o->block) {
        co = CSLSetNameValue(co, "TILED", "YES");
        snprintf(num, sizeof num, "%d", o->block);
        co = CSLSetNameValue(co, "BLOCKXSIZE", num);
        co = CSLSetNameValue(co, "BLOCKYSIZE", num);
    }
    /* The COG intermediate is re-read once: compressing it would only cost time. */
    co = CSLSetNameValue(co, "COMPRESS", for_cog ? "NONE" : o->compress);
    if (o->bands > 1) co = CSLSetNameValue(co, "INTERLEAVE", "BAND");
    if (o->type == T_I8) co = CSLSetNameValue(co, "PIXELTYPE", "SIGNEDBYTE");
    /* BIGTIFF=IF_SAFER: large test rasters (compressed or not) never hit the 4 GiB limit. */
    co = CSLSetNameValue(co, "BIGTIFF", "IF_SAFER");

    const struct type_info *ti = &TYPES[o->type];
    GDALDatasetH ds = GDALCreate(drv, path, o->width, o->height, o->bands, ti->gdal, co);
    CSLDestroy(co);
    if (!ds) return false;

    bool ok = set_georef(ds, o);
    for (int b = 1; ok && b <= o->bands && o->has_nodata; b++)
        ok = GDALSetRasterNoDataValue(GDALGetRasterBand(ds, b), o->nodata) == CE_None;

    /* Strips of the block height, so each RasterIO covers whole blocks and no block is
     * ever read back and rewritten. */
    int bx, by;
    GDALGetBlockSize(GDALGetRasterBand(ds, 1), &bx, &by);
    int rows = by < 1 ? 1 : by;
    if (rows > o->height) rows = o->height;
    size_t row_bytes = (size_t)o->width * (size_t)ti->size;
    unsigned char *buf = ok ? malloc(row_bytes * (size_t)rows) : NULL;
    if (ok && !buf) {
        fprintf(stderr, "pergola-mkraster: out of memory\n");
        ok = false;
    }
    for (int y0 = 0; ok && y0 < o->height; y0 += rows) {
        int n = o->height - y0 < rows ? o->height - y0 : rows;
        for (int b = 0; ok && b < o->bands; b++) {
            for (int r = 0; r < n; r++)
                fill_row(o, b, y0 + r, buf + (size_t)r * row_bytes);
            /* i8 is handed over as GDT_Byte so GDAL does not clamp negative values. */
            ok = GDALRasterIO(GDALGetRasterBand(ds, b + 1), GF_Write, 0, y0, o->width, n, buf,
                              o->width, n, ti->gdal, 0, 0) == CE_None;
        }
    }
    free(buf);
    GDALFlushCache(ds);
    if (CPLGetLastErrorType() >= CE_Failure) ok = false;
    GDALClose(ds);
    return ok && CPLGetLastErrorType() < CE_Failure;
}

static bool write_cog(const struct opts *o, const char *tmp)
{
    /* COG is CreateCopy-only: write a plain tiled GTiff next to the output, copy it. */
    size_t len = strlen(tmp) + 8;
    char *src_path = malloc(len);
    if (!src_path) return false;
    snprintf(src_path, len, "%s.src", tmp);
    bool ok = write_gtiff(o, src_path, true);
    if (ok) {
        GDALDatasetH src = GDALOpen(src_path, GA_ReadOnly);
        GDALDriverH cog = GDALGetDriverByName("COG");
        ok = src && cog;
        if (!cog) fprintf(stderr, "pergola-mkraster: GDAL has no COG driver\n");
        if (ok) {
            char **co = NULL;
            char num[32];
            snprintf(num, sizeof num, "%d", o->block);
            co = CSLSetNameValue(co, "BLOCKSIZE", num);
            co = CSLSetNameValue(co, "COMPRESS", o->compress);
            co = CSLSetNameValue(co, "BIGTIFF", "IF_SAFER");
            GDALDatasetH dst = GDALCreateCopy(cog, tmp, src, FALSE, co, NULL, NULL);
            CSLDestroy(co);
            ok = dst != NULL;
            if (dst) GDALClose(dst);
            ok = ok && CPLGetLastErrorType() < CE_Failure;
        }
        if (src) GDALClose(src);
    }
    GDALDeleteDataset(GDALGetDriverByName("GTiff"), src_path);
    free(src_path);
    return ok;
}

int main(int argc, char **argv)
{
    struct opts o;
    parse_args(argc, argv, &o);

    GDALAllRegister();
    /* A small block cache: blocks are written once, whole, and never re-read, so a large
     * cache only adds first-touch page faults (see DESIGN.md, Memory). */
    GDALSetCacheMax64((GIntBig)64 << 20);
    /* No side-car .aux.xml: the file alone must carry everything a test checks. */
    CPLSetConfigOption("GDAL_PAM_ENABLED", "NO");

    size_t len = strlen(o.out) + 5;
    char *tmp = malloc(len);
    if (!tmp) return EXIT_FAIL;
    snprintf(tmp, len, "%s.tmp", o.out);

    bool ok = o.cog ? write_cog(&o, tmp) : write_gtiff(&o, tmp, false);
    if (ok && rename(tmp, o.out) != 0) {
        fprintf(stderr, "pergola-mkraster: rename %s -> %s: %s\n", tmp, o.out, strerror(errno));
        ok = false;
    }
    if (!ok) {
        unlink(tmp); /* a failed run leaves no partial file */
        fprintf(stderr, "pergola-mkraster: failed to write %s\n", o.out);
    }
    free(tmp);
    GDALDestroyDriverManager();
    return ok ? 0 : EXIT_FAIL;
}
