/* yaml.c - YAML <-> JSON for `container create --file` and `-o yaml` / `export`, with libyaml.
 *
 * Reading walks parser events (not the document API) so that it can tell an unquoted scalar,
 * which is resolved to null/bool/number, from a quoted or !!str-tagged one, which stays a string.
 */
#include "cli/cli.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "common/cleanup.h"
#include "common/jsonutil.h"
#include "common/util.h"

#define YAML_MAX_DEPTH 128
#define YAML_MAX_ANCHORS 4096

struct anchor
{
  char *name;
  json_t *value;
};

struct reader
{
  yaml_parser_t parser;
  struct anchor *anchors;
  size_t n_anchors;
};

static bool
all_match (const char *s, const char *set)
{
  if (*s == '\0')
    return false;
  for (; *s; s++)
    if (strchr (set, *s) == NULL)
      return false;
  return true;
}

/* Resolves an unquoted scalar with the YAML 1.2 core schema. Returns a new JSON value. */
static json_t *
resolve_plain (const char *s)
{
  if (*s == '\0' || strcmp (s, "~") == 0 || strcmp (s, "null") == 0 || strcmp (s, "Null") == 0
      || strcmp (s, "NULL") == 0)
    return json_null ();
  if (strcmp (s, "true") == 0 || strcmp (s, "True") == 0 || strcmp (s, "TRUE") == 0)
    return json_true ();
  if (strcmp (s, "false") == 0 || strcmp (s, "False") == 0 || strcmp (s, "FALSE") == 0)
    return json_false ();

  const char *p = s;
  if (*p == '-' || *p == '+')
    p++;
  char *end = NULL;
  if ((p[0] == '0' && (p[1] == 'x' || p[1] == 'o')) && p == s)
    {
      int base = p[1] == 'x' ? 16 : 8;
      if (all_match (p + 2, base == 16 ? "0123456789abcdefABCDEF" : "01234567"))
        {
          errno = 0;
          unsigned long long v = strtoull (p + 2, &end, base);
          if (errno == 0 && *end == '\0' && v <= (unsigned long long)INT64_MAX)
            return json_integer ((json_int_t)v);
        }
      return json_string (s);
    }
  if (all_match (p, "0123456789"))
    {
      errno = 0;
      long long v = strtoll (s, &end, 10);
      if (errno == 0 && *end == '\0')
        return json_integer (v);
      return json_real (strtod (s, NULL));
    }
  /* float: [-+]? ( \.[0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )? */
  const char *q = p;
  size_t digits = 0;
  while (isdigit ((unsigned char)*q))
    q++, digits++;
  if (*q == '.')
    {
      q++;
      while (isdigit ((unsigned char)*q))
        q++, digits++;
    }
  if (digits > 0 && (*q == 'e' || *q == 'E'))
    {
      q++;
      if (*q == '-' || *q == '+')
        q++;
      if (!isdigit ((unsigned char)*q))
        return json_string (s);
      while (isdigit ((unsigned char)*q))
        q++;
    }
  if (digits > 0 && *q == '\0')
    return json_real (strtod (s, NULL));
  return json_string (s);
}

static int
parser_error (struct reader *r, skiff_error_t *err)
{
  const char *problem = r->parser.problem ? r->parser.problem : "syntax error";
  return cli_usage_error (err, "invalid YAML at line %zu, column %zu: %s", r->parser.problem_mark.line + 1,
                          r->parser.problem_mark.column + 1, problem);
}

static int
next_event (struct reader *r, yaml_event_t *ev, skiff_error_t *err)
{
  if (!yaml_parser_parse (&r->parser, ev))
    return parser_error (r, err);
  return 0;
}

static void
remember_anchor (struct reader *r, const yaml_char_t *anchor, json_t *value)
{
  if (anchor == NULL || r->n_anchors >= YAML_MAX_ANCHORS)
    return;
  struct anchor *na = realloc (r->anchors, (r->n_anchors + 1) * sizeof (*na));
  if (na == NULL)
    abort ();
  r->anchors = na;
  r->anchors[r->n_anchors].name = skiff_strdup ((const char *)anchor);
  r->anchors[r->n_anchors].value = json_incref (value);
  r->n_anchors++;
}

static json_t *
scalar_to_json (const yaml_event_t *ev, skiff_error_t *err)
{
  const char *s = (const char *)ev->data.scalar.value;
  const char *tag = (const char *)ev->data.scalar.tag;
  if (tag && strncmp (tag, "tag:yaml.org,2002:", 18) == 0)
    {
      const char *t = tag + 18;
      if (strcmp (t, "str") == 0)
        return json_string (s);
      json_t *v = resolve_plain (s);
      bool ok = (strcmp (t, "int") == 0 && json_is_integer (v)) || (strcmp (t, "float") == 0 && json_is_number (v))
                || (strcmp (t, "bool") == 0 && json_is_boolean (v)) || (strcmp (t, "null") == 0 && json_is_null (v));
      if (ok)
        {
          if (strcmp (t, "float") == 0 && json_is_integer (v))
            {
              json_t *r = json_real ((double)json_integer_value (v));
              json_decref (v);
              return r;
            }
          return v;
        }
      json_decref (v);
      if (strcmp (t, "int") == 0 || strcmp (t, "float") == 0 || strcmp (t, "bool") == 0 || strcmp (t, "null") == 0)
        {
          cli_usage_error (err, "invalid YAML at line %zu: '%s' is not a valid !!%s", ev->start_mark.line + 1, s, t);
          return NULL;
        }
      return json_string (s);
    }
  if (ev->data.scalar.plain_implicit && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
    return resolve_plain (s);
  return json_string (s);
}

/* Converts the node that starts with *ev (already parsed, owned by the caller) into *out. */
static int
read_node (struct reader *r, yaml_event_t *ev, int depth, json_t **out, skiff_error_t *err)
{
  if (depth > YAML_MAX_DEPTH)
    return cli_usage_error (err, "YAML nested too deeply");
  switch (ev->type)
    {
    case YAML_SCALAR_EVENT:
      {
        json_t *v = scalar_to_json (ev, err);
        if (v == NULL)
          return -1;
        remember_anchor (r, ev->data.scalar.anchor, v);
        *out = v;
        return 0;
      }
    case YAML_ALIAS_EVENT:
      for (size_t i = r->n_anchors; i-- > 0;)
        if (strcmp (r->anchors[i].name, (const char *)ev->data.alias.anchor) == 0)
          {
            *out = json_deep_copy (r->anchors[i].value);
            return 0;
          }
      return cli_usage_error (err, "invalid YAML at line %zu: unknown alias '%s'", ev->start_mark.line + 1,
                              (const char *)ev->data.alias.anchor);
    case YAML_SEQUENCE_START_EVENT:
      {
        cleanup_json json_t *arr = json_array ();
        for (;;)
          {
            yaml_event_t child;
            if (next_event (r, &child, err) < 0)
              return -1;
            if (child.type == YAML_SEQUENCE_END_EVENT)
              {
                yaml_event_delete (&child);
                break;
              }
            json_t *item = NULL;
            int rc = read_node (r, &child, depth + 1, &item, err);
            yaml_event_delete (&child);
            if (rc < 0)
              return -1;
            json_array_append_new (arr, item);
          }
        remember_anchor (r, ev->data.sequence_start.anchor, arr);
        *out = steal_pointer (&arr);
        return 0;
      }
    case YAML_MAPPING_START_EVENT:
      {
        cleanup_json json_t *obj = json_object ();
        for (;;)
          {
            yaml_event_t kev;
            if (next_event (r, &kev, err) < 0)
              return -1;
            if (kev.type == YAML_MAPPING_END_EVENT)
              {
                yaml_event_delete (&kev);
                break;
              }
            cleanup_free char *key = NULL;
            if (kev.type == YAML_SCALAR_EVENT)
              key = skiff_strdup ((const char *)kev.data.scalar.value);
            else
              {
                size_t line = kev.start_mark.line + 1;
                yaml_event_delete (&kev);
                return cli_usage_error (err, "invalid YAML at line %zu: mapping keys must be scalars", line);
              }
            yaml_event_delete (&kev);
            yaml_event_t vev;
            if (next_event (r, &vev, err) < 0)
              return -1;
            json_t *val = NULL;
            int rc = read_node (r, &vev, depth + 1, &val, err);
            yaml_event_delete (&vev);
            if (rc < 0)
              return -1;
            json_object_set_new (obj, key, val);
          }
        remember_anchor (r, ev->data.mapping_start.anchor, obj);
        *out = steal_pointer (&obj);
        return 0;
      }
    default:
      return cli_usage_error (err, "invalid YAML: unexpected event at line %zu", ev->start_mark.line + 1);
    }
}

int
cli_yaml_to_json (const char *text, size_t len, json_t **out, skiff_error_t *err)
{
  struct reader r = { 0 };
  int ret = -1;
  json_t *result = NULL;
  if (!yaml_parser_initialize (&r.parser))
    return skiff_error_set (err, ENOMEM, "cannot initialise the YAML parser");
  yaml_parser_set_input_string (&r.parser, (const unsigned char *)text, len);

  /* STREAM-START, then DOCUMENT-START (or STREAM-END for an empty file). */
  for (;;)
    {
      yaml_event_t ev;
      if (next_event (&r, &ev, err) < 0)
        goto out;
      yaml_event_type_t t = ev.type;
      if (t == YAML_STREAM_START_EVENT || t == YAML_DOCUMENT_START_EVENT)
        {
          yaml_event_delete (&ev);
          continue;
        }
      if (t == YAML_STREAM_END_EVENT || t == YAML_DOCUMENT_END_EVENT)
        {
          yaml_event_delete (&ev);
          cli_usage_error (err, "the YAML file is empty");
          goto out;
        }
      int rc = read_node (&r, &ev, 0, &result, err);
      yaml_event_delete (&ev);
      if (rc < 0)
        goto out;
      break;
    }
  *out = result;
  result = NULL;
  ret = 0;
out:
  if (result)
    json_decref (result);
  for (size_t i = 0; i < r.n_anchors; i++)
    {
      free (r.anchors[i].name);
      json_decref (r.anchors[i].value);
    }
  free (r.anchors);
  yaml_parser_delete (&r.parser);
  return ret;
}

/* ------------------------------------------------------------------ emitting */

struct outbuf
{
  char *s;
  size_t len;
};

static int
write_handler (void *data, unsigned char *buffer, size_t size)
{
  struct outbuf *b = data;
  char *ns = realloc (b->s, b->len + size + 1);
  if (ns == NULL)
    return 0;
  b->s = ns;
  memcpy (b->s + b->len, buffer, size);
  b->len += size;
  b->s[b->len] = '\0';
  return 1;
}

/* True when `s` written plain would read back as something other than this string, here or in a
 * YAML 1.1 reader such as PyYAML (yes/no/on/off, 1_000, ...). */
static bool
needs_quotes (const char *s)
{
  static const char *const words[]
      = { "y",   "Y",   "yes", "Yes", "YES", "n",    "N",    "no",   "No",    "NO",    "on",   "On",   "ON",
          "off", "Off", "OFF", "=",   "<<",  ".inf", ".Inf", ".INF", "-.inf", "+.inf", ".nan", ".NaN", ".NAN" };
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
    if (strcmp (s, words[i]) == 0)
      return true;
  json_t *v = resolve_plain (s);
  bool q = !json_is_string (v);
  json_decref (v);
  if (q)
    return true;
  /* 1.1 sexagesimal / underscore numbers and the like: digits with _ or : */
  if (isdigit ((unsigned char)s[0]) || ((s[0] == '-' || s[0] == '+' || s[0] == '.') && isdigit ((unsigned char)s[1])))
    return all_match (s, "0123456789_:.+-eExXoOabcdefABCDEF");
  return false;
}

static int
emit (yaml_emitter_t *e, yaml_event_t *ev, skiff_error_t *err)
{
  if (!yaml_emitter_emit (e, ev))
    return skiff_error_set (err, 0, "YAML emitter: %s", e->problem ? e->problem : "error");
  return 0;
}

static int
emit_scalar (yaml_emitter_t *e, const char *s, yaml_scalar_style_t style, skiff_error_t *err)
{
  yaml_event_t ev;
  if (!yaml_scalar_event_initialize (&ev, NULL, NULL, (yaml_char_t *)s, (int)strlen (s), 1, 1, style))
    return skiff_error_set (err, ENOMEM, "YAML emitter: cannot create a scalar");
  return emit (e, &ev, err);
}

static int
emit_string (yaml_emitter_t *e, const char *s, skiff_error_t *err)
{
  yaml_scalar_style_t style = YAML_ANY_SCALAR_STYLE;
  if (needs_quotes (s))
    style = YAML_SINGLE_QUOTED_SCALAR_STYLE;
  else if (strchr (s, '\n'))
    style = YAML_LITERAL_SCALAR_STYLE;
  return emit_scalar (e, s, style, err);
}

static int
cmp_str (const void *a, const void *b)
{
  return strcmp (*(const char *const *)a, *(const char *const *)b);
}

static int
emit_value (yaml_emitter_t *e, json_t *v, int depth, skiff_error_t *err)
{
  yaml_event_t ev;
  char buf[64];
  if (depth > YAML_MAX_DEPTH)
    return skiff_error_set (err, 0, "value nested too deeply for YAML");
  switch (json_typeof (v))
    {
    case JSON_OBJECT:
      {
        size_t n = json_object_size (v);
        yaml_mapping_start_event_initialize (&ev, NULL, NULL, 1,
                                             n ? YAML_BLOCK_MAPPING_STYLE : YAML_FLOW_MAPPING_STYLE);
        if (emit (e, &ev, err) < 0)
          return -1;
        cleanup_free const char **keys = calloc (n + 1, sizeof (char *));
        if (keys == NULL)
          abort ();
        size_t i = 0;
        const char *k;
        json_t *val;
        json_object_foreach (v, k, val) keys[i++] = k;
        qsort (keys, n, sizeof (char *), cmp_str);
        for (i = 0; i < n; i++)
          {
            if (emit_string (e, keys[i], err) < 0 || emit_value (e, json_object_get (v, keys[i]), depth + 1, err) < 0)
              return -1;
          }
        yaml_mapping_end_event_initialize (&ev);
        return emit (e, &ev, err);
      }
    case JSON_ARRAY:
      {
        size_t n = json_array_size (v);
        yaml_sequence_start_event_initialize (&ev, NULL, NULL, 1,
                                              n ? YAML_BLOCK_SEQUENCE_STYLE : YAML_FLOW_SEQUENCE_STYLE);
        if (emit (e, &ev, err) < 0)
          return -1;
        for (size_t i = 0; i < n; i++)
          if (emit_value (e, json_array_get (v, i), depth + 1, err) < 0)
            return -1;
        yaml_sequence_end_event_initialize (&ev);
        return emit (e, &ev, err);
      }
    case JSON_STRING:
      return emit_string (e, json_string_value (v), err);
    case JSON_INTEGER:
      snprintf (buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value (v));
      return emit_scalar (e, buf, YAML_PLAIN_SCALAR_STYLE, err);
    case JSON_REAL:
      snprintf (buf, sizeof buf, "%.15g", json_real_value (v));
      if (strpbrk (buf, ".eEn") == NULL)
        strcat (buf, ".0");
      return emit_scalar (e, buf, YAML_PLAIN_SCALAR_STYLE, err);
    case JSON_TRUE:
      return emit_scalar (e, "true", YAML_PLAIN_SCALAR_STYLE, err);
    case JSON_FALSE:
      return emit_scalar (e, "false", YAML_PLAIN_SCALAR_STYLE, err);
    case JSON_NULL:
    default:
      return emit_scalar (e, "null", YAML_PLAIN_SCALAR_STYLE, err);
    }
}

int
cli_json_to_yaml (json_t *value, char **out, skiff_error_t *err)
{
  yaml_emitter_t e;
  yaml_event_t ev;
  struct outbuf b = { 0 };
  int ret = -1;
  if (!yaml_emitter_initialize (&e))
    return skiff_error_set (err, ENOMEM, "cannot initialise the YAML emitter");
  yaml_emitter_set_output (&e, write_handler, &b);
  yaml_emitter_set_unicode (&e, 1);
  yaml_emitter_set_width (&e, 4096);
  yaml_emitter_set_indent (&e, 2);

  yaml_stream_start_event_initialize (&ev, YAML_UTF8_ENCODING);
  if (emit (&e, &ev, err) < 0)
    goto out;
  yaml_document_start_event_initialize (&ev, NULL, NULL, NULL, 1);
  if (emit (&e, &ev, err) < 0)
    goto out;
  if (emit_value (&e, value, 0, err) < 0)
    goto out;
  yaml_document_end_event_initialize (&ev, 1);
  if (emit (&e, &ev, err) < 0)
    goto out;
  yaml_stream_end_event_initialize (&ev);
  if (emit (&e, &ev, err) < 0)
    goto out;
  if (!yaml_emitter_flush (&e))
    {
      skiff_error_set (err, 0, "YAML emitter: cannot flush");
      goto out;
    }
  *out = b.s ? b.s : skiff_strdup ("");
  b.s = NULL;
  ret = 0;
out:
  free (b.s);
  yaml_emitter_delete (&e);
  return ret;
}
