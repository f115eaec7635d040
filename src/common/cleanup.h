/* cleanup.h - ownership helpers built on __attribute__((cleanup)).
 *
 * A variable declared `cleanup_free char *p = ...` is freed when it leaves scope;
 * `steal_pointer (&p)` hands ownership to the caller and leaves NULL behind.
 */
#ifndef SKIFF_COMMON_CLEANUP_H
#define SKIFF_COMMON_CLEANUP_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline void
skiff_freep (void *p)
{
  void **pp = (void **)p;
  free (*pp);
  *pp = NULL;
}

static inline void
skiff_closep (int *fd)
{
  if (*fd >= 0)
    close (*fd);
  *fd = -1;
}

static inline void
skiff_fclosep (FILE **f)
{
  if (*f)
    fclose (*f);
  *f = NULL;
}

static inline void
skiff_closedirp (DIR **d)
{
  if (*d)
    closedir (*d);
  *d = NULL;
}

/* Frees a NULL-terminated array of strings and the array itself. */
static inline void
skiff_strv_free (char **v)
{
  if (v == NULL)
    return;
  for (char **p = v; *p; p++)
    free (*p);
  free (v);
}

static inline void
skiff_strvp (char ***v)
{
  skiff_strv_free (*v);
  *v = NULL;
}

#define cleanup_free __attribute__ ((cleanup (skiff_freep)))
#define cleanup_close __attribute__ ((cleanup (skiff_closep)))
#define cleanup_file __attribute__ ((cleanup (skiff_fclosep)))
#define cleanup_dir __attribute__ ((cleanup (skiff_closedirp)))
#define cleanup_strv __attribute__ ((cleanup (skiff_strvp)))

/* Returns *pp and sets *pp to NULL: moves ownership out of a cleanup scope. */
static inline void *
skiff_steal_pointer (void *pp)
{
  void **p = (void **)pp;
  void *r = *p;
  *p = NULL;
  return r;
}
#define steal_pointer(pp) skiff_steal_pointer (pp)

/* Returns *fd and sets it to -1. */
static inline int
steal_fd (int *fd)
{
  int r = *fd;
  *fd = -1;
  return r;
}

#endif
