/* Suite "it_cluster": real pergolad nodes on 127.0.0.1 (cluster_harness.h):
 * peers come up and report load, a SIGKILLed node goes down and comes back
 * up after a restart, a node whose key the others do not know is refused
 * (and logged), a node with a tampered secret key does not start. */
#include "cluster_harness.h"

#include <check.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) return 0;
    char line[8192];
    int found = 0;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

START_TEST(three_nodes_up)
{
    th_cluster_opts o = {0};
    ck_assert_int_eq(th_cluster_start(3, &o), 0);
    for (int i = 0; i < 3; i++) {
        json_t *st = th_cluster_status(i);
        ck_assert_ptr_nonnull(st);
        json_t *cl = json_object_get(st, "cluster");
        ck_assert_str_eq(json_string_value(json_object_get(cl, "node")), th_cluster_name(i));
        ck_assert_str_eq(json_string_value(json_object_get(cl, "endpoint")),
                         th_cluster_endpoint(i));
        json_t *peers = json_object_get(cl, "peers");
        ck_assert_int_eq(json_array_size(peers), 2);
        size_t k;
        json_t *p;
        int seen = 0;
        json_array_foreach(peers, k, p)
        {
            const char *name = json_string_value(json_object_get(p, "name"));
            ck_assert_str_ne(name, th_cluster_name(i));
            for (int j = 0; j < 3; j++)
                if (strcmp(name, th_cluster_name(j)) == 0) {
                    seen |= 1 << j;
                    ck_assert_str_eq(json_string_value(json_object_get(p, "endpoint")),
                                     th_cluster_endpoint(j));
                }
            ck_assert_str_eq(json_string_value(json_object_get(p, "state")), "up");
            ck_assert(json_is_integer(json_object_get(p, "load")));
            ck_assert_int_ge(json_integer_value(json_object_get(p, "load")), 0);
            ck_assert_int_gt(json_integer_value(json_object_get(p, "workers")), 0);
            ck_assert_int_eq(json_integer_value(json_object_get(p, "inflight")), 0);
            ck_assert(json_is_integer(json_object_get(p, "last_seen_ms")));
        }
        ck_assert_int_eq(seen, 7 & ~(1 << i));
        json_decref(st);
    }
    /* `pergola status` prints the table. */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "'%s' -C %s status > %s/status.txt", getenv("PERGOLA_CLI"),
             th_cluster_node_addr(0), th_cluster_dir());
    ck_assert_int_eq(system(cmd), 0);
    char out[400];
    snprintf(out, sizeof out, "%s/status.txt", th_cluster_dir());
    ck_assert(file_contains(out, "cluster      node a at tcp://127.0.0.1:"));
    ck_assert(file_contains(out, "PEER"));
    char line[200];
    snprintf(line, sizeof line, "  b            %-28s up", th_cluster_endpoint(1));
    ck_assert_msg(file_contains(out, line), "no '%s' in the status", line);
    ck_assert_int_eq(th_cluster_stop(), 0);
}
END_TEST

START_TEST(killed_node_down_then_up)
{
    th_cluster_opts o = {.heartbeat_ms = 100, .peer_timeout_ms = 800};
    ck_assert_int_eq(th_cluster_start(3, &o), 0);
    ck_assert_int_eq(th_cluster_kill(1), 0);
    /* Down for both others; the bound is loose (a loaded machine), the
     * time taken is printed. */
    int t_a = th_cluster_wait_state(0, "b", "down", 10000);
    int t_c = th_cluster_wait_state(2, "b", "down", 10000);
    ck_assert_int_ge(t_a, 0);
    ck_assert_int_ge(t_c, 0);
    fprintf(stderr, "b seen down after %d ms (a), %d ms (c); peer_timeout_ms 800\n", t_a, t_c);
    /* a and c still see each other. */
    char buf[32];
    ck_assert_str_eq(th_cluster_peer_state(0, "c", buf, sizeof buf), "up");
    ck_assert_str_eq(th_cluster_peer_state(2, "a", buf, sizeof buf), "up");
    /* Restart: the others reconnect (backoff up to 5 s). */
    ck_assert_int_eq(th_cluster_restart(1), 0);
    int up = th_cluster_wait_all_up(20000);
    ck_assert_int_ge(up, 0);
    fprintf(stderr, "b up again everywhere %d ms after its restart\n", up);
    ck_assert_int_eq(th_cluster_stop(), 0);
}
END_TEST

START_TEST(unknown_node_refused)
{
    th_cluster_opts o = {0};
    ck_assert_int_eq(th_cluster_start(3, &o), 0);
    /* Node d: a key pair of its own, in its config but not the others'. */
    char prefix[400], dpub[41];
    snprintf(prefix, sizeof prefix, "%s/keys/d", th_cluster_dir());
    ck_assert_int_eq(th_keygen(prefix, dpub), 0);
    json_t *cfg = th_cluster_config_json();
    json_t *nodes = json_object_get(json_object_get(cfg, "cluster"), "nodes");
    char dep[64];
    snprintf(dep, sizeof dep, "tcp://127.0.0.1:%d", th_free_port());
    json_array_append_new(
        nodes, json_pack("{s:s, s:s, s:s}", "name", "d", "endpoint", dep, "public_key", dpub));
    char path[400];
    snprintf(path, sizeof path, "%s/cluster-d.json", th_cluster_dir());
    ck_assert_int_eq(json_dump_file(cfg, path, JSON_INDENT(2)), 0);
    json_decref(cfg);
    th_daemon d;
    th_root_init(&d);
    const char *extra[] = {"--config", path, "--node", "d", NULL};
    ck_assert_int_eq(th_start(&d, extra), 0);
    /* d sees every other node refuse it. */
    for (int i = 0; i < 3; i++) {
        char want[200];
        snprintf(want, sizeof want, "refused a CURVE connection from key %s", dpub);
        int found = 0;
        for (int k = 0; k < 500 && !found; k++) {
            found = file_contains(th_cluster_node(i)->log, want);
            if (!found) usleep(20000);
        }
        ck_assert_msg(found, "node %s did not log '%s'", th_cluster_name(i), want);
    }
    int fd = th_connect(&d);
    ck_assert_int_ge(fd, 0);
    int refused = 0;
    for (int k = 0; k < 250 && refused < 3; k++) {
        json_t *ev = th_request(fd, "{\"id\":1,\"type\":\"status\"}\n", 5000);
        json_t *peers =
            json_object_get(json_object_get(json_object_get(ev, "value"), "cluster"), "peers");
        ck_assert_int_eq(json_array_size(peers), 3);
        size_t j;
        json_t *p;
        refused = 0;
        json_array_foreach(peers, j, p)
        {
            const char *s = json_string_value(json_object_get(p, "state"));
            ck_assert_str_ne(s, "up");
            refused += strcmp(s, "refused") == 0;
        }
        json_decref(ev);
        if (refused < 3) usleep(20000);
    }
    ck_assert_int_eq(refused, 3);
    close(fd);
    /* The others do not list d and are all still up. */
    ck_assert_int_ge(th_cluster_wait_all_up(5000), 0);
    ck_assert_int_eq(th_stop(&d), 0);
    th_cleanup(&d);
    ck_assert_int_eq(th_cluster_stop(), 0);
}
END_TEST

START_TEST(tampered_secret_key)
{
    /* A config of its own: nodes a and b, b's secret key tampered with. */
    char dir[] = "/tmp/pergola-cluster-tamper-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char prefix[300], pa[41], pb[41];
    snprintf(prefix, sizeof prefix, "%s/a", dir);
    ck_assert_int_eq(th_keygen(prefix, pa), 0);
    snprintf(prefix, sizeof prefix, "%s/b", dir);
    ck_assert_int_eq(th_keygen(prefix, pb), 0);
    char sp[320], sec[64] = "";
    snprintf(sp, sizeof sp, "%s/b.secret", dir);
    FILE *f = fopen(sp, "r");
    ck_assert_ptr_nonnull(fgets(sec, sizeof sec, f));
    fclose(f);
    sec[3] = sec[3] == 'x' ? 'y' : 'x';
    f = fopen(sp, "w");
    fputs(sec, f);
    fclose(f);
    json_t *cfg =
        json_pack("{s:{s:[{s:s, s:s, s:s}, {s:s, s:s, s:s}], s:s}}", "cluster", "nodes", "name",
                  "a", "endpoint", "tcp://127.0.0.1:1", "public_key", pa, "name", "b", "endpoint",
                  "tcp://127.0.0.1:2", "public_key", pb, "secret_key_file", "{node}.secret");
    char cp[320];
    snprintf(cp, sizeof cp, "%s/c.json", dir);
    ck_assert_int_eq(json_dump_file(cfg, cp, 0), 0);
    json_decref(cfg);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "'%s' --config '%s' --node b --listen 127.0.0.1:0 2> '%s/err.txt'",
             getenv("PERGOLAD"), cp, dir);
    int st = system(cmd);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 2);
    char ep[400], want[900];
    snprintf(ep, sizeof ep, "%s/err.txt", dir);
    snprintf(want, sizeof want,
             "pergolad: %s: cluster.secret_key_file: the secret key in '%s/b.secret' does not "
             "match cluster.nodes[1].public_key of node 'b'",
             cp, dir);
    ck_assert_msg(file_contains(ep, want), "no '%s'", want);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("it_cluster");
    TCase *tc = tcase_create("cluster");
    tcase_set_timeout(tc, 100);
    tcase_add_test(tc, three_nodes_up);
    tcase_add_test(tc, killed_node_down_then_up);
    tcase_add_test(tc, unknown_node_refused);
    tcase_add_test(tc, tampered_secret_key);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
