/*
 * kccl_info.c - kccl-info: what this build of kccl is and how it is set up.
 *
 * Prints the version, every KCCL_* setting from the config table (core/
 * config.h) with its current value, default and help, the interface the
 * bootstrap would bind, and the host id co-location would use. `--json`
 * gives the same as one JSON object for scripts and bug reports.
 *
 * Secrets are never printed: variables flagged KCCL_CFG_SECRET show only
 * whether they are set, and so does a unique id that embeds the group secret.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bootstrap/netif.h"
#include "bootstrap/uniqueid.h"
#include "core/config.h"
#include "kccl/kccl.h"

#if defined(__has_include)
#if __has_include("bootstrap/hostid.h")
#include "bootstrap/hostid.h"
#define KCCL_INFO_HAVE_HOSTID 1
#endif
#endif

#define VALUE_COLUMN_MAX 40 /* longer values are shortened in the table (not in --json) */

typedef struct {
    const char *value; /* what may be shown; NULL when unset or hidden */
    const char *shown; /* the table's text for the value column */
    int set;
    int hidden;
    int valid;
} setting_view_t;

typedef struct {
    char version[32];
    char lib_version[32];
    char ifname[64];
    char address[80];
    char net_error[512];
    char host_id[256];
    char host_error[512];
    char config_error[512];
} info_t;

static const char *type_name(kccl_cfg_type_t t)
{
    switch (t) {
    case KCCL_CFG_TYPE_INT: return "int";
    case KCCL_CFG_TYPE_BOOL: return "bool";
    case KCCL_CFG_TYPE_SECONDS: return "seconds";
    default: return "string";
    }
}

/* 1 when text is a unique id whose flags say it carries the group secret. */
static int uid_embeds_secret(const char *text)
{
    uint8_t raw[KCCL_UNIQUE_ID_BYTES];
    long n = kccl_b64url_decode(text, strlen(text), raw, sizeof(raw));
    if (n != (long)sizeof(raw))
        return 0;
    return (kccl_be16_get(raw + 6) & KCCL_UID_FLAG_SECRET) != 0;
}

static int value_valid(kccl_cfg_type_t type, const char *text)
{
    long l;
    int b;
    int64_t ms;
    switch (type) {
    case KCCL_CFG_TYPE_INT: return kccl_parse_int(text, &l) == 0;
    case KCCL_CFG_TYPE_BOOL: return kccl_parse_bool(text, &b) == 0;
    case KCCL_CFG_TYPE_SECONDS: return kccl_parse_seconds_ms(text, &ms) == 0;
    default: return 1;
    }
}

static setting_view_t view_setting(kccl_cfg_id_t id, const kccl_cfg_entry_t *e)
{
    setting_view_t v = {.set = kccl_config_is_set(id), .valid = 1};
    if (e->flags & KCCL_CFG_SECRET) {
        v.hidden = 1;
        v.shown = v.set ? "(set, hidden)" : "(unset)";
        return v;
    }
    if (!v.set) {
        v.shown = "(default)";
        return v;
    }
    v.value = kccl_config_str(id);
    if (id == KCCL_CFG_UNIQUE_ID && uid_embeds_secret(v.value)) {
        v.value = NULL;
        v.hidden = 1;
        v.shown = "(set, embeds the group secret: hidden)";
        return v;
    }
    v.valid = value_valid(e->type, v.value);
    v.shown = v.value;
    return v;
}

static void json_str(const char *s)
{
    if (s == NULL) {
        fputs("null", stdout);
        return;
    }
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", stdout);
        else if (*p == '\t')
            fputs("\\t", stdout);
        else if (*p < 0x20)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

static void gather_network(info_t *in)
{
    kccl_bootstrap_opts_t opts;
    memset(&opts, 0, sizeof(opts));
    kccl_status_t st = kccl_bootstrap_opts_from_env(&opts);
    explicit_bzero(opts.secret, sizeof(opts.secret));
    if (st != KCCL_OK) {
        snprintf(in->config_error, sizeof(in->config_error), "%s: %s", kccl_status_str(st),
                 kccl_last_error());
        /* Still show what the raw settings would pick. */
        snprintf(opts.ifname, sizeof(opts.ifname), "%s", kccl_config_str(KCCL_CFG_SOCKET_IFNAME));
        opts.family = 0;
    }
    kccl_wire_addr_t addr;
    st = kccl_netif_pick(opts.ifname, opts.family, &addr, in->ifname, sizeof(in->ifname));
    if (st == KCCL_OK) {
        kccl_wire_addr_format(&addr, in->address, sizeof(in->address));
        char *colon = strrchr(in->address, ':'); /* the port is 0: drop it */
        if (colon != NULL)
            *colon = '\0';
        if (in->address[0] == '[' && colon != NULL && colon[-1] == ']') {
            colon[-1] = '\0';
            memmove(in->address, in->address + 1, strlen(in->address));
        }
    } else {
        snprintf(in->net_error, sizeof(in->net_error), "%s: %s", kccl_status_str(st),
                 kccl_last_error());
    }
}

static void gather_host(info_t *in)
{
#ifdef KCCL_INFO_HAVE_HOSTID
    kccl_status_t st = kccl_host_id_resolve(in->host_id, sizeof(in->host_id));
    if (st != KCCL_OK) {
        in->host_id[0] = '\0';
        snprintf(in->host_error, sizeof(in->host_error), "%s: %s", kccl_status_str(st),
                 kccl_last_error());
    }
#else
    snprintf(in->host_error, sizeof(in->host_error), "not available in this build");
#endif
}

static void gather(info_t *in)
{
    int v = kccl_version();
    memset(in, 0, sizeof(*in));
    snprintf(in->version, sizeof(in->version), "%d.%d.%d", KCCL_VERSION_MAJOR, KCCL_VERSION_MINOR,
             KCCL_VERSION_PATCH);
    snprintf(in->lib_version, sizeof(in->lib_version), "%d.%d.%d", v / 10000, v / 100 % 100,
             v % 100);
    gather_network(in);
    gather_host(in);
}

static void print_json_settings(void)
{
    printf("  \"settings\": [\n");
    for (int i = 0; i < KCCL_CFG_COUNT; i++) {
        const kccl_cfg_entry_t *e = kccl_config_entry((kccl_cfg_id_t)i);
        setting_view_t v = view_setting((kccl_cfg_id_t)i, e);
        printf("    {\"name\": ");
        json_str(e->env);
        printf(", \"type\": \"%s\", \"set\": %s, \"value\": ", type_name(e->type),
               v.set ? "true" : "false");
        json_str(v.value);
        printf(", \"default\": ");
        json_str(e->def);
        printf(", \"secret\": %s, \"hidden\": %s, \"valid\": %s, \"help\": ",
               (e->flags & KCCL_CFG_SECRET) ? "true" : "false", v.hidden ? "true" : "false",
               v.valid ? "true" : "false");
        json_str(e->help);
        printf("}%s\n", i + 1 < KCCL_CFG_COUNT ? "," : "");
    }
    printf("  ],\n");
}

static void print_json(const info_t *in)
{
    printf("{\n  \"version\": ");
    json_str(in->version);
    printf(",\n  \"library_version\": ");
    json_str(in->lib_version);
    printf(",\n");
    print_json_settings();
    printf("  \"config_error\": ");
    json_str(in->config_error[0] ? in->config_error : NULL);
    printf(",\n  \"bootstrap_interface\": {\"name\": ");
    json_str(in->net_error[0] ? NULL : in->ifname);
    printf(", \"address\": ");
    json_str(in->net_error[0] ? NULL : in->address);
    printf(", \"error\": ");
    json_str(in->net_error[0] ? in->net_error : NULL);
    printf("},\n  \"host_id\": ");
    json_str(in->host_error[0] ? NULL : in->host_id);
    printf(",\n  \"host_id_error\": ");
    json_str(in->host_error[0] ? in->host_error : NULL);
    printf("\n}\n");
}

static int display_width(const char *s)
{
    size_t n = strlen(s);
    return n > VALUE_COLUMN_MAX ? VALUE_COLUMN_MAX : (int)n;
}

static void print_table(void)
{
    int wname = 4, wval = 5, wdef = 7;
    for (int i = 0; i < KCCL_CFG_COUNT; i++) {
        const kccl_cfg_entry_t *e = kccl_config_entry((kccl_cfg_id_t)i);
        setting_view_t v = view_setting((kccl_cfg_id_t)i, e);
        int n = (int)strlen(e->env);
        wname = n > wname ? n : wname;
        n = display_width(v.shown) + (v.valid ? 0 : 10);
        wval = n > wval ? n : wval;
        n = display_width(e->def[0] ? e->def : "\"\"");
        wdef = n > wdef ? n : wdef;
    }
    printf("%-*s  %-*s  %-*s  %s\n", wname, "NAME", wval, "VALUE", wdef, "DEFAULT", "HELP");
    for (int i = 0; i < KCCL_CFG_COUNT; i++) {
        const kccl_cfg_entry_t *e = kccl_config_entry((kccl_cfg_id_t)i);
        setting_view_t v = view_setting((kccl_cfg_id_t)i, e);
        char val[VALUE_COLUMN_MAX + 16];
        if (strlen(v.shown) > VALUE_COLUMN_MAX)
            snprintf(val, sizeof(val), "%.*s...", VALUE_COLUMN_MAX - 3, v.shown);
        else
            snprintf(val, sizeof(val), "%s", v.shown);
        if (!v.valid)
            strcat(val, " (invalid)");
        printf("%-*s  %-*s  %-*s  %s\n", wname, e->env, wval, val, wdef,
               e->def[0] ? e->def : "\"\"", e->help);
    }
}

static void print_text(const info_t *in)
{
    printf("kccl %s (library %s)\n\n", in->version, in->lib_version);
    print_table();
    printf("\n");
    if (in->config_error[0])
        printf("configuration error: %s\n", in->config_error);
    if (in->net_error[0])
        printf("bootstrap interface: none (%s)\n", in->net_error);
    else
        printf("bootstrap interface: %s %s\n", in->ifname, in->address);
    if (in->host_error[0])
        printf("host id: unknown (%s)\n", in->host_error);
    else
        printf("host id: %s\n", in->host_id);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: kccl-info [--json]\n"
               "Prints the kccl version, every KCCL_* setting (value, default, help), the\n"
               "bootstrap interface and the host id this process would use. Secrets are\n"
               "never shown.\n");
}

int main(int argc, char **argv)
{
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "kccl-info: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    info_t in;
    gather(&in);
    if (json)
        print_json(&in);
    else
        print_text(&in);
    return fflush(stdout) == 0 ? 0 : 1;
}
