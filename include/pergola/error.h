/* Pergola error codes, shared by the daemon, the client library and the CLI.
 *
 * Like libuv, every failing call returns a negative code; 0 is success. Each
 * code has a stable snake_case name that travels on the wire
 * ({"error": {"code": "unknown_op", ...}}): names never change meaning, new
 * codes are only ever added. pg_err_name() and pg_err_from_name() convert.
 */
#ifndef PERGOLA_ERROR_H
#define PERGOLA_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

/* X(ENUM, value, "wire_name", "what it means, for people") */
#define PG_ERRNO_MAP(X)                                                                            \
    X(PG_EBADJSON, -1, "bad_json", "the request is not valid JSON")                                \
    X(PG_EBADREQ, -2, "bad_request", "the request envelope is malformed")                          \
    X(PG_ETOOLARGE, -3, "too_large", "the request exceeds a configured size limit")                \
    X(PG_EUNKNOWNOP, -4, "unknown_op", "the graph names an operation that does not exist")         \
    X(PG_EARITY, -5, "bad_arity", "an operation got the wrong number of arguments")                \
    X(PG_EPARAM, -6, "bad_param", "a parameter is missing, of the wrong type, or out of range")    \
    X(PG_EUNKNOWNPARAM, -7, "unknown_param", "a node carries a key the operation does not take")   \
    X(PG_EREF, -8, "missing_ref", "a reference names a node that does not exist")                  \
    X(PG_ECYCLE, -9, "cycle", "the graph has a cycle")                                             \
    X(PG_EDEPTH, -10, "too_deep", "the graph is nested deeper than the configured limit")          \
    X(PG_ENODES, -11, "too_many_nodes", "the graph has more nodes than the configured limit")      \
    X(PG_ECELLS, -12, "too_many_cells", "a raster exceeds the configured cell limit")              \
    X(PG_EPATH, -13, "path_denied", "a path escapes the data root or is not allowed")              \
    X(PG_ENOTFOUND, -14, "not_found", "a file does not exist")                                     \
    X(PG_EFORMAT, -15, "bad_raster", "GDAL cannot read the file as a raster")                      \
    X(PG_EGRID, -16, "grid_mismatch", "rasters combined cell by cell have different grids")        \
    X(PG_EIO, -17, "io_error", "reading or writing a raster failed")                               \
    X(PG_ECANCELLED, -18, "cancelled", "the job was cancelled")                                    \
    X(PG_ETIMEOUT, -19, "timeout", "the job ran past its deadline")                                \
    X(PG_EBUSY, -20, "busy", "the daemon is at its job or connection limit")                       \
    X(PG_ESHUTDOWN, -21, "shutting_down", "the daemon is shutting down")                           \
    X(PG_EUNKNOWNJOB, -22, "unknown_job", "no running job has that id")                            \
    X(PG_EDUPID, -23, "duplicate_id", "a running job on this connection already has that id")      \
    X(PG_ENOMEM, -24, "out_of_memory", "the daemon could not allocate memory")                     \
    X(PG_EINTERNAL, -25, "internal", "an internal error (a bug: please report it)")                \
    X(PG_ECONNECT, -26, "connect_failed", "could not connect to the daemon")                       \
    X(PG_EPROTO, -27, "protocol_error", "the peer broke the protocol")                             \
    X(PG_ECLOSED, -28, "connection_closed", "the connection was closed")                           \
    X(PG_EINVAL, -29, "invalid_argument", "a function was called with an invalid argument")        \
    X(PG_ECONFIG, -30, "bad_config", "the configuration is invalid")                               \
    X(PG_ETYPE, -31, "bad_type", "an argument has the wrong kind (raster, value or number)")       \
    X(PG_EPEER, -32, "peer_unavailable", "no cluster node could run a remote part of the graph")

typedef enum {
    PG_OK = 0,
#define PG__ERR_ENUM(e, v, n, m) e = v,
    PG_ERRNO_MAP(PG__ERR_ENUM)
#undef PG__ERR_ENUM
        PG_ERR_MIN_ = -32
} pg_errcode;

/* The stable wire name of CODE ("unknown_op"); "ok" for 0, "unknown" otherwise. */
const char *pg_err_name(int code);
/* A short explanation of CODE for people. */
const char *pg_strerror(int code);
/* The code whose wire name is NAME, or PG_EINTERNAL if there is none. */
int pg_err_from_name(const char *name);

/* An error with context. MESSAGE is for people; NODE names the graph node
 * the error comes from ("" if none). Fixed size, no allocation: a pg_error
 * can be filled anywhere, including on a failing allocation path. */
typedef struct pg_error {
    int code;
    char node[256];
    char message[512];
} pg_error;

#ifdef __cplusplus
}
#endif
#endif
