/* identity.h - skiffd's TLS certificate and token-signing key, set up at start. */
#ifndef SKIFF_SKIFFD_IDENTITY_H
#define SKIFF_SKIFFD_IDENTITY_H

#include <openssl/evp.h>

#include "common/error.h"

#define MAX_HOST_NAMES 16

typedef struct
{
  char *cert; /* server certificate chain (PEM file) */
  char *key;  /* its private key */
  char *ca;   /* the local CA clients trust, or NULL when the certificate was given */
  EVP_PKEY *signing_key;
  char **names;     /* host names and addresses the API answers as (NULL-terminated) */
  char **audiences; /* accepted token audiences (NULL-terminated), after identity_audiences */
} identity_t;

/* Uses the given certificate and key, or makes sure <data>/pki holds a local CA and a server
 * certificate for localhost, this host's name, the loopback addresses, listen_addr and the extra
 * names; loads or creates <data>/keys/token-signing.pem. */
int identity_setup (const char *data, const char *listen_addr, const char *const *extra_names, const char *tls_cert,
                    const char *tls_key, identity_t *id, skiff_error_t *err);
/* Fills id->audiences for the bound port: Azure's management audiences and https://NAME:PORT/. */
void identity_audiences (identity_t *id, int port);
void identity_clear (identity_t *id);

#endif
