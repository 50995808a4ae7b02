/*
 * rng.h - the project's one random number generator: splitmix64 (Steele, Lea and Flood's
 * SplittableRandom output function over a Weyl sequence), small, fast and reproducible run to
 * run and across threads, since each user keeps its own 64-bit state. Used for shuffling
 * (training order, the held-out validation split) and the augmentations' draws; not for
 * anything secret.
 *
 *     uint64_t s = rng_seed(seed, epoch, index);   // unrelated streams for nearby inputs
 *     double u = rng_uniform(&s);                   // [0, 1)
 *     rng_shuffle(order, n, &s);                    // Fisher-Yates
 */
#ifndef COMMON_RNG_H
#define COMMON_RNG_H

#include <stddef.h>
#include <stdint.h>

/* The next 64 random bits of the stream whose state is *state (advanced). */
uint64_t rng_next(uint64_t *state);

/* A uniform double in [0, 1) with 53 random bits. */
double rng_uniform(uint64_t *state);

/* A state from (seed, a, b): each input passes through a full mix, so nearby triples (seed,
 * epoch, sample) give unrelated streams, not shifted copies of one. */
uint64_t rng_seed(uint64_t seed, uint64_t a, uint64_t b);

/* Fisher-Yates shuffle of a[0..n) in place, drawing j = rng_next % (i + 1) from i = n - 1 down
 * (the modulo bias is below 2^-40 for any n this project sees). */
void rng_shuffle(size_t *a, size_t n, uint64_t *state);

#endif
