/*
 * rng.c - splitmix64 and what is built on it (rng.h).
 */
#include "common/rng.h"

#define GOLDEN_GAMMA 0x9e3779b97f4a7c15ULL

/* splitmix64's output function: a bijection of 64-bit values with good avalanche. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t rng_next(uint64_t *state)
{
    *state += GOLDEN_GAMMA;
    return mix64(*state);
}

double rng_uniform(uint64_t *state)
{
    return (double)(rng_next(state) >> 11) * 0x1.0p-53;
}

uint64_t rng_seed(uint64_t seed, uint64_t a, uint64_t b)
{
    uint64_t h = mix64(seed + GOLDEN_GAMMA);
    h = mix64(h + a + GOLDEN_GAMMA);
    return mix64(h + b + GOLDEN_GAMMA);
}

void rng_shuffle(size_t *a, size_t n, uint64_t *state)
{
    for (size_t i = n > 1 ? n - 1 : 0; i > 0; i--) {
        size_t j = (size_t)(rng_next(state) % (i + 1));
        size_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}
