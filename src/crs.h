/* CRS parameters given by clients, parsed without ever touching files or
 * the network (WKT, PROJJSON, AUTHORITY:CODE, OGC URNs, +proj= strings
 * without +init or paths, and WGS84/WGS72/NAD27/NAD83). */
#ifndef PG_CRS_H
#define PG_CRS_H

#include "pergola/error.h"

#include <ogr_srs_api.h>

/* Parses DEF, the value of parameter KEY, into *SRS_OUT (a new reference,
 * traditional GIS axis order). Returns 0, or PG_EPARAM naming KEY. */
int pg_crs_parse(const char *key, const char *def, OGRSpatialReferenceH *srs_out, pg_error *err);
/* The same, as WKT in *WKT (malloc'd). */
int pg_crs_param_wkt(const char *key, const char *def, char **wkt, pg_error *err);

#endif
