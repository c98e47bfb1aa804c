/* The error-code table: names and messages for include/pergola/error.h. */
#include "pergola/error.h"

#include <string.h>

const char *pg_err_name(int code)
{
    switch (code) {
    case 0:
        return "ok";
#define PG__ERR_NAME(e, v, n, m)                                                                   \
    case v:                                                                                        \
        return n;
        PG_ERRNO_MAP(PG__ERR_NAME)
#undef PG__ERR_NAME
    }
    return "unknown";
}

const char *pg_strerror(int code)
{
    switch (code) {
    case 0:
        return "success";
#define PG__ERR_MSG(e, v, n, m)                                                                    \
    case v:                                                                                        \
        return m;
        PG_ERRNO_MAP(PG__ERR_MSG)
#undef PG__ERR_MSG
    }
    return "unknown error";
}

int pg_err_from_name(const char *name)
{
    if (name == NULL) return PG_EINTERNAL;
    if (strcmp(name, "ok") == 0) return 0;
#define PG__ERR_FROM(e, v, n, m)                                                                   \
    if (strcmp(name, n) == 0) return v;
    PG_ERRNO_MAP(PG__ERR_FROM)
#undef PG__ERR_FROM
    return PG_EINTERNAL;
}
