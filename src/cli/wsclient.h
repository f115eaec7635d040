/* wsclient.h - the CLI's WebSocket client for `skiff container exec|attach` (RFC 6455, client side).
 *
 * The opening handshake is written and checked here (Sec-WebSocket-Accept included); wslay does the
 * framing (masked client frames, close handshake, control frames) and OpenSSL the TLS. A session
 * sends the password as its first TEXT frame, then the bytes read from an input descriptor as
 * BINARY frames, and writes the payload of every TEXT or BINARY frame it receives to an output
 * descriptor until the server closes the stream. */
#ifndef SKIFF_CLI_WSCLIENT_H
#define SKIFF_CLI_WSCLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

/* Largest message accepted from the server (bigger ones end the session with close code 1009). */
#define WS_MAX_MESSAGE (1u << 20)
/* Largest frame sent: input is forwarded in chunks of at most this many bytes. */
#define WS_MAX_SEND_FRAME (64u * 1024)

/* Where to connect and what to ask for. */
struct ws_target
{
  const char *unix_path;   /* connect to this unix socket (plain HTTP) when not NULL */
  const char *host;        /* TCP host name or IP literal (without brackets), used when unix_path is NULL */
  int port;                /* TCP port */
  bool tls;                /* wrap the TCP connection in TLS, verifying the server against ca_bundle */
  const char *ca_bundle;   /* PEM CA file, or NULL for the system store */
  const char *host_header; /* value of the Host header (and, with tls, the name checked in the certificate
                            * is `host`) */
  const char *path;        /* request target, such as "/skiff/sessions/abc?x=1" */
};

/* One session's input and output. */
struct ws_session
{
  const char *password; /* sent as the first TEXT frame (may be empty, never NULL) */
  int in_fd;            /* forwarded as BINARY frames until EOF; -1: nothing is sent after the password */
  int out_fd;           /* receives every TEXT/BINARY payload */
};

/* Splits a URL "scheme://host[:port][/path...]" into its parts. *scheme, *host (brackets of an
 * IPv6 literal removed), *authority (host[:port] as written) and *path (at least "/") are malloc'd;
 * *port is the explicit port or the scheme's default (80 for http/ws, 443 for https/wss).
 * Fails on other schemes, an empty host or a bad port. */
int ws_parse_url (const char *url, char **scheme, char **host, char **authority, int *port, char **path,
                  skiff_error_t *err);

/* Computes the Sec-WebSocket-Accept value for a Sec-WebSocket-Key (base64 of SHA-1 of key and
 * the RFC 6455 GUID) into out (at least 29 bytes). */
void ws_accept_for_key (const char *key, char out[29]);

/* Connects to t, performs the opening handshake (fails with the server's status and error body
 * when it does not answer 101 with a valid Sec-WebSocket-Accept), then runs the session s until
 * the server closes it. EOF on s->in_fd stops forwarding only: the session keeps reading until
 * the server closes. Returns 0 when the server ends the session with a close frame of status
 * 1000, 1001 or none, or by closing the connection; fails on other close codes, transport and
 * TLS errors. A write to a closed output pipe fails with (*err)->status == EPIPE, so the caller
 * can end quietly like any filter. SIGPIPE is ignored while the session runs and restored after. */
int ws_run (const struct ws_target *t, const struct ws_session *s, skiff_error_t *err);

#endif
