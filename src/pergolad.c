/* pergolad: the Pergola daemon. Reads its configuration (conf/pergola.json
 * and flags; `pergolad --help`), then serves until SIGTERM or SIGINT. */
#include "config.h"
#include "log.h"
#include "server.h"

#include <stdio.h>

int main(int argc, char **argv)
{
    pg_config cfg;
    pg_error err = {0};
    pg_config_defaults(&cfg);
    int rc = pg_config_from_args(&cfg, argc, argv, &err);
    if (rc == 1) { /* --help or --version */
        pg_config_clear(&cfg);
        return 0;
    }
    if (rc != 0) {
        fprintf(stderr, "pergolad: %s\n", err.message);
        pg_config_clear(&cfg);
        return 2;
    }
    pg_log_set_level(cfg.log_level);
    int code = pg_server_run(&cfg);
    pg_config_clear(&cfg);
    return code;
}
