/*
 * wh_json.h - shape-safe cJSON lookups. An AdmissionReview comes from the network: any member
 * may be missing or of the wrong type, so every lookup checks the container's type first and a
 * wrong type reads as absent.
 */
#ifndef KCCL_WH_JSON_H
#define KCCL_WH_JSON_H

#include <cjson/cJSON.h>

/* obj[key] when obj is an object, else NULL. */
static inline cJSON *wh_json_get(const cJSON *obj, const char *key)
{
    return cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
}

/* obj[key] when it is a string, else NULL. */
static inline const char *wh_json_str(const cJSON *obj, const char *key)
{
    const cJSON *v = wh_json_get(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

#endif
