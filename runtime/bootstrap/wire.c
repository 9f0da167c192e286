/*
 * wire.c - encoders and strict decoders for the bootstrap's messages (see
 * wire.h for the layouts). Decoders never trust a length and never allocate.
 */
#include "bootstrap/wire.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

const char *kccl_refuse_str(uint32_t reason)
{
    switch (reason) {
#define KCCL_REFUSE_STR_(name, value, desc)                                                        \
    case value: return desc;
        KCCL_REFUSE_MAP(KCCL_REFUSE_STR_)
#undef KCCL_REFUSE_STR_
    }
    return "unknown reason";
}

#define WIRE_NEED(len, n, what)                                                                    \
    do {                                                                                           \
        if ((len) < (n)) {                                                                         \
            *why = what " is truncated";                                                           \
            return KCCL_ERR_PROTOCOL;                                                              \
        }                                                                                          \
    } while (0)

void kccl_wire_put_hdr(uint8_t out[KCCL_WIRE_HDR_BYTES], const kccl_wire_hdr_t *h)
{
    kccl_be32_put(out, KCCL_WIRE_MAGIC);
    kccl_be16_put(out + 4, h->type);
    kccl_be16_put(out + 6, h->flags);
    kccl_be32_put(out + 8, h->tag);
    kccl_be32_put(out + 12, h->src_rank);
    kccl_be64_put(out + 16, h->len);
}

kccl_status_t kccl_wire_get_hdr(const uint8_t *buf, size_t len, kccl_wire_hdr_t *h,
                                const char **why)
{
    WIRE_NEED(len, KCCL_WIRE_HDR_BYTES, "frame header");
    if (kccl_be32_get(buf) != KCCL_WIRE_MAGIC) {
        *why = "bad frame magic (not a kccl bootstrap peer)";
        return KCCL_ERR_PROTOCOL;
    }
    h->type = kccl_be16_get(buf + 4);
    h->flags = kccl_be16_get(buf + 6);
    h->tag = kccl_be32_get(buf + 8);
    h->src_rank = kccl_be32_get(buf + 12);
    h->len = kccl_be64_get(buf + 16);
    if (h->type < KCCL_MSG_HELLO || h->type > KCCL_MSG_LAST) {
        *why = "unknown frame type";
        return KCCL_ERR_PROTOCOL;
    }
    if (h->len >= KCCL_WIRE_MAX_FRAME) {
        *why = "frame length is absurd (>= 1 GiB)";
        return KCCL_ERR_PROTOCOL;
    }
    return KCCL_OK;
}

void kccl_wire_put_hello(uint8_t out[KCCL_WIRE_HELLO_BYTES], const kccl_wire_hello_t *m)
{
    kccl_be16_put(out, m->version);
    out[2] = m->kind;
    out[3] = 0;
    kccl_be32_put(out + 4, m->rank);
    kccl_be32_put(out + 8, m->nranks);
    memcpy(out + 12, m->group_nonce, KCCL_NONCE_BYTES);
    memcpy(out + 12 + KCCL_NONCE_BYTES, m->client_nonce, KCCL_NONCE_BYTES);
}

kccl_status_t kccl_wire_get_hello(const uint8_t *buf, size_t len, kccl_wire_hello_t *m,
                                  const char **why)
{
    if (len != KCCL_WIRE_HELLO_BYTES) {
        *why = "hello has the wrong length";
        return KCCL_ERR_PROTOCOL;
    }
    m->version = kccl_be16_get(buf);
    m->kind = buf[2];
    m->rank = kccl_be32_get(buf + 4);
    m->nranks = kccl_be32_get(buf + 8);
    memcpy(m->group_nonce, buf + 12, KCCL_NONCE_BYTES);
    memcpy(m->client_nonce, buf + 12 + KCCL_NONCE_BYTES, KCCL_NONCE_BYTES);
    if (m->kind != KCCL_CONN_KIND_CHECKIN && m->kind != KCCL_CONN_KIND_P2P) {
        *why = "hello has an unknown connection kind";
        return KCCL_ERR_PROTOCOL;
    }
    if (m->nranks == 0 || m->nranks > (1u << 24)) {
        *why = "hello has an absurd world size";
        return KCCL_ERR_PROTOCOL;
    }
    return KCCL_OK;
}

void kccl_wire_put_addr(uint8_t out[KCCL_WIRE_ADDR_BYTES], const kccl_wire_addr_t *a)
{
    out[0] = a->family;
    out[1] = 0;
    kccl_be16_put(out + 2, a->port);
    memcpy(out + 4, a->addr, 16);
}

kccl_status_t kccl_wire_get_addr(const uint8_t *buf, size_t len, kccl_wire_addr_t *a,
                                 const char **why)
{
    WIRE_NEED(len, KCCL_WIRE_ADDR_BYTES, "address");
    a->family = buf[0];
    a->reserved = 0;
    a->port = kccl_be16_get(buf + 2);
    memcpy(a->addr, buf + 4, 16);
    if (a->family != 4 && a->family != 6) {
        *why = "address family is neither IPv4 nor IPv6";
        return KCCL_ERR_PROTOCOL;
    }
    if (a->port == 0) {
        *why = "address has port 0";
        return KCCL_ERR_PROTOCOL;
    }
    return KCCL_OK;
}

void kccl_wire_put_checkin(uint8_t out[KCCL_WIRE_CHECKIN_BYTES], const kccl_wire_checkin_t *c)
{
    kccl_wire_put_addr(out, &c->addr);
    kccl_be64_put(out + KCCL_WIRE_ADDR_BYTES, c->host_hash);
    kccl_be32_put(out + KCCL_WIRE_ADDR_BYTES + 8, c->pid);
}

kccl_status_t kccl_wire_get_checkin(const uint8_t *buf, size_t len, kccl_wire_checkin_t *c,
                                    const char **why)
{
    if (len != KCCL_WIRE_CHECKIN_BYTES) {
        *why = "check-in has the wrong length";
        return KCCL_ERR_PROTOCOL;
    }
    kccl_status_t st = kccl_wire_get_addr(buf, len, &c->addr, why);
    if (st != KCCL_OK)
        return st;
    c->host_hash = kccl_be64_get(buf + KCCL_WIRE_ADDR_BYTES);
    c->pid = kccl_be32_get(buf + KCCL_WIRE_ADDR_BYTES + 8);
    return KCCL_OK;
}

void kccl_wire_put_peer(uint8_t out[KCCL_WIRE_PEER_BYTES], const kccl_wire_peer_t *p)
{
    kccl_wire_put_addr(out, &p->addr);
    kccl_be64_put(out + KCCL_WIRE_ADDR_BYTES, p->host_hash);
}

kccl_status_t kccl_wire_get_peer(const uint8_t *buf, size_t len, kccl_wire_peer_t *p,
                                 const char **why)
{
    WIRE_NEED(len, KCCL_WIRE_PEER_BYTES, "table row");
    kccl_status_t st = kccl_wire_get_addr(buf, len, &p->addr, why);
    if (st != KCCL_OK)
        return st;
    p->host_hash = kccl_be64_get(buf + KCCL_WIRE_ADDR_BYTES);
    return KCCL_OK;
}

void kccl_wire_put_abort(uint8_t out[KCCL_WIRE_ABORT_BYTES], const kccl_wire_abort_t *a)
{
    kccl_be32_put(out, a->lost_rank);
    kccl_be32_put(out + 4, (uint32_t)a->status);
    kccl_be32_put(out + 8, a->step);
}

kccl_status_t kccl_wire_get_abort(const uint8_t *buf, size_t len, kccl_wire_abort_t *a,
                                  const char **why)
{
    if (len != KCCL_WIRE_ABORT_BYTES) {
        *why = "abort notice has the wrong length";
        return KCCL_ERR_PROTOCOL;
    }
    a->lost_rank = kccl_be32_get(buf);
    a->status = (int32_t)kccl_be32_get(buf + 4);
    a->step = kccl_be32_get(buf + 8);
    return KCCL_OK;
}

kccl_status_t kccl_wire_addr_to_sockaddr(const kccl_wire_addr_t *a, struct sockaddr_storage *ss,
                                         socklen_t *sslen)
{
    memset(ss, 0, sizeof(*ss));
    if (a->family == 4) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(a->port);
        memcpy(&sin->sin_addr, a->addr, 4);
        *sslen = sizeof(*sin);
        return KCCL_OK;
    }
    if (a->family == 6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(a->port);
        memcpy(&sin6->sin6_addr, a->addr, 16);
        *sslen = sizeof(*sin6);
        return KCCL_OK;
    }
    return KCCL_ERR_INVALID_ARG;
}

kccl_status_t kccl_wire_addr_from_sockaddr(const struct sockaddr *sa, kccl_wire_addr_t *a)
{
    memset(a, 0, sizeof(*a));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        a->family = 4;
        a->port = ntohs(sin->sin_port);
        memcpy(a->addr, &sin->sin_addr, 4);
        return KCCL_OK;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        a->family = 6;
        a->port = ntohs(sin6->sin6_port);
        memcpy(a->addr, &sin6->sin6_addr, 16);
        return KCCL_OK;
    }
    return KCCL_ERR_INVALID_ARG;
}

void kccl_wire_addr_format(const kccl_wire_addr_t *a, char *buf, size_t buflen)
{
    char ip[INET6_ADDRSTRLEN];
    if (buflen == 0)
        return;
    if (a->family == 4 && inet_ntop(AF_INET, a->addr, ip, sizeof(ip)))
        snprintf(buf, buflen, "%s:%u", ip, a->port);
    else if (a->family == 6 && inet_ntop(AF_INET6, a->addr, ip, sizeof(ip)))
        snprintf(buf, buflen, "[%s]:%u", ip, a->port);
    else
        snprintf(buf, buflen, "(invalid address)");
}
