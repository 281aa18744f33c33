/*
 * Disk patterns shared by the probe's blk test and the host tool
 * mkpattern (which builds parent images and the image a blk run must
 * leave behind). Header-only so both sides compute the same bytes.
 *
 * Pattern SEED: every 8-byte little-endian word at byte offset O of the
 * disk holds O ^ (SEED * 0x9e3779b97f4a7c15); SEED 0 means zeros. A sector
 * written to the wrong place, a stale sector from another run (other
 * seed) or a parent sector showing through all read back wrong.
 *
 * blk test layout on a disk of C bytes (probe seed S, parent seed P or 0):
 *  - written by the probe: everything (P = 0), or only the even MiB
 *    [2k MiB, 2k+1 MiB) (P != 0: odd MiB must read the parent's pattern);
 *  - write-zeroes range [2.5 MiB, 3.5 MiB) when the device offers
 *    WRITE_ZEROES and C >= 4 MiB: reads zeros afterwards;
 *  - discard range [4 MiB, 5 MiB) when it offers DISCARD and C >= 6 MiB:
 *    discarded, then written again with pattern S (content defined).
 */
#ifndef HERD_PROBE_PATTERN_H
#define HERD_PROBE_PATTERN_H

#include <stdbool.h>
#include <stdint.h>

#define PATTERN_MIB (1ULL << 20)
#define PATTERN_ZERO_START (PATTERN_MIB * 5 / 2)
#define PATTERN_ZERO_END (PATTERN_MIB * 7 / 2)
#define PATTERN_DISCARD_START (PATTERN_MIB * 4)
#define PATTERN_DISCARD_END (PATTERN_MIB * 5)

static inline uint64_t pattern_word(uint64_t seed, uint64_t off)
{
    return seed ? off ^ (seed * 0x9e3779b97f4a7c15ULL) : 0;
}

/* Fill len bytes (multiple of 8) for disk offset off (multiple of 8). */
static inline void pattern_fill(void *buf, uint64_t seed, uint64_t off, uint64_t len)
{
    uint64_t *w = (uint64_t *)buf;
    for (uint64_t i = 0; i < len / 8; i++)
        w[i] = pattern_word(seed, off + 8 * i);
}

/* First mismatching byte index, or len if all match. */
static inline uint64_t pattern_check(const void *buf, uint64_t seed, uint64_t off, uint64_t len)
{
    const uint64_t *w = (const uint64_t *)buf;
    for (uint64_t i = 0; i < len / 8; i++)
        if (w[i] != pattern_word(seed, off + 8 * i)) {
            uint64_t x = w[i] ^ pattern_word(seed, off + 8 * i), b = 0;
            while (!(x & 0xff))
                x >>= 8, b++;
            return 8 * i + b;
        }
    return len;
}

/* Does the probe write (pattern S) the byte at off? */
static inline bool pattern_probe_writes(uint64_t off, uint64_t parent_seed)
{
    return !parent_seed || ((off / PATTERN_MIB) & 1) == 0;
}

static inline bool pattern_has_zero_range(uint64_t cap) { return cap >= 4 * PATTERN_MIB; }
static inline bool pattern_has_discard_range(uint64_t cap) { return cap >= 6 * PATTERN_MIB; }

/* The seed whose pattern the byte at off holds after a full blk run
 * (zeroes: whether the write-zeroes range was applied). */
static inline uint64_t pattern_expected(uint64_t off, uint64_t cap, uint64_t seed, uint64_t parent_seed, bool zeroes)
{
    if (zeroes && pattern_has_zero_range(cap) && off >= PATTERN_ZERO_START && off < PATTERN_ZERO_END)
        return 0;
    return pattern_probe_writes(off, parent_seed) ? seed : parent_seed;
}

#endif
