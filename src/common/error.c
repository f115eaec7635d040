/* error.c - implementation of the crun-style error values. */
#include "error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *
vformat (const char *fmt, va_list ap)
{
  char *s = NULL;
  if (vasprintf (&s, fmt, ap) < 0)
    return strdup ("(out of memory formatting error)");
  return s;
}

static struct skiff_error_s *
new_error (void)
{
  struct skiff_error_s *e = calloc (1, sizeof (*e));
  if (e == NULL)
    abort (); /* no sane way to report an allocation failure for the error itself */
  return e;
}

int
skiff_error_set (skiff_error_t *err, int status, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  char *m = vformat (fmt, ap);
  va_end (ap);
  if (err == NULL)
    {
      free (m);
      return status > 0 ? -status : -1;
    }
  skiff_error_release (err);
  struct skiff_error_s *e = new_error ();
  e->status = status;
  if (status > 0)
    {
      char *full = NULL;
      if (asprintf (&full, "%s: %s", m, strerror (status)) >= 0)
        {
          free (m);
          m = full;
        }
    }
  e->msg = m;
  *err = e;
  return status > 0 ? -status : -1;
}

static int
set_arm (skiff_error_t *err, int http_status, const char *code, const char *target, const char *fmt, va_list ap)
{
  char *m = vformat (fmt, ap);
  if (err == NULL)
    {
      free (m);
      return -1;
    }
  skiff_error_release (err);
  struct skiff_error_s *e = new_error ();
  e->http_status = http_status;
  e->code = code ? strdup (code) : NULL;
  e->target = target ? strdup (target) : NULL;
  e->msg = m;
  *err = e;
  return -1;
}

int
skiff_error_arm (skiff_error_t *err, int http_status, const char *code, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  int r = set_arm (err, http_status, code, NULL, fmt, ap);
  va_end (ap);
  return r;
}

int
skiff_error_arm_target (skiff_error_t *err, int http_status, const char *code, const char *target, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  int r = set_arm (err, http_status, code, target, fmt, ap);
  va_end (ap);
  return r;
}

int
skiff_error_wrap (skiff_error_t *err, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  char *ctx = vformat (fmt, ap);
  va_end (ap);
  if (err == NULL)
    {
      free (ctx);
      return -1;
    }
  if (*err == NULL)
    {
      struct skiff_error_s *e = new_error ();
      e->msg = ctx;
      *err = e;
      return -1;
    }
  char *full = NULL;
  if (asprintf (&full, "%s: %s", ctx, (*err)->msg ? (*err)->msg : "") >= 0)
    {
      free ((*err)->msg);
      (*err)->msg = full;
    }
  free (ctx);
  return -1;
}

void
skiff_error_release (skiff_error_t *err)
{
  if (err == NULL || *err == NULL)
    return;
  free ((*err)->msg);
  free ((*err)->code);
  free ((*err)->target);
  free (*err);
  *err = NULL;
}

int
skiff_error_http_status (skiff_error_t err)
{
  if (err == NULL || err->http_status == 0)
    return 500;
  return err->http_status;
}
