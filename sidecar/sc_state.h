/*
 * sc_state.h - the sidecar's state, shared by sc_run.c (the driver: identity,
 * watches) and sc_eval.c (the decisions: spec, publish, what each watch event
 * means, the handoff, the Events). One thread owns it.
 */
#ifndef KCCL_SIDECAR_SC_STATE_H
#define KCCL_SIDECAR_SC_STATE_H

#include "sc.h"

#define SC_ROOTS_MAX  8 /* rank-0 candidates tracked; more is a duplicate anyway */
#define SC_EVENTS_MAX 32

typedef struct {
    const sc_options_t *o;
    sc_identity_t self;
    kccl_kube_client_t kc;
    sc_api_t api;
    char pod_ref[SC_NAME_MAX + 70]; /* ns/name */
    int own_meta_known;             /* self.annotations/labels are the API's, not the files' */
    char own_rv[128];               /* resourceVersion of the GET of the own pod, or "" */

    sc_spec_t spec;
    int have_spec;
    char endpoint[SC_IP_MAX + 16];

    /* rank 0: the id this pod publishes, and a pending republish for a new epoch */
    char my_id[KCCL_UNIQUE_ID_STRLEN + 1];
    long my_id_epoch;
    int republish;
    long republish_epoch;

    /* what the watch shows: the pods of the group that claim rank 0 */
    sc_root_t roots[SC_ROOTS_MAX];
    int nroots;
    int roots_overflow;
    int world_agreed;  /* a member saw rank 0 agree on the world size */
    char rv[128];      /* resume point of the next watch */
    int done;          /* the spec watch: the spec is valid now */
    int relist;        /* the watch ended on a LIST's event: start over with a LIST */
    unsigned list_gen; /* bumped by each watch call that starts with a LIST */
    int purge_pending; /* drop candidates the last LIST did not deliver, at the next real event */

    /* outcome */
    int handoff_ok;
    char wait_msg[400];
    sc_problem_t posted;  /* the problem last posted as an Event ("" reason: none) */
    sc_problem_t pending; /* an Event to post once the watch has ended */
    int event_pending;
    int action_pending; /* end the watch: an Event or a republish is due */
    int64_t started_ms;
    int timeout_reported;
} sc_t;

/* The spec from self's annotations: 0 valid (s->spec set), -1 a problem (Event pending). */
int sc_eval_spec(sc_t *s);
/* Rank-0 candidates from the watch. */
void sc_roots_upsert(sc_t *s, const cJSON *pod);
void sc_roots_remove(sc_t *s, const cJSON *pod);
/* After a LIST replayed the current objects: forgets the candidates it did not deliver. */
void sc_roots_purge_stale(sc_t *s);
/* Decides after each watch event; returns 1 to end the watch (an action is due), else 0. */
int sc_eval_group(sc_t *s);
/* Posts the pending Event and republishes; 0, or -1 on a fatal error. */
int sc_do_actions(sc_t *s);
/* Writes the handoff for (id, epoch); 0, or -1 (then a HandoffWriteFailed problem is queued). */
int sc_write_handoff(sc_t *s, const char *id, long epoch);
/* Step 3: patch the own pod (rank 0: the unique id, then its handoff). 0 or -1. */
int sc_publish(sc_t *s);
/* Milliseconds left before the RendezvousTimeout Event; 0: no deadline any more. */
int64_t sc_rendezvous_left_ms(const sc_t *s);
void sc_rendezvous_timed_out(sc_t *s);

#endif
