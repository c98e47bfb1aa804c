/* The daemon's loop thread: listeners, signals, the job table, shutdown. */
#include "server.h"

#include "actors/session.h"
#include "bufpool.h"
#include "cache.h"
#include "cluster.h"
#include "gdalio.h"
#include "log.h"
#include "loop.h"
#include "paths.h"
#include "runtime.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static pg_server *the_server;

pg_server *pg_server_get(void)
{
    return the_server;
}

/* ---- jobs ---- */

pg_jobent *pg_server_find_job(pg_server *srv, uint64_t sid, json_t *id)
{
    for (pg_jobent *e = srv->jobs; e; e = e->next)
        if (e->session_id == sid && json_equal(e->id, id)) return e;
    return NULL;
}

static void on_deadline(uv_timer_t *t)
{
    pg_jobent *e = t->data;
    pg_job_cancel(e->job, PG_ETIMEOUT);
}

int pg_server_start_job(pg_server *srv, uint64_t sid, json_t *req, pg_error *err)
{
    json_t *id = json_object_get(req, "id");
    if (srv->shutting_down) return pg_error_set(err, PG_ESHUTDOWN, "the daemon is shutting down");
    if (pg_server_find_job(srv, sid, id))
        return pg_error_set(err, PG_EDUPID,
                            "a job with this id is already running on this "
                            "connection");
    if (srv->njobs >= srv->cfg->limits.max_jobs)
        return pg_error_set(err, PG_EBUSY,
                            "the daemon is running %lld job(s), its limit (limits.max_jobs)",
                            (long long)srv->njobs);
    pg_jobent *e = calloc(1, sizeof *e);
    pg_job *job = e ? pg_job_new(sid, req, &srv->job_env) : NULL;
    if (job == NULL) {
        free(e);
        return pg_error_set(err, PG_ENOMEM, "out of memory");
    }
    e->srv = srv;
    e->session_id = sid;
    e->id = json_incref(id);
    e->job = job;
    json_t *to = json_object_get(req, "timeout_ms");
    int64_t timeout = to ? (int64_t)json_integer_value(to) : srv->cfg->default_timeout_ms;
    if (timeout > 0) {
        uv_timer_init(srv->loop, &e->timer);
        e->timer.data = e;
        uv_timer_start(&e->timer, on_deadline, (uint64_t)timeout, 0);
        e->has_timer = true;
    }
    e->next = srv->jobs;
    srv->jobs = e;
    srv->njobs++;
    pg_job_start(job);
    return 0;
}

void pg_server_cancel_session(pg_server *srv, uint64_t sid)
{
    for (pg_jobent *e = srv->jobs; e; e = e->next)
        if (e->session_id == sid) pg_job_cancel(e->job, PG_ECANCELLED);
}

static void free_jobent(uv_handle_t *h)
{
    free(h->data);
}

static void maybe_stop(pg_server *srv);

void pg_server_job_ended(pg_server *srv, pg_job *job, int outcome)
{
    pg_jobent **pp = &srv->jobs;
    while (*pp && (*pp)->job != job)
        pp = &(*pp)->next;
    pg_jobent *e = *pp;
    if (e == NULL) return; /* cannot happen: every job has an entry */
    *pp = e->next;
    srv->njobs--;
    if (outcome == PG_OUTCOME_COMPLETED)
        srv->completed++;
    else if (outcome == PG_OUTCOME_CANCELLED)
        srv->cancelled++;
    else
        srv->failed++;
    json_decref(e->id);
    pg_job_unref(&e->job);
    if (e->has_timer) {
        uv_timer_stop(&e->timer);
        uv_close((uv_handle_t *)&e->timer, free_jobent);
    } else {
        free(e);
    }
    maybe_stop(srv);
}

/* The result cache's part of `status` (src/cache.h). */
static json_t *status_cache(void)
{
    return pg_cache_stats_json(pg_cache_global());
}

json_t *pg_server_status(pg_server *srv)
{
    pg_bufpool_stats bs;
    pg_bufpool_get_stats(&bs);
    int64_t queued;
    uint64_t ran;
    pg_runtime_counts(&queued, &ran);
    json_t *st = json_pack(
        "{s:s, s:f, s:i, s:i, s:b, s:{s:I, s:I, s:I, s:I}, s:{s:I, s:I, s:I, s:I, s:I}, s:I, "
        "s:I, s:o}",
        "version", PG_VERSION, "uptime_s", (double)(pg_now_ns() - srv->started_ns) / 1e9, "workers",
        pg_runtime_workers(), "connections", srv->nconnections, "shutting_down", srv->shutting_down,
        "jobs", "running", (json_int_t)srv->njobs, "completed", (json_int_t)srv->completed,
        "failed", (json_int_t)srv->failed, "cancelled", (json_int_t)srv->cancelled, "memory",
        "budget_bytes", (json_int_t)bs.budget, "reserved_bytes", (json_int_t)bs.reserved,
        "in_use_bytes", (json_int_t)bs.in_use, "cached_bytes", (json_int_t)bs.cached, "peak_bytes",
        (json_int_t)bs.peak_in_use, "tasks_queued", (json_int_t)queued, "tasks_run",
        (json_int_t)ran, "cache", status_cache());
    json_t *cl = pg_cluster_status();
    if (st && cl) json_object_set_new(st, "cluster", cl);
    return st;
}

/* ---- listeners ---- */

static void on_connection(uv_stream_t *server, int status)
{
    if (status < 0) {
        pg_log_warn("accept: %s", uv_strerror(status));
        return;
    }
    pg_session_accept(server->data, server);
}

/* "HOST:PORT" or "[V6]:PORT" (validated by the config already). */
static int parse_addr(const char *s, struct sockaddr_storage *ss)
{
    char host[256];
    int port;
    if (pg_config_split_addr(s, host, sizeof host, &port) != 0) return UV_EINVAL;
    if (strcmp(host, "localhost") == 0) strcpy(host, "127.0.0.1");
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0) return 0;
    return uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss);
}

static void addr_string(const struct sockaddr_storage *ss, char *out, size_t n)
{
    char host[64] = "";
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        uv_ip6_name(a, host, sizeof host);
        snprintf(out, n, "[%s]:%d", host, ntohs(a->sin6_port));
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        uv_ip4_name(a, host, sizeof host);
        snprintf(out, n, "%s:%d", host, ntohs(a->sin_port));
    }
}

static int write_ready_file(pg_server *srv, const char *path)
{
    json_t *list = json_array();
    for (int i = 0; i < srv->ntcp; i++) {
        struct sockaddr_storage ss;
        int len = sizeof ss;
        char buf[128];
        uv_tcp_getsockname(&srv->tcp[i], (struct sockaddr *)&ss, &len);
        addr_string(&ss, buf, sizeof buf);
        json_array_append_new(list, json_string(buf));
    }
    json_t *o = json_pack("{s:o, s:s?, s:i}", "listen", list, "socket", srv->cfg->socket_path,
                          "pid", (int)getpid());
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int rc = json_dump_file(o, tmp, JSON_COMPACT);
    json_decref(o);
    if (rc != 0 || rename(tmp, path) != 0) return -1;
    return 0;
}

static int start_listeners(pg_server *srv)
{
    const pg_config *c = srv->cfg;
    srv->tcp = calloc((size_t)(c->nlisten ? c->nlisten : 1), sizeof *srv->tcp);
    if (srv->tcp == NULL) return UV_ENOMEM;
    for (int i = 0; i < c->nlisten; i++) {
        struct sockaddr_storage ss;
        int rc = parse_addr(c->listen[i], &ss);
        if (rc) {
            pg_log_error("listen %s: not an address", c->listen[i]);
            return rc;
        }
        uv_tcp_init(srv->loop, &srv->tcp[i]);
        srv->ntcp = i + 1;
        srv->tcp[i].data = srv;
        if ((rc = uv_tcp_bind(&srv->tcp[i], (struct sockaddr *)&ss, 0)) ||
            (rc = uv_listen((uv_stream_t *)&srv->tcp[i], 128, on_connection))) {
            pg_log_error("listen %s: %s", c->listen[i], uv_strerror(rc));
            return rc;
        }
        struct sockaddr_storage bound;
        int len = sizeof bound;
        char buf[128];
        uv_tcp_getsockname(&srv->tcp[i], (struct sockaddr *)&bound, &len);
        addr_string(&bound, buf, sizeof buf);
        pg_log_info("listening on tcp %s", buf);
    }
    if (c->socket_path) {
        struct stat st;
        /* A socket file left by a daemon that died: take it over. Anything
         * else at that path is not ours to remove. */
        if (lstat(c->socket_path, &st) == 0 && S_ISSOCK(st.st_mode)) unlink(c->socket_path);
        uv_pipe_init(srv->loop, &srv->pipe, 0);
        srv->has_pipe = true;
        srv->pipe.data = srv;
        int rc;
        if ((rc = uv_pipe_bind(&srv->pipe, c->socket_path)) ||
            (rc = uv_listen((uv_stream_t *)&srv->pipe, 128, on_connection))) {
            pg_log_error("listen unix:%s: %s", c->socket_path, uv_strerror(rc));
            return rc;
        }
        chmod(c->socket_path, 0660);
        pg_log_info("listening on unix %s", c->socket_path);
    }
    if (srv->ntcp == 0 && !srv->has_pipe) {
        pg_log_error("nothing to listen on: set \"listen\" or \"socket\"");
        return UV_EINVAL;
    }
    return 0;
}

/* ---- shutdown ---- */

static void close_listeners(pg_server *srv)
{
    for (int i = 0; i < srv->ntcp; i++)
        if (!uv_is_closing((uv_handle_t *)&srv->tcp[i]))
            uv_close((uv_handle_t *)&srv->tcp[i], NULL);
    if (srv->has_pipe && !uv_is_closing((uv_handle_t *)&srv->pipe)) {
        uv_close((uv_handle_t *)&srv->pipe, NULL);
        unlink(srv->cfg->socket_path);
    }
}

static void cancel_all(pg_server *srv, int code)
{
    for (pg_jobent *e = srv->jobs; e; e = e->next)
        pg_job_cancel(e->job, code);
}

static void on_grace(uv_timer_t *t)
{
    pg_server *srv = t->data;
    pg_log_warn("grace period over: cancelling %lld running job(s)", (long long)srv->njobs);
    cancel_all(srv, PG_ESHUTDOWN);
}

/* Once shutting down and every job has answered: close everything left,
 * and the loop ends by itself. */
static void maybe_stop(pg_server *srv)
{
    if (!srv->shutting_down || srv->njobs > 0 || srv->stopped) return;
    srv->stopped = true;
    pg_log_info("all jobs done; closing");
    pg_cluster_stop();
    pg_session_close_all(srv);
    uv_timer_stop(&srv->grace);
    uv_close((uv_handle_t *)&srv->grace, NULL);
    uv_close((uv_handle_t *)&srv->sigterm, NULL);
    uv_close((uv_handle_t *)&srv->sigint, NULL);
    pg_loop_close();
}

static void on_signal(uv_signal_t *h, int signum)
{
    pg_server *srv = h->data;
    if (srv->shutting_down) {
        pg_log_warn("second signal: cancelling every job now");
        cancel_all(srv, PG_ESHUTDOWN);
        return;
    }
    pg_log_info("%s: stopping (no new jobs; %lld running, grace %lld ms)",
                signum == SIGTERM ? "SIGTERM" : "SIGINT", (long long)srv->njobs,
                (long long)srv->cfg->shutdown_grace_ms);
    srv->shutting_down = true;
    close_listeners(srv);
    if (srv->njobs > 0)
        uv_timer_start(&srv->grace, on_grace, (uint64_t)srv->cfg->shutdown_grace_ms, 0);
    maybe_stop(srv);
}

int pg_server_run(const pg_config *cfg)
{
    pg_server srv_, *srv = &srv_;
    memset(srv, 0, sizeof *srv);
    srv->cfg = cfg;
    srv->started_ns = pg_now_ns();
    srv->loop = uv_default_loop();
    the_server = srv;

    pg_log_set_thread("loop");
    pg_error err = {0};
    if (pg_path_resolve_root(cfg->data_root, &srv->data_root, &err) != 0) {
        pg_log_error("data_root '%s': %s", cfg->data_root, err.message);
        return 1;
    }
    srv->job_env.plan.data_root = srv->data_root;
    srv->job_env.plan.max_nodes = cfg->limits.max_nodes;
    srv->job_env.plan.max_depth = cfg->limits.max_depth;
    srv->job_env.plan.max_cells = cfg->limits.max_cells;
    srv->job_env.plan.tile_w = cfg->tile_w;
    srv->job_env.plan.tile_h = cfg->tile_h;
    srv->job_env.max_result_bytes = cfg->limits.max_result_bytes;
    srv->job_env.fusion = cfg->fusion;
    srv->job_env.remote_timeout_ms = cfg->cluster.call_timeout_ms;
    memcpy(srv->job_env.distribute, cfg->cluster.distribute, sizeof srv->job_env.distribute);

    /* A client that goes away mid-write must not kill the daemon. */
    signal(SIGPIPE, SIG_IGN);
    pg_bufpool_init((size_t)cfg->memory_budget_mb << 20);
    pg_gdalio_init(cfg->gdal_cache_mb << 20);
    pg_cache_global_init((size_t)cfg->cache_mb << 20); /* before the workers: they read it */
    pg_runtime_on_thread_exit(pg_gdalio_thread_exit);
    int rc = pg_runtime_start(cfg->workers);
    if (rc) {
        pg_log_error("cannot start the workers: %s", pg_strerror(rc));
        pg_cache_global_shutdown();
        free(srv->data_root);
        return 1;
    }
    pg_loop_init(srv->loop);
    uv_signal_init(srv->loop, &srv->sigterm);
    uv_signal_init(srv->loop, &srv->sigint);
    srv->sigterm.data = srv->sigint.data = srv;
    uv_signal_start(&srv->sigterm, on_signal, SIGTERM);
    uv_signal_start(&srv->sigint, on_signal, SIGINT);
    uv_timer_init(srv->loop, &srv->grace);
    srv->grace.data = srv;

    int exit_code = 0;
    if (pg_cluster_start(srv->loop, cfg, &err) != 0) {
        pg_log_error("%s", err.message);
        exit_code = 1;
        srv->shutting_down = true;
        maybe_stop(srv);
    } else if (start_listeners(srv) != 0) {
        exit_code = 1;
        srv->shutting_down = true;
        close_listeners(srv);
        maybe_stop(srv);
    } else {
        pg_log_info("pergolad %s: %d workers, data root %s, tiles %lldx%lld, memory budget %lld "
                    "MiB",
                    PG_VERSION, pg_runtime_workers(), srv->data_root, (long long)cfg->tile_w,
                    (long long)cfg->tile_h, (long long)cfg->memory_budget_mb);
        if (cfg->ready_file && write_ready_file(srv, cfg->ready_file) != 0) {
            pg_log_error("cannot write the ready file %s", cfg->ready_file);
            exit_code = 1;
            srv->shutting_down = true;
            close_listeners(srv);
            maybe_stop(srv);
        }
    }
    uv_run(srv->loop, UV_RUN_DEFAULT);
    pg_runtime_stop();
    uv_loop_close(srv->loop);
    pg_bufpool_shutdown();
    pg_cache_global_shutdown(); /* after the workers: no job is left to hold a claim */
    free(srv->tcp);
    free(srv->data_root);
    the_server = NULL;
    pg_log_info("stopped");
    return exit_code;
}
