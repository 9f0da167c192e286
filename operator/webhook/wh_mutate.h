/*
 * wh_mutate.h - one AdmissionReview in, one answer out. Pure: no I/O, no global state, so the
 * unit tests and the fuzzer drive exactly what the server runs.
 */
#ifndef KCCL_WH_MUTATE_H
#define KCCL_WH_MUTATE_H

#include <stddef.h>

#include "wh_inject.h"

typedef enum {
    WH_OUT_BAD_REQUEST = -2, /* not an AdmissionReview: HTTP 400, text body */
    WH_OUT_DENIED = -1,      /* allowed: false with a message */
    WH_OUT_IGNORED = 0,      /* not a pod CREATE, or no kccl.io/group: allowed, no patch */
    WH_OUT_UNCHANGED = 1,    /* a kccl pod that has everything already: allowed, no patch */
    WH_OUT_INJECTED = 2,     /* allowed with a JSON patch */
} wh_outcome_kind_t;

/* What happened, for the server's log line. Holds no secret: names, never the pod's spec. */
typedef struct {
    wh_outcome_kind_t kind;
    int ops;           /* patch operations */
    char uid[132];     /* request.uid */
    char pod[200];     /* namespace/name, or namespace/generateName* */
    char message[640]; /* the denial or the bad-request reason */
} wh_outcome_t;

/*
 * Answers the AdmissionReview in req[0..len). Returns the HTTP status (200, or 400 for a body
 * that is not an AdmissionReview v1 with a request uid) and sets *body to a new NUL-terminated
 * string (free()): the AdmissionReview answer, or for 400 a one-line text. On out-of-memory
 * returns 500 with *body NULL.
 */
int wh_mutate(const char *req, size_t len, const wh_inject_cfg_t *cfg, char **body,
              wh_outcome_t *outcome);

#endif
