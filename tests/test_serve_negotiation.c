/*
 * test_serve_negotiation.c - the two small rule books of `serve` that need no model: Accept
 * negotiation (accept.c: q-values, format= and verbose=, wildcards, refusals) and which
 * addresses an image URL may lead to (url_fetch.c's address rule and its allow-list).
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "serve/accept.h"
#include "serve/url_fetch.h"
#include "test_util.h"

static void check_accept(const char *accept, int want_rc, enum serve_out_type type,
                         enum serve_shape shape)
{
    struct serve_accept a;
    int rc = serve_accept_parse(accept, &a);
    if (rc != want_rc || (rc == 0 && (a.type != type || serve_accept_shape(&a, SERVE_SHAPE_DEFAULT) != shape))) {
        fprintf(stderr, "Accept \"%s\": rc %d type %d shape %d; want rc %d type %d shape %d\n",
                accept ? accept : "(null)", rc, (int)a.type,
                (int)serve_accept_shape(&a, SERVE_SHAPE_DEFAULT), want_rc, (int)type, (int)shape);
        test_failures++;
    }
}

static void test_accept(void)
{
    const enum serve_out_type J = SERVE_OUT_JSON, N = SERVE_OUT_NPY, L = SERVE_OUT_JSONLINES;
    const enum serve_shape D = SERVE_SHAPE_DEFAULT, B = SERVE_SHAPE_BUILTIN, P = SERVE_SHAPE_PYTORCH;
    check_accept(NULL, 0, J, D);
    check_accept("", 0, J, D);
    check_accept("  ", 0, J, D);
    check_accept("*/*", 0, J, D);
    check_accept("application/x-npy", 0, N, D);
    check_accept("APPLICATION/JSONLINES", 0, L, D);
    /* issue 12 item 6: weights, not order, decide */
    check_accept("application/x-npy;q=0.1, application/json;q=0.9", 0, J, D);
    check_accept("application/json;q=0.5, application/x-npy", 0, N, D);
    check_accept("application/x-npy ; q=0.5 , application/jsonl ; q=0.5", 0, N, D); /* tie: first */
    check_accept("application/json;q=0", -1, J, D);
    check_accept("application/json;q=0.0, application/x-npy;q=0", -1, J, D);
    check_accept("application/json;q=1.5", -1, J, D);
    check_accept("application/json;q=abc", -1, J, D);
    check_accept("text/html, image/*", -1, J, D);
    check_accept("text/html, application/x-npy;q=0.01", 0, N, D);
    check_accept("application/json; format=builtin", 0, J, B);
    check_accept("application/json;format=\"pytorch\"", 0, J, P);
    check_accept("application/x-npy;format=logits;q=0.3, application/json;q=0.2", 0, N, P);
    check_accept("application/json;format=mxnet", -1, J, D);
    check_accept("application/jsonlines; verbose=true", 0, L, B);
    check_accept("application/jsonlines; verbose=true; format=default", 0, L, D);
    check_accept("application/json;foo=bar", 0, J, D);
    struct serve_accept a;
    CHECK_INT_EQ(serve_accept_parse("application/json", &a), 0);
    CHECK_INT_EQ(serve_accept_shape(&a, SERVE_SHAPE_PYTORCH), SERVE_SHAPE_PYTORCH);
    enum serve_shape s;
    CHECK_INT_EQ(serve_shape_parse("Builtin", 7, &s), 0);
    CHECK_INT_EQ(s, SERVE_SHAPE_BUILTIN);
    CHECK_INT_EQ(serve_shape_parse("builtins", 8, &s), -1);
}

static void check_address(const char *text, const struct url_fetch_options *o, const char *want)
{
    struct sockaddr_in v4 = {.sin_family = AF_INET};
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
    const void *sa = &v4;
    if (inet_pton(AF_INET, text, &v4.sin_addr) != 1) {
        CHECK(inet_pton(AF_INET6, text, &v6.sin6_addr) == 1);
        sa = &v6;
    }
    const char *why = url_address_refused(sa, o);
    if (want ? !why || !strstr(why, want) : why != NULL) {
        fprintf(stderr, "address %s: got \"%s\", want \"%s\"\n", text, why ? why : "(allowed)",
                want ? want : "(allowed)");
        test_failures++;
    }
}

static void test_addresses(void)
{
    struct url_fetch_options o;
    char msg[256];
    unsetenv("SERVE_URL_ALLOW_PRIVATE");
    CHECK_INT_EQ(url_fetch_options_from_env(&o, msg, sizeof msg), 0);
    check_address("93.184.215.14", &o, NULL);
    check_address("2606:2800:21f:cb07:6820:80da:af6b:8b2c", &o, NULL);
    check_address("127.0.0.1", &o, "loopback");
    check_address("127.255.0.9", &o, "loopback");
    check_address("169.254.169.254", &o, "link-local");
    check_address("10.0.0.1", &o, "private");
    check_address("172.16.0.1", &o, "private");
    check_address("172.31.255.255", &o, "private");
    check_address("172.32.0.1", &o, NULL);
    check_address("192.168.1.1", &o, "private");
    check_address("100.100.100.200", &o, "private"); /* carrier-grade NAT; a metadata address */
    check_address("0.0.0.0", &o, "unspecified");
    check_address("224.0.0.1", &o, "multicast");
    check_address("255.255.255.255", &o, "reserved");
    check_address("::1", &o, "loopback");
    check_address("::", &o, "unspecified");
    check_address("fe80::1", &o, "link-local");
    check_address("fd00:ec2::254", &o, "private");
    check_address("::ffff:169.254.169.254", &o, "link-local");
    check_address("::ffff:8.8.8.8", &o, NULL);
    check_address("64:ff9b::a00:1", &o, "private");
    check_address("2002:a00:1::", &o, "private"); /* 6to4 of 10.0.0.1 */
    check_address("ff02::1", &o, "multicast");

    setenv("SERVE_URL_ALLOW_PRIVATE", "127.0.0.1, 10.1.0.0/16,fd00::/8", 1);
    CHECK_INT_EQ(url_fetch_options_from_env(&o, msg, sizeof msg), 0);
    CHECK_INT_EQ(o.n_allowed, 3);
    check_address("127.0.0.1", &o, NULL);
    check_address("127.0.0.2", &o, "loopback");
    check_address("10.1.200.3", &o, NULL);
    check_address("10.2.0.1", &o, "private");
    check_address("fd12::1", &o, NULL);
    check_address("169.254.169.254", &o, "link-local");

    const char *bad[] = {"10.0.0.0/33", "example.com", "::1/129", "1.2.3.4/", "/8"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        setenv("SERVE_URL_ALLOW_PRIVATE", bad[i], 1);
        msg[0] = '\0';
        CHECK_INT_EQ(url_fetch_options_from_env(&o, msg, sizeof msg), -1);
        CHECK_CONTAINS(msg, "SERVE_URL_ALLOW_PRIVATE");
    }
    unsetenv("SERVE_URL_ALLOW_PRIVATE");
    setenv("SERVE_URL_TIMEOUT_S", "0", 1);
    CHECK_INT_EQ(url_fetch_options_from_env(&o, msg, sizeof msg), -1);
    CHECK_CONTAINS(msg, "SERVE_URL_TIMEOUT_S");
    setenv("SERVE_URL_TIMEOUT_S", "2.5", 1);
    CHECK_INT_EQ(url_fetch_options_from_env(&o, msg, sizeof msg), 0);
    CHECK_INT_EQ(o.timeout_ms, 2500);
    unsetenv("SERVE_URL_TIMEOUT_S");
}

int main(void)
{
    test_accept();
    test_addresses();
    if (test_failures)
        fprintf(stderr, "%d check(s) failed\n", test_failures);
    else
        printf("serve negotiation: all checks passed\n");
    return test_failures ? 1 : 0;
}
