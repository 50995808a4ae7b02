/*
 * url_fetch.h - fetching an image a request names by URL ({"url": "https://..."}), as the
 * seeds' inference.py do with requests.get, but guarded: a request must not be able to make
 * the endpoint read its own cloud metadata or reach the private network behind it.
 *
 * Rules (each from the environment, read per fetch):
 *   https only; http too with SERVE_URL_ALLOW_HTTP=1
 *   the body capped at the payload limit (SAGEMAKER_MAX_PAYLOAD_IN_MB, default 6)
 *   SERVE_URL_CONNECT_TIMEOUT_S (default 5) and SERVE_URL_TIMEOUT_S (default 20, whole fetch)
 *   at most 3 redirects, each hop checked like the first
 *   no proxies (a proxy would hide the address really connected to)
 *   the address connected to, on every hop and after DNS, must not be loopback, private
 *   (RFC 1918, unique local, carrier-grade NAT), link-local (which holds 169.254.169.254 and
 *   fd00:ec2::254, the cloud metadata services), multicast, unspecified or reserved, unless
 *   SERVE_URL_ALLOW_PRIVATE lists it: comma-separated addresses or CIDR blocks
 *   ("127.0.0.1,10.1.0.0/16,::1").
 *   SERVE_URL_FETCH=0 turns fetching off.
 * Not here: decoding the image (image/decode.h), the JSON around the URL (request_decode.c).
 */
#ifndef SERVE_URL_FETCH_H
#define SERVE_URL_FETCH_H

#include <stddef.h>
#include <stdint.h>

#define URL_FETCH_MAX_REDIRECTS 3
#define URL_FETCH_MAX_ALLOWED 32

/* One allowed block: family AF_INET or AF_INET6, the address's bytes, the prefix length. */
struct url_allowed_block {
    int family;
    uint8_t addr[16];
    int prefix;
};

struct url_fetch_options {
    int enabled;
    int allow_http;
    size_t max_bytes;
    long connect_timeout_ms, timeout_ms;
    struct url_allowed_block allowed[URL_FETCH_MAX_ALLOWED];
    int n_allowed;
};

/* Reads the options from the environment. Returns 0, or -1 with a sentence in msg naming
 * the variable that holds a bad value. */
int url_fetch_options_from_env(struct url_fetch_options *o, char *msg, size_t msg_len);

/* Fetches url into *body (malloc'd, *len bytes; the caller frees it). Returns 0, or an HTTP
 * status with a sentence in msg: 400 for a URL we will not fetch (malformed, another scheme,
 * a refused address), 502 when the remote side fails (no connection, an error status, too
 * many redirects, a body over the cap), 504 when it is too slow. Thread-safe. */
int url_fetch(const char *url, const struct url_fetch_options *o, uint8_t **body, size_t *len,
              char *msg, size_t msg_len);

/* Why an address may not be connected to ("loopback", "private", "link-local (cloud
 * metadata)", ...), or NULL when it may. sa is a struct sockaddr_in or sockaddr_in6. */
const char *url_address_refused(const void *sa, const struct url_fetch_options *o);

#endif
