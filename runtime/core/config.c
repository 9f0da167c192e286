/*
 * config.c - the KCCL_* configuration table and its typed readers.
 */
#include "core/config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"

static const kccl_cfg_entry_t config_table[KCCL_CFG_COUNT] = {
#define KCCL_CFG_ROW_(name, type, def, flags, help)                                                \
    {"KCCL_" #name, KCCL_CFG_TYPE_##type, def, flags, help},
    KCCL_CONFIG_MAP(KCCL_CFG_ROW_)
#undef KCCL_CFG_ROW_
};

const kccl_cfg_entry_t *kccl_config_entry(kccl_cfg_id_t id)
{
    if ((int)id < 0 || id >= KCCL_CFG_COUNT)
        return NULL;
    return &config_table[id];
}

const char *kccl_config_str(kccl_cfg_id_t id)
{
    const char *v = getenv(config_table[id].env);
    return (v && *v) ? v : config_table[id].def;
}

int kccl_config_is_set(kccl_cfg_id_t id)
{
    const char *v = getenv(config_table[id].env);
    return v && *v;
}

int kccl_parse_int(const char *text, long *out)
{
    char *end;
    if (text == NULL || *text == '\0')
        return -1;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (end == text)
        return -1;
    while (*end == ' ' || *end == '\n' || *end == '\t')
        end++;
    if (errno != 0 || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

int kccl_parse_bool(const char *text, int *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    if (text == NULL)
        return -1;
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

int kccl_parse_seconds_ms(const char *text, int64_t *out)
{
    char *end;
    if (text == NULL || *text == '\0')
        return -1;
    errno = 0;
    double v = strtod(text, &end);
    if (end != text && *end == 's')
        end++;
    if (errno != 0 || *end != '\0' || !isfinite(v) || v <= 0 || v > 1e9)
        return -1;
    int64_t ms = (int64_t)llround(v * 1000.0);
    *out = ms > 0 ? ms : 1;
    return 0;
}

kccl_status_t kccl_config_int(kccl_cfg_id_t id, long *out)
{
    const char *text = kccl_config_str(id);
    if (kccl_parse_int(text, out) != 0)
        KCCL_FAIL(INIT, KCCL_ERR_CONFIG, "%s='%s' is not an integer; set it to a whole number",
                  config_table[id].env, text);
    return KCCL_OK;
}

kccl_status_t kccl_config_bool(kccl_cfg_id_t id, int *out)
{
    const char *text = kccl_config_str(id);
    if (kccl_parse_bool(text, out) != 0)
        KCCL_FAIL(INIT, KCCL_ERR_CONFIG, "%s='%s' is not a boolean; use 1/0, true/false, yes/no",
                  config_table[id].env, text);
    return KCCL_OK;
}

kccl_status_t kccl_config_millis(kccl_cfg_id_t id, int64_t *out)
{
    const char *text = kccl_config_str(id);
    if (kccl_parse_seconds_ms(text, out) != 0)
        KCCL_FAIL(INIT, KCCL_ERR_CONFIG,
                  "%s='%s' is not a positive number of seconds; e.g. 30 or 0.5",
                  config_table[id].env, text);
    return KCCL_OK;
}

long kccl_config_int_or_default(kccl_cfg_id_t id)
{
    long v = 0;
    if (kccl_parse_int(kccl_config_str(id), &v) == 0)
        return v;
    kccl_log_warn(INIT, "%s='%s' is not an integer; using the default %s", config_table[id].env,
                  kccl_config_str(id), config_table[id].def);
    kccl_parse_int(config_table[id].def, &v);
    return v;
}
