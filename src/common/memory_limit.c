/*
 * memory_limit.c - the process's memory limit and resident size (see memory_limit.h).
 */
#include "common/memory_limit.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* A number of bytes from a one-line file, or 0 when absent, "max" or not a number. */
static size_t read_bytes_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[64] = "";
    size_t v = 0;
    if (fgets(line, sizeof line, f)) {
        char *end;
        unsigned long long x = strtoull(line, &end, 10);
        if (end != line && (*end == '\n' || *end == '\0'))
            v = (size_t)x;
    }
    fclose(f);
    return v;
}

size_t memory_limit_bytes(const char **from)
{
    const char *source = "the cgroup limit (memory.max)";
    size_t physical = (size_t)sysconf(_SC_PHYS_PAGES) * (size_t)sysconf(_SC_PAGESIZE);
    size_t limit = read_bytes_file("/sys/fs/cgroup/memory.max");
    if (!limit) {
        limit = read_bytes_file("/sys/fs/cgroup/memory/memory.limit_in_bytes");
        source = "the cgroup limit (memory.limit_in_bytes)";
    }
    if (!limit || limit >= physical) { /* none, or v1's "unlimited" (a huge number) */
        limit = physical;
        source = "the physical memory";
    }
    if (from)
        *from = source;
    return limit;
}

size_t memory_resident_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%llu %llu", &size, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return (size_t)rss * (size_t)sysconf(_SC_PAGESIZE);
}
