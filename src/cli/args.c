/* args.c - az-style flag parsing, KEY=VALUE pairs and shell-like word splitting. */
#include "cli/cli.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/util.h"

const struct cli_opt cli_global_opts[] = {
  { "output", "o", CLI_OPT_VALUE, "FORMAT", "Output format: json (default), jsonc, yaml, table, tsv, none." },
  { "subscription", NULL, CLI_OPT_VALUE, "ID", "Subscription id (default: $SKIFF_SUBSCRIPTION or the first one)." },
  { "help", "h", CLI_OPT_FLAG, NULL, "Show this help and exit." },
  { "debug", NULL, CLI_OPT_FLAG, NULL, "Print every HTTP request and its status to stderr." },
  { "only-show-errors", NULL, CLI_OPT_FLAG, NULL, "Accepted for az compatibility; ignored." },
  { "verbose", NULL, CLI_OPT_FLAG, NULL, "Accepted for az compatibility; ignored." },
  CLI_OPT_END,
};

int
cli_usage_error (skiff_error_t *err, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  char *m = NULL;
  if (vasprintf (&m, fmt, ap) < 0)
    m = NULL;
  va_end (ap);
  skiff_error_arm (err, 0, CLI_USAGE_CODE, "%s", m ? m : "invalid usage");
  free (m);
  return -1;
}

static size_t
count_opts (const struct cli_opt *o)
{
  size_t n = 0;
  while (o && o[n].longs)
    n++;
  return n;
}

/* True when `name` (length len) is one of the '|'-separated names in `longs`; with `prefix`,
 * also when it is a prefix of one. */
static bool
long_matches (const char *longs, const char *name, size_t len, bool prefix)
{
  const char *p = longs;
  while (*p)
    {
      const char *end = strchr (p, '|');
      size_t l = end ? (size_t)(end - p) : strlen (p);
      if (prefix ? (len <= l && strncmp (p, name, len) == 0) : (len == l && strncmp (p, name, len) == 0))
        return true;
      if (!end)
        break;
      p = end + 1;
    }
  return false;
}

static void
canonical_name (const struct cli_opt *o, char *buf, size_t len)
{
  const char *end = strchr (o->longs, '|');
  size_t l = end ? (size_t)(end - o->longs) : strlen (o->longs);
  if (l >= len)
    l = len - 1;
  memcpy (buf, o->longs, l);
  buf[l] = '\0';
}

/* Finds the option for "--name" (without dashes, up to len chars) or "-x". Sets *set to 0/1
 * (command/global). Returns the index or -1; -2 when a prefix is ambiguous. */
static int
find_opt (const struct cli_args *a, const char *name, size_t len, bool is_short, int *set)
{
  for (int pass = 0; pass < (is_short ? 1 : 2); pass++)
    {
      int found = -1, found_set = -1, hits = 0;
      for (int s = 0; s < 2; s++)
        for (size_t i = 0; a->opts[s] && a->opts[s][i].longs; i++)
          {
            const struct cli_opt *o = &a->opts[s][i];
            bool m;
            if (is_short)
              m = o->shorts && len == 1 && strchr (o->shorts, name[0]) != NULL;
            else
              m = long_matches (o->longs, name, len, pass == 1);
            if (m)
              {
                if (found < 0 || found != (int)i || found_set != s)
                  hits++;
                found = (int)i;
                found_set = s;
                if (pass == 0)
                  {
                    *set = s;
                    return found;
                  }
              }
          }
      if (hits == 1)
        {
          *set = found_set;
          return found;
        }
      if (hits > 1)
        return -2;
    }
  return -1;
}

static void
optval_push (struct cli_optval *v, const char *s)
{
  char **nv = realloc (v->v, (v->n + 2) * sizeof (char *));
  if (nv == NULL)
    abort ();
  v->v = nv;
  v->v[v->n++] = skiff_strdup (s);
  v->v[v->n] = NULL;
}

static void
optval_reset (struct cli_optval *v)
{
  skiff_strv_free (v->v);
  v->v = NULL;
  v->n = 0;
}

/* A word that starts a new option: "-x..." or "--x...", but not "-" or a negative number. */
static bool
looks_like_option (const char *w)
{
  if (w[0] != '-' || w[1] == '\0')
    return false;
  if (isdigit ((unsigned char)w[1]) || (w[1] == '.' && isdigit ((unsigned char)w[2])))
    return false;
  return true;
}

int
cli_args_parse (const struct cli_opt *opts, int argc, char **argv, struct cli_args *out, skiff_error_t *err)
{
  memset (out, 0, sizeof (*out));
  out->opts[0] = opts;
  out->opts[1] = cli_global_opts;
  for (int s = 0; s < 2; s++)
    {
      out->vals[s] = calloc (count_opts (out->opts[s]) + 1, sizeof (struct cli_optval));
      if (out->vals[s] == NULL)
        abort ();
    }

  for (int i = 0; i < argc; i++)
    {
      const char *w = argv[i];
      if (!looks_like_option (w))
        {
          cli_args_free (out);
          return cli_usage_error (err, "unrecognized arguments: %s", w);
        }
      bool is_short = w[1] != '-';
      const char *name = is_short ? w + 1 : w + 2;
      const char *eq = strchr (name, '=');
      size_t len = eq ? (size_t)(eq - name) : strlen (name);
      int set = 0;
      int idx = find_opt (out, name, len, is_short, &set);
      if (idx == -2)
        {
          cli_args_free (out);
          return cli_usage_error (err, "ambiguous option: %s", w);
        }
      if (idx < 0)
        {
          cli_args_free (out);
          return cli_usage_error (err, "unrecognized arguments: %s", w);
        }
      const struct cli_opt *o = &out->opts[set][idx];
      struct cli_optval *v = &out->vals[set][idx];
      char cname[64];
      canonical_name (o, cname, sizeof cname);
      switch (o->kind)
        {
        case CLI_OPT_FLAG:
          if (eq)
            {
              cli_args_free (out);
              return cli_usage_error (err, "argument --%s: takes no value", cname);
            }
          optval_reset (v);
          optval_push (v, "true");
          break;
        case CLI_OPT_VALUE:
          optval_reset (v);
          if (eq)
            optval_push (v, eq + 1);
          else if (i + 1 < argc)
            optval_push (v, argv[++i]);
          else
            {
              cli_args_free (out);
              return cli_usage_error (err, "argument --%s: expected one argument", cname);
            }
          break;
        case CLI_OPT_LIST:
          {
            size_t before = v->n;
            if (eq)
              optval_push (v, eq + 1);
            while (i + 1 < argc && !looks_like_option (argv[i + 1]))
              optval_push (v, argv[++i]);
            if (v->n == before)
              {
                cli_args_free (out);
                return cli_usage_error (err, "argument --%s: expected at least one argument", cname);
              }
          }
          break;
        }
    }
  return 0;
}

void
cli_args_free (struct cli_args *a)
{
  for (int s = 0; s < 2; s++)
    {
      if (a->vals[s] == NULL)
        continue;
      size_t n = count_opts (a->opts[s]);
      for (size_t i = 0; i < n; i++)
        optval_reset (&a->vals[s][i]);
      free (a->vals[s]);
      a->vals[s] = NULL;
    }
}

static const struct cli_optval *
lookup (const struct cli_args *a, const char *name)
{
  size_t len = strlen (name);
  for (int s = 0; s < 2; s++)
    for (size_t i = 0; a->opts[s] && a->opts[s][i].longs; i++)
      {
        const char *l = a->opts[s][i].longs;
        if (strncmp (l, name, len) == 0 && (l[len] == '\0' || l[len] == '|'))
          return a->vals[s] ? &a->vals[s][i] : NULL;
      }
  return NULL;
}

const char *
cli_arg (const struct cli_args *a, const char *name)
{
  const struct cli_optval *v = lookup (a, name);
  return v && v->n ? v->v[v->n - 1] : NULL;
}

bool
cli_has (const struct cli_args *a, const char *name)
{
  const struct cli_optval *v = lookup (a, name);
  return v && v->n > 0;
}

char **
cli_arg_list (const struct cli_args *a, const char *name, size_t *n)
{
  const struct cli_optval *v = lookup (a, name);
  *n = v ? v->n : 0;
  return v && v->n ? v->v : NULL;
}

/* Growable string for the splitter. */
struct sbuf
{
  char *s;
  size_t len, cap;
};

static void
sbuf_putc (struct sbuf *b, char c)
{
  if (b->len + 2 > b->cap)
    {
      b->cap = b->cap ? b->cap * 2 : 32;
      b->s = realloc (b->s, b->cap);
      if (b->s == NULL)
        abort ();
    }
  b->s[b->len++] = c;
  b->s[b->len] = '\0';
}

/* Makes sure the buffer holds a (possibly empty) string, so '' and "" give an empty word. */
static void
sbuf_touch (struct sbuf *b)
{
  if (b->s == NULL)
    {
      sbuf_putc (b, 'x');
      b->len = 0;
      b->s[0] = '\0';
    }
}

static void
strv_push_owned (char ***v, size_t *n, char *s)
{
  char **nv = realloc (*v, (*n + 2) * sizeof (char *));
  if (nv == NULL)
    abort ();
  *v = nv;
  (*v)[(*n)++] = s;
  (*v)[*n] = NULL;
}

int
cli_split_command_line (const char *s, char ***out, size_t *n, skiff_error_t *err)
{
  cleanup_strv char **words = calloc (1, sizeof (char *));
  size_t count = 0;
  struct sbuf cur = { 0 };
  bool in_word = false;
  if (words == NULL)
    abort ();

  for (const char *p = s; *p; p++)
    {
      char c = *p;
      if (c == ' ' || c == '\t' || c == '\n')
        {
          if (in_word)
            {
              strv_push_owned (&words, &count, cur.s ? cur.s : skiff_strdup (""));
              cur = (struct sbuf){ 0 };
              in_word = false;
            }
          continue;
        }
      in_word = true;
      if (c == '\\')
        {
          if (p[1] == '\0')
            break; /* a trailing backslash is dropped, as sh does at EOF */
          p++;
          if (*p != '\n') /* backslash-newline is a line continuation */
            sbuf_putc (&cur, *p);
          continue;
        }
      if (c == '\'')
        {
          const char *end = strchr (p + 1, '\'');
          if (end == NULL)
            {
              free (cur.s);
              return cli_usage_error (err, "--command-line: no closing quotation");
            }
          for (const char *q = p + 1; q < end; q++)
            sbuf_putc (&cur, *q);
          sbuf_touch (&cur);
          p = end;
          continue;
        }
      if (c == '"')
        {
          const char *q = p + 1;
          sbuf_touch (&cur);
          for (; *q && *q != '"'; q++)
            {
              if (*q == '\\' && q[1] && strchr ("\\\"$`\n", q[1]))
                {
                  q++;
                  if (*q != '\n')
                    sbuf_putc (&cur, *q);
                  continue;
                }
              sbuf_putc (&cur, *q);
            }
          if (*q != '"')
            {
              free (cur.s);
              return cli_usage_error (err, "--command-line: no closing quotation");
            }
          p = q;
          continue;
        }
      sbuf_putc (&cur, c);
    }
  if (in_word)
    strv_push_owned (&words, &count, cur.s ? cur.s : skiff_strdup (""));
  *n = count;
  *out = steal_pointer (&words);
  return 0;
}

int
cli_parse_kv (const char *s, char **key, char **value, skiff_error_t *err)
{
  const char *eq = strchr (s, '=');
  if (eq == NULL || eq == s)
    return cli_usage_error (err, "'%s' is not in KEY=VALUE form", s);
  *key = strndup (s, (size_t)(eq - s));
  if (*key == NULL)
    abort ();
  *value = skiff_strdup (eq + 1);
  return 0;
}

int
cli_parse_positive (const char *flag, const char *s, double *out, skiff_error_t *err)
{
  char *end = NULL;
  errno = 0;
  double d = strtod (s, &end);
  if (errno != 0 || end == s || *end != '\0' || !isfinite (d) || d <= 0)
    return cli_usage_error (err, "argument %s: invalid positive number: '%s'", flag, s);
  *out = d;
  return 0;
}
