/* logs.c - reads container logs written by skiff-monitor (CRI format lines:
 * "<RFC3339Nano> <stream> <F|P> <text>") and renders ACI's log content. */
#include <errno.h>
#include <string.h>

#include "agent.h"
#include "agent_internal.h"
#include "common/cleanup.h"
#include "common/util.h"

#define LOG_READ_CAP (64 * 1024 * 1024)
#define LOG_OUT_CAP (4 * 1024 * 1024)

typedef struct
{
  char **lines;
  size_t n, cap;
} lines_t;

static void
lines_push (lines_t *l, char *s)
{
  if (l->n == l->cap)
    {
      l->cap = l->cap ? l->cap * 2 : 256;
      l->lines = realloc (l->lines, l->cap * sizeof (char *));
      if (l->lines == NULL)
        abort ();
    }
  l->lines[l->n++] = s;
}

/* Parses one file's CRI lines into rendered lines, joining partial (P) records. */
static void
parse_cri (const char *buf, lines_t *out, int timestamps, char **pending, char **pending_ts)
{
  const char *p = buf;
  while (*p)
    {
      const char *eol = strchr (p, '\n');
      size_t len = eol ? (size_t)(eol - p) : strlen (p);
      const char *sp1 = memchr (p, ' ', len);
      const char *sp2 = sp1 ? memchr (sp1 + 1, ' ', len - (size_t)(sp1 + 1 - p)) : NULL;
      const char *sp3 = sp2 ? memchr (sp2 + 1, ' ', len - (size_t)(sp2 + 1 - p)) : NULL;
      if (sp1 && sp2 && sp3)
        {
          int partial = sp2[1] == 'P';
          size_t tlen = len - (size_t)(sp3 + 1 - p);
          char *piece = strndup (sp3 + 1, tlen);
          if (*pending)
            {
              char *j = skiff_strdup_printf ("%s%s", *pending, piece);
              free (*pending);
              free (piece);
              *pending = j;
            }
          else
            {
              *pending = piece;
              free (*pending_ts);
              *pending_ts = strndup (p, (size_t)(sp1 - p));
            }
          if (!partial)
            {
              if (timestamps)
                lines_push (out, skiff_strdup_printf ("%s %s", *pending_ts, *pending));
              else
                lines_push (out, skiff_strdup (*pending));
              free (*pending);
              *pending = NULL;
            }
        }
      p += len;
      if (*p == '\n')
        p++;
    }
}

int
agent_read_logs (agent_t *a, const char *group_id, const char *container, int tail, int timestamps, char **out,
                 skiff_error_t *err)
{
  if (a == NULL)
    {
      *out = skiff_strdup ("");
      return 0;
    }
  const char *data_dir = agent_data_dir (a);
  lines_t lines = { 0 };
  char *pending = NULL, *pending_ts = NULL;
  for (int rot = 1; rot >= 0; rot--)
    {
      cleanup_free char *path = rot ? skiff_strdup_printf ("%s/groups/%s/logs/%s.log.1", data_dir, group_id, container)
                                    : skiff_strdup_printf ("%s/groups/%s/logs/%s.log", data_dir, group_id, container);
      cleanup_free char *buf = NULL;
      skiff_error_t e = NULL;
      if (skiff_read_file (path, LOG_READ_CAP, &buf, NULL, &e) < 0)
        {
          skiff_error_release (&e);
          continue;
        }
      parse_cri (buf, &lines, timestamps, &pending, &pending_ts);
    }
  if (pending)
    {
      lines_push (&lines, timestamps ? skiff_strdup_printf ("%s %s", pending_ts, pending) : skiff_strdup (pending));
      free (pending);
    }
  free (pending_ts);
  size_t start = 0;
  if (tail >= 0 && (size_t)tail < lines.n)
    start = lines.n - (size_t)tail;
  /* cap the output at 4 MB, keeping the newest lines */
  size_t total = 0, first = lines.n;
  while (first > start && total + strlen (lines.lines[first - 1]) + 1 <= LOG_OUT_CAP)
    {
      total += strlen (lines.lines[first - 1]) + 1;
      first--;
    }
  char *res = malloc (total + 1);
  if (res == NULL)
    abort ();
  size_t off = 0;
  for (size_t i = first; i < lines.n; i++)
    {
      size_t l = strlen (lines.lines[i]);
      memcpy (res + off, lines.lines[i], l);
      off += l;
      res[off++] = '\n';
    }
  res[off] = '\0';
  for (size_t i = 0; i < lines.n; i++)
    free (lines.lines[i]);
  free (lines.lines);
  *out = res;
  (void)err;
  return 0;
}
