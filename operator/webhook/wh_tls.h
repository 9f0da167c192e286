/*
 * wh_tls.h - the webhook's serving certificate, re-read when its files change (rotation).
 *
 * The key pair is handed to GnuTLS per handshake through a certificate-retrieve callback, so a
 * new pair takes effect for the next connection without restarting the listener. A pair that
 * fails to load (half-written files, a key that does not match) is refused and the current one
 * kept. Replaced pairs are freed after a grace period, as a handshake may still be using them.
 *
 * One wh_tls is "active" per process: the GnuTLS callback has no user pointer.
 */
#ifndef KCCL_WH_TLS_H
#define KCCL_WH_TLS_H

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>

#include "kccl/kccl_status.h"

typedef struct wh_tls wh_tls_t;

/* Loads cert_file (PEM chain) and key_file (PEM); KCCL_ERR_CONFIG names the file and remedy. */
kccl_status_t wh_tls_create(const char *cert_file, const char *key_file, wh_tls_t **out);

/* Re-reads the files if either changed (inode, size, mtime, ctime). 0 unchanged, 1 reloaded,
 * -1 changed but unusable (the current pair stays; logged once per change). */
int wh_tls_reload_if_changed(wh_tls_t *tls);

/* Reloads now regardless of change; KCCL_OK or the load error (current pair kept). */
kccl_status_t wh_tls_reload(wh_tls_t *tls);

/* How many pairs were loaded so far (1 after create). */
unsigned wh_tls_generation(wh_tls_t *tls);

/* Makes tls the pair wh_tls_retrieve() serves; -1 when another one is active (destroy it
 * first). */
int wh_tls_activate(wh_tls_t *tls);

/* The GnuTLS callback (MHD_OPTION_HTTPS_CERT_CALLBACK). */
int wh_tls_retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn, int nreqs,
                    const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                    gnutls_pcert_st **pcert, unsigned int *pcert_length, gnutls_privkey_t *key);

void wh_tls_destroy(wh_tls_t *tls);

#endif
