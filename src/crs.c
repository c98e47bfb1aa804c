/* CRS parameters given by clients (see crs.h).
 *
 * OSRSetFromUserInput also accepts file names and URLs, and a graph must not
 * make the daemon read files outside the data root or fetch URLs, so only
 * in-memory forms are accepted, recognised by their shape. GDAL 3.6's
 * OSRSetFromUserInput, given
 * an AUTHORITY:CODE it cannot resolve ("abc:def"), then tries to open a
 * file of that name (seen with strace). So AUTHORITY:CODE goes in as the
 * OGC URN urn:ogc:def:crs:AUTHORITY::CODE, whose parser never falls back to
 * files. */
#include "crs.h"

#include "util.h"

#include <cpl_conv.h>
#include <cpl_error.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool pg__is_auth_code(const char *s)
{
    if (!isalpha((unsigned char)s[0])) return false;
    bool colon = false;
    for (const char *c = s; *c; c++) {
        if (*c == ':')
            colon = true;
        else if (!isalnum((unsigned char)*c) && *c != '_' && *c != '.' && *c != '-')
            return false;
    }
    return colon;
}

static bool pg__is_wkt(const char *s)
{
    const char *c = s;
    while (isalpha((unsigned char)*c) || *c == '_' || isdigit((unsigned char)*c))
        c++;
    return c > s && *c == '[';
}

/* Parses the CRS in param KEY (DEF) into *SRS (traditional GIS axis order:
 * x = easting/longitude). Returns 0 or PG_EPARAM naming KEY. */
int pg_crs_parse(const char *key, const char *def, OGRSpatialReferenceH *srs_out, pg_error *err)
{
    *srs_out = NULL;
    const char *s = def;
    while (isspace((unsigned char)*s))
        s++;
    OGRSpatialReferenceH srs = OSRNewSpatialReference(NULL);
    if (srs == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    CPLPushErrorHandler(CPLQuietErrorHandler);
    CPLErrorReset();
    OGRErr e;
    bool shape_ok = true;
    if (s[0] == '{') {
        e = OSRSetFromUserInput(srs, s); /* PROJJSON, parsed in memory */
    } else if (pg__is_wkt(s)) {
        char *p = (char *)s;
        e = OSRImportFromWkt(srs, &p);
    } else if (strncmp(s, "+proj=", 6) == 0 && strstr(s, "init=") == NULL &&
               strpbrk(s, "/\\") == NULL) {
        e = OSRImportFromProj4(srs, s); /* no +init= (a file), no paths (grid files) */
    } else if (strncmp(s, "urn:", 4) == 0 && pg__is_auth_code(s)) {
        e = OSRSetFromUserInput(srs, s); /* a URN: importFromURN only */
    } else if (pg__is_auth_code(s) && strchr(s, ':') == strrchr(s, ':')) {
        char urn[160];
        const char *colon = strchr(s, ':');
        if (snprintf(urn, sizeof urn, "urn:ogc:def:crs:%.*s::%s", (int)(colon - s), s, colon + 1) <
            (int)sizeof urn)
            e = OSRSetFromUserInput(srs, urn);
        else
            e = OGRERR_UNSUPPORTED_SRS;
    } else if (strcmp(s, "WGS84") == 0 || strcmp(s, "WGS72") == 0 || strcmp(s, "NAD27") == 0 ||
               strcmp(s, "NAD83") == 0) {
        e = OSRSetWellKnownGeogCS(srs, s);
    } else {
        e = OGRERR_UNSUPPORTED_SRS;
        shape_ok = false;
    }
    char gdal_msg[160];
    pg_strlcpy(gdal_msg, CPLGetLastErrorMsg(), sizeof gdal_msg);
    CPLPopErrorHandler();
    if (!shape_ok) {
        OSRDestroySpatialReference(srs);
        return pg_error_set(err, PG_EPARAM,
                            "param '%s' must be WKT, PROJJSON, AUTHORITY:CODE (EPSG:4326), an OGC "
                            "URN or a +proj= string (files and URLs are refused)",
                            key);
    }
    if (e != OGRERR_NONE) {
        OSRDestroySpatialReference(srs);
        return pg_error_set(err, PG_EPARAM, "param '%s' is not a valid CRS%s%s", key,
                            gdal_msg[0] ? ": " : "", gdal_msg);
    }
    OSRSetAxisMappingStrategy(srs, OAMS_TRADITIONAL_GIS_ORDER);
    *srs_out = srs;
    return 0;
}

/* KEY's CRS as WKT (malloc'd) in *WKT. */
int pg_crs_param_wkt(const char *key, const char *def, char **wkt, pg_error *err)
{
    *wkt = NULL;
    OGRSpatialReferenceH srs;
    int rc = pg_crs_parse(key, def, &srs, err);
    if (rc) return rc;
    char *out = NULL;
    CPLPushErrorHandler(CPLQuietErrorHandler);
    OGRErr e = OSRExportToWkt(srs, &out);
    CPLPopErrorHandler();
    if (e != OGRERR_NONE || out == NULL)
        rc = pg_error_set(err, PG_EPARAM, "param '%s' cannot be expressed as WKT", key);
    else if ((*wkt = strdup(out)) == NULL)
        rc = pg_error_set(err, PG_ENOMEM, "out of memory");
    CPLFree(out);
    OSRDestroySpatialReference(srs);
    return rc;
}
