/* The io family's node state, shared with the writer actor (actors/io.c). */
#ifndef PG_OPS_IO_H
#define PG_OPS_IO_H

#include "gdalio.h"
#include "raster.h"

#include <stdbool.h>

/* io.load: what plan() found out about the file. */
typedef struct pg_load_state {
    char *path; /* absolute, resolved */
    pg_file_id id;
    int nbands;
    int *bands; /* 1-based band numbers */
} pg_load_state;

/* io.save: where and how to write. */
typedef struct pg_save_state {
    char *path;     /* absolute final path */
    char *relpath;  /* as answered to the client: relative to the data root */
    char *format;   /* "GTiff" or "COG" */
    char **options; /* creation options, a CSL list (NULL-terminated) */
    bool has_type;  /* "type" given: convert on write */
    pg_celltype type;
} pg_save_state;

#endif
