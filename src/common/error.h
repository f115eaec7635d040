/* error.h - crun-style error values for skiff.
 *
 * Fallible functions take `skiff_error_t *err` as their last argument, return a
 * negative value on failure and fill *err with an errno-style status, an optional
 * ARM error code / HTTP status (for errors meant for API clients) and a message.
 * Callers either handle the error and release it, or wrap it with their own
 * context and return it upward.
 */
#ifndef SKIFF_COMMON_ERROR_H
#define SKIFF_COMMON_ERROR_H

#include <stdarg.h>

struct skiff_error_s
{
  int status;      /* errno value, 0 when not a system error */
  int http_status; /* HTTP status for API errors, 0 when unset (500 is used) */
  char *code;      /* ARM error code such as "InvalidOsType", NULL when unset */
  char *target;    /* the property the error is about, NULL when unset */
  char *msg;       /* human readable message, never NULL once set */
};
typedef struct skiff_error_s *skiff_error_t;

/* Sets *err to a new error with errno status `status` and a printf-style message.
 * When status is non-zero, ": strerror(status)" is appended. Returns -1 (or
 * -status when status > 0) so callers can `return skiff_error_set(...)`. */
int skiff_error_set (skiff_error_t *err, int status, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));

/* Sets *err to an API error: HTTP status, ARM code, message. Returns -1. */
int skiff_error_arm (skiff_error_t *err, int http_status, const char *code, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));

/* Like skiff_error_arm but also records the offending property path in target. */
int skiff_error_arm_target (skiff_error_t *err, int http_status, const char *code, const char *target, const char *fmt,
                            ...) __attribute__ ((format (printf, 5, 6)));

/* Prefixes the message of an existing error with "<context>: ". Keeps status and code.
 * Returns -1 (so it can be returned directly). If *err is NULL, behaves like set. */
int skiff_error_wrap (skiff_error_t *err, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

/* Frees the error and sets *err to NULL. Safe on NULL. */
void skiff_error_release (skiff_error_t *err);

/* Returns the HTTP status an error should be reported with (500 when unset). */
int skiff_error_http_status (skiff_error_t err);

#define cleanup_error __attribute__ ((cleanup (skiff_error_release)))

#endif
