/*
 * op_cache.c - the caches (see op_cache.h). Two chained hash tables that
 * grow by doubling: pods by "ns/name", groups by "ns/group". A group keeps an
 * array of pointers to its pods; each pod remembers its index there, so
 * adding, moving and removing a pod are O(1). Relists mark entries with a
 * generation and sweep the ones a LIST no longer has.
 */
#include "op_cache.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OP_TOMBS_MAX 1024 /* per group; more deletions than this between passes are dropped */

typedef struct node {
    struct node *next;
    char key[OP_QUEUE_KEY_MAX + OP_POD_MAX];
} node_t;

typedef struct {
    node_t **b;
    size_t nb, n;
} map_t;

typedef struct gstate gstate_t;

typedef struct {
    node_t node;
    op_pod_t pod;
    gstate_t *g;
    size_t gidx;
    unsigned gen;
    char acted[OP_FKEY_MAX]; /* this pod's newest failure key acted on by this process */
} pentry_t;

struct gstate {
    node_t node;
    char ns[OP_NS_MAX], name[OP_GROUP_MAX];
    pentry_t **pods;
    size_t npods, cap;
    op_tomb_t *tombs;
    size_t ntombs;
    op_group_t *cg;
    unsigned cg_gen;
    char extra[OP_HANDLED_MAX][OP_FKEY_MAX];
    size_t nextra;
};

struct op_cache {
    pthread_mutex_t mu;
    map_t pods, groups;
    unsigned pod_gen, group_gen;
    size_t commgroups;
    uint64_t pod_events, group_events;
};

/* ------------------------------------------------------------------ map */

static size_t hash(const char *s, size_t nb)
{
    size_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h & (nb - 1);
}

static node_t *map_get(const map_t *m, const char *key)
{
    for (node_t *n = m->b[hash(key, m->nb)]; n; n = n->next)
        if (!strcmp(n->key, key))
            return n;
    return NULL;
}

static void map_put(map_t *m, node_t *node)
{
    if (m->n + 1 > m->nb) { /* grow; on failure keep the longer chains */
        node_t **nb = calloc(m->nb * 2, sizeof(*nb));
        if (nb != NULL) {
            for (size_t i = 0; i < m->nb; i++)
                for (node_t *n = m->b[i], *next; n; n = next) {
                    next = n->next;
                    size_t h = hash(n->key, m->nb * 2);
                    n->next = nb[h];
                    nb[h] = n;
                }
            free(m->b);
            m->b = nb;
            m->nb *= 2;
        }
    }
    size_t h = hash(node->key, m->nb);
    node->next = m->b[h];
    m->b[h] = node;
    m->n++;
}

static void map_del(map_t *m, node_t *node)
{
    node_t **pp = &m->b[hash(node->key, m->nb)];
    while (*pp && *pp != node)
        pp = &(*pp)->next;
    if (*pp) {
        *pp = node->next;
        m->n--;
    }
}

static int map_init(map_t *m)
{
    m->nb = 64;
    m->n = 0;
    m->b = calloc(m->nb, sizeof(*m->b));
    return m->b ? 0 : -1;
}

/* ------------------------------------------------------------------ groups */

static gstate_t *group_get(op_cache_t c, const char *ns, const char *name, int create)
{
    char key[sizeof(((node_t *)0)->key)];
    if (op_model_key(key, sizeof(key), ns, name) != 0)
        return NULL;
    node_t *n = map_get(&c->groups, key);
    if (n || !create)
        return (gstate_t *)n;
    gstate_t *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return NULL;
    memcpy(g->node.key, key, strlen(key) + 1);
    memcpy(g->ns, ns, strlen(ns) + 1);
    memcpy(g->name, name, strlen(name) + 1);
    map_put(&c->groups, &g->node);
    return g;
}

static void group_maybe_free(op_cache_t c, gstate_t *g)
{
    if (g->npods || g->cg || g->ntombs || g->nextra)
        return;
    map_del(&c->groups, &g->node);
    free(g->pods);
    free(g->tombs);
    free(g);
}

static int group_add_pod(gstate_t *g, pentry_t *p)
{
    if (g->npods == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 8;
        pentry_t **np = realloc(g->pods, cap * sizeof(*np));
        if (np == NULL)
            return -1;
        g->pods = np;
        g->cap = cap;
    }
    p->g = g;
    p->gidx = g->npods;
    g->pods[g->npods++] = p;
    return 0;
}

static void group_remove_pod(pentry_t *p)
{
    gstate_t *g = p->g;
    if (g == NULL)
        return;
    g->pods[p->gidx] = g->pods[--g->npods];
    g->pods[p->gidx]->gidx = p->gidx;
    p->g = NULL;
}

static void tomb(gstate_t *g, const op_pod_t *p)
{
    if (g->ntombs >= OP_TOMBS_MAX)
        return;
    op_tomb_t *nt = realloc(g->tombs, (g->ntombs + 1) * sizeof(*nt));
    if (nt == NULL)
        return;
    g->tombs = nt;
    op_tomb_t *t = &g->tombs[g->ntombs++];
    memset(t, 0, sizeof(*t));
    memcpy(t->name, p->name, sizeof(t->name));
    if (p->failed)
        memcpy(t->fkey, p->fkey, sizeof(t->fkey));
    else
        snprintf(t->fkey, sizeof(t->fkey), "%.38s.deleted", p->uid);
    t->rank = p->rank;
    t->world_size = p->world_size;
    t->succeeded = p->phase == OP_POD_SUCCEEDED;
}

/* ------------------------------------------------------------------ pods */

static void pod_remove(op_cache_t c, pentry_t *p, op_cache_touch_fn touch, void *arg)
{
    gstate_t *g = p->g;
    map_del(&c->pods, &p->node);
    if (g) {
        tomb(g, &p->pod);
        group_remove_pod(p);
        touch(arg, g->node.key);
        group_maybe_free(c, g);
    }
    free(p);
}

static void pod_upsert(op_cache_t c, const cJSON *obj, op_cache_touch_fn touch, void *arg)
{
    op_pod_t rec;
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *ns = cJSON_GetObjectItemCaseSensitive(meta, "namespace");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(meta, "name");
    char key[sizeof(((node_t *)0)->key)];
    if (!cJSON_IsString(ns) || !cJSON_IsString(name) ||
        op_model_key(key, sizeof(key), ns->valuestring, name->valuestring) != 0)
        return;
    pentry_t *p = (pentry_t *)map_get(&c->pods, key);
    if (op_model_pod_from_json(obj, &rec) != KCCL_OK) { /* no longer in a group */
        if (p)
            pod_remove(c, p, touch, arg);
        return;
    }
    int fresh = p == NULL, moved = 0;
    if (p == NULL) {
        if ((p = calloc(1, sizeof(*p))) == NULL)
            return;
        memcpy(p->node.key, key, strlen(key) + 1);
        map_put(&c->pods, &p->node);
    }
    p->gen = c->pod_gen;
    gstate_t *g = p->g;
    if (g == NULL || strcmp(g->ns, rec.ns) != 0 || strcmp(g->name, rec.group) != 0) {
        gstate_t *ng = group_get(c, rec.ns, rec.group, 1);
        moved = 1;
        if (g) { /* the pod moved to another group (its label changed) */
            group_remove_pod(p);
            touch(arg, g->node.key);
            group_maybe_free(c, g);
        }
        if (ng == NULL || group_add_pod(ng, p) != 0) {
            map_del(&c->pods, &p->node);
            free(p);
            return;
        }
        g = ng;
    }
    /* an update that changes nothing the reconciler reads (the scheduler's conditions, a
     * kubelet heartbeat of another field) costs no reconcile */
    int same = !fresh && !moved && op_model_pod_equal(&p->pod, &rec);
    p->pod = rec;
    if (!same)
        touch(arg, g->node.key);
}

void op_cache_pod_event(op_cache_t c, kccl_kube_event_type_t type, const cJSON *pod,
                        op_cache_touch_fn touch, void *arg)
{
    pthread_mutex_lock(&c->mu);
    c->pod_events++;
    if (type == KCCL_KUBE_EVENT_ADDED || type == KCCL_KUBE_EVENT_MODIFIED) {
        pod_upsert(c, pod, touch, arg);
    } else if (type == KCCL_KUBE_EVENT_DELETED) {
        char key[sizeof(((node_t *)0)->key)];
        const cJSON *meta = cJSON_GetObjectItemCaseSensitive(pod, "metadata");
        const cJSON *ns = cJSON_GetObjectItemCaseSensitive(meta, "namespace");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(meta, "name");
        pentry_t *p = NULL;
        if (cJSON_IsString(ns) && cJSON_IsString(name) &&
            op_model_key(key, sizeof(key), ns->valuestring, name->valuestring) == 0)
            p = (pentry_t *)map_get(&c->pods, key);
        if (p)
            pod_remove(c, p, touch, arg);
    }
    pthread_mutex_unlock(&c->mu);
}

void op_cache_pods_replace(op_cache_t c, const cJSON *items, op_cache_touch_fn touch, void *arg)
{
    pthread_mutex_lock(&c->mu);
    unsigned gen = ++c->pod_gen;
    const cJSON *it;
    cJSON_ArrayForEach(it, items)
    {
        pod_upsert(c, it, touch, arg);
    }
    for (size_t i = 0; i < c->pods.nb; i++)
        for (node_t *n = c->pods.b[i], *next; n; n = next) {
            next = n->next;
            if (((pentry_t *)n)->gen != gen)
                pod_remove(c, (pentry_t *)n, touch, arg);
        }
    pthread_mutex_unlock(&c->mu);
}

/* ------------------------------------------------------------------ CommGroups */

static void group_upsert(op_cache_t c, const cJSON *obj, int remove, op_cache_touch_fn touch,
                         void *arg)
{
    op_group_t rec;
    if (op_model_group_from_json(obj, &rec) != KCCL_OK)
        return;
    gstate_t *g = group_get(c, rec.ns, rec.name, !remove);
    if (g == NULL)
        return;
    if (remove) {
        if (g->cg)
            c->commgroups--;
        free(g->cg);
        g->cg = NULL;
        g->nextra = 0; /* a new CommGroup starts a new history */
    } else {
        if (g->cg == NULL && (g->cg = malloc(sizeof(*g->cg))) != NULL)
            c->commgroups++;
        if (g->cg)
            *g->cg = rec;
        g->cg_gen = c->group_gen;
    }
    touch(arg, g->node.key);
    group_maybe_free(c, g);
}

void op_cache_group_event(op_cache_t c, kccl_kube_event_type_t type, const cJSON *cg,
                          op_cache_touch_fn touch, void *arg)
{
    pthread_mutex_lock(&c->mu);
    c->group_events++;
    if (type == KCCL_KUBE_EVENT_ADDED || type == KCCL_KUBE_EVENT_MODIFIED ||
        type == KCCL_KUBE_EVENT_DELETED)
        group_upsert(c, cg, type == KCCL_KUBE_EVENT_DELETED, touch, arg);
    pthread_mutex_unlock(&c->mu);
}

void op_cache_groups_replace(op_cache_t c, const cJSON *items, op_cache_touch_fn touch, void *arg)
{
    pthread_mutex_lock(&c->mu);
    unsigned gen = ++c->group_gen;
    const cJSON *it;
    cJSON_ArrayForEach(it, items)
    {
        group_upsert(c, it, 0, touch, arg);
    }
    for (size_t i = 0; i < c->groups.nb; i++)
        for (node_t *n = c->groups.b[i], *next; n; n = next) {
            next = n->next;
            gstate_t *g = (gstate_t *)n;
            if (g->cg && g->cg_gen != gen) {
                free(g->cg);
                g->cg = NULL;
                c->commgroups--;
                touch(arg, g->node.key);
                group_maybe_free(c, g);
            }
        }
    pthread_mutex_unlock(&c->mu);
}

/* ------------------------------------------------------------------ readers */

kccl_status_t op_cache_create(op_cache_t *out)
{
    op_cache_t c = calloc(1, sizeof(*c));
    if (c == NULL || map_init(&c->pods) || map_init(&c->groups)) {
        if (c)
            free(c->pods.b);
        free(c);
        return KCCL_ERR_NO_MEMORY;
    }
    pthread_mutex_init(&c->mu, NULL);
    *out = c;
    return KCCL_OK;
}

void op_cache_destroy(op_cache_t c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->pods.nb; i++)
        for (node_t *n = c->pods.b[i], *next; n; n = next) {
            next = n->next;
            free(n);
        }
    for (size_t i = 0; i < c->groups.nb; i++)
        for (node_t *n = c->groups.b[i], *next; n; n = next) {
            gstate_t *g = (gstate_t *)n;
            next = n->next;
            free(g->pods);
            free(g->tombs);
            free(g->cg);
            free(g);
        }
    free(c->pods.b);
    free(c->groups.b);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

kccl_status_t op_cache_snapshot(op_cache_t c, const char *key, op_snapshot_t *out)
{
    memset(out, 0, sizeof(*out));
    kccl_status_t st = KCCL_OK;
    pthread_mutex_lock(&c->mu);
    gstate_t *g = (gstate_t *)map_get(&c->groups, key);
    if (g == NULL) {
        st = KCCL_ERR_NOT_FOUND;
        goto out_unlock;
    }
    memcpy(out->ns, g->ns, sizeof(out->ns));
    memcpy(out->name, g->name, sizeof(out->name));
    if (g->cg) {
        out->has_group = 1;
        out->group = *g->cg;
    }
    out->pods = malloc((g->npods ? g->npods : 1) * sizeof(*out->pods));
    out->tombs = malloc((g->ntombs ? g->ntombs : 1) * sizeof(*out->tombs));
    if (out->pods == NULL || out->tombs == NULL) {
        op_snapshot_free(out);
        st = KCCL_ERR_NO_MEMORY;
        goto out_unlock;
    }
    for (size_t i = 0; i < g->npods; i++) {
        const pentry_t *p = g->pods[i];
        out->pods[i] = p->pod;
        out->pods[i].acted = p->acted[0] && !strcmp(p->acted, p->pod.fkey);
    }
    out->npods = g->npods;
    if (g->ntombs)
        memcpy(out->tombs, g->tombs, g->ntombs * sizeof(*out->tombs));
    out->ntombs = g->ntombs;
    memcpy(out->extra, g->extra, sizeof(out->extra));
    out->nextra = g->nextra;
out_unlock:
    pthread_mutex_unlock(&c->mu);
    return st;
}

void op_snapshot_free(op_snapshot_t *s)
{
    free(s->pods);
    free(s->tombs);
    s->pods = NULL;
    s->tombs = NULL;
    s->npods = s->ntombs = 0;
}

void op_cache_consumed(op_cache_t c, const char *key, size_t ntombs,
                       const char (*handled)[OP_FKEY_MAX], size_t nhandled)
{
    pthread_mutex_lock(&c->mu);
    gstate_t *g = (gstate_t *)map_get(&c->groups, key);
    if (g != NULL) {
        if (ntombs > g->ntombs)
            ntombs = g->ntombs;
        if (ntombs > 0) {
            memmove(g->tombs, g->tombs + ntombs, (g->ntombs - ntombs) * sizeof(*g->tombs));
            g->ntombs -= ntombs;
        }
        for (size_t i = 0; i < nhandled; i++) {
            /* on the pod too: the lists below are bounded, a group's pods are not */
            for (size_t j = 0; j < g->npods; j++)
                if (!strcmp(g->pods[j]->pod.fkey, handled[i]))
                    memcpy(g->pods[j]->acted, handled[i], OP_FKEY_MAX);
            if (g->nextra == OP_HANDLED_MAX) { /* forget the oldest */
                memmove(g->extra[0], g->extra[1], (OP_HANDLED_MAX - 1) * OP_FKEY_MAX);
                g->nextra--;
            }
            memcpy(g->extra[g->nextra++], handled[i], OP_FKEY_MAX);
        }
        group_maybe_free(c, g);
    }
    pthread_mutex_unlock(&c->mu);
}

void op_cache_each_group(op_cache_t c, op_cache_touch_fn touch, void *arg)
{
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->groups.nb; i++)
        for (node_t *n = c->groups.b[i]; n; n = n->next)
            touch(arg, n->key);
    pthread_mutex_unlock(&c->mu);
}

void op_cache_stats(op_cache_t c, op_cache_stats_t *out)
{
    pthread_mutex_lock(&c->mu);
    out->pods = c->pods.n;
    out->groups = c->groups.n;
    out->commgroups = c->commgroups;
    out->pod_events = c->pod_events;
    out->group_events = c->group_events;
    pthread_mutex_unlock(&c->mu);
}
