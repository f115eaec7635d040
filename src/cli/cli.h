/* cli.h - the whole internal surface of the `skiff` command (an `az container` look-alike).
 *
 * Layout: main.c (dispatch, help, global flags), args.c (flag parsing, KEY=VALUE, shell-like
 * splitting), http.c (one keep-alive libcurl handle, transport/token/subscription discovery,
 * ARM error bodies), yaml.c (YAML <-> JSON with libyaml), output.c (-o json|yaml|table|tsv),
 * wsclient.c (the WebSocket client of exec and attach), container.c, group.c, sp.c and role.c
 * (the verbs).
 */
#ifndef SKIFF_CLI_CLI_H
#define SKIFF_CLI_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "common/error.h"

#ifndef SKIFF_VERSION
#define SKIFF_VERSION "0.1.0"
#endif

/* Exit statuses, as az uses them: 1 any failure, 2 bad usage, 3 resource not found. */
enum
{
  CLI_EXIT_OK = 0,
  CLI_EXIT_ERROR = 1,
  CLI_EXIT_USAGE = 2,
  CLI_EXIT_NOT_FOUND = 3,
};

/* ARM code put on errors that are about the command line itself (exit 2, printed without code). */
#define CLI_USAGE_CODE "skiff.Usage"

/* Api versions used by the client. */
#define CLI_API_ACI "2023-05-01"
#define CLI_API_RG "2021-04-01"
#define CLI_API_SUBS "2022-12-01"
#define CLI_API_AUTHZ "2022-04-01"
#define CLI_API_SKIFF "1"

/* ------------------------------------------------------------------ args.c */

enum cli_opt_kind
{
  CLI_OPT_FLAG,  /* no value */
  CLI_OPT_VALUE, /* exactly one value; repeated: the last wins */
  CLI_OPT_LIST,  /* one or more values up to the next option; repeatable, values accumulate */
};

struct cli_opt
{
  const char *longs;  /* long names without dashes, '|' separated; the first is canonical */
  const char *shorts; /* short letters ("n", "g"), or NULL */
  enum cli_opt_kind kind;
  const char *metavar; /* shown in help, NULL for flags */
  const char *help;
};
#define CLI_OPT_END                                                                                                    \
  {                                                                                                                    \
    NULL, NULL, CLI_OPT_FLAG, NULL, NULL                                                                               \
  }

struct cli_optval
{
  char **v; /* NULL-terminated values (flags get one "true") */
  size_t n;
};

struct cli_args
{
  const struct cli_opt *opts[2]; /* command options, global options */
  struct cli_optval *vals[2];    /* parallel to opts[i] */
};

/* Options every command accepts: --output/-o, --subscription, --help/-h, --debug, --only-show-errors. */
extern const struct cli_opt cli_global_opts[];

/* Parses argv[0..argc) against `opts` and cli_global_opts. Accepts `--name value`, `--name=value`,
 * `-n value`, unambiguous prefixes of long names, and LIST options that take every following word
 * up to the next option. Unknown options and stray words fail with a CLI_USAGE_CODE error. On
 * success the caller owns *out and releases it with cli_args_free. */
int cli_args_parse (const struct cli_opt *opts, int argc, char **argv, struct cli_args *out, skiff_error_t *err);

/* Releases what cli_args_parse stored. Safe on a zeroed struct. */
void cli_args_free (struct cli_args *a);

/* The last value of the option named by its canonical long name, or NULL when not given. */
const char *cli_arg (const struct cli_args *a, const char *name);

/* True when the option was given at all. */
bool cli_has (const struct cli_args *a, const char *name);

/* Every value of a LIST option in order (NULL-terminated, borrowed), or NULL; *n gets the count. */
char **cli_arg_list (const struct cli_args *a, const char *name, size_t *n);

/* Sets a usage error (exit status 2). Returns -1. */
int cli_usage_error (skiff_error_t *err, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

/* Splits `s` into words like a POSIX shell would (no expansion, no shell run): blanks separate,
 * '...' is literal, "..." honours \\ \" \$ \` and \newline, a backslash outside quotes escapes the
 * next character. An unterminated quote fails. *out is a NULL-terminated vector owned by the caller. */
int cli_split_command_line (const char *s, char ***out, size_t *n, skiff_error_t *err);

/* Splits "KEY=VALUE" at the first '='. KEY must be non-empty. Both outputs are owned by the caller. */
int cli_parse_kv (const char *s, char **key, char **value, skiff_error_t *err);

/* Parses a positive decimal number (cpu, memory, timeout). */
int cli_parse_positive (const char *flag, const char *s, double *out, skiff_error_t *err);

/* ------------------------------------------------------------------ output.c */

enum cli_output_format
{
  CLI_OUT_JSON,
  CLI_OUT_JSONC,
  CLI_OUT_YAML,
  CLI_OUT_TABLE,
  CLI_OUT_TSV,
  CLI_OUT_NONE,
};

/* A table column: header and a function returning the cell for one row (malloc'd, may be NULL). */
struct cli_column
{
  const char *header;
  char *(*cell) (json_t *row);
};

/* Maps "json", "jsonc", "yaml", "table", "tsv", "none" to a format. */
int cli_output_parse (const char *s, enum cli_output_format *fmt, skiff_error_t *err);

/* Prints `value` (object, array or scalar) to `out` in `fmt`. Table output uses `cols` (NULL:
 * the top-level scalar members of each row). Arrays are printed as one row per element. */
int cli_print (FILE *out, json_t *value, enum cli_output_format fmt, const struct cli_column *cols, size_t ncols,
               skiff_error_t *err);

/* Formats rows of cells as az does: left-aligned columns two spaces apart, a dashed rule under the
 * headers. rows[r][c] may be NULL (printed empty). Returns a malloc'd string. */
char *cli_format_table (const char *const *headers, size_t ncols, char ***rows, size_t nrows);

/* Prints an ARM-style error "ERROR: (Code) message" (or "ERROR: message") to stderr and returns the
 * exit status it calls for: 3 for HTTP 404, 2 for usage errors, 1 otherwise. */
int cli_report_error (skiff_error_t e);

/* The resource group named in an ARM id ("/subscriptions/x/resourceGroups/RG/..."), malloc'd, or NULL. */
char *cli_rg_from_id (const char *id);

/* ------------------------------------------------------------------ yaml.c */

/* Converts the first YAML document of text[0..len) to JSON. Unquoted scalars follow the YAML 1.2
 * core schema: null/~/empty -> null, true/false -> bool, integers and floats -> numbers; quoted
 * scalars and !!str stay strings. Mapping keys become strings. Aliases are expanded. */
int cli_yaml_to_json (const char *text, size_t len, json_t **out, skiff_error_t *err);

/* Emits `value` as a block-style YAML document (keys sorted, strings quoted when they would read
 * back as something else) into a malloc'd string. */
int cli_json_to_yaml (json_t *value, char **out, skiff_error_t *err);

/* ------------------------------------------------------------------ http.c */

struct cli_response
{
  long status;
  json_t *body; /* parsed JSON body, NULL when empty or not JSON */
  char *raw;    /* body bytes, NUL-terminated (never NULL after a request) */
  size_t raw_len;
  char *async_operation; /* Azure-AsyncOperation header, or NULL */
  char *location;        /* Location header, or NULL */
  int retry_after;       /* Retry-After in seconds, -1 when absent */
};

/* How the CLI reaches skiffd. Without SKIFF_ENDPOINT: the unix socket $SKIFF_DATA/api.sock when it
 * exists (endpoint "http://localhost"), else the URL in $SKIFF_DATA/endpoint, trusting
 * $SKIFF_DATA/pki/ca.pem for https. SKIFF_CA_BUNDLE always wins for the CA. */
struct cli_transport
{
  const char *unix_path; /* HTTP over this unix socket, or NULL */
  const char *endpoint;  /* base URL without trailing '/' */
  const char *ca_bundle; /* CA certificates (PEM file) for https, or NULL for the system store */
};

/* Resolves the transport (and the token) once; the strings are borrowed, valid until exit. */
int cli_http_transport (struct cli_transport *out, skiff_error_t *err);

/* Frees what a request stored in *r and zeroes it. */
void cli_response_clear (struct cli_response *r);

/* Configures the client from the global flags: --debug prints every request to stderr,
 * --subscription overrides discovery. Does no I/O. */
void cli_http_configure (bool debug, const char *subscription);

/* Sends one request with `Authorization: Bearer <token>`. `target` is either an absolute URL (a
 * nextLink or async-operation URL, used as is) or a path starting with '/', appended to the
 * endpoint. `body`, when not NULL, is sent as JSON. Any HTTP status fills *resp and returns 0;
 * only transport failures (no endpoint or token, connection refused, ...) fail. */
int cli_http_request (const char *method, const char *target, json_t *body, struct cli_response *resp,
                      skiff_error_t *err);

/* Like cli_http_request, but a status outside 200..299 becomes an ARM error taken from the
 * {"error":{code,message}} body (http_status set, so 404 maps to exit 3). */
int cli_http_call (const char *method, const char *target, json_t *body, struct cli_response *resp, skiff_error_t *err);

/* The subscription id: --subscription, else $SKIFF_SUBSCRIPTION, else value[0].subscriptionId of
 * GET /subscriptions. Borrowed, valid until exit. */
const char *cli_subscription (skiff_error_t *err);

/* Percent-encodes one path segment. Returns a malloc'd string. */
char *cli_escape (const char *segment);

/* Builds "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerInstance/
 * containerGroups[/{name}][{suffix}]?api-version=..." (name NULL for the list path; suffix such
 * as "/start" or NULL; extra_query like "&tail=5" or NULL). Returns malloc'd. */
char *cli_cg_path (const char *sub, const char *rg, const char *name, const char *suffix, const char *api_version,
                   const char *extra_query);

/* Follows an ARM list starting at `target`: concatenates every page's `value`, following
 * `nextLink`, into a new array in *out. */
int cli_http_list (const char *target, json_t **out, skiff_error_t *err);

/* Waits for an Azure-AsyncOperation (or Location) URL to reach a terminal status, sleeping
 * Retry-After seconds (at least 1, default 1) between polls, for at most timeout_s seconds. A
 * "Failed"/"Canceled" status fails with the body's error. */
int cli_http_wait_async (const char *async_url, const char *location_url, double timeout_s, skiff_error_t *err);

/* Sleeps `ms` milliseconds. */
void cli_sleep_ms (long ms);

/* ------------------------------------------------------------------ verbs */

struct cli_ctx
{
  enum cli_output_format output;
  bool output_given; /* -o was on the command line */
};

typedef int (*cli_verb_fn) (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err);

/* Asks "Are you sure you want to perform this operation? (y/n): " when stdin is a terminal and
 * `yes` is false. Returns true to proceed. Non-terminal stdin proceeds without asking. */
bool cli_confirm (bool yes);

extern const struct cli_opt cli_container_create_opts[], cli_container_show_opts[], cli_container_list_opts[],
    cli_container_delete_opts[], cli_container_logs_opts[], cli_container_action_opts[], cli_container_export_opts[];
int cli_container_create (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err);
int cli_container_show (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err);
int cli_container_list (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err);
int cli_container_delete (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err);
int cli_container_logs (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err);
int cli_container_start (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err);
int cli_container_stop (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err);
int cli_container_restart (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err);
int cli_container_export (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err);
/* `skiff container exec|attach`: POST .../exec or .../attach, then a WebSocket session (wsclient.h). */
extern const struct cli_opt cli_container_exec_opts[], cli_container_attach_opts[];
int cli_container_exec (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err);
int cli_container_attach (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err);

/* `skiff sp create|list|show|delete` (sp.c): skiff's service principals (/skiff/servicePrincipals). */
extern const struct cli_opt cli_sp_create_opts[], cli_sp_list_opts[], cli_sp_id_opts[];
int cli_sp_create (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err);
int cli_sp_list (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err);
int cli_sp_show (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err);
int cli_sp_delete (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err);

/* `skiff role assignment create|list|delete` (role.c): ARM Microsoft.Authorization/roleAssignments. */
extern const struct cli_opt cli_role_create_opts[], cli_role_list_opts[], cli_role_delete_opts[];
int cli_role_assignment_create (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err);
int cli_role_assignment_list (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err);
int cli_role_assignment_delete (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err);

extern const struct cli_opt cli_group_create_opts[], cli_group_show_opts[], cli_group_list_opts[],
    cli_group_delete_opts[];
int cli_group_create (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err);
int cli_group_show (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err);
int cli_group_list (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err);
int cli_group_delete (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err);
/* `skiff image prune`: removes image layers no container group on the host uses. */
extern const struct cli_opt cli_image_prune_opts[];
int cli_image_prune (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err);

#endif
