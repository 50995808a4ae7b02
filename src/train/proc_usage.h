/*
 * proc_usage.h - this process's CPU time and memory, and the machine's memory, read from
 * /proc (Linux only). Two samples give the CPU use between them.
 */
#ifndef TRAIN_PROC_USAGE_H
#define TRAIN_PROC_USAGE_H

struct proc_sample {
    double wall_s;       /* clock_now_s() when taken */
    double cpu_s;        /* user + system time of this process */
    double rss_mb;       /* resident set size */
    double peak_rss_mb;  /* VmHWM: the largest resident set so far */
    double mem_total_mb; /* the machine's (or container's view of) total memory */
    double mem_available_mb;
};

/* Fills s; fields that cannot be read stay 0 (the report then says "not measured"). */
void proc_sample_take(struct proc_sample *s);
/* Percent of one core used between two samples (200 = two cores busy). */
double proc_cpu_percent(const struct proc_sample *a, const struct proc_sample *b);
int proc_cpu_count(void);

#endif
