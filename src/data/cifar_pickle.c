/*
 * cifar_pickle.c - reading the CIFAR "python version" batches (see cifar_pickle.h).
 *
 * A pickle is a program for a stack machine; this runs the binary opcodes of protocols 2-5
 * into a table of plain values (ints, strings, lists, tuples, dicts, global names, and the
 * calls REDUCE/NEWOBJ/BUILD describe, kept as data, never run). Strings point into the file's
 * buffer. Then the top-level dict is searched for the keys CIFAR uses, and the numpy array is
 * recognised by its reconstruction: numpy.core.multiarray._reconstruct + BUILD state
 * (version, shape, dtype, fortran, bytes), as numpy pickles it, or
 * numpy.core.numeric._frombuffer(bytes, dtype, shape, order). Python 3's protocol-2 bytes,
 * _codecs.encode(text, "latin1"), become bytes again. Every count is capped.
 */
#define _DEFAULT_SOURCE
#include "data/cifar_pickle.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

#define MAX_VALUES (1u << 21)
#define MAX_MARKS 64
#define MAX_MEMO (1u << 21)
#define PIXELS 3072

enum kind { V_NONE, V_INT, V_FLOAT, V_STR, V_LIST, V_TUPLE, V_DICT, V_GLOBAL, V_CALL };

struct val {
    uint8_t kind;
    int64_t i;          /* V_INT, bools too */
    const uint8_t *p;   /* V_STR */
    size_t len;
    uint8_t *owned;     /* a V_STR made here (latin1 bytes), freed at the end */
    uint32_t *items;    /* lists, tuples, dict keys and values in turn; V_GLOBAL module, name;
                           V_CALL callable, args, state (UINT32_MAX: none) */
    uint32_t n, cap;
};

struct vm {
    struct val *v;
    uint32_t nv, cap_v;
    uint32_t *stack;
    uint32_t ns, cap_s;
    uint32_t marks[MAX_MARKS];
    uint32_t nm;
    uint32_t *memo;
    uint32_t cap_memo, memo_len; /* memo_len: entries stored, MEMOIZE's next id */
};

static void vm_free(struct vm *m)
{
    for (uint32_t i = 0; i < m->nv; i++) {
        free(m->v[i].items);
        free(m->v[i].owned);
    }
    free(m->v);
    free(m->stack);
    free(m->memo);
}

static int64_t new_val(struct vm *m, enum kind k)
{
    if (m->nv == m->cap_v) {
        if (m->cap_v >= MAX_VALUES)
            return err_set("more than %u values", MAX_VALUES);
        uint32_t cap = m->cap_v ? m->cap_v * 2 : 1024;
        struct val *g = realloc(m->v, cap * sizeof *g);
        if (!g)
            return err_set("out of memory");
        m->v = g;
        m->cap_v = cap;
    }
    memset(&m->v[m->nv], 0, sizeof m->v[m->nv]);
    m->v[m->nv].kind = (uint8_t)k;
    return m->nv++;
}

/* Room for one more in a growing array of ids (*cap doubles from `first`, at most MAX_VALUES). */
static int reserve_one(uint32_t **ids, uint32_t n, uint32_t *cap, uint32_t first, const char *what)
{
    if (n < *cap)
        return 0;
    if (*cap >= MAX_VALUES)
        return err_set("%s of more than %u items", what, MAX_VALUES);
    uint32_t grown = *cap ? *cap * 2 : first;
    uint32_t *g = realloc(*ids, grown * sizeof *g);
    if (!g)
        return err_set("out of memory");
    *ids = g;
    *cap = grown;
    return 0;
}

static int add_item(struct vm *m, uint32_t to, uint32_t item)
{
    struct val *c = &m->v[to];
    if (reserve_one(&c->items, c->n, &c->cap, 4, "a container") < 0)
        return -1;
    c->items[c->n++] = item;
    return 0;
}

static int push(struct vm *m, int64_t v)
{
    if (v < 0)
        return -1;
    if (reserve_one(&m->stack, m->ns, &m->cap_s, 256, "a stack") < 0)
        return -1;
    m->stack[m->ns++] = (uint32_t)v;
    return 0;
}

static int64_t pop(struct vm *m)
{
    if (m->ns == 0 || (m->nm && m->ns <= m->marks[m->nm - 1]))
        return err_set("a value taken from an empty stack");
    return m->stack[--m->ns];
}

/* The values since the last mark, into a new container of kind k; the mark is dropped. */
static int64_t collect(struct vm *m, enum kind k)
{
    if (m->nm == 0)
        return err_set("no mark to collect to");
    uint32_t from = m->marks[--m->nm];
    int64_t c = new_val(m, k);
    for (uint32_t i = from; c >= 0 && i < m->ns; i++)
        if (add_item(m, (uint32_t)c, m->stack[i]) < 0)
            return -1;
    m->ns = from;
    return c;
}

static int64_t new_str(struct vm *m, const uint8_t *p, size_t len)
{
    int64_t v = new_val(m, V_STR);
    if (v >= 0) {
        m->v[v].p = p;
        m->v[v].len = len;
    }
    return v;
}

static bool str_is(const struct vm *m, uint32_t v, const char *s)
{
    const struct val *x = &m->v[v];
    return x->kind == V_STR && x->len == strlen(s) && memcmp(x->p, s, x->len) == 0;
}

/* Is v the global module.name (module given as its last component's suffix)? */
static bool global_is(const struct vm *m, uint32_t v, const char *module_suffix, const char *name)
{
    const struct val *g = &m->v[v];
    if (g->kind != V_GLOBAL || g->n != 2 || !str_is(m, g->items[1], name))
        return false;
    const struct val *mod = &m->v[g->items[0]];
    size_t n = strlen(module_suffix);
    return mod->len >= n && memcmp(mod->p + mod->len - n, module_suffix, n) == 0;
}

/* _codecs.encode(text, "latin1"): Python 3's bytes in protocol 2; text is UTF-8. */
static int64_t latin1_bytes(struct vm *m, uint32_t text)
{
    const struct val *t = &m->v[text];
    uint8_t *out = malloc(t->len + 1);
    if (!out)
        return err_set("out of memory");
    size_t n = 0;
    for (size_t i = 0; i < t->len; i++) {
        uint8_t c = t->p[i];
        if (c < 0x80) {
            out[n++] = c;
        } else if ((c & 0xe0) == 0xc0 && c <= 0xc3 && i + 1 < t->len) {
            out[n++] = (uint8_t)(((c & 0x03) << 6) | (t->p[++i] & 0x3f));
        } else {
            free(out);
            return err_set("_codecs.encode of a character beyond latin-1");
        }
    }
    int64_t v = new_str(m, out, n);
    if (v < 0)
        free(out);
    else
        m->v[v].owned = out;
    return v;
}

static uint64_t le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Runs the pickle in buf; *top: the value STOP left. */
static int run(struct vm *m, const uint8_t *buf, size_t len, uint32_t *top)
{
    size_t at = 0;
#define NEED(k)                                                                                    \
    do {                                                                                           \
        if ((k) > len - at)                                                                        \
            return err_set("the pickle ends inside an opcode at byte %zu", at);                    \
    } while (0)
    while (at < len) {
        uint8_t op = buf[at++];
        int64_t v = 0, a = 0, b = 0, c = 0;
        size_t n;
        switch (op) {
        case 0x80: NEED(1); at++; continue;                         /* PROTO */
        case 0x95: NEED(8); at += 8; continue;                      /* FRAME */
        case '(':
            if (m->nm == MAX_MARKS)
                return err_set("marks nested deeper than %d", MAX_MARKS);
            m->marks[m->nm++] = m->ns;
            continue;
        case '.':                                                   /* STOP */
            if ((v = pop(m)) < 0)
                return -1;
            *top = (uint32_t)v;
            return 0;
        case 'N': v = new_val(m, V_NONE); break;
        case 0x88: case 0x89:                                       /* NEWTRUE, NEWFALSE */
            if ((v = new_val(m, V_INT)) >= 0)
                m->v[v].i = op == 0x88;
            break;
        case 'K': NEED(1); v = new_val(m, V_INT); if (v >= 0) m->v[v].i = buf[at]; at += 1; break;
        case 'M': NEED(2); v = new_val(m, V_INT); if (v >= 0) m->v[v].i = (int64_t)le(buf + at, 2); at += 2; break;
        case 'J': NEED(4); v = new_val(m, V_INT); if (v >= 0) m->v[v].i = (int32_t)(uint32_t)le(buf + at, 4); at += 4; break;
        case 0x8a:                                                  /* LONG1 */
            NEED(1);
            n = buf[at++];
            NEED(n);
            if (n > 8)
                return err_set("an integer of %zu bytes", n);
            v = new_val(m, V_INT);
            if (v >= 0 && n) {
                uint64_t u = le(buf + at, (int)n);
                if (n < 8 && (buf[at + n - 1] & 0x80))
                    u |= ~0ull << (8 * n);
                m->v[v].i = (int64_t)u;
            }
            at += n;
            break;
        case 'G': NEED(8); v = new_val(m, V_FLOAT); at += 8; break;  /* BINFLOAT: not kept */
        case 'U': case 'C': case 0x8c:                               /* 1-byte lengths */
            NEED(1);
            n = buf[at++];
            NEED(n);
            v = new_str(m, buf + at, n);
            at += n;
            break;
        case 'T': case 'X': case 'B':                                /* 4-byte lengths */
        case 0x8d: case 0x8e: case 0x96: {                           /* 8-byte lengths */
            int w = op == 0x8d || op == 0x8e || op == 0x96 ? 8 : 4;  /* 0x96: BYTEARRAY8 */
            NEED((size_t)w);
            n = (size_t)le(buf + at, w);
            at += (size_t)w;
            NEED(n);
            v = new_str(m, buf + at, n);
            at += n;
            break;
        }
        case 'c': {                                                  /* GLOBAL "mod\nname\n" */
            const uint8_t *nl1 = memchr(buf + at, '\n', len - at);
            const uint8_t *nl2 = nl1 ? memchr(nl1 + 1, '\n', (size_t)(buf + len - nl1 - 1)) : NULL;
            if (!nl2)
                return err_set("a GLOBAL without its two lines at byte %zu", at);
            if ((v = new_val(m, V_GLOBAL)) < 0 ||
                (a = new_str(m, buf + at, (size_t)(nl1 - buf - at))) < 0 ||
                (b = new_str(m, nl1 + 1, (size_t)(nl2 - nl1 - 1))) < 0 ||
                add_item(m, (uint32_t)v, (uint32_t)a) < 0 || add_item(m, (uint32_t)v, (uint32_t)b) < 0)
                return -1;
            at = (size_t)(nl2 + 1 - buf);
            break;
        }
        case 0x93:                                                   /* STACK_GLOBAL */
            if ((b = pop(m)) < 0 || (a = pop(m)) < 0 || (v = new_val(m, V_GLOBAL)) < 0 ||
                add_item(m, (uint32_t)v, (uint32_t)a) < 0 || add_item(m, (uint32_t)v, (uint32_t)b) < 0)
                return -1;
            break;
        case '}': v = new_val(m, V_DICT); break;
        case ']': v = new_val(m, V_LIST); break;
        case ')': v = new_val(m, V_TUPLE); break;
        case 't': v = collect(m, V_TUPLE); break;
        case 'l': v = collect(m, V_LIST); break;
        case 'd': v = collect(m, V_DICT); break;
        case 0x85: case 0x86: case 0x87: {                           /* TUPLE1..3 */
            uint32_t k = op - 0x84, items[3];
            for (uint32_t i = k; i > 0; i--) {
                if ((a = pop(m)) < 0)
                    return -1;
                items[i - 1] = (uint32_t)a;
            }
            if ((v = new_val(m, V_TUPLE)) < 0)
                return -1;
            for (uint32_t i = 0; i < k; i++)
                if (add_item(m, (uint32_t)v, items[i]) < 0)
                    return -1;
            break;
        }
        case 'a': case 'e': case 's': case 'u': {                    /* APPEND(S), SETITEM(S) */
            uint32_t from;
            if (op == 'a' || op == 's') {
                if (m->ns < (op == 'a' ? 2u : 3u))
                    return err_set("an append to nothing at byte %zu", at);
                from = m->ns - (op == 'a' ? 1 : 2);
            } else {
                if (m->nm == 0)
                    return err_set("APPENDS/SETITEMS without a mark at byte %zu", at);
                from = m->marks[--m->nm];
                if (from == 0)
                    return err_set("APPENDS/SETITEMS to nothing at byte %zu", at);
            }
            uint32_t target = m->stack[from - 1];
            enum kind want = op == 'a' || op == 'e' ? V_LIST : V_DICT;
            if (m->v[target].kind != want || (want == V_DICT && (m->ns - from) % 2))
                return err_set("an item added to something else than a %s at byte %zu",
                               want == V_LIST ? "list" : "dict", at);
            for (uint32_t i = from; i < m->ns; i++)
                if (add_item(m, target, m->stack[i]) < 0)
                    return -1;
            m->ns = from;
            continue;
        }
        case 'R': case 0x81:                                         /* REDUCE, NEWOBJ */
            if ((b = pop(m)) < 0 || (a = pop(m)) < 0)
                return -1;
            if (global_is(m, (uint32_t)a, "_codecs", "encode") && m->v[b].kind == V_TUPLE &&
                m->v[b].n >= 1 && m->v[m->v[b].items[0]].kind == V_STR) {
                v = latin1_bytes(m, m->v[b].items[0]);
                break;
            }
            if ((v = new_val(m, V_CALL)) < 0 || add_item(m, (uint32_t)v, (uint32_t)a) < 0 ||
                add_item(m, (uint32_t)v, (uint32_t)b) < 0 || add_item(m, (uint32_t)v, UINT32_MAX) < 0)
                return -1;
            break;
        case 'b':                                                    /* BUILD */
            if ((c = pop(m)) < 0)
                return -1;
            if (m->ns == 0)
                return err_set("BUILD of nothing at byte %zu", at);
            if (m->v[m->stack[m->ns - 1]].kind == V_CALL)
                m->v[m->stack[m->ns - 1]].items[2] = (uint32_t)c;
            continue;
        case 'q': case 'r': case 0x94: {                             /* BINPUT, LONG_BINPUT, MEMOIZE */
            uint64_t id;
            if (op == 0x94) {
                id = m->memo_len;
            } else {
                NEED(op == 'q' ? 1 : 4);
                id = le(buf + at, op == 'q' ? 1 : 4);
                at += op == 'q' ? 1 : 4;
            }
            if (m->ns == 0 || id >= MAX_MEMO)
                return err_set("a memo entry out of range at byte %zu", at);
            if (id >= m->cap_memo) {
                uint32_t cap = (uint32_t)id + 1024;
                uint32_t *g = realloc(m->memo, cap * sizeof *g);
                if (!g)
                    return err_set("out of memory");
                for (uint32_t i = m->cap_memo; i < cap; i++)
                    g[i] = UINT32_MAX;
                m->memo = g;
                m->cap_memo = cap;
            }
            m->memo_len += m->memo[id] == UINT32_MAX;
            m->memo[id] = m->stack[m->ns - 1];
            continue;
        }
        case 'h': case 'j': {                                        /* BINGET, LONG_BINGET */
            NEED(op == 'h' ? 1 : 4);
            uint64_t id = le(buf + at, op == 'h' ? 1 : 4);
            at += op == 'h' ? 1 : 4;
            if (id >= m->cap_memo || m->memo[id] == UINT32_MAX)
                return err_set("a memo entry never stored at byte %zu", at);
            v = m->memo[id];
            break;
        }
        case '0': if (pop(m) < 0) return -1; continue;               /* POP */
        case '2':                                                    /* DUP */
            if (m->ns == 0)
                return err_set("DUP of nothing");
            v = m->stack[m->ns - 1];
            break;
        default:
            return err_set("pickle opcode 0x%02x at byte %zu is not one a CIFAR batch uses", op,
                           at - 1);
        }
        if (push(m, v) < 0)
            return -1;
    }
#undef NEED
    return err_set("the pickle ends without its STOP opcode");
}

/* The dict value under key, or -1. */
static int64_t dict_get(const struct vm *m, uint32_t dict, const char *key)
{
    const struct val *d = &m->v[dict];
    if (d->kind != V_DICT)
        return -1;
    for (uint32_t i = 0; i + 1 < d->n; i += 2)
        if (str_is(m, d->items[i], key))
            return d->items[i + 1];
    return -1;
}

static int load(struct vm *m, const uint8_t *buf, size_t len, uint32_t *top)
{
    memset(m, 0, sizeof *m);
    if (!cifar_pickle_sniff(buf, len))
        return err_set("not a pickle of protocol 2 or later");
    if (run(m, buf, len, top) < 0)
        return -1;
    if (m->v[*top].kind != V_DICT)
        return err_set("the pickle holds no dict");
    return 0;
}

int cifar_pickle_sniff(const uint8_t *buf, size_t len)
{
    return len >= 3 && buf[0] == 0x80 && buf[1] >= 2 && buf[1] <= 5;
}

/* The bytes of a uint8 [N,3072] numpy array value, or -1. */
static int array_bytes(const struct vm *m, uint32_t arr, const uint8_t **p, size_t *n,
                       uint32_t *bytes_value)
{
    const struct val *a = &m->v[arr];
    if (a->kind != V_CALL)
        return err_set("\"data\" is not a numpy array");
    uint32_t bytes = UINT32_MAX, shape = UINT32_MAX, dtype = UINT32_MAX;
    const struct val *args = &m->v[a->items[1]];
    if (global_is(m, a->items[0], "multiarray", "_reconstruct") && a->items[2] != UINT32_MAX) {
        const struct val *st = &m->v[a->items[2]]; /* (version, shape, dtype, fortran, data) */
        if (st->kind == V_TUPLE && st->n == 5 && m->v[st->items[3]].i == 0)
            shape = st->items[1], dtype = st->items[2], bytes = st->items[4];
    } else if (global_is(m, a->items[0], "numeric", "_frombuffer") && args->kind == V_TUPLE &&
               args->n == 4 && str_is(m, args->items[3], "C")) {
        bytes = args->items[0], dtype = args->items[1], shape = args->items[2];
    }
    if (bytes == UINT32_MAX || m->v[bytes].kind != V_STR)
        return err_set("\"data\" is not a numpy array as numpy pickles one (C order)");
    const struct val *dt = &m->v[dtype], *sh = &m->v[shape];
    const struct val *dargs = dt->kind == V_CALL ? &m->v[dt->items[1]] : NULL;
    if (!dargs || dargs->kind != V_TUPLE || dargs->n < 1 || !str_is(m, dargs->items[0], "u1"))
        return err_set("\"data\" is not an array of uint8");
    if (sh->kind != V_TUPLE || sh->n != 2 || m->v[sh->items[1]].i != PIXELS ||
        m->v[sh->items[0]].i < 0 ||
        (uint64_t)m->v[sh->items[0]].i * PIXELS != m->v[bytes].len)
        return err_set("\"data\" is not shaped [N, 3072] with N x 3072 bytes");
    *p = m->v[bytes].p;
    *n = (size_t)m->v[sh->items[0]].i;
    *bytes_value = bytes;
    return 0;
}

int cifar_pickle_batch(const uint8_t *buf, size_t len, const char *label_key,
                       struct cifar_pickle_batch *out)
{
    memset(out, 0, sizeof *out);
    struct vm m;
    uint32_t top;
    int rc = load(&m, buf, len, &top);
    int64_t data = rc == 0 ? dict_get(&m, top, "data") : -1;
    int64_t labels = rc == 0 ? dict_get(&m, top, label_key) : -1;
    if (rc == 0 && (data < 0 || labels < 0))
        rc = err_set("the batch has no \"data\" or no \"%s\"", label_key);
    uint32_t bytes = 0;
    if (rc == 0)
        rc = array_bytes(&m, (uint32_t)data, &out->pixels, &out->records, &bytes);
    if (rc == 0 && m.v[bytes].owned) { /* decoded here: the batch keeps it past vm_free */
        out->owned = m.v[bytes].owned;
        m.v[bytes].owned = NULL;
    }
    const struct val *l = rc == 0 ? &m.v[labels] : NULL;
    if (rc == 0 && (l->kind != V_LIST || l->n != out->records))
        rc = err_set("\"%s\" is not a list of %zu labels", label_key, out->records);
    if (rc == 0 && !(out->labels = malloc((out->records + 1) * sizeof *out->labels)))
        rc = err_set("out of memory");
    for (size_t i = 0; rc == 0 && i < out->records; i++) {
        const struct val *x = &m.v[l->items[i]];
        if (x->kind != V_INT || x->i < 0 || x->i > INT32_MAX)
            rc = err_set("\"%s\"[%zu] is not a label", label_key, i);
        else
            out->labels[i] = (int32_t)x->i;
    }
    vm_free(&m);
    if (rc < 0)
        cifar_pickle_batch_free(out);
    return rc;
}

void cifar_pickle_batch_free(struct cifar_pickle_batch *b)
{
    free(b->labels);
    free(b->owned);
    memset(b, 0, sizeof *b);
}

int cifar_pickle_names(const uint8_t *buf, size_t len, const char *key, char ***names, int *n)
{
    *names = NULL;
    *n = 0;
    struct vm m;
    uint32_t top;
    int rc = load(&m, buf, len, &top);
    int64_t list = rc == 0 ? dict_get(&m, top, key) : -1;
    if (rc == 0 && (list < 0 || m.v[list].kind != V_LIST || m.v[list].n > 100000))
        rc = err_set("no list \"%s\"", key);
    if (rc == 0 && !(*names = calloc(m.v[list].n + 1, sizeof **names)))
        rc = err_set("out of memory");
    for (uint32_t i = 0; rc == 0 && i < m.v[list].n; i++) {
        const struct val *s = &m.v[m.v[list].items[i]];
        if (s->kind != V_STR || s->len > 255)
            rc = err_set("\"%s\"[%u] is not a name", key, i);
        else if (!((*names)[i] = strndup((const char *)s->p, s->len)))
            rc = err_set("out of memory");
        else
            *n = (int)i + 1;
    }
    vm_free(&m);
    if (rc < 0) {
        for (int i = 0; *names && i < *n; i++)
            free((*names)[i]);
        free(*names);
        *names = NULL;
        *n = 0;
    }
    return rc;
}
