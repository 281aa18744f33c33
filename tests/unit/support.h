/*
 * Helpers shared by the VMM unit tests (linked into each of them).
 */
#ifndef HERD_TEST_SUPPORT_H
#define HERD_TEST_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

/* Reads a whole file into malloc'd memory; NULL if unreadable or empty. */
uint8_t *test_read_file(const char *path, size_t *len);

/* Path of a file under build/ that tools/fetch-test-kernel may have fetched
 * (e.g. "linux/vmlinux"), whether the test runs from the repository root or
 * from build/<tree>/; NULL if it is not there. */
const char *test_fetched_file(const char *name);

/* Whether all len bytes at p equal value (guest RAM left as it was). */
int test_all_bytes(const uint8_t *p, size_t len, uint8_t value);

#endif
