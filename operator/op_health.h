/*
 * op_health.h - the probe server: plain HTTP GET /healthz (the process
 * serves: 200) and /readyz (200 once the caller's readiness function says so,
 * else 503 with the reason), served by libmicrohttpd's own thread.
 */
#ifndef KCCL_OPERATOR_OP_HEALTH_H
#define KCCL_OPERATOR_OP_HEALTH_H

#include <stddef.h>

#include "kccl/kccl_status.h"

typedef struct op_health *op_health_t;

/* Returns 1 when ready; else 0 and a reason in why. Called from the server's thread. */
typedef int (*op_health_ready_fn)(void *arg, char *why, size_t len);

/* addr: "[host]:port" (port 0: any free port). */
kccl_status_t op_health_start(const char *addr, op_health_ready_fn ready, void *arg,
                              op_health_t *out);
int op_health_port(op_health_t h);
void op_health_stop(op_health_t h);

#endif
