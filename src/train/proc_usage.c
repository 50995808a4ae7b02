/*
 * proc_usage.c - CPU time from /proc/self/stat, resident memory from /proc/self/status and
 * the machine's memory from /proc/meminfo. Each file is small and read with a capped buffer;
 * a field that is missing or malformed is left at 0 rather than failing the training.
 */
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "train/proc_usage.h"

static size_t read_small(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    return n;
}

/* The kB value after "key:" in a /proc status-style file, in MiB; 0 if absent. */
static double kb_field_mb(const char *text, const char *key)
{
    const char *p = strstr(text, key);
    if (!p) return 0;
    p += strlen(key);
    return strtod(p, NULL) / 1024.0;
}

void proc_sample_take(struct proc_sample *s)
{
    char buf[4096];
    memset(s, 0, sizeof *s);
    s->wall_s = clock_now_s();
    if (read_small("/proc/self/stat", buf, sizeof buf) > 0) {
        /* Fields after the command name, which is in parentheses and may hold spaces:
         * state(3) ... utime(14) stime(15). */
        const char *p = strrchr(buf, ')');
        unsigned long long utime = 0, stime = 0;
        if (p && sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
                        &stime) == 2) {
            long hz = sysconf(_SC_CLK_TCK);
            s->cpu_s = hz > 0 ? (double)(utime + stime) / (double)hz : 0;
        }
    }
    if (read_small("/proc/self/status", buf, sizeof buf) > 0) {
        s->rss_mb = kb_field_mb(buf, "VmRSS:");
        s->peak_rss_mb = kb_field_mb(buf, "VmHWM:");
    }
    if (read_small("/proc/meminfo", buf, sizeof buf) > 0) {
        s->mem_total_mb = kb_field_mb(buf, "MemTotal:");
        s->mem_available_mb = kb_field_mb(buf, "MemAvailable:");
    }
}

double proc_cpu_percent(const struct proc_sample *a, const struct proc_sample *b)
{
    double wall = b->wall_s - a->wall_s;
    return wall > 0 ? 100.0 * (b->cpu_s - a->cpu_s) / wall : 0;
}

int proc_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}
