/*
 * wh_patch.h - building RFC 6902 JSON patches for the webhook's answer.
 *
 * A patch is a cJSON array of {"op":"add","path":...,"value":...} operations. Paths are RFC 6901
 * JSON pointers: keys such as kccl.io/group are escaped (~ -> ~0, / -> ~1). The answer carries
 * the patch base64-encoded (standard alphabet, padded, no line breaks).
 */
#ifndef KCCL_WH_PATCH_H
#define KCCL_WH_PATCH_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "kccl/kccl_status.h"

/* Escapes one key for a JSON pointer into out (cap bytes). Returns 0, or -1 if it does not fit. */
int wh_patch_escape(const char *key, char *out, size_t cap);

/* Appends {"op":"add","path":path,"value":value} to patch; takes value (freed on failure). */
kccl_status_t wh_patch_add(cJSON *patch, const char *path, cJSON *value);

/* Appends an add of value under the object at parent ("/metadata/labels") for key (escaped). */
kccl_status_t wh_patch_add_key(cJSON *patch, const char *parent, const char *key, cJSON *value);

/* Base64 of len bytes into a new NUL-terminated string (free()); NULL when out of memory. */
char *wh_base64(const unsigned char *data, size_t len);

#endif
