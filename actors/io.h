/* The writer actor: one per output file of a job (an io.save node).
 *
 * A GDAL dataset handle is used by one thread at a time; an actor runs on
 * one worker at a time, so the writer owns its dataset without a lock.
 * Tiles arrive in any order and are written as they come. The file is
 * written under a temporary name in the destination directory; it is
 * renamed into place only by COMMIT, which the job sends once every output
 * of the job has been closed successfully. ABORT deletes it.
 *
 * Every message is answered to the job actor (see actors/job.h):
 * WRITE -> PG_JOB_TILE_DONE, CLOSE -> PG_JOB_WRITER_CLOSED,
 * COMMIT/ABORT -> PG_JOB_WRITER_ENDED.
 */
#ifndef PG_ACTORS_IO_H
#define PG_ACTORS_IO_H

#include "graph.h"
#include "raster.h"
#include "runtime.h"

#include <stdint.h>

typedef struct pg_writer pg_writer;

/* A writer for save node NODE of a job, tiled as TILING. JOB (borrowed
 * reference kept alive by the job itself) receives the answers; SWEEP is
 * echoed back in them. */
pg_writer *pg_writer_new(pg_actor *job, int sweep, const pg_node *node, const pg_tiling *tiling,
                         uint64_t job_seq);
/* Messages (each takes ownership of what it carries). */
void pg_writer_open(pg_writer *w);
/* Tile K of the sweep: TILE (stolen) to write, or NULL with ERR saying why
 * it has no data (failed, cancelled). Every tile index the job starts must
 * come here exactly once: tiles are written in index order. BYTES (the
 * tile's budget reservation) travels back to the job with TILE_DONE. */
void pg_writer_write(pg_writer *w, int64_t k, pg_tile *tile, const pg_error *err, size_t bytes);
void pg_writer_close(pg_writer *w);
void pg_writer_commit(pg_writer *w);
void pg_writer_abort(pg_writer *w);
/* Drops the job's reference (after the writer has answered its last
 * message). */
void pg_writer_release(pg_writer **w);

#endif
