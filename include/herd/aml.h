/*
 * A small ACPI Machine Language (AML) byte-code writer, enough for a DSDT
 * that describes a PC-like platform: names and scopes, integers, strings,
 * EISA ids, packages, buffers and resource templates, devices, operation
 * regions with their fields, and small methods (Store, And, LEqual, If,
 * Notify, Return on locals and arguments). Output goes into a
 * caller-provided buffer.
 *
 * Expressions are written in AML's own prefix order: an operator call is
 * followed by exactly its operands (and target), each itself an object or
 * another expression, e.g. Store (And (Local0, 1, ), Local1):
 *   aml_store(a); aml_and(a); aml_local(a, 0); aml_integer(a, 1);
 *   aml_no_target(a); aml_local(a, 1);
 *
 * Nested objects (Scope, Device, Method, Package, Buffer, resource
 * template) are opened with a *_begin call and closed with aml_end (or
 * aml_restemplate_end); their PkgLength is inserted when they are closed,
 * in the shortest encoding. Errors are sticky: the first one (-ENOSPC when
 * the buffer is full, -EINVAL for a bad name or unbalanced ends, -E2BIG for
 * nesting deeper than AML_MAX_DEPTH) is kept and every later call does
 * nothing; aml_finish reports it.
 */
#ifndef HERD_AML_H
#define HERD_AML_H

#include <stddef.h>
#include <stdint.h>

#define AML_MAX_DEPTH 16

/* Largest PkgLength (it counts its own bytes): 28 bits. */
#define AML_PKGLEN_MAX 0x0fffffffu

struct aml {
    uint8_t *buf;
    size_t cap, len;
    int err;
    unsigned depth;
    struct {
        size_t start; /* offset of the first content byte */
        uint8_t kind;
    } open[AML_MAX_DEPTH];
};

void aml_init(struct aml *a, uint8_t *buf, size_t cap);

/* The number of bytes written, or the first error (negative errno). */
long aml_finish(const struct aml *a);

/* PkgLength for `content` bytes of body: writes 1-4 bytes to out and
 * returns how many, or 0 if the total does not fit in 28 bits. */
unsigned aml_pkglen_encode(size_t content, uint8_t out[4]);

/* The 32-bit value of a compressed EISA id such as "PNP0A03" (three
 * upper-case letters, four hex digits), as AML stores it; 0 if malformed. */
uint32_t aml_eisaid_value(const char *id);

/* Data objects. */
void aml_integer(struct aml *a, uint64_t v);  /* shortest encoding */
void aml_string(struct aml *a, const char *s);
void aml_eisaid(struct aml *a, const char *id);
void aml_name_string(struct aml *a, const char *path); /* "\\_SB.PCI0", "_HID" */

/* Name (NAME, <next object>): follow with exactly one data object. */
void aml_name(struct aml *a, const char *name);

/* Shortcuts for the common Name (NAME, value) forms. */
void aml_name_integer(struct aml *a, const char *name, uint64_t v);
void aml_name_string_value(struct aml *a, const char *name, const char *s);
void aml_name_eisaid(struct aml *a, const char *name, const char *id);

/* Nested objects, closed by aml_end. If's body starts with its predicate;
 * a Field's with its units (aml_field_unit). */
void aml_scope_begin(struct aml *a, const char *path);
void aml_device_begin(struct aml *a, const char *name);
void aml_method_begin(struct aml *a, const char *name, unsigned nargs, int serialized);
void aml_package_begin(struct aml *a, unsigned nelems);
void aml_buffer_begin(struct aml *a);
void aml_if_begin(struct aml *a);
void aml_field_begin(struct aml *a, const char *region, uint8_t flags);
void aml_end(struct aml *a);

/* OperationRegion (name, space, offset, len) */
#define AML_SPACE_SYSTEM_MEMORY 0x00
#define AML_SPACE_SYSTEM_IO     0x01
void aml_operation_region(struct aml *a, const char *name, uint8_t space, uint64_t offset,
                          uint64_t len);

/* Field flags: access type | lock rule | update rule (bit 7 reserved). */
#define AML_FIELD_ANY_ACC        0x00
#define AML_FIELD_BYTE_ACC       0x01
#define AML_FIELD_WORD_ACC       0x02
#define AML_FIELD_DWORD_ACC      0x03
#define AML_FIELD_NO_LOCK        0x00
#define AML_FIELD_LOCK           0x10
#define AML_FIELD_PRESERVE       0x00
#define AML_FIELD_WRITE_AS_ONES  0x20
#define AML_FIELD_WRITE_AS_ZEROS 0x40
/* One named unit of `bits` bits, next after the previous one; the name is a
 * single NameSeg ("GDAT"). */
void aml_field_unit(struct aml *a, const char *name, uint32_t bits);

/* Method-local variables Local0-7 and arguments Arg0-6. */
void aml_local(struct aml *a, unsigned n);
void aml_arg(struct aml *a, unsigned n);
/* A Target that stores nowhere (NullName). */
void aml_no_target(struct aml *a);
/* Store (<source>, <destination>): follow with two objects. */
void aml_store(struct aml *a);
/* And (<operand>, <operand>, <target>): follow with three. */
void aml_and(struct aml *a);
/* LEqual (<operand>, <operand>): follow with two. */
void aml_lequal(struct aml *a);
/* Notify (object, value): object is a name path ("\\_SB.PWRB"). */
void aml_notify(struct aml *a, const char *object, uint64_t value);

/* Raw bytes (inside a buffer or a method body). */
void aml_bytes(struct aml *a, const void *p, size_t n);

/* Return (<next object>) inside a method: follow with one object. */
void aml_return(struct aml *a);

/* Resource templates: a buffer of descriptors ending with an End Tag whose
 * checksum makes the descriptors' byte sum zero. */
void aml_restemplate_begin(struct aml *a);
void aml_restemplate_end(struct aml *a);

/* IO (Decode16, min, max, align, len) */
void aml_res_io(struct aml *a, uint16_t min, uint16_t max, uint8_t align, uint8_t len);
/* IRQNoFlags () {irq}: ISA, edge triggered, active high, exclusive */
void aml_res_irq_noflags(struct aml *a, uint8_t irq);
/* Interrupt (ResourceConsumer, Edge/Level, ActiveHigh/Low, Exclusive) {gsi} */
void aml_res_interrupt(struct aml *a, int level, int active_low, uint32_t gsi);
/* Memory32Fixed (ReadWrite|ReadOnly, base, len) */
void aml_res_memory32_fixed(struct aml *a, int writable, uint32_t base, uint32_t len);
/* DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable,
 * ReadWrite, 0, min, max, 0, max - min + 1) */
void aml_res_dword_memory(struct aml *a, uint32_t min, uint32_t max);
/* WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange,
 * 0, min, max, 0, max - min + 1) */
void aml_res_word_io(struct aml *a, uint16_t min, uint16_t max);
/* WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, min,
 * max, 0, max - min + 1) */
void aml_res_word_bus(struct aml *a, uint16_t min, uint16_t max);

#endif
