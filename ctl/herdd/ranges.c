/* Ranges: placeholder until range specs land (libherd-ctl). */
#include "herdd.h"

int hd_range_up(const char *yaml, size_t len, json_t **out, struct hd_err *err)
{
    (void)yaml; (void)len; (void)out;
    return hd_fail(err, 501, "", "ranges are not implemented yet");
}
int hd_range_down(const char *name, json_t **out, struct hd_err *err)
{
    (void)name; (void)out;
    return hd_fail(err, 501, "", "ranges are not implemented yet");
}
int hd_range_reset(const char *name, json_t **out, struct hd_err *err)
{
    (void)name; (void)out;
    return hd_fail(err, 501, "", "ranges are not implemented yet");
}
json_t *hd_range_status(const char *name, struct hd_err *err)
{
    hd_fail(err, 404, "name", "no range '%s'", name);
    return NULL;
}
json_t *hd_range_list(void) { return json_array(); }
void hd_ranges_resume(void) {}
