/*
 * cluster.c - reading resourceconfig.json into a sorted host list, resolving host names with
 * retries, and reading a worker's place in the job back from its environment.
 */
#define _DEFAULT_SOURCE
#include "train/cluster.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/json_file.h"
#include "common/opt_ml.h"

static int compare_hosts(const void *a, const void *b)
{
    return strcmp(a, b);
}

static int read_hosts(const char *path, const cJSON *cfg, struct cluster *c)
{
    const cJSON *host = cJSON_GetObjectItemCaseSensitive(cfg, "current_host");
    const cJSON *hosts = cJSON_GetObjectItemCaseSensitive(cfg, "hosts");
    if (!cJSON_IsString(host) || !cJSON_IsArray(hosts) || cJSON_GetArraySize(hosts) < 1)
        return err_set("%s needs \"current_host\" (a string) and \"hosts\" (a non-empty list)", path);
    if (cJSON_GetArraySize(hosts) > CLUSTER_MAX_HOSTS)
        return err_set("%s lists %d hosts; at most %d are supported", path,
                       cJSON_GetArraySize(hosts), CLUSTER_MAX_HOSTS);
    if (strlen(host->valuestring) >= CLUSTER_HOST_MAX || !host->valuestring[0])
        return err_set("%s: current_host must be 1 to %d characters", path, CLUSTER_HOST_MAX - 1);
    snprintf(c->current_host, sizeof c->current_host, "%s", host->valuestring);
    const cJSON *h;
    cJSON_ArrayForEach(h, hosts) {
        if (!cJSON_IsString(h) || !h->valuestring[0] || strlen(h->valuestring) >= CLUSTER_HOST_MAX)
            return err_set("%s: every entry of \"hosts\" must be a host name of 1 to %d characters",
                           path, CLUSTER_HOST_MAX - 1);
        snprintf(c->hosts[c->host_count++], CLUSTER_HOST_MAX, "%s", h->valuestring);
    }
    qsort(c->hosts, (size_t)c->host_count, CLUSTER_HOST_MAX, compare_hosts);
    c->host_index = -1;
    for (int i = 0; i < c->host_count; i++) {
        if (i > 0 && strcmp(c->hosts[i], c->hosts[i - 1]) == 0)
            return err_set("%s lists host %s twice", path, c->hosts[i]);
        if (strcmp(c->hosts[i], c->current_host) == 0)
            c->host_index = i;
    }
    if (c->host_index < 0)
        return err_set("%s: current_host %s is not among \"hosts\"", path, c->current_host);
    return 0;
}

int cluster_read(const char *config_dir, struct cluster *c)
{
    memset(c, 0, sizeof *c);
    char path[4096];
    if (opt_ml_join(path, sizeof path, config_dir, "resourceconfig.json") < 0)
        return -1;
    if (access(path, F_OK) != 0) {
        snprintf(c->current_host, sizeof c->current_host, "algo-1");
        snprintf(c->hosts[0], CLUSTER_HOST_MAX, "algo-1");
        c->host_count = 1;
        return 0;
    }
    cJSON *cfg;
    if (json_read_file(path, 1 << 20, &cfg) < 0)
        return -1;
    int rc = read_hosts(path, cfg, c);
    const cJSON *iface = cJSON_GetObjectItemCaseSensitive(cfg, "network_interface_name");
    if (rc == 0 && cJSON_IsString(iface)) {
        if (strlen(iface->valuestring) >= sizeof c->interface)
            rc = err_set("%s: network_interface_name is too long", path);
        else
            snprintf(c->interface, sizeof c->interface, "%s", iface->valuestring);
    }
    cJSON_Delete(cfg);
    return rc;
}

int cluster_resolve(const char *host, double timeout_s, bool (*stop_requested)(void), char *addr,
                    size_t cap)
{
    double deadline = clock_now_s() + timeout_s;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    for (;;) {
        struct addrinfo *res = NULL;
        int rc = getaddrinfo(host, NULL, &hints, &res);
        if (rc == 0) {
            /* Prefer IPv4, as SageMaker's cluster network is. */
            const struct addrinfo *pick = res;
            for (const struct addrinfo *a = res; a; a = a->ai_next)
                if (a->ai_family == AF_INET) {
                    pick = a;
                    break;
                }
            const void *raw = pick->ai_family == AF_INET
                                  ? (const void *)&((struct sockaddr_in *)pick->ai_addr)->sin_addr
                                  : (const void *)&((struct sockaddr_in6 *)pick->ai_addr)->sin6_addr;
            const char *ok = inet_ntop(pick->ai_family, raw, addr, (socklen_t)cap);
            freeaddrinfo(res);
            if (!ok)
                return err_set("formatting the address of %s: %s", host, strerror(errno));
            return 0;
        }
        if (rc != EAI_AGAIN && rc != EAI_NONAME && rc != EAI_FAIL)
            return err_set("resolving host %s: %s", host, gai_strerror(rc));
        if (clock_now_s() >= deadline)
            return err_set_reason(ERR_REASON_PEER_FAILED,
                                  "host %s did not resolve within %.0f s (%s)", host, timeout_s,
                                  gai_strerror(rc));
        if (stop_requested && stop_requested())
            return CLUSTER_RESOLVE_STOPPED;
        usleep(500 * 1000);
    }
}

static int env_int(const char *name, int min, int max, int *out)
{
    const char *v = getenv(name);
    char *end;
    if (!v || !*v)
        return err_set("environment variable %s is missing", name);
    long x = strtol(v, &end, 10);
    if (*end || x < min || x > max)
        return err_set("environment variable %s=%s is not an integer from %d to %d", name, v, min, max);
    *out = (int)x;
    return 0;
}

int worker_layout_from_env(struct worker_layout *w)
{
    memset(w, 0, sizeof *w);
    if (!getenv("RANK") || !getenv("WORLD_SIZE"))
        return 0;
    const char *master = getenv("MASTER_ADDR");
    if (env_int("WORLD_SIZE", 1, 1 << 20, &w->world_size) < 0 ||
        env_int("RANK", 0, w->world_size - 1, &w->rank) < 0 ||
        env_int("LOCAL_WORLD_SIZE", 1, w->world_size, &w->local_world_size) < 0 ||
        env_int("LOCAL_RANK", 0, w->local_world_size - 1, &w->local_rank) < 0 ||
        env_int("MASTER_PORT", 1, 65535, &w->master_port) < 0)
        return -1;
    if (!master || !*master || strlen(master) >= sizeof w->master_addr)
        return err_set("environment variable MASTER_ADDR is missing or too long");
    snprintf(w->master_addr, sizeof w->master_addr, "%s", master);
    return 1;
}
