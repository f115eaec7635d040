/* output.c - `-o json|jsonc|yaml|table|tsv|none` printing and error reporting, shaped like az's. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/cleanup.h"
#include "common/jsonutil.h"
#include "common/util.h"

int
cli_output_parse (const char *s, enum cli_output_format *fmt, skiff_error_t *err)
{
  static const struct
  {
    const char *name;
    enum cli_output_format fmt;
  } names[] = {
    { "json", CLI_OUT_JSON },   { "jsonc", CLI_OUT_JSONC }, { "yaml", CLI_OUT_YAML }, { "yamlc", CLI_OUT_YAML },
    { "table", CLI_OUT_TABLE }, { "tsv", CLI_OUT_TSV },     { "none", CLI_OUT_NONE },
  };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcmp (s, names[i].name) == 0)
      {
        *fmt = names[i].fmt;
        return 0;
      }
  return cli_usage_error (err,
                          "argument --output/-o: invalid choice: '%s' (choose from 'json', 'jsonc', 'none', "
                          "'table', 'tsv', 'yaml', 'yamlc')",
                          s);
}

char *
cli_rg_from_id (const char *id)
{
  if (id == NULL)
    return NULL;
  const char *p = id;
  while ((p = strchr (p, '/')) != NULL)
    {
      p++;
      if (strncasecmp (p, "resourceGroups/", 15) == 0)
        {
          const char *s = p + 15;
          const char *e = strchr (s, '/');
          return e ? strndup (s, (size_t)(e - s)) : skiff_strdup (s);
        }
    }
  return NULL;
}

/* A scalar as text: strings as is, numbers, True/False like az's tsv, "" for null; NULL for
 * objects and arrays. */
static char *
scalar_text (json_t *v)
{
  switch (json_typeof (v))
    {
    case JSON_STRING:
      return skiff_strdup (json_string_value (v));
    case JSON_INTEGER:
      return skiff_strdup_printf ("%" JSON_INTEGER_FORMAT, json_integer_value (v));
    case JSON_REAL:
      {
        char *s = skiff_strdup_printf ("%.15g", json_real_value (v));
        if (strpbrk (s, ".eEn") == NULL)
          {
            char *t = skiff_strdup_printf ("%s.0", s);
            free (s);
            s = t;
          }
        return s;
      }
    case JSON_TRUE:
      return skiff_strdup ("True");
    case JSON_FALSE:
      return skiff_strdup ("False");
    case JSON_NULL:
      return skiff_strdup ("");
    default:
      return NULL;
    }
}

static int
cmp_str (const void *a, const void *b)
{
  return strcmp (*(const char *const *)a, *(const char *const *)b);
}

/* Sorted keys of obj whose values are scalars. NULL-terminated, borrowed strings. */
static const char **
scalar_keys (json_t *obj, size_t *n)
{
  const char **keys = calloc (json_object_size (obj) + 1, sizeof (char *));
  if (keys == NULL)
    abort ();
  size_t i = 0;
  const char *k;
  json_t *v;
  json_object_foreach (obj, k, v)
  {
    if (!json_is_object (v) && !json_is_array (v))
      keys[i++] = k;
  }
  qsort (keys, i, sizeof (char *), cmp_str);
  *n = i;
  return keys;
}

char *
cli_format_table (const char *const *headers, size_t ncols, char ***rows, size_t nrows)
{
  cleanup_free size_t *width = calloc (ncols + 1, sizeof (size_t));
  if (width == NULL)
    abort ();
  for (size_t c = 0; c < ncols; c++)
    {
      width[c] = strlen (headers[c]);
      for (size_t r = 0; r < nrows; r++)
        if (rows[r][c] && strlen (rows[r][c]) > width[c])
          width[c] = strlen (rows[r][c]);
    }
  char *out = NULL;
  size_t len = 0;
  FILE *f = open_memstream (&out, &len);
  if (f == NULL)
    abort ();
  /* headers, rule, rows; the last column is not padded (no trailing blanks) */
  for (size_t r = 0; r < nrows + 2; r++)
    {
      for (size_t c = 0; c < ncols; c++)
        {
          bool last = c + 1 == ncols;
          if (r == 1)
            {
              for (size_t i = 0; i < width[c]; i++)
                fputc ('-', f);
              if (!last)
                fputs ("  ", f);
              continue;
            }
          const char *cell = r == 0 ? headers[c] : rows[r - 2][c];
          if (cell == NULL)
            cell = "";
          if (last)
            fputs (cell, f);
          else
            fprintf (f, "%-*s  ", (int)width[c], cell);
        }
      fputc ('\n', f);
    }
  fclose (f);
  return out;
}

static void
free_rows (char ***rows, size_t nrows, size_t ncols)
{
  for (size_t r = 0; r < nrows; r++)
    {
      for (size_t c = 0; c < ncols; c++)
        free (rows[r][c]);
      free (rows[r]);
    }
  free (rows);
}

static int
print_table (FILE *out, json_t *value, const struct cli_column *cols, size_t ncols)
{
  cleanup_json json_t *items = NULL;
  if (json_is_array (value))
    items = json_incref (value);
  else
    {
      items = json_array ();
      json_array_append (items, value);
    }
  size_t nrows = json_array_size (items);
  if (nrows == 0)
    return 0;

  cleanup_free const char **keys = NULL;
  cleanup_free const char **headers = NULL;
  if (cols == NULL)
    {
      json_t *first = json_array_get (items, 0);
      if (!json_is_object (first))
        {
          /* a list of scalars: one column, no header, like az */
          for (size_t r = 0; r < nrows; r++)
            {
              cleanup_free char *s = scalar_text (json_array_get (items, r));
              fprintf (out, "%s\n", s ? s : "");
            }
          return 0;
        }
      keys = scalar_keys (first, &ncols);
      headers = calloc (ncols + 1, sizeof (char *));
      if (headers == NULL)
        abort ();
      for (size_t c = 0; c < ncols; c++)
        {
          /* az capitalises the first letter of generated headers */
          char *h = skiff_strdup (keys[c]);
          if (h[0] >= 'a' && h[0] <= 'z')
            h[0] = (char)(h[0] - 'a' + 'A');
          headers[c] = h;
        }
    }
  else
    {
      headers = calloc (ncols + 1, sizeof (char *));
      if (headers == NULL)
        abort ();
      for (size_t c = 0; c < ncols; c++)
        headers[c] = cols[c].header;
    }

  char ***rows = calloc (nrows, sizeof (char **));
  if (rows == NULL)
    abort ();
  for (size_t r = 0; r < nrows; r++)
    {
      json_t *item = json_array_get (items, r);
      rows[r] = calloc (ncols + 1, sizeof (char *));
      if (rows[r] == NULL)
        abort ();
      for (size_t c = 0; c < ncols; c++)
        rows[r][c] = cols ? cols[c].cell (item) : scalar_text (json_object_get (item, keys[c]));
    }
  cleanup_free char *text = cli_format_table (headers, ncols, rows, nrows);
  free_rows (rows, nrows, ncols);
  if (cols == NULL)
    for (size_t c = 0; c < ncols; c++)
      free ((char *)headers[c]);
  fputs (text, out);
  return 0;
}

static void
tsv_row (FILE *out, json_t *v)
{
  if (json_is_object (v))
    {
      size_t n = 0;
      cleanup_free const char **keys = scalar_keys (v, &n);
      for (size_t i = 0; i < n; i++)
        {
          cleanup_free char *s = scalar_text (json_object_get (v, keys[i]));
          fprintf (out, "%s%s", i ? "\t" : "", s ? s : "");
        }
      fputc ('\n', out);
      return;
    }
  if (json_is_array (v))
    {
      for (size_t i = 0; i < json_array_size (v); i++)
        {
          cleanup_free char *s = scalar_text (json_array_get (v, i));
          fprintf (out, "%s%s", i ? "\t" : "", s ? s : "");
        }
      fputc ('\n', out);
      return;
    }
  cleanup_free char *s = scalar_text (v);
  fprintf (out, "%s\n", s ? s : "");
}

int
cli_print (FILE *out, json_t *value, enum cli_output_format fmt, const struct cli_column *cols, size_t ncols,
           skiff_error_t *err)
{
  if (value == NULL)
    return 0;
  switch (fmt)
    {
    case CLI_OUT_NONE:
      return 0;
    case CLI_OUT_JSON:
    case CLI_OUT_JSONC:
      {
        cleanup_free char *s
            = json_dumps (value, JSON_INDENT (2) | JSON_SORT_KEYS | JSON_ENCODE_ANY | JSON_REAL_PRECISION (15));
        if (s == NULL)
          return skiff_error_set (err, 0, "cannot encode the result as JSON");
        fprintf (out, "%s\n", s);
        return 0;
      }
    case CLI_OUT_YAML:
      {
        cleanup_free char *s = NULL;
        if (cli_json_to_yaml (value, &s, err) < 0)
          return -1;
        fputs (s, out);
        return 0;
      }
    case CLI_OUT_TABLE:
      return print_table (out, value, cols, ncols);
    case CLI_OUT_TSV:
      if (json_is_array (value))
        for (size_t i = 0; i < json_array_size (value); i++)
          tsv_row (out, json_array_get (value, i));
      else
        tsv_row (out, value);
      return 0;
    }
  return 0;
}

int
cli_report_error (skiff_error_t e)
{
  if (e == NULL)
    return CLI_EXIT_ERROR;
  if (e->code && strcmp (e->code, CLI_USAGE_CODE) == 0)
    {
      fprintf (stderr, "ERROR: %s\n", e->msg);
      return CLI_EXIT_USAGE;
    }
  if (e->code)
    fprintf (stderr, "ERROR: (%s) %s\n", e->code, e->msg);
  else
    fprintf (stderr, "ERROR: %s\n", e->msg);
  if (e->target)
    fprintf (stderr, "Target: %s\n", e->target);
  bool missing
      = e->http_status == 404
        || (e->code && (strcmp (e->code, "ResourceNotFound") == 0 || strcmp (e->code, "ResourceGroupNotFound") == 0));
  return missing ? CLI_EXIT_NOT_FOUND : CLI_EXIT_ERROR;
}
