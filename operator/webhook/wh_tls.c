/*
 * wh_tls.c - loading and rotating the webhook's serving key pair (wh_tls.h).
 *
 * Change detection is by stat(): a Secret volume swaps a "..data" symlink, cert-manager and
 * `kubectl cp` rewrite files; all of them change the inode, size or times. A load checks that
 * the key belongs to the certificate (through a throw-away GnuTLS credential) before the pair
 * is published, so a rotation caught between writing the two files is simply retried at the
 * next check. The key's bytes are wiped after import and never logged.
 */
#include "wh_tls.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/error.h"

#define WH_TLS_CHAIN_MAX 8
#define WH_TLS_GRACE_S   300 /* a retired pair outlives any handshake that picked it */

typedef struct wh_pair {
    gnutls_pcert_st certs[WH_TLS_CHAIN_MAX];
    unsigned ncerts;
    gnutls_privkey_t key;
    time_t retired_at;
    struct wh_pair *next; /* retired list */
} wh_pair_t;

typedef struct {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
} wh_sig_t;

struct wh_tls {
    char *cert_file, *key_file;
    pthread_mutex_t mu;
    wh_pair_t *current, *retired;
    wh_sig_t sig[2];        /* of the loaded files */
    wh_sig_t failed_sig[2]; /* of the last unusable files (logged once) */
    unsigned generation;
};

static pthread_mutex_t active_mu = PTHREAD_MUTEX_INITIALIZER;
static wh_tls_t *active;

static void pair_free(wh_pair_t *p)
{
    if (p == NULL)
        return;
    for (unsigned i = 0; i < p->ncerts; i++)
        gnutls_pcert_deinit(&p->certs[i]);
    gnutls_privkey_deinit(p->key);
    free(p);
}

static void sig_of(const char *path, wh_sig_t *s)
{
    struct stat st;
    memset(s, 0, sizeof(*s));
    if (stat(path, &st) == 0) {
        s->dev = st.st_dev;
        s->ino = st.st_ino;
        s->size = st.st_size;
        s->mtime = st.st_mtim;
        s->ctime = st.st_ctim;
    }
}

static int sig_eq(const wh_sig_t *a, const wh_sig_t *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
           a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

static void datum_wipe(gnutls_datum_t *d)
{
    if (d->data != NULL) {
        explicit_bzero(d->data, d->size);
        gnutls_free(d->data);
    }
    d->data = NULL;
}

/* The key must belong to the first certificate: GnuTLS checks it when both go into a credential. */
static kccl_status_t check_match(const gnutls_datum_t *cert, const gnutls_datum_t *key,
                                 const char *cert_file, const char *key_file)
{
    gnutls_certificate_credentials_t cred;
    if (gnutls_certificate_allocate_credentials(&cred) < 0)
        return KCCL_ERR_NO_MEMORY;
    int rc = gnutls_certificate_set_x509_key_mem(cred, cert, key, GNUTLS_X509_FMT_PEM);
    gnutls_certificate_free_credentials(cred);
    if (rc < 0) {
        kccl_error_set("webhook: %s and %s are not a usable certificate and key (%s): the key "
                       "must be the certificate's, both PEM; regenerate the pair",
                       cert_file, key_file, gnutls_strerror(rc));
        return KCCL_ERR_CONFIG;
    }
    return KCCL_OK;
}

static kccl_status_t pair_load(const char *cert_file, const char *key_file, wh_pair_t **out)
{
    gnutls_datum_t cert = {NULL, 0}, key = {NULL, 0};
    kccl_status_t st = KCCL_ERR_CONFIG;
    wh_pair_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return KCCL_ERR_NO_MEMORY;
    int rc = gnutls_load_file(cert_file, &cert);
    if (rc < 0) {
        kccl_error_set("webhook: cannot read the serving certificate %s (%s): mount tls.crt "
                       "there or pass the right --webhook-cert-dir",
                       cert_file, gnutls_strerror(rc));
        goto err;
    }
    if ((rc = gnutls_load_file(key_file, &key)) < 0) {
        kccl_error_set("webhook: cannot read the serving key %s (%s): mount tls.key there or "
                       "pass the right --webhook-cert-dir",
                       key_file, gnutls_strerror(rc));
        goto err;
    }
    if ((st = check_match(&cert, &key, cert_file, key_file)) != KCCL_OK)
        goto err;
    st = KCCL_ERR_CONFIG;
    p->ncerts = WH_TLS_CHAIN_MAX;
    rc = gnutls_pcert_list_import_x509_raw(p->certs, &p->ncerts, &cert, GNUTLS_X509_FMT_PEM, 0);
    if (rc < 0) {
        p->ncerts = 0;
        kccl_error_set("webhook: %s: %s (at most %d PEM certificates)", cert_file,
                       gnutls_strerror(rc), WH_TLS_CHAIN_MAX);
        goto err;
    }
    if (gnutls_privkey_init(&p->key) < 0 ||
        (rc = gnutls_privkey_import_x509_raw(p->key, &key, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
        kccl_error_set("webhook: %s: not a PEM private key (%s)", key_file, gnutls_strerror(rc));
        goto err;
    }
    datum_wipe(&key);
    gnutls_free(cert.data);
    *out = p;
    return KCCL_OK;
err:
    datum_wipe(&key);
    gnutls_free(cert.data);
    pair_free(p);
    return st;
}

kccl_status_t wh_tls_create(const char *cert_file, const char *key_file, wh_tls_t **out)
{
    if (cert_file == NULL || key_file == NULL || !*cert_file || !*key_file)
        KCCL_FAIL(KUBE, KCCL_ERR_INVALID_ARG,
                  "webhook: no serving certificate/key given: set the cert and key files "
                  "(--webhook-cert-dir with tls.crt and tls.key)");
    wh_tls_t *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return KCCL_ERR_NO_MEMORY;
    pthread_mutex_init(&t->mu, NULL);
    if ((t->cert_file = strdup(cert_file)) == NULL || (t->key_file = strdup(key_file)) == NULL) {
        wh_tls_destroy(t);
        return KCCL_ERR_NO_MEMORY;
    }
    kccl_status_t st = wh_tls_reload(t);
    if (st != KCCL_OK) {
        kccl_log_error(KUBE, "%s", kccl_last_error());
        wh_tls_destroy(t);
        return st;
    }
    *out = t;
    return KCCL_OK;
}

kccl_status_t wh_tls_reload(wh_tls_t *tls)
{
    wh_sig_t sig[2];
    sig_of(tls->cert_file, &sig[0]);
    sig_of(tls->key_file, &sig[1]);
    wh_pair_t *p = NULL;
    KCCL_CHECK(pair_load(tls->cert_file, tls->key_file, &p));
    time_t now = time(NULL);
    pthread_mutex_lock(&tls->mu);
    if (tls->current != NULL) {
        tls->current->retired_at = now;
        tls->current->next = tls->retired;
        tls->retired = tls->current;
    }
    tls->current = p;
    memcpy(tls->sig, sig, sizeof(sig));
    tls->generation++;
    /* free pairs retired long enough ago (the list is newest first) */
    for (wh_pair_t **pp = &tls->retired; *pp != NULL;) {
        if (now - (*pp)->retired_at > WH_TLS_GRACE_S) {
            wh_pair_t *old = *pp;
            *pp = old->next;
            pair_free(old);
        } else {
            pp = &(*pp)->next;
        }
    }
    pthread_mutex_unlock(&tls->mu);
    return KCCL_OK;
}

int wh_tls_reload_if_changed(wh_tls_t *tls)
{
    wh_sig_t sig[2];
    sig_of(tls->cert_file, &sig[0]);
    sig_of(tls->key_file, &sig[1]);
    if ((sig_eq(&sig[0], &tls->sig[0]) && sig_eq(&sig[1], &tls->sig[1])) ||
        (sig_eq(&sig[0], &tls->failed_sig[0]) && sig_eq(&sig[1], &tls->failed_sig[1])))
        return 0;
    if (wh_tls_reload(tls) == KCCL_OK) {
        kccl_log_info(KUBE, "webhook: serving certificate reloaded from %s (generation %u)",
                      tls->cert_file, tls->generation);
        return 1;
    }
    memcpy(tls->failed_sig, sig, sizeof(sig));
    kccl_log_warn(KUBE, "%s; still serving the previous certificate", kccl_last_error());
    return -1;
}

unsigned wh_tls_generation(wh_tls_t *tls)
{
    pthread_mutex_lock(&tls->mu);
    unsigned g = tls->generation;
    pthread_mutex_unlock(&tls->mu);
    return g;
}

int wh_tls_activate(wh_tls_t *tls)
{
    pthread_mutex_lock(&active_mu);
    int busy = active != NULL && active != tls;
    if (!busy)
        active = tls;
    pthread_mutex_unlock(&active_mu);
    return busy ? -1 : 0;
}

int wh_tls_retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn, int nreqs,
                    const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                    gnutls_pcert_st **pcert, unsigned int *pcert_length, gnutls_privkey_t *key)
{
    int rc = -1;
    pthread_mutex_lock(&active_mu);
    if (active != NULL) {
        pthread_mutex_lock(&active->mu);
        if (active->current != NULL) {
            *pcert = active->current->certs;
            *pcert_length = active->current->ncerts;
            *key = active->current->key;
            rc = 0;
        }
        pthread_mutex_unlock(&active->mu);
    }
    pthread_mutex_unlock(&active_mu);
    return rc;
}

void wh_tls_destroy(wh_tls_t *tls)
{
    if (tls == NULL)
        return;
    pthread_mutex_lock(&active_mu);
    if (active == tls)
        active = NULL;
    pthread_mutex_unlock(&active_mu);
    pair_free(tls->current);
    while (tls->retired != NULL) {
        wh_pair_t *p = tls->retired;
        tls->retired = p->next;
        pair_free(p);
    }
    pthread_mutex_destroy(&tls->mu);
    free(tls->cert_file);
    free(tls->key_file);
    free(tls);
}
