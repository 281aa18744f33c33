/*
 * Freestanding helpers for herd-probe: memory/string functions and a small
 * snprintf (enough for the probe's report lines).
 */
#ifndef HERD_PROBE_LIB_H
#define HERD_PROBE_LIB_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
size_t strnlen(const char *s, size_t max);
int strncmp(const char *a, const char *b, size_t n);
bool streq_n(const char *a, size_t alen, const char *b);

/* Supports %% %c %s %d %i %u %x %X %p with flags '0' '-', a width, and the
 * length modifiers l ll z. Always NUL-terminates (when n > 0); returns the
 * length it would have written. */
int vsnprintf(char *buf, size_t n, const char *fmt, va_list ap);
int snprintf(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Parse an unsigned decimal (or 0x hex) number from [s, s+len); false on
 * junk or overflow. */
bool parse_u64(const char *s, size_t len, uint64_t *out);

/* Physical memory is identity mapped; this is the one place that turns a
 * (boot-loader supplied) physical address into a pointer. */
/* The empty asm hides constant addresses from gcc, which otherwise warns
 * (-Warray-bounds) about dereferencing small integers such as 0x40e. */
static inline uintptr_t pa_ptr(uint64_t pa)
{
    uintptr_t p = (uintptr_t)pa;
    __asm__("" : "+r"(p));
    return p;
}

static inline const void *phys(uint64_t pa) { return (const void *)pa_ptr(pa); }

static inline uint8_t rd8(uint64_t pa) { return *(const volatile uint8_t *)pa_ptr(pa); }
static inline uint16_t rd16(uint64_t pa) { return *(const volatile uint16_t *)pa_ptr(pa); }
static inline uint32_t rd32(uint64_t pa) { return *(const volatile uint32_t *)pa_ptr(pa); }
static inline uint64_t rd64(uint64_t pa) { return *(const volatile uint64_t *)pa_ptr(pa); }
static inline void wr8(uint64_t pa, uint8_t v) { *(volatile uint8_t *)pa_ptr(pa) = v; }
static inline void wr16(uint64_t pa, uint16_t v) { *(volatile uint16_t *)pa_ptr(pa) = v; }
static inline void wr32(uint64_t pa, uint32_t v) { *(volatile uint32_t *)pa_ptr(pa) = v; }

#endif
