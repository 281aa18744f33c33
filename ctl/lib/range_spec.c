/* range_spec: stub, implementation in progress. */
#include <errno.h>
#include <stdlib.h>
#include "herd/range_spec.h"

int range_spec_parse(const char *buf, size_t len, struct range_spec **out, struct range_err *err) { *out = NULL; return -ENOSYS; }
int range_spec_load(const char *path, struct range_spec **out, struct range_err *err) { *out = NULL; return -ENOSYS; }
void range_spec_free(struct range_spec *spec) { free(spec); }
int range_spec_expand(const struct range_spec *spec, struct range_guest **out, size_t *n) { return -ENOSYS; }
int range_guest_name(char out[RANGE_GUEST_NAME_MAX + 1], const struct range_spec *spec, const struct range_scenario *sc, const struct range_role *role, unsigned index) { return -ENOSYS; }
const char *range_network_name(enum range_network net) { return NULL; }
int range_network_parse(const char *name, enum range_network *out) { return -ENOSYS; }
int range_name_check(const char *s, size_t max) { return -ENOSYS; }
int range_parse_size(const char *s, uint64_t *out) { return -ENOSYS; }
