/*
 * wh_inject.h - what the webhook adds to a kccl pod, as JSON-patch "add" operations.
 *
 * Added, each only when missing (so a second admission of the same pod adds nothing):
 *   labels kccl.io/group and kccl.io/rank, annotation kccl.io/rank when the rank was derived;
 *   serviceAccountName kccl-sidecar when the pod runs as "default" or names none;
 *   volumes kccl-run (emptyDir) and kccl-secret (Secret kccl-group-<group>);
 *   the native sidecar: initContainers entry kccl-sidecar with restartPolicy Always;
 *   in every app container: mounts of both volumes (read-only) and the kccl environment.
 * Arrays that are absent are added whole; present ones are appended to with "/-".
 */
#ifndef KCCL_WH_INJECT_H
#define KCCL_WH_INJECT_H

#include <cjson/cJSON.h>

#include "kccl/kccl_status.h"
#include "wh_validate.h"

#define WH_SIDECAR_NAME   "kccl-sidecar"
#define WH_SIDECAR_SA     "kccl-sidecar"
#define WH_VOL_RUN        "kccl-run"
#define WH_VOL_SECRET     "kccl-secret"
#define WH_RUN_DIR        "/var/run/kccl"
#define WH_SECRET_DIR     "/var/run/kccl-secret"
#define WH_BOOTSTRAP_FILE WH_RUN_DIR "/bootstrap"
#define WH_SECRET_FILE    WH_SECRET_DIR "/secret"
#define WH_SECRET_PREFIX  "kccl-group-"
#define WH_SIDECAR_UID    65532

/* The sidecar's image and resources. Strings are borrowed; NULL or "" leaves a field unset. */
typedef struct {
    const char *image;
    const char *pull_policy;
    const char *cpu_request;
    const char *memory_request;
    const char *cpu_limit;
    const char *memory_limit;
} wh_inject_cfg_t;

/* Appends to patch the operations that inject kccl into pod (already validated into spec). */
kccl_status_t wh_inject(const cJSON *pod, const wh_spec_t *spec, const wh_inject_cfg_t *cfg,
                        cJSON *patch);

/* Appends to warnings (a cJSON array of strings, shown by kubectl as "Warning: ...") what would
 * keep the injected sidecar from reaching the API server: no token, or an account of the
 * user's own that may lack the sidecar's grants. */
void wh_inject_warnings(const cJSON *pod, cJSON *warnings);

#endif
