/*
 * Shared unit-test helpers: file reading and locating fetched test kernels.
 */
#include "support.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

uint8_t *test_read_file(const char *path, size_t *len)
{
    struct stat st;
    uint8_t *buf;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t off = 0;

    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) < 0 || st.st_size <= 0 || !(buf = malloc((size_t)st.st_size))) {
        close(fd);
        return NULL;
    }
    while (off < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + off, (size_t)st.st_size - off);

        if (n <= 0) {
            free(buf);
            close(fd);
            return NULL;
        }
        off += (size_t)n;
    }
    close(fd);
    *len = off;
    return buf;
}

const char *test_fetched_file(const char *name)
{
    static const char *const roots[] = {"build/", "../../build/"};
    static char path[256];

    for (unsigned i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
        snprintf(path, sizeof(path), "%s%s", roots[i], name);
        if (access(path, R_OK) == 0)
            return path;
    }
    return NULL;
}

int test_all_bytes(const uint8_t *p, size_t len, uint8_t value)
{
    static uint8_t page[4096];

    memset(page, value, sizeof(page));
    for (size_t off = 0; off < len; off += sizeof(page)) {
        size_t n = len - off < sizeof(page) ? len - off : sizeof(page);

        if (memcmp(p + off, page, n) != 0)
            return 0;
    }
    return 1;
}
