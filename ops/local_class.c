/* The local class op family (see ops/registry.h). */
#include "ops/registry.h"

const pg_op_def pg_ops_local_class[] = {
    {0},
};
