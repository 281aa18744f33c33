/* herdd's ISO 9660 images (iso.c, layer 2), written with libisofs in
 * herdd's own process: a guest's seed (seed.c), a range's resource disks
 * (resdisk.c). */
#ifndef HERDD_ISO_H
#define HERDD_ISO_H

/* libisofs.h declares struct burn_source itself when told that no
 * libburn.h comes; a few of its declarations are old-style (f()). */
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define LIBISOFS_WITHOUT_LIBBURN 1
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <libisofs.h>
#pragma GCC diagnostic pop

/* Writes img to the new file tmp (created 0444, so 0400 under herdd's
 * umask; an old tmp is replaced), fsync'd: Rock Ridge (names as they are),
 * Joliet besides, ISO level 2 or 3 (files of 4 GiB and more), owner 0.
 * keep_modes: the nodes' modes as they are (else 0444, directories 0555).
 * 0, or -errno with tmp removed. The caller renames it. */
int hd_iso_write_tmp(IsoImage *img, int level, bool keep_modes, const char *tmp);

#endif
