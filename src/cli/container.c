/* container.c - `skiff container create|show|list|delete|logs|start|stop|restart|export|exec|attach`. */
#include "cli/cli.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "cli/wsclient.h"

#include "common/cleanup.h"
#include "common/jsonutil.h"
#include "common/util.h"

#define NAME_OPT                                                                                                       \
  {                                                                                                                    \
    "name", "n", CLI_OPT_VALUE, "NAME", "[Required] Name of the container group."                                      \
  }
#define RG_OPT                                                                                                         \
  {                                                                                                                    \
    "resource-group", "g", CLI_OPT_VALUE, "GROUP", "[Required] Name of the resource group."                            \
  }
#define NO_WAIT_OPT                                                                                                    \
  {                                                                                                                    \
    "no-wait", NULL, CLI_OPT_FLAG, NULL, "Do not wait for the operation to finish."                                    \
  }

#define CREATE_POLL_MS 200
#define FOLLOW_POLL_MS 500
#define MAX_YAML_FILE (4u * 1024 * 1024)

const struct cli_opt cli_container_create_opts[] = {
  NAME_OPT,
  RG_OPT,
  { "image", NULL, CLI_OPT_VALUE, "IMAGE", "[Required without --file] The container image name." },
  { "cpu", NULL, CLI_OPT_VALUE, "N", "Number of CPU cores (default 1)." },
  { "memory", NULL, CLI_OPT_VALUE, "GB", "Memory in GB (default 1.5)." },
  { "command-line", NULL, CLI_OPT_VALUE, "CMD", "Command line to run, split like a POSIX shell (no shell runs)." },
  { "environment-variables", "e", CLI_OPT_LIST, "KEY=VALUE", "Environment variables, space separated." },
  { "secure-environment-variables", NULL, CLI_OPT_LIST, "KEY=VALUE", "Secure environment variables (secureValue)." },
  { "restart-policy", NULL, CLI_OPT_VALUE, "POLICY", "Always (default), OnFailure or Never." },
  { "os-type", NULL, CLI_OPT_VALUE, "OS", "Linux (default) or Windows." },
  { "ports", NULL, CLI_OPT_LIST, "PORT", "Ports to open, space separated." },
  { "protocol", NULL, CLI_OPT_VALUE, "PROTO", "Network protocol of the ports: TCP (default) or UDP." },
  { "ip-address", NULL, CLI_OPT_VALUE, "TYPE", "IP address type (Public or Private); passed through." },
  { "dns-name-label", NULL, CLI_OPT_VALUE, "LABEL", "DNS name label for the IP address; passed through." },
  { "location", "l", CLI_OPT_VALUE, "LOCATION", "Location (default: the resource group's)." },
  { "registry-login-server", NULL, CLI_OPT_VALUE, "SERVER", "Container image registry login server." },
  { "registry-username", NULL, CLI_OPT_VALUE, "USER", "Username for the image registry." },
  { "registry-password", NULL, CLI_OPT_VALUE, "PASSWORD", "Password for the image registry." },
  { "file", "f", CLI_OPT_VALUE, "FILE", "Create from an ACI YAML file instead of flags." },
  NO_WAIT_OPT,
  { "timeout", NULL, CLI_OPT_VALUE, "SECONDS", "How long to wait for the group to start (default 600)." },
  CLI_OPT_END,
};
const struct cli_opt cli_container_show_opts[] = { NAME_OPT, RG_OPT, CLI_OPT_END };
const struct cli_opt cli_container_list_opts[] = {
  { "resource-group", "g", CLI_OPT_VALUE, "GROUP", "Resource group (default: the whole subscription)." },
  CLI_OPT_END,
};
const struct cli_opt cli_container_delete_opts[] = {
  NAME_OPT, RG_OPT, { "yes", "y", CLI_OPT_FLAG, NULL, "Do not prompt for confirmation." }, NO_WAIT_OPT, CLI_OPT_END,
};
const struct cli_opt cli_container_logs_opts[] = {
  NAME_OPT,
  RG_OPT,
  { "container-name", NULL, CLI_OPT_VALUE, "NAME", "Container to read (default: the first one)." },
  { "tail", NULL, CLI_OPT_VALUE, "N", "Only the last N lines." },
  { "timestamps", NULL, CLI_OPT_FLAG, NULL, "Prefix each line with its RFC 3339 timestamp." },
  { "follow", NULL, CLI_OPT_FLAG, NULL, "Keep printing new lines while the group runs." },
  CLI_OPT_END,
};
const struct cli_opt cli_container_action_opts[] = { NAME_OPT, RG_OPT, NO_WAIT_OPT, CLI_OPT_END };
const struct cli_opt cli_container_export_opts[] = {
  NAME_OPT,
  RG_OPT,
  { "file", "f", CLI_OPT_VALUE, "FILE", "Write to FILE (default: stdout)." },
  CLI_OPT_END,
};

#define CONTAINER_NAME_OPT(help)                                                                                       \
  {                                                                                                                    \
    "container-name", NULL, CLI_OPT_VALUE, "NAME", help                                                                \
  }
const struct cli_opt cli_container_exec_opts[] = {
  NAME_OPT,
  RG_OPT,
  CONTAINER_NAME_OPT ("Container to run the command in (default: the first one)."),
  { "exec-command", NULL, CLI_OPT_VALUE, "CMD", "[Required] The command and its arguments, split like a shell would." },
  CLI_OPT_END,
};
const struct cli_opt cli_container_attach_opts[] = {
  NAME_OPT,
  RG_OPT,
  CONTAINER_NAME_OPT ("Container to attach to (default: the first one)."),
  CLI_OPT_END,
};

/* ------------------------------------------------------------------ table columns */

static json_t *
props (json_t *g)
{
  return skiff_json_get (g, "properties");
}

static const char *
group_state (json_t *g)
{
  const char *s = skiff_json_get_string (skiff_json_get (props (g), "instanceView"), "state");
  return s ? s : skiff_json_get_string (props (g), "provisioningState");
}

static char *
cell_name (json_t *g)
{
  return skiff_strdup (skiff_json_get_string (g, "name"));
}

static char *
cell_rg (json_t *g)
{
  return cli_rg_from_id (skiff_json_get_string (g, "id"));
}

static char *
cell_status (json_t *g)
{
  return skiff_strdup (group_state (g));
}

static char *
cell_image (json_t *g)
{
  json_t *cs = skiff_json_get (props (g), "containers");
  char *out = NULL;
  for (size_t i = 0; i < json_array_size (cs); i++)
    {
      const char *img = skiff_json_get_string (props (json_array_get (cs, i)), "image");
      if (img == NULL)
        continue;
      char *n = out ? skiff_strdup_printf ("%s,%s", out, img) : skiff_strdup (img);
      free (out);
      out = n;
    }
  return out;
}

static double
number (json_t *v)
{
  if (json_is_number (v))
    return json_number_value (v);
  if (json_is_string (v))
    return strtod (json_string_value (v), NULL);
  return 0;
}

static char *
cell_cpu_memory (json_t *g)
{
  json_t *cs = skiff_json_get (props (g), "containers");
  double cpu = 0, mem = 0;
  for (size_t i = 0; i < json_array_size (cs); i++)
    {
      json_t *req = skiff_json_get (skiff_json_get (props (json_array_get (cs, i)), "resources"), "requests");
      cpu += number (skiff_json_get (req, "cpu"));
      mem += number (skiff_json_get (req, "memoryInGB"));
    }
  return skiff_strdup_printf ("%.1f core/%.1f gb", cpu, mem);
}

static char *
cell_os (json_t *g)
{
  return skiff_strdup (skiff_json_get_string (props (g), "osType"));
}

static char *
cell_location (json_t *g)
{
  return skiff_strdup (skiff_json_get_string (g, "location"));
}

static const struct cli_column group_columns[] = {
  { "Name", cell_name },         { "ResourceGroup", cell_rg },      { "Status", cell_status },
  { "Image", cell_image },       { "CPU/Memory", cell_cpu_memory }, { "OsType", cell_os },
  { "Location", cell_location },
};
#define N_COLUMNS (sizeof group_columns / sizeof group_columns[0])

static int
print_group (struct cli_ctx *ctx, json_t *g, skiff_error_t *err)
{
  return cli_print (stdout, g, ctx->output, group_columns, N_COLUMNS, err);
}

/* ------------------------------------------------------------------ helpers */

static int
require (struct cli_args *args, const char *name, const char *shown, const char **out, skiff_error_t *err)
{
  const char *v = cli_arg (args, name);
  if (v == NULL || *v == '\0')
    return cli_usage_error (err, "the following arguments are required: %s", shown);
  *out = v;
  return 0;
}

static int
name_and_group (struct cli_args *args, const char **name, const char **rg, skiff_error_t *err)
{
  bool has_n = cli_arg (args, "name") && *cli_arg (args, "name");
  bool has_g = cli_arg (args, "resource-group") && *cli_arg (args, "resource-group");
  if (!has_n && !has_g)
    return cli_usage_error (err, "the following arguments are required: --name/-n, --resource-group/-g");
  if (require (args, "name", "--name/-n", name, err) < 0)
    return -1;
  return require (args, "resource-group", "--resource-group/-g", rg, err);
}

/* Deletes `key` from obj, matching ASCII case-insensitively (ARM keys vary in case). */
static void
del_ci (json_t *obj, const char *key)
{
  if (!json_is_object (obj))
    return;
  const char *k;
  json_t *v;
  void *tmp;
  json_object_foreach_safe (obj, tmp, k, v)
  {
    if (strcasecmp (k, key) == 0)
      json_object_del (obj, k);
  }
}

/* GETs the resource group and returns its location (malloc'd). */
static char *
rg_location (const char *sub, const char *rg, skiff_error_t *err)
{
  cleanup_free char *esub = cli_escape (sub);
  cleanup_free char *erg = cli_escape (rg);
  cleanup_free char *path
      = skiff_strdup_printf ("/subscriptions/%s/resourcegroups/%s?api-version=" CLI_API_RG, esub, erg);
  struct cli_response r;
  if (cli_http_call ("GET", path, NULL, &r, err) < 0)
    {
      if ((*err)->http_status == 404)
        skiff_error_arm (err, 404, "ResourceGroupNotFound", "Resource group '%s' could not be found.", rg);
      return NULL;
    }
  const char *loc = skiff_json_get_string (r.body, "location");
  char *out = skiff_strdup (loc && *loc ? loc : "local");
  cli_response_clear (&r);
  return out;
}

static const char *
canonical_choice (const char *flag, const char *v, const char *const *choices, skiff_error_t *err)
{
  for (size_t i = 0; choices[i]; i++)
    if (strcasecmp (v, choices[i]) == 0)
      return choices[i];
  cli_usage_error (err, "argument %s: invalid choice: '%s'", flag, v);
  return NULL;
}

/* The registry host of an image reference ("host.io/a/b:tag" -> "host.io"), or NULL for Docker Hub. */
static char *
image_registry (const char *image)
{
  const char *slash = strchr (image, '/');
  if (slash == NULL)
    return NULL;
  cleanup_free char *first = strndup (image, (size_t)(slash - image));
  if (first == NULL)
    abort ();
  if (strchr (first, '.') || strchr (first, ':') || strcmp (first, "localhost") == 0)
    return steal_pointer (&first);
  return NULL;
}

static int
add_env (json_t *list, char **vals, size_t n, const char *value_key, skiff_error_t *err)
{
  for (size_t i = 0; i < n; i++)
    {
      cleanup_free char *k = NULL, *v = NULL;
      if (cli_parse_kv (vals[i], &k, &v, err) < 0)
        return skiff_error_wrap (err, "environment variables must be KEY=VALUE");
      json_array_append_new (list, json_pack ("{s:s,s:s}", "name", k, value_key, v));
    }
  return 0;
}

/* Builds the PUT body from flags, as az container create does (aci-api.md §7). */
static int
body_from_flags (struct cli_args *args, const char *name, json_t **out, skiff_error_t *err)
{
  const char *image = NULL;
  if (require (args, "image", "--image", &image, err) < 0)
    return -1;
  double cpu = 1, mem = 1.5;
  if (cli_arg (args, "cpu") && cli_parse_positive ("--cpu", cli_arg (args, "cpu"), &cpu, err) < 0)
    return -1;
  if (cli_arg (args, "memory") && cli_parse_positive ("--memory", cli_arg (args, "memory"), &mem, err) < 0)
    return -1;

  static const char *const policies[] = { "Always", "OnFailure", "Never", NULL };
  static const char *const oses[] = { "Linux", "Windows", NULL };
  static const char *const protos[] = { "TCP", "UDP", NULL };
  const char *policy = "Always", *os = "Linux", *proto = "TCP";
  if (cli_arg (args, "restart-policy")
      && (policy = canonical_choice ("--restart-policy", cli_arg (args, "restart-policy"), policies, err)) == NULL)
    return -1;
  if (cli_arg (args, "os-type") && (os = canonical_choice ("--os-type", cli_arg (args, "os-type"), oses, err)) == NULL)
    return -1;
  if (cli_arg (args, "protocol")
      && (proto = canonical_choice ("--protocol", cli_arg (args, "protocol"), protos, err)) == NULL)
    return -1;

  cleanup_json json_t *cprops = json_pack ("{s:s}", "image", image);
  const char *cmdline = cli_arg (args, "command-line");
  if (cmdline)
    {
      cleanup_strv char **words = NULL;
      size_t n = 0;
      if (cli_split_command_line (cmdline, &words, &n, err) < 0)
        return -1;
      if (n == 0)
        return cli_usage_error (err, "argument --command-line: empty command");
      json_t *cmd = json_array ();
      for (size_t i = 0; i < n; i++)
        json_array_append_new (cmd, json_string (words[i]));
      json_object_set_new (cprops, "command", cmd);
    }

  size_t nports = 0;
  char **ports = cli_arg_list (args, "ports", &nports);
  cleanup_json json_t *port_list = json_array ();
  for (size_t i = 0; i < nports; i++)
    {
      char *end = NULL;
      errno = 0;
      long p = strtol (ports[i], &end, 10);
      if (errno || end == ports[i] || *end || p < 1 || p > 65535)
        return cli_usage_error (err, "argument --ports: invalid port '%s'", ports[i]);
      json_array_append_new (port_list, json_pack ("{s:s,s:I}", "protocol", proto, "port", (json_int_t)p));
    }
  const char *ip_type = cli_arg (args, "ip-address");
  const char *dns = cli_arg (args, "dns-name-label");
  if ((ip_type || dns) && json_array_size (port_list) == 0)
    json_array_append_new (port_list, json_pack ("{s:s,s:i}", "protocol", proto, "port", 80));
  if (json_array_size (port_list))
    json_object_set (cprops, "ports", port_list);

  size_t nenv = 0, nsec = 0;
  char **env = cli_arg_list (args, "environment-variables", &nenv);
  char **sec = cli_arg_list (args, "secure-environment-variables", &nsec);
  if (nenv || nsec)
    {
      json_t *list = json_array ();
      json_object_set_new (cprops, "environmentVariables", list);
      if (add_env (list, env, nenv, "value", err) < 0 || add_env (list, sec, nsec, "secureValue", err) < 0)
        return -1;
    }
  json_object_set_new (cprops, "resources", json_pack ("{s:{s:f,s:f}}", "requests", "memoryInGB", mem, "cpu", cpu));

  cleanup_json json_t *gprops = json_pack ("{s:[{s:s,s:O}],s:s,s:s}", "containers", "name", name, "properties", cprops,
                                           "restartPolicy", policy, "osType", os);
  if (gprops == NULL)
    return skiff_error_set (err, ENOMEM, "cannot build the request");

  const char *server = cli_arg (args, "registry-login-server");
  const char *user = cli_arg (args, "registry-username");
  const char *pass = cli_arg (args, "registry-password");
  if (server || user || pass)
    {
      cleanup_free char *inferred = NULL;
      if (server == NULL)
        {
          inferred = image_registry (image);
          if (inferred == NULL)
            return cli_usage_error (err, "--registry-login-server is required: the image names no registry host");
          server = inferred;
        }
      if (user == NULL)
        return cli_usage_error (err, "Please specify --registry-username in order to use custom image registry.");
      if (pass == NULL)
        return cli_usage_error (err, "Please specify --registry-password in order to use custom image registry.");
      json_object_set_new (gprops, "imageRegistryCredentials",
                           json_pack ("[{s:s,s:s,s:s}]", "server", server, "username", user, "password", pass));
    }

  if (ip_type || dns)
    {
      json_t *ip = json_pack ("{s:O,s:s}", "ports", port_list, "type", ip_type ? ip_type : "Public");
      if (dns)
        json_object_set_new (ip, "dnsNameLabel", json_string (dns));
      json_object_set_new (gprops, "ipAddress", ip);
    }

  *out = json_pack ("{s:O,s:{}}", "properties", gprops, "tags");
  return 0;
}

/* ------------------------------------------------------------------ create: progress */

struct seen_event
{
  char *key;
  char *message;
  json_int_t count;
};

struct progress
{
  struct seen_event *v;
  size_t n;
  bool tty;
  char *open_key; /* on a tty: key of the line printed without its newline yet */
};

static void
progress_line (struct progress *p, const char *key, const char *line)
{
  if (p->tty)
    {
      if (p->open_key && strcmp (p->open_key, key) == 0)
        fprintf (stderr, "\r\033[K%s", line);
      else
        fprintf (stderr, "%s%s", p->open_key ? "\n" : "", line);
      free (p->open_key);
      p->open_key = skiff_strdup (key);
    }
  else
    fprintf (stderr, "%s\n", line);
  fflush (stderr);
}

static void
progress_finish (struct progress *p)
{
  if (p->open_key)
    fputc ('\n', stderr);
  free (p->open_key);
  p->open_key = NULL;
  for (size_t i = 0; i < p->n; i++)
    {
      free (p->v[i].key);
      free (p->v[i].message);
    }
  free (p->v);
  p->v = NULL;
  p->n = 0;
}

/* Prints each event that is new, or whose message or count changed. `who` is the container name
 * (NULL for group events). `last_warning` gets the last Warning event seen. */
static void
progress_events (struct progress *p, const char *who, json_t *events, json_t **last_warning)
{
  for (size_t i = 0; i < json_array_size (events); i++)
    {
      json_t *ev = json_array_get (events, i);
      const char *name = skiff_json_get_string (ev, "name");
      const char *msg = skiff_json_get_string (ev, "message");
      const char *first = skiff_json_get_string (ev, "firstTimestamp");
      const char *type = skiff_json_get_string (ev, "type");
      json_t *cnt = skiff_json_get (ev, "count");
      json_int_t count = json_is_integer (cnt) ? json_integer_value (cnt) : 1;
      if (type && strcasecmp (type, "Warning") == 0)
        *last_warning = ev;
      cleanup_free char *key = skiff_strdup_printf ("%s\x1f%s\x1f%s\x1f%zu", who ? who : "", name ? name : "",
                                                    first ? first : "", first ? (size_t)0 : i);
      struct seen_event *s = NULL;
      for (size_t j = 0; j < p->n; j++)
        if (strcmp (p->v[j].key, key) == 0)
          s = &p->v[j];
      if (s && s->count == count && strcmp (s->message, msg ? msg : "") == 0)
        continue;
      if (s == NULL)
        {
          struct seen_event *nv = realloc (p->v, (p->n + 1) * sizeof (*nv));
          if (nv == NULL)
            abort ();
          p->v = nv;
          s = &p->v[p->n++];
          s->key = skiff_strdup (key);
          s->message = NULL;
        }
      free (s->message);
      s->message = skiff_strdup (msg ? msg : "");
      s->count = count;
      cleanup_free char *line = skiff_strdup_printf ("%s%s%s%s: %s", who ? "[" : "", who ? who : "", who ? "] " : "",
                                                     name ? name : "Event", msg ? msg : "");
      if (count > 1)
        {
          char *l2 = skiff_strdup_printf ("%s (x%" JSON_INTEGER_FORMAT ")", line, count);
          free (line);
          line = l2;
        }
      progress_line (p, key, line);
    }
}

static void
progress_group (struct progress *p, json_t *g, json_t **last_warning)
{
  json_t *pr = props (g);
  progress_events (p, NULL, skiff_json_get (skiff_json_get (pr, "instanceView"), "events"), last_warning);
  static const char *const lists[] = { "initContainers", "containers" };
  for (size_t l = 0; l < 2; l++)
    {
      json_t *cs = skiff_json_get (pr, lists[l]);
      for (size_t i = 0; i < json_array_size (cs); i++)
        {
          json_t *c = json_array_get (cs, i);
          json_t *iv = skiff_json_get (props (c), "instanceView");
          progress_events (p, skiff_json_get_string (c, "name"), skiff_json_get (iv, "events"), last_warning);
        }
    }
}

/* Polls the group until it is provisioned and out of Pending, printing events on stderr. On
 * success *final holds the last GET body. */
static int
wait_for_create (const char *path, const char *name, const char *async_url, double timeout_s, json_t **final,
                 skiff_error_t *err)
{
  struct progress p = { .tty = isatty (STDERR_FILENO) };
  int64_t deadline = skiff_monotonic_ns () + (int64_t)(timeout_s * 1e9);
  int ret = -1;
  for (;;)
    {
      struct cli_response r;
      if (cli_http_call ("GET", path, NULL, &r, err) < 0)
        break;
      json_t *warning = NULL;
      progress_group (&p, r.body, &warning);
      const char *prov = skiff_json_get_string (props (r.body), "provisioningState");
      json_t *iv = skiff_json_get (props (r.body), "instanceView");
      const char *state = skiff_json_get_string (iv, "state");
      if (prov && (strcasecmp (prov, "Failed") == 0 || strcasecmp (prov, "Canceled") == 0))
        {
          progress_finish (&p);
          struct cli_response a = { 0 };
          const char *code = NULL, *msg = NULL;
          if (async_url && cli_http_request ("GET", async_url, NULL, &a, NULL) == 0)
            {
              json_t *e = skiff_json_get (a.body, "error");
              code = skiff_json_get_string (e, "code");
              msg = skiff_json_get_string (e, "message");
            }
          if (msg == NULL && warning)
            {
              code = skiff_json_get_string (warning, "name");
              msg = skiff_json_get_string (warning, "message");
            }
          if (msg)
            skiff_error_arm (err, 0, code ? code : "ProvisioningFailed", "%s", msg);
          else
            skiff_error_arm (err, 0, "ProvisioningFailed", "Container group '%s' failed to provision.", name);
          cli_response_clear (&a);
          cli_response_clear (&r);
          return -1;
        }
      if (prov && strcasecmp (prov, "Succeeded") == 0 && (state == NULL || strcasecmp (state, "Pending") != 0))
        {
          *final = json_incref (r.body);
          cli_response_clear (&r);
          ret = 0;
          break;
        }
      if (skiff_monotonic_ns () > deadline)
        {
          progress_finish (&p);
          skiff_error_set (err, 0,
                           "timed out after %g s waiting for container group '%s' (provisioningState %s, state %s); "
                           "it was not deleted",
                           timeout_s, name, prov ? prov : "unknown", state ? state : "unknown");
          cli_response_clear (&r);
          return -1;
        }
      cli_response_clear (&r);
      cli_sleep_ms (CREATE_POLL_MS);
    }
  progress_finish (&p);
  return ret;
}

/* ------------------------------------------------------------------ verbs */

int
cli_container_create (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err)
{
  const char *rg = NULL;
  if (require (args, "resource-group", "--resource-group/-g", &rg, err) < 0)
    return -1;
  double timeout = 600;
  if (cli_arg (args, "timeout") && cli_parse_positive ("--timeout", cli_arg (args, "timeout"), &timeout, err) < 0)
    return -1;

  cleanup_json json_t *body = NULL;
  cleanup_free char *name = NULL;
  cleanup_free char *api = skiff_strdup (CLI_API_ACI);
  const char *file = cli_arg (args, "file");
  if (file)
    {
      cleanup_free char *text = NULL;
      size_t len = 0;
      if (skiff_read_file (file, MAX_YAML_FILE, &text, &len, err) < 0)
        return skiff_error_wrap (err, "reading '%s'", file);
      if (cli_yaml_to_json (text, len, &body, err) < 0)
        return skiff_error_wrap (err, "%s", file);
      if (!json_is_object (body))
        return cli_usage_error (err, "%s: the YAML document must be a mapping", file);
      const char *v = skiff_json_get_string (body, "apiVersion");
      if (v && *v)
        {
          free (api);
          api = skiff_strdup (v);
        }
      const char *yname = skiff_json_get_string (body, "name");
      const char *n = cli_arg (args, "name");
      name = skiff_strdup (n && *n ? n : yname);
      if (name == NULL || *name == '\0')
        return cli_usage_error (err, "%s: the YAML has no 'name'; give --name", file);
      /* read-only envelope members are not sent, as az's generic resource client does */
      del_ci (body, "apiVersion");
      del_ci (body, "name");
      del_ci (body, "id");
      del_ci (body, "type");
      if (!json_is_object (props (body)))
        return cli_usage_error (err, "%s: the YAML has no 'properties' mapping", file);
      const char *loc = cli_arg (args, "location");
      if (loc && *loc)
        {
          del_ci (body, "location");
          json_object_set_new (body, "location", json_string (loc));
        }
    }
  else
    {
      const char *n = NULL;
      if (name_and_group (args, &n, &rg, err) < 0)
        return -1;
      name = skiff_strdup (n);
      if (body_from_flags (args, name, &body, err) < 0)
        return -1;
      const char *loc = cli_arg (args, "location");
      if (loc && *loc)
        json_object_set_new (body, "location", json_string (loc));
    }

  const char *sub = cli_subscription (err);
  if (sub == NULL)
    return -1;
  const char *have_loc = skiff_json_get_string (body, "location");
  if (have_loc == NULL || *have_loc == '\0')
    {
      char *loc = rg_location (sub, rg, err);
      if (loc == NULL)
        return -1;
      del_ci (body, "location");
      json_object_set_new (body, "location", json_string (loc));
      free (loc);
    }

  cleanup_free char *path = cli_cg_path (sub, rg, name, NULL, api, NULL);
  struct cli_response r;
  if (cli_http_call ("PUT", path, body, &r, err) < 0)
    return -1;
  cleanup_free char *async_url = r.async_operation ? skiff_strdup (r.async_operation) : NULL;
  cli_response_clear (&r);
  if (cli_has (args, "no-wait"))
    return 0;

  /* Poll with the API version skiff knows, whatever the YAML asked for. */
  cleanup_free char *get_path = cli_cg_path (sub, rg, name, NULL, CLI_API_ACI, NULL);
  cleanup_json json_t *final = NULL;
  if (wait_for_create (get_path, name, async_url, timeout, &final, err) < 0)
    return -1;
  return print_group (ctx, final, err);
}

/* GETs the group named by --name/--resource-group into *out (new reference, may be NULL
 * when the server sent no JSON). */
static int
fetch_group (struct cli_args *args, json_t **out, skiff_error_t *err)
{
  const char *name = NULL, *rg = NULL;
  if (name_and_group (args, &name, &rg, err) < 0)
    return -1;
  const char *sub = cli_subscription (err);
  if (sub == NULL)
    return -1;
  cleanup_free char *path = cli_cg_path (sub, rg, name, NULL, CLI_API_ACI, NULL);
  struct cli_response r;
  if (cli_http_call ("GET", path, NULL, &r, err) < 0)
    return -1;
  *out = r.body ? json_incref (r.body) : NULL;
  cli_response_clear (&r);
  return 0;
}

int
cli_container_show (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err)
{
  cleanup_json json_t *g = NULL;
  if (fetch_group (args, &g, err) < 0)
    return -1;
  int rc = print_group (ctx, g, err);
  return rc;
}

int
cli_container_list (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err)
{
  const char *sub = cli_subscription (err);
  if (sub == NULL)
    return -1;
  const char *rg = cli_arg (args, "resource-group");
  cleanup_free char *path = NULL;
  if (rg && *rg)
    path = cli_cg_path (sub, rg, NULL, NULL, CLI_API_ACI, NULL);
  else
    {
      cleanup_free char *esub = cli_escape (sub);
      path = skiff_strdup_printf ("/subscriptions/%s/providers/Microsoft.ContainerInstance/containerGroups"
                                  "?api-version=" CLI_API_ACI,
                                  esub);
    }
  cleanup_json json_t *all = NULL;
  if (cli_http_list (path, &all, err) < 0)
    return -1;
  return print_group (ctx, all, err);
}

int
cli_container_delete (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err)
{
  const char *name = NULL, *rg = NULL;
  if (name_and_group (args, &name, &rg, err) < 0)
    return -1;
  if (!cli_confirm (cli_has (args, "yes")))
    return skiff_error_set (err, 0, "operation cancelled");
  const char *sub = cli_subscription (err);
  if (sub == NULL)
    return -1;
  cleanup_free char *path = cli_cg_path (sub, rg, name, NULL, CLI_API_ACI, NULL);
  struct cli_response r;
  if (cli_http_call ("DELETE", path, NULL, &r, err) < 0)
    return -1;
  int rc = 0;
  if (r.status == 202 && !cli_has (args, "no-wait"))
    rc = cli_http_wait_async (r.async_operation, r.location, 3600, err);
  else if (r.status == 200 && json_is_object (r.body))
    rc = print_group (ctx, r.body, err);
  cli_response_clear (&r);
  return rc;
}

static int
post_action (struct cli_args *args, const char *action, skiff_error_t *err)
{
  const char *name = NULL, *rg = NULL;
  if (name_and_group (args, &name, &rg, err) < 0)
    return -1;
  const char *sub = cli_subscription (err);
  if (sub == NULL)
    return -1;
  cleanup_free char *suffix = skiff_strdup_printf ("/%s", action);
  cleanup_free char *path = cli_cg_path (sub, rg, name, suffix, CLI_API_ACI, NULL);
  struct cli_response r;
  if (cli_http_call ("POST", path, NULL, &r, err) < 0)
    return -1;
  int rc = 0;
  if (r.status == 202 && !cli_has (args, "no-wait"))
    rc = cli_http_wait_async (r.async_operation, r.location, 3600, err);
  cli_response_clear (&r);
  return rc;
}

int
cli_container_start (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err)
{
  (void)ctx;
  return post_action (args, "start", err);
}

int
cli_container_stop (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err)
{
  (void)ctx;
  return post_action (args, "stop", err);
}

int
cli_container_restart (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err)
{
  (void)ctx;
  return post_action (args, "restart", err);
}

/* ------------------------------------------------------------------ logs */

struct follow_state
{
  int64_t last_ns; /* timestamp of the newest line printed, -1 before any */
  size_t same;     /* how many printed lines carry last_ns */
};

/* Prints the lines of `content` newer than what *st says was printed. Lines are expected to start
 * with an RFC 3339 timestamp and a blank; a line without one inherits the previous line's time. */
static void
follow_print (const char *content, bool timestamps, struct follow_state *st)
{
  size_t orig_same = st->same, eq_seen = 0;
  int64_t orig_last = st->last_ns;
  int64_t prev_ns = -1;
  const char *p = content;
  while (*p)
    {
      const char *nl = strchr (p, '\n');
      size_t len = nl ? (size_t)(nl - p) : strlen (p);
      const char *sp = memchr (p, ' ', len);
      int64_t ns = -1;
      const char *text = p;
      size_t text_len = len;
      if (sp && sp - p < 64)
        {
          char tsbuf[64];
          memcpy (tsbuf, p, (size_t)(sp - p));
          tsbuf[sp - p] = '\0';
          ns = skiff_parse_time (tsbuf);
          if (ns >= 0 && !timestamps)
            {
              text = sp + 1;
              text_len = len - (size_t)(sp + 1 - p);
            }
        }
      if (ns < 0)
        ns = prev_ns;
      prev_ns = ns;
      bool print = false;
      if (ns > st->last_ns)
        {
          print = true;
          st->last_ns = ns;
          st->same = 1;
        }
      else if (ns == st->last_ns)
        {
          if (ns == orig_last)
            {
              eq_seen++;
              if (eq_seen > orig_same)
                {
                  print = true;
                  st->same++;
                }
            }
          else
            {
              print = true;
              st->same++;
            }
        }
      if (print)
        {
          fwrite (text, 1, text_len, stdout);
          fputc ('\n', stdout);
        }
      p += len + (nl ? 1 : 0);
    }
  fflush (stdout);
}

static bool
still_running (const char *state)
{
  static const char *const live[] = { "Running", "Pending", "Starting", "Restarting", "Creating", "Repairing" };
  if (state == NULL)
    return false;
  for (size_t i = 0; i < sizeof live / sizeof live[0]; i++)
    if (strcasecmp (state, live[i]) == 0)
      return true;
  return false;
}

/* --container-name, else the name of the group's first container (one GET). Returns malloc'd or
 * NULL with err (the GET's ARM error, so a missing group exits 3). */
static char *
container_name (struct cli_args *args, const char *sub, const char *rg, const char *name, skiff_error_t *err)
{
  const char *c = cli_arg (args, "container-name");
  if (c && *c)
    return skiff_strdup (c);
  cleanup_free char *group_path = cli_cg_path (sub, rg, name, NULL, CLI_API_ACI, NULL);
  struct cli_response r;
  if (cli_http_call ("GET", group_path, NULL, &r, err) < 0)
    return NULL;
  const char *first = skiff_json_get_string (json_array_get (skiff_json_get (props (r.body), "containers"), 0), "name");
  char *out = first ? skiff_strdup (first) : NULL;
  cli_response_clear (&r);
  if (out == NULL)
    skiff_error_set (err, 0, "container group '%s' has no containers", name);
  return out;
}

int
cli_container_logs (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err)
{
  (void)ctx;
  const char *name = NULL, *rg = NULL;
  if (name_and_group (args, &name, &rg, err) < 0)
    return -1;
  long tail = -1;
  const char *t = cli_arg (args, "tail");
  if (t)
    {
      char *end = NULL;
      errno = 0;
      tail = strtol (t, &end, 10);
      if (errno || end == t || *end || tail < 0)
        return cli_usage_error (err, "argument --tail: invalid int value: '%s'", t);
    }
  bool timestamps = cli_has (args, "timestamps");
  bool follow = cli_has (args, "follow");
  const char *sub = cli_subscription (err);
  if (sub == NULL)
    return -1;

  cleanup_free char *group_path = cli_cg_path (sub, rg, name, NULL, CLI_API_ACI, NULL);
  cleanup_free char *cname = container_name (args, sub, rg, name, err);
  if (cname == NULL)
    return -1;
  cleanup_free char *ecname = cli_escape (cname);
  cleanup_free char *suffix = skiff_strdup_printf ("/containers/%s/logs", ecname);

  if (!follow)
    {
      cleanup_free char *q = NULL;
      if (tail >= 0)
        q = skiff_strdup_printf ("&tail=%ld%s", tail, timestamps ? "&timestamps=true" : "");
      else if (timestamps)
        q = skiff_strdup ("&timestamps=true");
      cleanup_free char *path = cli_cg_path (sub, rg, name, suffix, CLI_API_ACI, q);
      struct cli_response r;
      if (cli_http_call ("GET", path, NULL, &r, err) < 0)
        return -1;
      const char *content = skiff_json_get_string (r.body, "content");
      if (content)
        fputs (content, stdout);
      cli_response_clear (&r);
      return 0;
    }

  struct follow_state st = { .last_ns = -1, .same = 0 };
  for (bool first = true;; first = false)
    {
      /* State first, then logs: lines written before the group stopped are still printed. */
      struct cli_response g;
      if (cli_http_call ("GET", group_path, NULL, &g, err) < 0)
        return -1;
      bool running = still_running (group_state (g.body));
      cli_response_clear (&g);

      cleanup_free char *q = first && tail >= 0 ? skiff_strdup_printf ("&tail=%ld&timestamps=true", tail)
                                                : skiff_strdup ("&timestamps=true");
      cleanup_free char *path = cli_cg_path (sub, rg, name, suffix, CLI_API_ACI, q);
      struct cli_response r;
      if (cli_http_call ("GET", path, NULL, &r, err) < 0)
        return -1;
      const char *content = skiff_json_get_string (r.body, "content");
      if (content)
        follow_print (content, timestamps, &st);
      cli_response_clear (&r);
      if (!running)
        return 0;
      cli_sleep_ms (FOLLOW_POLL_MS);
    }
}

/* ------------------------------------------------------------------ export */

int
cli_container_export (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err)
{
  cleanup_json json_t *g = NULL;
  if (fetch_group (args, &g, err) < 0)
    return -1;
  if (!json_is_object (g))
    return skiff_error_set (err, 0, "the server answered with no container group");

  del_ci (g, "id");
  json_t *pr = props (g);
  del_ci (pr, "instanceView");
  del_ci (pr, "provisioningState");
  static const char *const lists[] = { "containers", "initContainers" };
  for (size_t l = 0; l < 2; l++)
    {
      json_t *cs = skiff_json_get (pr, lists[l]);
      for (size_t i = 0; i < json_array_size (cs); i++)
        del_ci (props (json_array_get (cs, i)), "instanceView");
    }
  del_ci (g, "apiVersion");
  json_object_set_new (g, "apiVersion", json_string (CLI_API_ACI));

  cleanup_free char *text = NULL;
  bool as_json = ctx->output_given && (ctx->output == CLI_OUT_JSON || ctx->output == CLI_OUT_JSONC);
  if (as_json)
    {
      char *s = json_dumps (g, JSON_INDENT (2) | JSON_SORT_KEYS | JSON_REAL_PRECISION (15));
      if (s == NULL)
        return skiff_error_set (err, 0, "cannot encode the group as JSON");
      text = skiff_strdup_printf ("%s\n", s);
      free (s);
    }
  else if (cli_json_to_yaml (g, &text, err) < 0)
    return -1;

  const char *file = cli_arg (args, "file");
  if (file == NULL || strcmp (file, "-") == 0)
    {
      fputs (text, stdout);
      return 0;
    }
  if (skiff_write_file_atomic (file, text, strlen (text), 0644, err) < 0)
    return skiff_error_wrap (err, "writing '%s'", file);
  return 0;
}

/* ------------------------------------------------------------------ exec and attach */

/* The terminal state saved before raw mode; restored by tty_restore on every way out. */
static struct termios saved_tio;
static volatile sig_atomic_t tio_saved;

static void
tty_restore (void)
{
  if (tio_saved)
    {
      tcsetattr (STDIN_FILENO, TCSADRAIN, &saved_tio);
      tio_saved = 0;
    }
}

static void
tty_on_signal (int sig)
{
  tty_restore (); /* tcsetattr is async-signal-safe */
  signal (sig, SIG_DFL);
  raise (sig);
}

/* Puts stdin (a terminal) into raw mode: keystrokes, ^C included, go to the container. */
static int
tty_make_raw (skiff_error_t *err)
{
  static bool registered;
  struct termios raw;
  if (tcgetattr (STDIN_FILENO, &saved_tio) < 0)
    return skiff_error_set (err, errno, "reading the terminal settings");
  raw = saved_tio;
  cfmakeraw (&raw);
  if (!registered)
    {
      atexit (tty_restore);
      static const int sigs[] = { SIGTERM, SIGHUP, SIGINT, SIGQUIT, SIGABRT };
      for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        {
          struct sigaction sa = { .sa_handler = tty_on_signal };
          sigaction (sigs[i], &sa, NULL);
        }
      registered = true;
    }
  tio_saved = 1;
  if (tcsetattr (STDIN_FILENO, TCSADRAIN, &raw) < 0)
    {
      tio_saved = 0;
      return skiff_error_set (err, errno, "setting the terminal to raw mode");
    }
  return 0;
}

/* Connects the WebSocket of an exec/attach answer through the CLI's own transport: the unix
 * socket, or TCP (TLS for an https endpoint, with the CA bundle) to the endpoint's host and port.
 * The path comes from webSocketUri, which must be ws:// or wss://. */
static int
run_session (json_t *answer, bool forward_stdin, skiff_error_t *err)
{
  const char *uri = skiff_json_get_string (answer, "webSocketUri");
  const char *password = skiff_json_get_string (answer, "password");
  if (uri == NULL || password == NULL)
    return skiff_error_set (err, 0, "the server's answer has no webSocketUri and password");
  cleanup_free char *scheme = NULL, *host = NULL, *authority = NULL, *path = NULL;
  int port = 0;
  if (ws_parse_url (uri, &scheme, &host, &authority, &port, &path, err) < 0)
    return skiff_error_wrap (err, "webSocketUri");
  if (strcmp (scheme, "ws") != 0 && strcmp (scheme, "wss") != 0)
    return skiff_error_set (err, 0, "webSocketUri '%s' is not ws:// or wss://", uri);

  struct cli_transport tr;
  if (cli_http_transport (&tr, err) < 0)
    return -1;
  struct ws_target t = { .unix_path = tr.unix_path, .path = path, .host_header = authority };
  cleanup_free char *escheme = NULL, *ehost = NULL, *eauth = NULL, *epath = NULL;
  if (tr.unix_path == NULL)
    {
      int eport = 0;
      if (ws_parse_url (tr.endpoint, &escheme, &ehost, &eauth, &eport, &epath, err) < 0)
        return skiff_error_wrap (err, "the skiff endpoint");
      t.host = ehost;
      t.port = eport;
      t.tls = strcmp (escheme, "https") == 0;
      t.ca_bundle = tr.ca_bundle;
    }

  bool raw = forward_stdin && isatty (STDIN_FILENO);
  if (raw && tty_make_raw (err) < 0)
    return -1;
  fflush (stdout);
  struct ws_session s = { .password = password, .in_fd = forward_stdin ? STDIN_FILENO : -1, .out_fd = STDOUT_FILENO };
  int rc = ws_run (&t, &s, err);
  tty_restore ();
  if (rc < 0 && (*err)->status == EPIPE)
    {
      /* stdout was closed (skiff ... | head): end quietly, as any filter does */
      signal (SIGPIPE, SIG_DFL);
      raise (SIGPIPE);
    }
  return rc;
}

/* POSTs .../containers/{c}/{action} with body, then runs the session. */
static int
exec_or_attach (struct cli_args *args, const char *action, json_t *body, bool forward_stdin, skiff_error_t *err)
{
  const char *name = NULL, *rg = NULL;
  if (name_and_group (args, &name, &rg, err) < 0)
    return -1;
  const char *sub = cli_subscription (err);
  if (sub == NULL)
    return -1;
  cleanup_free char *cname = container_name (args, sub, rg, name, err);
  if (cname == NULL)
    return -1;
  cleanup_free char *ecname = cli_escape (cname);
  cleanup_free char *suffix = skiff_strdup_printf ("/containers/%s/%s", ecname, action);
  cleanup_free char *path = cli_cg_path (sub, rg, name, suffix, CLI_API_ACI, NULL);
  struct cli_response r;
  if (cli_http_call ("POST", path, body, &r, err) < 0)
    return -1;
  cleanup_json json_t *answer = r.body ? json_incref (r.body) : NULL;
  cli_response_clear (&r);
  return run_session (answer, forward_stdin, err);
}

int
cli_container_exec (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err)
{
  (void)ctx;
  const char *name = NULL, *rg = NULL, *cmd = NULL;
  if (name_and_group (args, &name, &rg, err) < 0 || require (args, "exec-command", "--exec-command", &cmd, err) < 0)
    return -1;
  int rows = 24, cols = 80;
  struct winsize ws;
  if (isatty (STDIN_FILENO) && ioctl (STDIN_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0)
    {
      rows = ws.ws_row;
      cols = ws.ws_col;
    }
  cleanup_json json_t *body
      = json_pack ("{s:s,s:{s:i,s:i}}", "command", cmd, "terminalSize", "rows", rows, "cols", cols);
  if (body == NULL)
    return skiff_error_set (err, EINVAL, "--exec-command is not valid UTF-8");
  return exec_or_attach (args, "exec", body, true, err);
}

int
cli_container_attach (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err)
{
  (void)ctx;
  return exec_or_attach (args, "attach", NULL, false, err);
}
