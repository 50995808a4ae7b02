/*
 * test_report_writers.c - the training report's small writers against known answers:
 * CRC-32C (the TFRecord checksum) on the standard check string, a TensorBoard event file's
 * exact bytes for one scalar (framing, masked CRCs, protobuf fields), the capped buffer
 * (refuses past its cap), HTML escaping and base64. The whole path (TensorBoard's own reader,
 * a browser) is tested end to end in tests/python/test_report.py.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_util.h"
#include "common/dynbuf.h"
#include "train/report_tensorboard.h"

#define CHECK_STR_EQ(a, b)                                                                         \
    do {                                                                                           \
        const char *sa_ = (a), *sb_ = (b);                                                         \
        if (!sa_ || strcmp(sa_, sb_) != 0) {                                                       \
            fprintf(stderr, "%s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__, sa_ ? sa_ : "(null)", \
                    sb_);                                                                          \
            test_failures++;                                                                       \
        }                                                                                          \
    } while (0)

static unsigned read_le32(const unsigned char *p)
{
    return (unsigned)p[0] | (unsigned)p[1] << 8 | (unsigned)p[2] << 16 | (unsigned)p[3] << 24;
}

static unsigned masked(unsigned c)
{
    return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

/* Walks the TFRecord frames of a file: each length and payload checksum must hold. */
static int check_frames(const unsigned char *d, size_t n, const unsigned char **last,
                        size_t *last_len)
{
    int records = 0;
    size_t at = 0;
    while (at + 12 <= n) {
        unsigned long long len = 0;
        for (int i = 0; i < 8; i++)
            len |= (unsigned long long)d[at + i] << (8 * i);
        CHECK_INT_EQ(read_le32(d + at + 8), masked(tb_crc32c(d + at, 8)));
        if (at + 12 + len + 4 > n) return -1;
        CHECK_INT_EQ(read_le32(d + at + 12 + len), masked(tb_crc32c(d + at + 12, (size_t)len)));
        *last = d + at + 12;
        *last_len = (size_t)len;
        at += 12 + (size_t)len + 4;
        records++;
    }
    CHECK_INT_EQ(at, n);
    return records;
}

static void test_tensorboard(void)
{
    CHECK_INT_EQ(tb_crc32c("123456789", 9), 0xe3069283u); /* the CRC-32C check value */
    char dir[] = "/tmp/test_report_writers_XXXXXX";
    REQUIRE(mkdtemp(dir), "mkdtemp failed");
    struct tb_writer w;
    REQUIRE(tb_open(&w, dir, "host") == 0, "tb_open failed");
    CHECK_INT_EQ(tb_scalar(&w, "loss/train", 300, 0.5), 0);
    char path[4200];
    snprintf(path, sizeof path, "%s", w.path);
    tb_close(&w);
    FILE *f = fopen(path, "rb");
    REQUIRE(f, "cannot open %s", path);
    unsigned char d[1024];
    size_t n = fread(d, 1, sizeof d, f);
    fclose(f);
    const unsigned char *ev = NULL;
    size_t len = 0;
    CHECK_INT_EQ(check_frames(d, n, &ev, &len), 2); /* file_version, then the scalar */
    /* Event: wall_time (field 1, fixed64), step (2, varint 300 = ac 02), summary (5, bytes):
     * Summary.value (1, bytes): tag (1) "loss/train", simple_value (2, fixed32) 0.5f. */
    static const unsigned char tail[] = {0x10, 0xac, 0x02, 0x2a, 0x13, 0x0a, 0x11, 0x0a,
                                         0x0a, 'l',  'o',  's',  's',  '/',  't',  'r',
                                         'a',  'i',  'n',  0x15, 0x00, 0x00, 0x00, 0x3f};
    CHECK_INT_EQ(len, 9 + sizeof tail);
    CHECK(ev && ev[0] == 0x09 && len >= sizeof tail &&
          memcmp(ev + len - sizeof tail, tail, sizeof tail) == 0);
    unlink(path);
    rmdir(dir);
}

static void test_buffer(void)
{
    struct dynbuf b;
    dynbuf_init(&b, 16);
    dynbuf_puts(&b, "0123456789");
    CHECK(!b.failed && b.len == 10);
    dynbuf_printf(&b, "%s", "abcdefgh"); /* would need 19 bytes with the terminator */
    CHECK(b.failed && b.len == 10);
    dynbuf_free(&b);

    dynbuf_init(&b, 1 << 20);
    dynbuf_html(&b, "<a href=\"x\">&'</a>");
    CHECK_STR_EQ(b.data, "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
    dynbuf_free(&b);
    const char *in[] = {"", "f", "fo", "foo", "foobar"},
               *out[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYmFy"};
    for (int i = 0; i < 5; i++) {
        dynbuf_init(&b, 64);
        dynbuf_puts(&b, "");
        dynbuf_base64(&b, (const unsigned char *)in[i], strlen(in[i]));
        CHECK_STR_EQ(b.data, out[i]);
        dynbuf_free(&b);
    }
}

int main(void)
{
    test_tensorboard();
    test_buffer();
    return test_failures ? 1 : 0;
}
