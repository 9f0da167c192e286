/*
 * agent_net.c - the pod sandbox's network: a network namespace
 * <netns prefix>ag-<o3>-<o4> per pod, a veth ka<o2>-<o3>-<o4> whose other end
 * is eth0 inside, attached to the control plane's bridge, and the address
 * <o1>.<o2>.<o3>.<o4>/<prefix> taken from the bridge's network. The third
 * octets start at --octet-base (default 20), below podkit's 100..219, so
 * sidecar tests and this agent can share one control plane.
 *
 * `cp.sh down` deletes every netns with the control plane's prefix, so even a
 * killed agent leaves nothing behind once the control plane goes down; the
 * agent itself removes its own at start (stale) and exit.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"

#define AG_PER_OCTET 250

int ag_sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int st = system(cmd); // NOLINT(cert-env33-c): ip(8) is the interface to netns and veths
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static int octet(const char *ip, int which)
{
    const char *s = ip;
    for (int i = 0; i < which && s; i++) {
        s = strchr(s, '.');
        s = s ? s + 1 : NULL;
    }
    return s ? ag_atoi(s, -1) : -1;
}

void ag_net_cleanup_stale(ag_t *a)
{
    ag_sh("for n in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "
          "'^%sag-[0-9]+-[0-9]+$'); "
          "do for q in $(ip netns pids $n); do kill -9 $q; done; ip netns delete $n; done; "
          "for l in $(ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | "
          "grep -E '^ka%d-[0-9]+-[0-9]+$'); do ip link delete $l 2>/dev/null; done; true",
          a->netns_prefix, octet(a->bridge_ip, 1));
}

static int slot_take(ag_t *a)
{
    int max = AG_MAX_PODS < 250 * 9 ? AG_MAX_PODS : 250 * 9;
    for (int i = 0; i < max; i++)
        if (!a->slots[i]) {
            a->slots[i] = 1;
            return i;
        }
    return -1;
}

/* Starts the sandbox's network in a helper process (ip(8) is slow: a pod's setup must not
 * hold up the others); ag_pod_on_exit() collects the helper. 0 started (or nothing to do). */
int ag_net_up(ag_t *a, ag_pod_t *p)
{
    if (p->host_network) {
        snprintf(p->ip, sizeof(p->ip), "%s", a->bridge_ip);
        p->net_done = 1;
        return 0;
    }
    if (p->slot < 0 && (p->slot = slot_take(a)) < 0) {
        snprintf(p->message, sizeof(p->message), "no free pod address on node %s", a->node);
        return -1;
    }
    int o3 = a->octet_base + p->slot / AG_PER_OCTET, o4 = 1 + p->slot % AG_PER_OCTET;
    snprintf(p->ip, sizeof(p->ip), "%d.%d.%d.%d", octet(a->bridge_ip, 0), octet(a->bridge_ip, 1),
             o3, o4);
    snprintf(p->netns, sizeof(p->netns), "%.31sag-%d-%d", a->netns_prefix, o3, o4);
    snprintf(p->veth, sizeof(p->veth), "ka%d-%d-%d", octet(a->bridge_ip, 1), o3, o4);
    /* Host ends get high locally administered MACs (fe:fe:...), so the bridge, which takes the
     * lowest MAC of its ports, does not change its MAC as pods come and go (see podkit.c). */
    char script[2048];
    snprintf(script, sizeof(script),
             "set -e; ip netns del %s 2>/dev/null || true; ip link del %s 2>/dev/null || "
             "true; ip netns add %s; ip link add %s address fe:fe:%02x:%02x:%02x:01 type veth "
             "peer name eth0 netns %s; ip link set %s master %s up; "
             "ip -n %s addr add %s/%d dev eth0; ip -n %s link set eth0 up; "
             "ip -n %s link set lo up; ip -n %s route add default via %s dev eth0",
             p->netns, p->veth, p->netns, p->veth, octet(a->bridge_ip, 1) & 0xff, o3 & 0xff,
             o4 & 0xff, p->netns, p->veth, a->bridge, p->netns, p->ip, a->bridge_prefix, p->netns,
             p->netns, p->netns, a->bridge_ip);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execl("/bin/sh", "sh", "-c", script, (char *)NULL);
        _exit(127);
    }
    if (pid < 0) {
        snprintf(p->message, sizeof(p->message), "fork: %s", strerror(errno));
        return -1;
    }
    p->net_pid = pid;
    return 0;
}

/* The helper's exit: 0 the network is up, else it failed (p->message says so). */
int ag_net_up_done(ag_t *a, ag_pod_t *p, int status)
{
    p->net_pid = 0;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        p->net_done = 1;
        ag_debug("pod %s/%s: netns %s, %s", p->ns, p->name, p->netns, p->ip);
        return 0;
    }
    snprintf(p->message, sizeof(p->message), "network namespace %.40s: ip failed (status %d)",
             p->netns, status);
    p->net_done = -1;
    ag_net_down(a, p);
    return -1;
}

void ag_net_down(ag_t *a, ag_pod_t *p)
{
    if (p->netns[0]) {
        ag_sh("for q in $(ip netns pids %s 2>/dev/null); do kill -9 $q; done; "
              "ip netns del %s 2>/dev/null; ip link del %s 2>/dev/null; true",
              p->netns, p->netns, p->veth);
        p->netns[0] = '\0';
    }
    if (p->slot >= 0)
        a->slots[p->slot] = 0;
    p->slot = -1;
}
