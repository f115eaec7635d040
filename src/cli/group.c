/* group.c - `skiff group create|show|list|delete`, the ARM resource-group verbs. */
#include "cli/cli.h"

#include <string.h>

#include "common/cleanup.h"
#include "common/jsonutil.h"
#include "common/util.h"

#define NAME_OPT                                                                                                       \
  {                                                                                                                    \
    "name|resource-group", "ng", CLI_OPT_VALUE, "NAME", "[Required] Name of the resource group."                       \
  }

const struct cli_opt cli_group_create_opts[] = {
  NAME_OPT,
  { "location", "l", CLI_OPT_VALUE, "LOCATION", "Location (default: local)." },
  { "tags", NULL, CLI_OPT_LIST, "KEY=VALUE", "Space-separated tags." },
  CLI_OPT_END,
};
const struct cli_opt cli_group_show_opts[] = { NAME_OPT, CLI_OPT_END };
const struct cli_opt cli_group_list_opts[] = { CLI_OPT_END };
const struct cli_opt cli_group_delete_opts[] = {
  NAME_OPT,
  { "yes", "y", CLI_OPT_FLAG, NULL, "Do not prompt for confirmation." },
  { "no-wait", NULL, CLI_OPT_FLAG, NULL, "Do not wait for the deletion to finish." },
  CLI_OPT_END,
};

static char *
cell_name (json_t *g)
{
  return skiff_strdup (skiff_json_get_string (g, "name"));
}

static char *
cell_location (json_t *g)
{
  return skiff_strdup (skiff_json_get_string (g, "location"));
}

static char *
cell_status (json_t *g)
{
  return skiff_strdup (skiff_json_get_string (skiff_json_get (g, "properties"), "provisioningState"));
}

static const struct cli_column group_columns[] = {
  { "Name", cell_name },
  { "Location", cell_location },
  { "Status", cell_status },
};
#define N_GROUP_COLUMNS (sizeof group_columns / sizeof group_columns[0])

/* "/subscriptions/{sub}/resourcegroups/{rg}?api-version=..." (rg NULL: the list path). */
static char *
rg_path (const char *sub, const char *rg)
{
  cleanup_free char *esub = cli_escape (sub);
  cleanup_free char *erg = rg ? cli_escape (rg) : NULL;
  return skiff_strdup_printf ("/subscriptions/%s/resourcegroups%s%s?api-version=" CLI_API_RG, esub, erg ? "/" : "",
                              erg ? erg : "");
}

static const char *
required_name (struct cli_args *args, skiff_error_t *err)
{
  const char *n = cli_arg (args, "name");
  if (n == NULL || *n == '\0')
    cli_usage_error (err, "the following arguments are required: --name/-n/--resource-group/-g");
  return n && *n ? n : NULL;
}

int
cli_group_create (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err)
{
  const char *name = required_name (args, err);
  if (name == NULL)
    return -1;
  const char *loc = cli_arg (args, "location");
  cleanup_json json_t *body = json_pack ("{s:s}", "location", loc && *loc ? loc : "local");
  size_t ntags = 0;
  char **tags = cli_arg_list (args, "tags", &ntags);
  if (ntags)
    {
      json_t *t = json_object ();
      json_object_set_new (body, "tags", t);
      for (size_t i = 0; i < ntags; i++)
        {
          cleanup_free char *k = NULL, *v = NULL;
          if (strchr (tags[i], '=') == NULL)
            {
              json_object_set_new (t, tags[i], json_string (""));
              continue;
            }
          if (cli_parse_kv (tags[i], &k, &v, err) < 0)
            return -1;
          json_object_set_new (t, k, json_string (v));
        }
    }
  const char *sub = cli_subscription (err);
  if (sub == NULL)
    return -1;
  cleanup_free char *path = rg_path (sub, name);
  struct cli_response r;
  if (cli_http_call ("PUT", path, body, &r, err) < 0)
    return -1;
  int rc = cli_print (stdout, r.body, ctx->output, group_columns, N_GROUP_COLUMNS, err);
  cli_response_clear (&r);
  return rc;
}

int
cli_group_show (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err)
{
  const char *name = required_name (args, err);
  if (name == NULL)
    return -1;
  const char *sub = cli_subscription (err);
  if (sub == NULL)
    return -1;
  cleanup_free char *path = rg_path (sub, name);
  struct cli_response r;
  if (cli_http_call ("GET", path, NULL, &r, err) < 0)
    return -1;
  int rc = cli_print (stdout, r.body, ctx->output, group_columns, N_GROUP_COLUMNS, err);
  cli_response_clear (&r);
  return rc;
}

int
cli_group_list (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err)
{
  (void)args;
  const char *sub = cli_subscription (err);
  if (sub == NULL)
    return -1;
  cleanup_free char *path = rg_path (sub, NULL);
  cleanup_json json_t *all = NULL;
  if (cli_http_list (path, &all, err) < 0)
    return -1;
  return cli_print (stdout, all, ctx->output, group_columns, N_GROUP_COLUMNS, err);
}

int
cli_group_delete (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err)
{
  (void)ctx;
  const char *name = required_name (args, err);
  if (name == NULL)
    return -1;
  if (!cli_confirm (cli_has (args, "yes")))
    return skiff_error_set (err, 0, "operation cancelled");
  const char *sub = cli_subscription (err);
  if (sub == NULL)
    return -1;
  cleanup_free char *path = rg_path (sub, name);
  struct cli_response r;
  if (cli_http_call ("DELETE", path, NULL, &r, err) < 0)
    return -1;
  int rc = 0;
  if (r.status == 202 && !cli_has (args, "no-wait"))
    rc = cli_http_wait_async (r.async_operation, r.location, 3600, err);
  cli_response_clear (&r);
  return rc;
}

const struct cli_opt cli_image_prune_opts[] = { CLI_OPT_END };

int
cli_image_prune (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err)
{
  (void)args;
  const char *sub = cli_subscription (err);
  if (sub == NULL)
    return -1;
  cleanup_free char *path = skiff_strdup_printf ("/subscriptions/%s/providers/Microsoft.ContainerInstance/locations/"
                                                 "local/cachedImages/prune?api-version=2023-05-01",
                                                 sub);
  struct cli_response r;
  if (cli_http_call ("POST", path, NULL, &r, err) < 0)
    return -1;
  int rc = cli_print (stdout, r.body, ctx->output, NULL, 0, err);
  cli_response_clear (&r);
  return rc;
}
