/*
 * wh_server.h - the HTTPS front of the webhook (libmicrohttpd over GnuTLS); implements
 * webhook.h. Routes: POST /mutate (Content-Type application/json, body <= max_body_bytes) and
 * GET /healthz. Internal counters for the tests.
 */
#ifndef KCCL_WH_SERVER_H
#define KCCL_WH_SERVER_H

#include "webhook.h"

typedef struct {
    unsigned long requests; /* POST /mutate answered (any status) */
    unsigned long injected; /* with a patch */
    unsigned long denied;   /* allowed: false */
    unsigned long rejected; /* HTTP 4xx before or instead of a decision */
    unsigned cert_generation;
} wh_server_stats_t;

void wh_server_stats(kccl_webhook_t webhook, wh_server_stats_t *out);

#endif
