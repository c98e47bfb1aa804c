/* The transform op family (see ops/registry.h). */
#include "ops/registry.h"

const pg_op_def pg_ops_transform[] = {
    {0},
};
