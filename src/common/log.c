/* log.c - leveled logging. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "util.h"

static enum skiff_log_level min_level = SKIFF_LOG_INFO;
static int level_checked;

void
skiff_log_set_level (enum skiff_log_level level)
{
  min_level = level;
  level_checked = 1;
}

void
skiff_log (enum skiff_log_level level, const char *fmt, ...)
{
  if (!level_checked)
    {
      const char *d = getenv ("SKIFF_DEBUG");
      if (d && *d && *d != '0')
        min_level = SKIFF_LOG_DEBUG;
      level_checked = 1;
    }
  if (level < min_level)
    return;
  static const char *names[] = { "debug", "info", "warn", "error" };
  char ts[40];
  char line[2048];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (line, sizeof (line), fmt, ap);
  va_end (ap);
  fprintf (stderr, "%s %s %s\n", skiff_format_time (skiff_now_ns (), ts, sizeof (ts)), names[level], line);
}
