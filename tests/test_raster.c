/* Unit tests for src/raster.c: cell types, GDAL mapping, raster info, grids,
 * tiling. */
#include "raster.h"

#include <check.h>
#include <cpl_conv.h>
#include <float.h>
#include <gdal.h>
#include <math.h>
#include <ogr_srs_api.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[PG_CELLTYPE_COUNT] = {"u8",  "i8",  "u16", "i16",
                                                     "u32", "i32", "f32", "f64"};

START_TEST(test_names)
{
    for (int i = 0; i < PG_CELLTYPE_COUNT; i++) {
        ck_assert_str_eq(pg_celltype_name((pg_celltype)i), names[i]);
        pg_celltype t = PG_CELLTYPE_COUNT;
        ck_assert_int_eq(pg_celltype_parse(names[i], &t), 0);
        ck_assert_int_eq(t, i);
    }
    pg_celltype t = PG_F64;
    const char *bad[] = {"U8", "uint8", "", "f16", "i64", "u8 ", "byte"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(pg_celltype_parse(bad[i], &t), -1);
        ck_assert_int_eq(t, PG_F64); /* untouched */
    }
    ck_assert_int_eq(pg_celltype_parse(NULL, &t), -1);
    ck_assert_str_eq(pg_celltype_name(PG_CELLTYPE_COUNT), "?");
}
END_TEST

START_TEST(test_sizes_flags)
{
    static const size_t sizes[] = {1, 1, 2, 2, 4, 4, 4, 8};
    static const bool fl[] = {0, 0, 0, 0, 0, 0, 1, 1};
    static const bool sg[] = {0, 1, 0, 1, 0, 1, 1, 1};
    for (int i = 0; i < PG_CELLTYPE_COUNT; i++) {
        ck_assert_uint_eq(pg_celltype_size((pg_celltype)i), sizes[i]);
        ck_assert_int_eq(pg_celltype_is_float((pg_celltype)i), fl[i]);
        ck_assert_int_eq(pg_celltype_is_signed((pg_celltype)i), sg[i]);
        /* pg_tile_cell's inline size table agrees */
        static char buf[2 * 5 * 3 * 8];
        pg_tile t = {.type = (pg_celltype)i, .bands = 2, .win = {0, 0, 3, 5}, .data = buf};
        /* band 1, row 2, column 1 of a 3x5 tile */
        ck_assert_ptr_eq(pg_tile_cell(&t, 1, 2, 1), buf + ((1 * 5 + 2) * 3 + 1) * sizes[i]);
    }
    ck_assert_uint_eq(pg_celltype_size(PG_CELLTYPE_COUNT), 0);
}
END_TEST

START_TEST(test_ranges)
{
    static const double mn[] = {0, -128, 0, -32768, 0, -2147483648.0};
    static const double mx[] = {255, 127, 65535, 32767, 4294967295.0, 2147483647.0};
    for (int i = 0; i < 6; i++) {
        ck_assert(pg_celltype_min((pg_celltype)i) == mn[i]);
        ck_assert(pg_celltype_max((pg_celltype)i) == mx[i]);
    }
    ck_assert(isinf(pg_celltype_min(PG_F32)) && pg_celltype_min(PG_F32) < 0);
    ck_assert(isinf(pg_celltype_max(PG_F64)) && pg_celltype_max(PG_F64) > 0);

    /* default nodata: min for signed, max for unsigned, NaN for floats */
    static const double nd[] = {255, -128, 65535, -32768, 4294967295.0, -2147483648.0};
    for (int i = 0; i < 6; i++)
        ck_assert(pg_celltype_default_nodata((pg_celltype)i) == nd[i]);
    ck_assert(isnan(pg_celltype_default_nodata(PG_F32)));
    ck_assert(isnan(pg_celltype_default_nodata(PG_F64)));
}
END_TEST

START_TEST(test_holds)
{
    static const struct {
        pg_celltype t;
        double v;
        bool ok;
    } cases[] = {
        {PG_U8, 0, true},
        {PG_U8, 255, true},
        {PG_U8, 256, false},
        {PG_U8, -1, false},
        {PG_U8, 1.5, false},
        {PG_U8, NAN, false},
        {PG_U8, INFINITY, false},
        {PG_U8, -0.0, true},
        {PG_I8, -128, true},
        {PG_I8, 127, true},
        {PG_I8, 128, false},
        {PG_I8, -129, false},
        {PG_U16, 65535, true},
        {PG_U16, 65536, false},
        {PG_I16, -32768, true},
        {PG_I16, 32768, false},
        {PG_U32, 4294967295.0, true},
        {PG_U32, 4294967296.0, false},
        {PG_U32, -1, false},
        {PG_I32, -2147483648.0, true},
        {PG_I32, 2147483647.0, true},
        {PG_I32, 2147483648.0, false},
        {PG_I32, 0.5, false},
        {PG_F32, 0.5, true},
        {PG_F32, 0.1, false}, /* not exactly a float */
        {PG_F32, 16777216.0, true},
        {PG_F32, 16777217.0, false},
        {PG_F32, FLT_MAX, true},
        {PG_F32, 1e39, false},
        {PG_F32, -1e39, false},
        {PG_F32, NAN, true},
        {PG_F32, -INFINITY, true},
        {PG_F32, 1e-45, false}, /* rounds to the smallest denormal, not equal */
        {PG_F64, 0.1, true},
        {PG_F64, NAN, true},
        {PG_F64, DBL_MAX, true},
        {PG_F64, INFINITY, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_assert_msg(pg_celltype_holds(cases[i].t, cases[i].v) == cases[i].ok,
                      "holds(%s, %g) should be %d", names[cases[i].t], cases[i].v, cases[i].ok);
    }
}
END_TEST

START_TEST(test_gdal_mapping)
{
    static const int gdt[] = {GDT_Byte,   GDT_Byte,  GDT_UInt16,  GDT_Int16,
                              GDT_UInt32, GDT_Int32, GDT_Float32, GDT_Float64};
    for (int i = 0; i < PG_CELLTYPE_COUNT; i++) {
        ck_assert_int_eq(pg_celltype_to_gdal((pg_celltype)i), gdt[i]);
        ck_assert_int_eq(GDALGetDataTypeSizeBytes((GDALDataType)gdt[i]),
                         (int)pg_celltype_size((pg_celltype)i));
        pg_celltype t;
        ck_assert_int_eq(pg_celltype_from_gdal(gdt[i], &t), 0);
        /* round trip for all but i8, which GDAL 3.6 reads as Byte (u8) */
        ck_assert_int_eq(t, i == PG_I8 ? PG_U8 : i);
    }
    pg_celltype t = PG_F64;
    ck_assert_int_eq(pg_celltype_from_gdal(GDT_Unknown, &t), -1);
    ck_assert_int_eq(pg_celltype_from_gdal(GDT_CInt16, &t), -1);
    ck_assert_int_eq(pg_celltype_from_gdal(GDT_CFloat64, &t), -1);
    ck_assert_int_eq(pg_celltype_from_gdal(GDT_Int64, &t), -1);
    ck_assert_int_eq(pg_celltype_from_gdal(GDT_UInt64, &t), -1);
    ck_assert_int_eq(t, PG_F64);
    ck_assert_int_eq(pg_celltype_to_gdal(PG_CELLTYPE_COUNT), GDT_Unknown);
}
END_TEST

static char *wkt_of(const char *def, const char *const *opts, bool pretty)
{
    OGRSpatialReferenceH s = OSRNewSpatialReference(NULL);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(OSRSetFromUserInput(s, def), OGRERR_NONE);
    char *w = NULL;
    if (pretty)
        ck_assert_int_eq(OSRExportToPrettyWkt(s, &w, FALSE), OGRERR_NONE);
    else
        ck_assert_int_eq(OSRExportToWktEx(s, &w, opts), OGRERR_NONE);
    char *r = strdup(w);
    CPLFree(w);
    OSRDestroySpatialReference(s);
    return r;
}

static pg_raster_info grid(int64_t w, int64_t h, const double *gt, const char *crs)
{
    pg_raster_info ri;
    memset(&ri, 0, sizeof ri);
    ri.width = w;
    ri.height = h;
    ri.bands = 1;
    ri.type = PG_F32;
    if (gt) {
        ri.has_geotransform = true;
        memcpy(ri.geotransform, gt, sizeof ri.geotransform);
    }
    ri.crs_wkt = crs ? strdup(crs) : NULL;
    return ri;
}

START_TEST(test_same_grid_geometry)
{
    const double gt[6] = {500000.0, 10.0, 0.0, 4600000.0, 0.0, -10.0};
    pg_raster_info a = grid(100, 50, gt, NULL), b = grid(100, 50, gt, NULL);
    ck_assert(pg_raster_same_grid(&a, &b));
    ck_assert(pg_raster_same_grid(&a, &a));

    pg_raster_info c = grid(100, 51, gt, NULL), d = grid(101, 50, gt, NULL);
    ck_assert(!pg_raster_same_grid(&a, &c));
    ck_assert(!pg_raster_same_grid(&a, &d));

    /* one without a geotransform */
    pg_raster_info e = grid(100, 50, NULL, NULL), f = grid(100, 50, NULL, NULL);
    ck_assert(!pg_raster_same_grid(&a, &e));
    ck_assert(!pg_raster_same_grid(&e, &a));
    ck_assert(pg_raster_same_grid(&e, &f));

    /* tolerance: 1e-9 of a cell (10 m -> 1e-8 m) */
    b.geotransform[0] += 5e-9;
    b.geotransform[1] += 5e-9;
    b.geotransform[5] -= 5e-9;
    ck_assert(pg_raster_same_grid(&a, &b));
    b.geotransform[0] = gt[0] + 2e-8;
    ck_assert(!pg_raster_same_grid(&a, &b));
    b.geotransform[0] = gt[0];
    b.geotransform[1] = 10.0 + 1e-6;
    ck_assert(!pg_raster_same_grid(&a, &b));
    b.geotransform[1] = 10.0;
    b.geotransform[2] = 1e-7; /* a rotation term */
    ck_assert(!pg_raster_same_grid(&a, &b));
    b.geotransform[2] = 0.0;
    b.geotransform[3] = gt[3] - 10.0; /* shifted one row */
    ck_assert(!pg_raster_same_grid(&a, &b));

    /* degrees: cell 1e-4, tolerance 1e-13 */
    const double g2[6] = {10.0, 1e-4, 0, 50.0, 0, -1e-4};
    pg_raster_info g = grid(10, 10, g2, NULL), h = grid(10, 10, g2, NULL);
    h.geotransform[3] += 5e-14;
    ck_assert(pg_raster_same_grid(&g, &h));
    h.geotransform[3] += 1e-12;
    ck_assert(!pg_raster_same_grid(&g, &h));

    pg_raster_info *all[] = {&a, &b, &c, &d, &e, &f, &g, &h};
    for (size_t i = 0; i < 8; i++)
        pg_raster_info_clear(all[i]);
}
END_TEST

START_TEST(test_same_grid_crs)
{
    const double gt[6] = {500000.0, 10.0, 0.0, 4600000.0, 0.0, -10.0};
    const char *wkt2_opts[] = {"FORMAT=WKT2_2018", NULL};
    const char *wkt1_opts[] = {"FORMAT=WKT1", NULL};
    char *utm_wkt1 = wkt_of("EPSG:32633", wkt1_opts, false);
    char *utm_wkt2 = wkt_of("EPSG:32633", wkt2_opts, false);
    char *utm_pretty = wkt_of("EPSG:32633", NULL, true);
    char *utm_proj = wkt_of("+proj=utm +zone=33 +datum=WGS84 +units=m +no_defs", wkt1_opts, false);
    char *utm34 = wkt_of("EPSG:32634", wkt1_opts, false);
    char *geo = wkt_of("EPSG:4326", wkt1_opts, false);
    ck_assert_str_ne(utm_wkt1, utm_wkt2);
    ck_assert_str_ne(utm_wkt1, utm_pretty);

    pg_raster_info a = grid(100, 50, gt, utm_wkt1);
    pg_raster_info same[] = {grid(100, 50, gt, utm_wkt1), grid(100, 50, gt, utm_wkt2),
                             grid(100, 50, gt, utm_pretty), grid(100, 50, gt, utm_proj)};
    for (size_t i = 0; i < 4; i++) {
        ck_assert_msg(pg_raster_same_grid(&a, &same[i]), "case %zu", i);
        ck_assert_msg(pg_raster_same_grid(&same[i], &a), "case %zu", i);
    }
    pg_raster_info diff[] = {grid(100, 50, gt, utm34), grid(100, 50, gt, geo),
                             grid(100, 50, gt, NULL), grid(100, 50, gt, ""),
                             grid(100, 50, gt, "not a crs")};
    for (size_t i = 0; i < 5; i++) {
        ck_assert_msg(!pg_raster_same_grid(&a, &diff[i]), "case %zu", i);
        ck_assert_msg(!pg_raster_same_grid(&diff[i], &a), "case %zu", i);
    }
    /* unknown CRS: NULL and "" are the same (both unknown) */
    ck_assert(pg_raster_same_grid(&diff[2], &diff[3]));
    /* unparseable but identical text: the same */
    pg_raster_info junk = grid(100, 50, gt, "not a crs");
    ck_assert(pg_raster_same_grid(&junk, &diff[4]));
    pg_raster_info junk2 = grid(100, 50, gt, "not a crs either");
    ck_assert(!pg_raster_same_grid(&junk, &junk2));

    pg_raster_info_clear(&a);
    pg_raster_info_clear(&junk);
    pg_raster_info_clear(&junk2);
    for (size_t i = 0; i < 4; i++)
        pg_raster_info_clear(&same[i]);
    for (size_t i = 0; i < 5; i++)
        pg_raster_info_clear(&diff[i]);
    free(utm_wkt1);
    free(utm_wkt2);
    free(utm_pretty);
    free(utm_proj);
    free(utm34);
    free(geo);
}
END_TEST

START_TEST(test_info_copy_clear)
{
    const double gt[6] = {1, 2, 3, 4, 5, 6};
    pg_raster_info a = grid(7, 9, gt, "LOCAL_CS[\"x\"]");
    a.bands = 3;
    a.type = PG_I16;
    a.has_nodata = true;
    a.nodata = -9999;
    pg_raster_info b;
    memset(&b, 0xAB, sizeof b); /* DST may be uninitialised */
    ck_assert_int_eq(pg_raster_info_copy(&b, &a), 0);
    ck_assert_ptr_ne(b.crs_wkt, a.crs_wkt);
    ck_assert_str_eq(b.crs_wkt, a.crs_wkt);
    ck_assert_int_eq(b.width, 7);
    ck_assert_int_eq(b.height, 9);
    ck_assert_int_eq(b.bands, 3);
    ck_assert_int_eq(b.type, PG_I16);
    ck_assert(b.has_nodata && b.nodata == -9999);
    ck_assert(b.has_geotransform && memcmp(b.geotransform, gt, sizeof gt) == 0);
    pg_raster_info_clear(&a);
    ck_assert_ptr_null(a.crs_wkt);
    ck_assert_int_eq(a.width, 0);
    ck_assert_str_eq(b.crs_wkt, "LOCAL_CS[\"x\"]");

    pg_raster_info c = grid(1, 1, NULL, NULL), d;
    ck_assert_int_eq(pg_raster_info_copy(&d, &c), 0);
    ck_assert_ptr_null(d.crs_wkt);
    pg_raster_info_clear(&b);
    pg_raster_info_clear(&c);
    pg_raster_info_clear(&d);
    pg_raster_info_clear(NULL);
}
END_TEST

START_TEST(test_window_bytes)
{
    pg_raster_info ri = grid(1000, 1000, NULL, NULL);
    ri.bands = 3;
    ri.type = PG_F64;
    pg_window w = {10, 20, 10, 20};
    ck_assert_uint_eq(pg_raster_window_bytes(&ri, &w), 3 * 10 * 20 * 8);
    ri.type = PG_U8;
    ri.bands = 1;
    ck_assert_uint_eq(pg_raster_window_bytes(&ri, &w), 200);
    pg_window empty = {0, 0, 0, 5};
    ck_assert_uint_eq(pg_raster_window_bytes(&ri, &empty), 0);
}
END_TEST

START_TEST(test_tiling)
{
    pg_tiling t;
    pg_tiling_init(&t, 1000, 700, 256, 256);
    ck_assert_int_eq(t.cols, 4);
    ck_assert_int_eq(t.rows, 3);
    ck_assert_int_eq(pg_tiling_count(&t), 12);
    pg_window w = pg_tiling_window(&t, 0);
    ck_assert(w.x == 0 && w.y == 0 && w.w == 256 && w.h == 256);
    w = pg_tiling_window(&t, 5); /* row 1, col 1 */
    ck_assert(w.x == 256 && w.y == 256 && w.w == 256 && w.h == 256);
    w = pg_tiling_window(&t, 11); /* last: partial both ways */
    ck_assert(w.x == 768 && w.y == 512 && w.w == 232 && w.h == 188);
    w = pg_tiling_window(&t, 12);
    ck_assert(w.w == 0 && w.h == 0);
    w = pg_tiling_window(&t, -1);
    ck_assert(w.w == 0 && w.h == 0);

    /* every cell covered exactly once */
    int64_t cells = 0;
    for (int64_t k = 0; k < pg_tiling_count(&t); k++) {
        pg_window v = pg_tiling_window(&t, k);
        cells += v.w * v.h;
    }
    ck_assert_int_eq(cells, 1000 * 700);

    pg_tiling_init(&t, 512, 512, 256, 128);
    ck_assert(t.cols == 2 && t.rows == 4);
    w = pg_tiling_window(&t, 7);
    ck_assert(w.x == 256 && w.y == 384 && w.w == 256 && w.h == 128);

    pg_tiling_init(&t, 1, 1, 256, 256);
    ck_assert_int_eq(pg_tiling_count(&t), 1);
    w = pg_tiling_window(&t, 0);
    ck_assert(w.w == 1 && w.h == 1);
}
END_TEST

int main(void)
{
    GDALAllRegister();
    Suite *s = suite_create("raster");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_sizes_flags);
    tcase_add_test(tc, test_ranges);
    tcase_add_test(tc, test_holds);
    tcase_add_test(tc, test_gdal_mapping);
    tcase_add_test(tc, test_same_grid_geometry);
    tcase_add_test(tc, test_same_grid_crs);
    tcase_add_test(tc, test_info_copy_clear);
    tcase_add_test(tc, test_window_bytes);
    tcase_add_test(tc, test_tiling);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
