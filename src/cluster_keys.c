/* CURVE key pairs for the cluster (cluster.h). A file of its own so that the
 * `pergola` CLI (`pergola keygen`) links it without the daemon's core. */
#include "cluster.h"

#include <string.h>
#include <zmq.h>

int pg_cluster_keygen(char public_key[41], char secret_key[41])
{
    /* zmq_curve_keypair also fails without CURVE, but say it plainly. */
    if (!zmq_has("curve")) return -1;
    if (zmq_curve_keypair(public_key, secret_key) != 0) return -1;
    return 0;
}
