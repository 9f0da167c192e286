/*
 * hostid.c - node identity for co-location (see hostid.h).
 */
#include "bootstrap/hostid.h"

#include <fcntl.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/error.h"

/* hostname + boot id cannot change while the process lives: read them once. */
static char host_boot[320];
static pthread_once_t host_boot_once = PTHREAD_ONCE_INIT;

static void read_host_boot(void)
{
    char host[256] = "unknown", boot[64] = "";
    gethostname(host, sizeof(host) - 1);
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, boot, sizeof(boot) - 1);
        close(fd);
        boot[n > 0 ? n : 0] = '\0';
        boot[strcspn(boot, "\n")] = '\0';
    }
    snprintf(host_boot, sizeof(host_boot), "%s/%s", host, boot[0] ? boot : "noboot");
}

kccl_status_t kccl_host_id_resolve(char *buf, size_t len)
{
    if (len == 0)
        return KCCL_ERR_INVALID_ARG;
    if (kccl_config_is_set(KCCL_CFG_HOST_ID))
        snprintf(buf, len, "%s", kccl_config_str(KCCL_CFG_HOST_ID));
    else if (kccl_config_is_set(KCCL_CFG_NODE_NAME))
        snprintf(buf, len, "%s", kccl_config_str(KCCL_CFG_NODE_NAME));
    else {
        pthread_once(&host_boot_once, read_host_boot);
        snprintf(buf, len, "%s", host_boot);
    }
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
