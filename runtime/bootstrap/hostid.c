/*
 * hostid.c - node identity for co-location (see hostid.h).
 */
#include "bootstrap/hostid.h"

#include <fcntl.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/error.h"

kccl_status_t kccl_host_id_resolve(char *buf, size_t len)
{
    const char *v;
    if (len == 0)
        return KCCL_ERR_INVALID_ARG;
    if (kccl_config_is_set(KCCL_CFG_HOST_ID))
        v = kccl_config_str(KCCL_CFG_HOST_ID);
    else if (kccl_config_is_set(KCCL_CFG_NODE_NAME))
        v = kccl_config_str(KCCL_CFG_NODE_NAME);
    else
        v = NULL;
    if (v) {
        snprintf(buf, len, "%s", v);
        return KCCL_OK;
    }
    char host[256] = "unknown", boot[64] = "";
    gethostname(host, sizeof(host) - 1);
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, boot, sizeof(boot) - 1);
        close(fd);
        boot[n > 0 ? n : 0] = '\0';
        boot[strcspn(boot, "\n")] = '\0';
    }
    snprintf(buf, len, "%s/%s", host, boot[0] ? boot : "noboot");
    return KCCL_OK;
}

uint64_t kccl_host_hash(const char *host_id)
{
    uint8_t d[SHA256_DIGEST_LENGTH];
    uint64_t h = 0;
    SHA256((const uint8_t *)host_id, strlen(host_id), d);
    for (int i = 0; i < 8; i++)
        h = h << 8 | d[i];
    return h;
}
