/*
 * memory_limit.h - how much memory this process may use: the cgroup's limit (v2 memory.max,
 * v1 memory.limit_in_bytes) when there is one below the physical memory, else the physical
 * memory. SageMaker runs containers under a cgroup limit; a local run usually has none.
 */
#ifndef COMMON_MEMORY_LIMIT_H
#define COMMON_MEMORY_LIMIT_H

#include <stddef.h>

/* The limit in bytes; *from (may be NULL) names where it came from, a static string. */
size_t memory_limit_bytes(const char **from);

/* This process's resident memory in bytes (0 when /proc cannot tell). */
size_t memory_resident_bytes(void);

#endif
