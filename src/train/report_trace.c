/*
 * report_trace.c - trace.json from the profile's recorded steps (see report_trace.h).
 */
#include <stdio.h>

#include "common/error.h"
#include "common/fileio.h"
#include "common/dynbuf.h"
#include "train/report_trace.h"

int trace_write(const struct step_profile *p, int rank, const char *path)
{
    if (!p || !p->trace || p->trace_count == 0) return 0;
    struct dynbuf b;
    dynbuf_init(&b, (size_t)64 << 20);
    dynbuf_printf(&b,
                "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n"
                "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%d,\"args\":{\"name\":\"train "
                "rank %d\"}},\n"
                "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":0,\"args\":{\"name\":"
                "\"phases\"}},\n"
                "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":1,\"args\":{\"name\":"
                "\"steps\"}}",
                rank, rank, rank, rank);
    size_t i = 0;
    while (i < p->trace_count) {
        int64_t step = p->trace[i].step;
        double start = p->trace[i].start_s, end = start;
        for (; i < p->trace_count && p->trace[i].step == step; i++) {
            const struct prof_trace_event *e = &p->trace[i];
            dynbuf_printf(
                &b,
                ",\n{\"name\":\"%s\",\"cat\":\"step\",\"ph\":\"X\",\"ts\":%.3f,\"dur\":%.3f,"
                "\"pid\":%d,\"tid\":0,\"args\":{\"step\":%lld}}",
                prof_phase_name((enum prof_phase)e->phase), e->start_s * 1e6, e->dur_s * 1e6, rank,
                (long long)e->step);
            end = e->start_s + e->dur_s > end ? e->start_s + e->dur_s : end;
        }
        dynbuf_printf(
            &b,
            ",\n{\"name\":\"step %lld\",\"cat\":\"step\",\"ph\":\"X\",\"ts\":%.3f,\"dur\":%.3f,"
            "\"pid\":%d,\"tid\":1}",
            (long long)step, start * 1e6, (end - start) * 1e6, rank);
    }
    dynbuf_puts(&b, "\n]}\n");
    int rc = b.failed ? err_set("trace.json would be over 64 MiB")
                      : fileio_write_atomic(path, b.data, b.len);
    dynbuf_free(&b);
    return rc;
}
