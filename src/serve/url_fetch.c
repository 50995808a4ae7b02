/*
 * url_fetch.c - images fetched by URL with libcurl, under the rules in url_fetch.h.
 *
 * The address check runs in libcurl's open-socket callback: it sees the address libcurl is
 * about to connect to (after DNS, for each address tried and for every redirect hop), so a
 * host name that resolves to a private address, or a public server redirecting to
 * 169.254.169.254, is refused where it matters, not by looking at the URL's text.
 */
#define _GNU_SOURCE
#include "serve/url_fetch.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include "common/dynbuf.h"

/* ---- options ---- */

static int env_seconds(const char *name, double def, long *ms, char *msg, size_t msg_len)
{
    const char *v = getenv(name);
    double s = def;
    if (v && *v) {
        char *end;
        s = strtod(v, &end);
        if (*end || !(s > 0 && s <= 600)) {
            snprintf(msg, msg_len, "%s is \"%.32s\": give a number of seconds above 0 and at most 600.",
                     name, v);
            return -1;
        }
    }
    *ms = (long)(s * 1000 + 0.5);
    if (*ms < 1)
        *ms = 1;
    return 0;
}

/* "10.0.0.0/8" or "::1" into *b. */
static int parse_block(const char *text, struct url_allowed_block *b)
{
    char addr[64];
    const char *slash = strchr(text, '/');
    size_t n = slash ? (size_t)(slash - text) : strlen(text);
    if (n == 0 || n >= sizeof addr)
        return -1;
    memcpy(addr, text, n);
    addr[n] = '\0';
    memset(b, 0, sizeof *b);
    int bits;
    if (inet_pton(AF_INET, addr, b->addr) == 1) {
        b->family = AF_INET;
        bits = 32;
    } else if (inet_pton(AF_INET6, addr, b->addr) == 1) {
        b->family = AF_INET6;
        bits = 128;
    } else {
        return -1;
    }
    b->prefix = bits;
    if (slash) {
        char *end;
        long p = strtol(slash + 1, &end, 10);
        if (end == slash + 1 || *end || p < 0 || p > bits)
            return -1;
        b->prefix = (int)p;
    }
    return 0;
}

int url_fetch_options_from_env(struct url_fetch_options *o, char *msg, size_t msg_len)
{
    memset(o, 0, sizeof *o);
    const char *on = getenv("SERVE_URL_FETCH"), *http = getenv("SERVE_URL_ALLOW_HTTP");
    o->enabled = !(on && (strcmp(on, "0") == 0 || strcasecmp(on, "false") == 0));
    o->allow_http = http && (strcmp(http, "1") == 0 || strcasecmp(http, "true") == 0);
    const char *mb = getenv("SAGEMAKER_MAX_PAYLOAD_IN_MB");
    long payload = mb && *mb ? strtol(mb, NULL, 10) : 6;
    if (payload < 1 || payload > 100)
        payload = 6; /* main.c refuses such values at start; this is only a fallback */
    o->max_bytes = (size_t)payload << 20;
    if (env_seconds("SERVE_URL_CONNECT_TIMEOUT_S", 5, &o->connect_timeout_ms, msg, msg_len) < 0 ||
        env_seconds("SERVE_URL_TIMEOUT_S", 20, &o->timeout_ms, msg, msg_len) < 0)
        return -1;
    const char *allow = getenv("SERVE_URL_ALLOW_PRIVATE");
    char buf[2048];
    snprintf(buf, sizeof buf, "%s", allow ? allow : "");
    if (allow && strlen(allow) >= sizeof buf) {
        snprintf(msg, msg_len, "SERVE_URL_ALLOW_PRIVATE is longer than %zu characters.", sizeof buf - 1);
        return -1;
    }
    for (char *save = NULL, *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        if (o->n_allowed == URL_FETCH_MAX_ALLOWED) {
            snprintf(msg, msg_len, "SERVE_URL_ALLOW_PRIVATE lists more than %d blocks.",
                     URL_FETCH_MAX_ALLOWED);
            return -1;
        }
        if (parse_block(t, &o->allowed[o->n_allowed]) < 0) {
            snprintf(msg, msg_len, "SERVE_URL_ALLOW_PRIVATE holds \"%.64s\", which is not an IP "
                                   "address or a CIDR block such as 10.1.0.0/16 or ::1.", t);
            return -1;
        }
        o->n_allowed++;
    }
    return 0;
}

/* ---- the address rule ---- */

static bool prefix_match(const uint8_t *a, const uint8_t *b, int bits)
{
    int whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, (size_t)whole) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

static bool allowed(int family, const uint8_t *addr, const struct url_fetch_options *o)
{
    for (int i = 0; i < o->n_allowed; i++)
        if (o->allowed[i].family == family && prefix_match(addr, o->allowed[i].addr, o->allowed[i].prefix))
            return true;
    return false;
}

static const char *refused_v4(const uint8_t *a)
{
    if (a[0] == 127)
        return "loopback";
    if (a[0] == 169 && a[1] == 254)
        return "link-local (the range of the cloud metadata service 169.254.169.254)";
    if (a[0] == 10 || (a[0] == 172 && (a[1] & 0xf0) == 16) || (a[0] == 192 && a[1] == 168) ||
        (a[0] == 100 && (a[1] & 0xc0) == 64))
        return "private";
    if (a[0] == 0)
        return "unspecified";
    if (a[0] >= 224)
        return a[0] < 240 ? "multicast" : "reserved";
    if ((a[0] == 192 && a[1] == 0 && (a[2] == 0 || a[2] == 2)) || (a[0] == 198 && (a[1] & 0xfe) == 18) ||
        (a[0] == 198 && a[1] == 51 && a[2] == 100) || (a[0] == 203 && a[1] == 0 && a[2] == 113))
        return "reserved";
    return NULL;
}

static const char *refused_v6(const uint8_t *a)
{
    static const uint8_t zero[16], mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff},
                                   nat64[12] = {0, 0x64, 0xff, 0x9b};
    if (memcmp(a, zero, 15) == 0 && a[15] == 1)
        return "loopback";
    if (memcmp(a, zero, 16) == 0)
        return "unspecified";
    if (memcmp(a, mapped, 12) == 0 || memcmp(a, nat64, 12) == 0)
        return refused_v4(a + 12); /* an IPv4 address in IPv6 clothing */
    if (memcmp(a, zero, 12) == 0)
        return "reserved"; /* IPv4-compatible, deprecated */
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
        return "link-local";
    if ((a[0] & 0xfe) == 0xfc || (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0))
        return "private (unique or site local, where fd00:ec2::254, a cloud metadata service, lives)";
    if (a[0] == 0xff)
        return "multicast";
    if (a[0] == 0x20 && a[1] == 0x02)
        return refused_v4(a + 2); /* 6to4 carries an IPv4 address */
    if ((a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8) ||
        (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0 && a[3] == 0) || (a[0] == 0x01 && a[1] == 0) ||
        (a[0] == 0 && a[1] == 0x64 && a[2] == 0xff && a[3] == 0x9b))
        return "reserved";
    return NULL;
}

const char *url_address_refused(const void *sa, const struct url_fetch_options *o)
{
    const struct sockaddr *s = sa;
    if (s->sa_family == AF_INET) {
        const uint8_t *a = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
        return allowed(AF_INET, a, o) ? NULL : refused_v4(a);
    }
    if (s->sa_family == AF_INET6) {
        const uint8_t *a = (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
        return allowed(AF_INET6, a, o) ? NULL : refused_v6(a);
    }
    return "not an IP address";
}

/* ---- fetching ---- */

struct fetch {
    const struct url_fetch_options *o;
    struct dynbuf data; /* capped at max_bytes */
    bool too_big;
    char refused[200]; /* the last address refused, and why */
};

static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr)
{
    struct fetch *f = clientp;
    if (purpose != CURLSOCKTYPE_IPCXN)
        return CURL_SOCKET_BAD;
    const char *why = url_address_refused(&addr->addr, f->o);
    if (why) {
        char text[INET6_ADDRSTRLEN] = "?";
        const void *a = addr->family == AF_INET6
                            ? (const void *)&((const struct sockaddr_in6 *)&addr->addr)->sin6_addr
                            : (const void *)&((const struct sockaddr_in *)&addr->addr)->sin_addr;
        inet_ntop(addr->family, a, text, sizeof text);
        snprintf(f->refused, sizeof f->refused, "%s, which is %s", text, why);
        return CURL_SOCKET_BAD;
    }
    return socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct fetch *f = userdata;
    size_t n = size * nmemb;
    if (dynbuf_append(&f->data, ptr, n) < 0) {
        f->too_big = f->data.too_large;
        return 0; /* libcurl stops with CURLE_WRITE_ERROR */
    }
    return n;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

static void curl_init(void)
{
    curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* The URL as it may appear in a message: at most 120 characters. */
static const char *shown(const char *url, char *buf, size_t len)
{
    snprintf(buf, len, "%.120s%s", url, strlen(url) > 120 ? "..." : "");
    return buf;
}

int url_fetch(const char *url, const struct url_fetch_options *o, uint8_t **body, size_t *len,
              char *msg, size_t msg_len)
{
    *body = NULL;
    *len = 0;
    char u[128];
    if (!o->enabled) {
        snprintf(msg, msg_len, "Fetching images by URL is turned off on this endpoint "
                               "(SERVE_URL_FETCH=0): send the image itself.");
        return 400;
    }
    bool https = strncasecmp(url, "https://", 8) == 0, plain = strncasecmp(url, "http://", 7) == 0;
    if (strlen(url) > 2048 || !(https || (plain && o->allow_http))) {
        snprintf(msg, msg_len, "The image URL \"%s\" is not fetched: give an %s URL of at most 2048 "
                               "characters%s.",
                 shown(url, u, sizeof u), o->allow_http ? "http or https" : "https",
                 o->allow_http ? "" : " (http too with SERVE_URL_ALLOW_HTTP=1)");
        return 400;
    }
    pthread_once(&curl_once, curl_init);
    CURL *c = curl_init_result == CURLE_OK ? curl_easy_init() : NULL;
    if (!c) {
        snprintf(msg, msg_len, "The URL fetcher could not start (libcurl failed to initialise).");
        return 500;
    }
    struct fetch f = {.o = o};
    dynbuf_init(&f.data, o->max_bytes + 1); /* + its NUL */
    const char *protocols = o->allow_http ? "http,https" : "https";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, protocols);
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, protocols);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, (long)URL_FETCH_MAX_REDIRECTS);
    curl_easy_setopt(c, CURLOPT_PROXY, ""); /* never through a proxy: the check must see the peer */
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, o->timeout_ms);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)o->max_bytes);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &f);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &f);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "sagemaker-ic-c-serve");
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    int http = 0;
    shown(url, u, sizeof u);
    if (f.refused[0] && rc != CURLE_OK) {
        snprintf(msg, msg_len, "The image URL \"%s\" is refused: it leads to %s (list the "
                               "address in SERVE_URL_ALLOW_PRIVATE to allow it).", u, f.refused);
        http = 400;
    } else if (f.too_big || rc == CURLE_FILESIZE_EXCEEDED) {
        snprintf(msg, msg_len, "The image at \"%s\" is larger than the %zu MB payload limit.", u,
                 o->max_bytes >> 20);
        http = 502;
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        snprintf(msg, msg_len, "The image at \"%s\" did not arrive within %.1f s (SERVE_URL_TIMEOUT_S, "
                               "SERVE_URL_CONNECT_TIMEOUT_S).", u, o->timeout_ms / 1000.0);
        http = 504;
    } else if (rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL) {
        snprintf(msg, msg_len, "The image URL \"%s\" cannot be fetched: %s.", u, curl_easy_strerror(rc));
        http = rc == CURLE_UNSUPPORTED_PROTOCOL && status ? 502 : 400; /* a redirect to ftp:// */
    } else if (rc == CURLE_TOO_MANY_REDIRECTS) {
        snprintf(msg, msg_len, "The image URL \"%s\" redirects more than %d times.", u,
                 URL_FETCH_MAX_REDIRECTS);
        http = 502;
    } else if (rc != CURLE_OK) {
        snprintf(msg, msg_len, "The image at \"%s\" could not be fetched: %s.", u, curl_easy_strerror(rc));
        http = 502;
    } else if (status < 200 || status > 299) {
        snprintf(msg, msg_len, "The server of \"%s\" answered HTTP %ld instead of the image.", u, status);
        http = 502;
    } else if (f.data.len == 0) {
        snprintf(msg, msg_len, "The server of \"%s\" answered an empty body instead of the image.", u);
        http = 502;
    }
    if (http) {
        dynbuf_free(&f.data);
        return http;
    }
    *body = (uint8_t *)dynbuf_take(&f.data, len);
    if (!*body) {
        snprintf(msg, msg_len, "Out of memory keeping the image fetched from \"%s\".", u);
        return 500;
    }
    return 0;
}
