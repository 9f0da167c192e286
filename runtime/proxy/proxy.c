/*
 * proxy.c - the proxy thread (see proxy.h): FIFO draining, trigger
 * execution on links, NUMA placement and clean shutdown.
 */
#include "proxy/proxy.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/config.h"
#include "core/error.h"
#include "memory/gpu.h"

int kccl_proxy_parse_cpulist(const char *text, cpu_set_t *set)
{
    CPU_ZERO(set);
    const char *p = text;
    int any = 0;
    while (*p) {
        char *end;
        if (!isdigit((unsigned char)*p))
            return -1;
        long a = strtol(p, &end, 10), b = a;
        p = end;
        if (*p == '-') {
            if (!isdigit((unsigned char)p[1]))
                return -1;
            b = strtol(p + 1, &end, 10);
            p = end;
        }
        if (a < 0 || b < a || b >= CPU_SETSIZE)
            return -1;
        for (long c = a; c <= b; c++)
            CPU_SET((int)c, set);
        any = 1;
        while (*p == '\n' || *p == ' ')
            p++;
        if (*p == ',')
            p++;
        else if (*p != '\0')
            return -1;
    }
    return any ? 0 : -1;
}

static int read_small(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[n] = '\0';
    return n > 0 ? 0 : -1;
}

/* The CPUs to bind to: KCCL_PROXY_CPU, else the GPU's NUMA node. 0 = leave unbound. */
static int pick_cpus(kccl_proxy_t *p, cpu_set_t *set)
{
    const char *want = kccl_config_str(KCCL_CFG_PROXY_CPU);
    if (strcmp(want, "none") == 0)
        return 0;
    if (strcmp(want, "auto") != 0) {
        if (kccl_proxy_parse_cpulist(want, set) == 0)
            return 1;
        kccl_log_warn(PROXY, "KCCL_PROXY_CPU='%s' is not a CPU list (e.g. 0-7,16); unbound", want);
        return 0;
    }
    const kccl_gpu_ops_t *gpu = kccl_gpu();
    char bus[32], path[128], text[512];
    int dev = p->ts->env.device;
    if (gpu == NULL || dev < 0 || gpu->pci_bus_id == NULL ||
        gpu->pci_bus_id(dev, bus, sizeof(bus)) != KCCL_OK)
        return 0;
    for (char *c = bus; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/numa_node", bus);
    long node = -1;
    if (read_small(path, text, sizeof(text)) != 0 || kccl_parse_int(text, &node) != 0 || node < 0)
        return 0;
    snprintf(path, sizeof(path), "/sys/devices/system/node/node%ld/cpulist", node);
    if (read_small(path, text, sizeof(text)) != 0 || kccl_proxy_parse_cpulist(text, set) != 0)
        return 0;
    return 1;
}

static void proxy_fail(kccl_proxy_t *p, kccl_status_t st, const char *what)
{
    int expect = 0;
    if (__atomic_compare_exchange_n(&p->err, &expect, -1, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
        snprintf(p->why, sizeof(p->why), "rank %d: proxy: %s: %s", p->ts->env.rank, what,
                 kccl_last_error());
        kccl_log_error(PROXY, "%s", p->why);
        __atomic_store_n(&p->err, (int)st, __ATOMIC_RELEASE);
    }
}

static kccl_proxy_chan_t *chan_of(kccl_proxy_t *p, uint32_t id)
{
    kccl_proxy_chan_t *b = __atomic_load_n(&p->blocks[id / KCCL_PROXY_BLOCK], __ATOMIC_ACQUIRE);
    if (b == NULL || b[id % KCCL_PROXY_BLOCK].link == NULL)
        return NULL;
    return &b[id % KCCL_PROXY_BLOCK];
}

static void run_trigger(kccl_proxy_t *p, kccl_trigger_t t)
{
    if (__atomic_load_n(&p->err, __ATOMIC_ACQUIRE) != 0)
        return; /* failed: complete (skip) so producers do not hang */
    kccl_trigger_fields_t f = kccl_trigger_decode(t);
    kccl_proxy_chan_t *c = chan_of(p, f.channel);
    kccl_status_t st = KCCL_OK;
    if (c == NULL) {
        kccl_error_set("trigger for unknown channel %u", f.channel);
        proxy_fail(p, KCCL_ERR_PROTOCOL, "bad trigger");
        return;
    }
    if ((f.type & KCCL_TRIGGER_PUT) && f.bytes > 0 &&
        (st = kccl_link_put(c->link, c->dst, f.dst_off, c->src, f.src_off, f.bytes)) != KCCL_OK)
        proxy_fail(p, st, "put");
    else if ((f.type & KCCL_TRIGGER_SIGNAL) &&
             (st = kccl_link_signal(c->link, c->sem, 0)) != KCCL_OK)
        proxy_fail(p, st, "signal");
    else if ((f.type & KCCL_TRIGGER_FLUSH) && (st = kccl_link_flush(c->link, -1)) != KCCL_OK)
        proxy_fail(p, st, "flush");
    __atomic_fetch_add(&p->triggers, 1, __ATOMIC_RELAXED);
}

static int drain(kccl_proxy_t *p, kccl_fifo_t *f)
{
    kccl_trigger_t t;
    int n = 0;
    if (f->dev.slots == NULL)
        return 0;
    while (n < 64 && kccl_fifo_peek(f, &t)) {
        run_trigger(p, t);
        kccl_fifo_pop(f);
        n++;
    }
    return n;
}

static void *proxy_main(void *arg)
{
    kccl_proxy_t *p = arg;
    unsigned idle = 0;
    while (!__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) {
        int n = drain(p, &p->dev_fifo) + drain(p, &p->host_fifo);
        if (n > 0) {
            idle = 0;
            continue;
        }
        /* Spin briefly (trigger latency), then yield, then sleep lightly (idle CPU). */
        if (++idle < 2048) {
            __builtin_ia32_pause();
        } else if (idle < 8192) {
            sched_yield();
        } else {
            struct timespec ts = {0, 50000};
            nanosleep(&ts, NULL);
        }
    }
    /* Carry out what is still queued (bounded by each link's deadline). */
    drain(p, &p->dev_fifo);
    drain(p, &p->host_fifo);
    return NULL;
}

static kccl_status_t proxy_start(kccl_transport_state_t *ts, kccl_proxy_t **out)
{
    kccl_status_t st;
    kccl_proxy_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        KCCL_FAIL(PROXY, KCCL_ERR_NO_MEMORY, "out of memory for the proxy");
    p->ts = ts;
    p->dev_fifo.device = -1;
    pthread_mutex_init(&p->lock, NULL);
    long slots = kccl_config_int_or_default(KCCL_CFG_PROXY_FIFO_SLOTS);
    if (slots < 2 || (slots & (slots - 1)) != 0) {
        kccl_log_warn(PROXY, "KCCL_PROXY_FIFO_SLOTS=%ld is not a power of two >= 2; using 512",
                      slots);
        slots = 512;
    }
    KCCL_CHECK_GOTO(kccl_fifo_init(&p->host_fifo, (uint64_t)slots, -1), st, err);
    if (ts->env.device >= 0)
        KCCL_CHECK_GOTO(kccl_fifo_init(&p->dev_fifo, (uint64_t)slots, ts->env.device), st,
                        err_host);
    int rc = pthread_create(&p->thread, NULL, proxy_main, p);
    if (rc != 0) {
        kccl_error_set("rank %d: cannot start the proxy thread: %s", ts->env.rank, strerror(rc));
        kccl_log_error(PROXY, "%s", kccl_last_error());
        st = KCCL_ERR_SYSTEM;
        goto err_dev;
    }
    cpu_set_t set;
    if (pick_cpus(p, &set)) {
        rc = pthread_setaffinity_np(p->thread, sizeof(set), &set);
        if (rc == 0)
            p->bound_cpus = CPU_COUNT(&set);
        else
            kccl_log_warn(PROXY, "rank %d: could not bind the proxy thread: %s", ts->env.rank,
                          strerror(rc));
    }
    kccl_log_info(PROXY, "rank %d: proxy started (%d slots, %s, bound to %d cpus)", ts->env.rank,
                  (int)slots, p->dev_fifo.dev.slots ? "gpu+host fifos" : "host fifo",
                  p->bound_cpus);
    *out = p;
    return KCCL_OK;
err_dev:
    if (p->dev_fifo.dev.slots != NULL)
        kccl_fifo_fini(&p->dev_fifo);
err_host:
    kccl_fifo_fini(&p->host_fifo);
err:
    pthread_mutex_destroy(&p->lock);
    free(p);
    return st;
}

kccl_status_t kccl_proxy_get(kccl_transport_state_t *ts, kccl_proxy_t **out)
{
    kccl_status_t st = KCCL_OK;
    pthread_mutex_lock(&ts->lock);
    if (ts->proxy == NULL)
        st = proxy_start(ts, &ts->proxy);
    pthread_mutex_unlock(&ts->lock);
    if (st == KCCL_OK)
        *out = ts->proxy;
    return st;
}

kccl_status_t kccl_proxy_add_channel(kccl_proxy_t *p, const kccl_proxy_chan_t *c, uint32_t *id)
{
    pthread_mutex_lock(&p->lock);
    uint32_t i = 0;
    for (; i < KCCL_TRIGGER_MAX_CHANNEL + 1; i++) {
        kccl_proxy_chan_t *b = p->blocks[i / KCCL_PROXY_BLOCK];
        if (b == NULL || b[i % KCCL_PROXY_BLOCK].link == NULL)
            break;
    }
    if (i > KCCL_TRIGGER_MAX_CHANNEL) {
        pthread_mutex_unlock(&p->lock);
        KCCL_FAIL(PROXY, KCCL_ERR_NO_MEMORY, "rank %d: all %u proxy channels are in use",
                  p->ts->env.rank, KCCL_TRIGGER_MAX_CHANNEL + 1);
    }
    kccl_proxy_chan_t *b = p->blocks[i / KCCL_PROXY_BLOCK];
    if (b == NULL) {
        b = calloc(KCCL_PROXY_BLOCK, sizeof(*b));
        if (b == NULL) {
            pthread_mutex_unlock(&p->lock);
            KCCL_FAIL(PROXY, KCCL_ERR_NO_MEMORY, "out of memory for proxy channels");
        }
        __atomic_store_n(&p->blocks[i / KCCL_PROXY_BLOCK], b, __ATOMIC_RELEASE);
    }
    b[i % KCCL_PROXY_BLOCK].dst = c->dst;
    b[i % KCCL_PROXY_BLOCK].src = c->src;
    b[i % KCCL_PROXY_BLOCK].sem = c->sem;
    __atomic_store_n(&b[i % KCCL_PROXY_BLOCK].link, c->link, __ATOMIC_RELEASE);
    p->nchans++;
    pthread_mutex_unlock(&p->lock);
    *id = i;
    return KCCL_OK;
}

void kccl_proxy_remove_channel(kccl_proxy_t *p, uint32_t id)
{
    /* The caller guarantees no trigger for id is in flight (it flushed). */
    pthread_mutex_lock(&p->lock);
    kccl_proxy_chan_t *b = p->blocks[id / KCCL_PROXY_BLOCK];
    if (b != NULL && b[id % KCCL_PROXY_BLOCK].link != NULL) {
        __atomic_store_n(&b[id % KCCL_PROXY_BLOCK].link, NULL, __ATOMIC_RELEASE);
        p->nchans--;
    }
    pthread_mutex_unlock(&p->lock);
}

kccl_status_t kccl_proxy_check(kccl_proxy_t *p)
{
    int st = __atomic_load_n(&p->err, __ATOMIC_ACQUIRE);
    if (st >= 0)
        return KCCL_OK;
    kccl_error_set("%s", p->why);
    return (kccl_status_t)st;
}

void kccl_proxy_destroy(kccl_proxy_t *p)
{
    if (p == NULL)
        return;
    __atomic_store_n(&p->stop, 1, __ATOMIC_RELEASE);
    pthread_join(p->thread, NULL);
    if (p->dev_fifo.dev.slots != NULL)
        kccl_fifo_fini(&p->dev_fifo);
    kccl_fifo_fini(&p->host_fifo);
    for (int i = 0; i < KCCL_PROXY_BLOCKS; i++)
        free(p->blocks[i]);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
