/*
 * Host tool: writes disk images with herd-probe's patterns (pattern.h).
 *   mkpattern fill FILE SIZE SEED
 *       the whole file holds pattern SEED (a parent image for probe.blk.parent)
 *   mkpattern expect FILE SIZE SEED PARENT_SEED ZEROES
 *       the image a probe blk run with probe.blk.seed=SEED (and
 *       probe.blk.parent=PARENT_SEED, 0 for none) leaves behind; ZEROES=1
 *       when the device offered WRITE_ZEROES
 * SIZE in bytes (K/M/G suffix allowed), a multiple of 512.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pattern.h"

static unsigned long long num(const char *s)
{
    char *e;
    unsigned long long v = strtoull(s, &e, 0);
    if (*e == 'K' || *e == 'k')
        v <<= 10, e++;
    else if (*e == 'M' || *e == 'm')
        v <<= 20, e++;
    else if (*e == 'G' || *e == 'g')
        v <<= 30, e++;
    if (*e || e == s) {
        fprintf(stderr, "mkpattern: bad number '%s'\n", s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    int expect = argc == 7 && !strcmp(argv[1], "expect");
    if (!(argc == 5 && !strcmp(argv[1], "fill")) && !expect) {
        fprintf(stderr, "usage: mkpattern fill FILE SIZE SEED\n"
                        "       mkpattern expect FILE SIZE SEED PARENT_SEED ZEROES\n");
        return 2;
    }
    unsigned long long size = num(argv[3]), seed = num(argv[4]);
    unsigned long long parent = expect ? num(argv[5]) : 0, zeroes = expect ? num(argv[6]) : 0;
    if (size % 512) {
        fprintf(stderr, "mkpattern: size not a multiple of 512\n");
        return 2;
    }
    FILE *f = fopen(argv[2], "wb");
    if (!f) {
        perror(argv[2]);
        return 1;
    }
    static unsigned char buf[512];
    for (unsigned long long off = 0; off < size; off += 512) {
        uint64_t s = expect ? pattern_expected(off, size, seed, parent, zeroes != 0) : seed;
        pattern_fill(buf, s, off, 512);
        if (fwrite(buf, 1, 512, f) != 512) {
            perror(argv[2]);
            return 1;
        }
    }
    if (fclose(f)) {
        perror(argv[2]);
        return 1;
    }
    return 0;
}
