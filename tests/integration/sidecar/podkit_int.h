/*
 * podkit_int.h - what podkit.c and podkit_run.c share and tests need not see.
 */
#ifndef KCCL_PODKIT_INT_H
#define KCCL_PODKIT_INT_H

#include "podkit.h"

/* "podkit: ..." on stderr. */
void pk_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* POST json to path as the admin; the response in *out (may be NULL). 0 or -1 (printed). */
int pk_api_create(pk_t *k, const char *path, const char *json, cJSON **out);

#endif
