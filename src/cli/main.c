/* main.c - `skiff`: command dispatch, help text and global flags. The verbs live in container.c,
 * group.c, sp.c and role.c; this file only finds the verb, parses its flags and turns errors into
 * exit statuses. A group may be several words ("role assignment"). */
#include "cli/cli.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"

struct command
{
  const char *group; /* "container", "group", "role assignment": words separated by one blank */
  const char *verb;
  const char *summary;
  const struct cli_opt *opts;
  cli_verb_fn run;
};

static int cmd_version (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err);
static int cmd_ca_show (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err);

static const struct cli_opt no_opts[] = { CLI_OPT_END };

static const struct command commands[] = {
  { "container", "create", "Create a container group (from flags or --file group.yaml) and wait until it runs.",
    cli_container_create_opts, cli_container_create },
  { "container", "show", "Show the details of a container group.", cli_container_show_opts, cli_container_show },
  { "container", "list", "List container groups in a resource group or the subscription.", cli_container_list_opts,
    cli_container_list },
  { "container", "delete", "Delete a container group.", cli_container_delete_opts, cli_container_delete },
  { "container", "logs", "Print the logs of a container in a container group.", cli_container_logs_opts,
    cli_container_logs },
  { "container", "start", "Start all containers in a container group.", cli_container_action_opts,
    cli_container_start },
  { "container", "stop", "Stop all containers in a container group.", cli_container_action_opts, cli_container_stop },
  { "container", "restart", "Restart all containers in a container group.", cli_container_action_opts,
    cli_container_restart },
  { "container", "export", "Export a container group as ACI YAML (or JSON with -o json).", cli_container_export_opts,
    cli_container_export },
  { "container", "exec", "Run a command in a running container, connected to this terminal.", cli_container_exec_opts,
    cli_container_exec },
  { "container", "attach", "Stream the output of a running container.", cli_container_attach_opts,
    cli_container_attach },
  { "group", "create", "Create a resource group.", cli_group_create_opts, cli_group_create },
  { "group", "show", "Show a resource group.", cli_group_show_opts, cli_group_show },
  { "group", "list", "List resource groups.", cli_group_list_opts, cli_group_list },
  { "group", "delete", "Delete a resource group.", cli_group_delete_opts, cli_group_delete },
  { "image", "prune", "Remove cached image layers that no container group uses.", cli_image_prune_opts,
    cli_image_prune },
  { "sp", "create", "Create a service principal; prints its appId, password and tenant.", cli_sp_create_opts,
    cli_sp_create },
  { "sp", "list", "List service principals.", cli_sp_list_opts, cli_sp_list },
  { "sp", "show", "Show a service principal.", cli_sp_id_opts, cli_sp_show },
  { "sp", "delete", "Delete a service principal and its role assignments.", cli_sp_id_opts, cli_sp_delete },
  { "role assignment", "create", "Give a principal a role (Owner, Contributor, Reader) at a scope.",
    cli_role_create_opts, cli_role_assignment_create },
  { "role assignment", "list", "List role assignments at a scope.", cli_role_list_opts, cli_role_assignment_list },
  { "role assignment", "delete", "Delete role assignments by id, or by assignee and role at a scope.",
    cli_role_delete_opts, cli_role_assignment_delete },
  { "ca", "show", "Show where skiffd's local CA certificate is and how clients trust it.", no_opts, cmd_ca_show },
  { NULL, "version", "Show the version of skiff.", no_opts, cmd_version },
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static int
cmd_version (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err)
{
  (void)args;
  json_t *v = json_pack ("{s:s}", "skiff", SKIFF_VERSION);
  int rc = cli_print (stdout, v, ctx->output, NULL, 0, err);
  json_decref (v);
  return rc;
}

/* Prints the local CA's path (read on this host, from $SKIFF_DATA/pki/ca.pem) and the ways
 * to trust it; it does not need the server. */
static int
cmd_ca_show (struct cli_ctx *ctx, struct cli_args *args, skiff_error_t *err)
{
  (void)args;
  const char *dir = getenv ("SKIFF_DATA");
  cleanup_free char *ca = skiff_strdup_printf ("%s/pki/ca.pem", dir && *dir ? dir : "/var/lib/skiff");
  if (access (ca, R_OK) < 0)
    return skiff_error_set (err, errno, "no local CA at %s (is SKIFF_DATA the folder skiffd uses?)", ca);
  cleanup_free char *az = skiff_strdup_printf ("export REQUESTS_CA_BUNDLE=%s", ca);
  cleanup_free char *ws = skiff_strdup_printf ("export WEBSOCKET_CLIENT_CA_BUNDLE=%s", ca);
  cleanup_free char *node = skiff_strdup_printf ("export NODE_EXTRA_CA_CERTS=%s", ca);
  cleanup_free char *curl = skiff_strdup_printf ("curl --cacert %s ...", ca);
  cleanup_free char *sys
      = skiff_strdup_printf ("cp %s /usr/local/share/ca-certificates/skiff.crt && update-ca-certificates", ca);
  json_t *v = json_pack ("{s:s,s:{s:s,s:s,s:s,s:s,s:s}}", "caFile", ca, "trust", "azureCli", az, "azureCliExec", ws,
                         "node", node, "curl", curl, "systemStore", sys);
  int rc = cli_print (stdout, v, ctx->output, NULL, 0, err);
  json_decref (v);
  return rc;
}

bool
cli_confirm (bool yes)
{
  if (yes || !isatty (STDIN_FILENO))
    return true;
  fputs ("Are you sure you want to perform this operation? (y/n): ", stderr);
  fflush (stderr);
  char line[64];
  if (fgets (line, sizeof line, stdin) == NULL)
    return false;
  return line[0] == 'y' || line[0] == 'Y';
}

static void
print_opts (FILE *f, const struct cli_opt *opts)
{
  for (size_t i = 0; opts[i].longs; i++)
    {
      const struct cli_opt *o = &opts[i];
      char names[160] = "";
      size_t len = 0;
      const char *p = o->longs;
      while (*p && len < sizeof names - 8)
        {
          len += (size_t)snprintf (names + len, sizeof names - len, "%s--", len ? " " : "");
          while (*p && *p != '|' && len < sizeof names - 2)
            names[len++] = *p++;
          names[len] = '\0';
          if (*p == '|')
            p++;
        }
      for (const char *s = o->shorts; s && *s && len < sizeof names - 4; s++)
        len += (size_t)snprintf (names + len, sizeof names - len, " -%c", *s);
      if (o->metavar && len < sizeof names - 2)
        snprintf (names + len, sizeof names - len, " %s%s", o->metavar, o->kind == CLI_OPT_LIST ? " ..." : "");
      fprintf (f, "    %-40s %s\n", names, o->help ? o->help : "");
    }
}

static void
print_command_help (FILE *f, const struct command *c)
{
  fprintf (f, "Command\n    skiff %s%s%s : %s\n\n", c->group ? c->group : "", c->group ? " " : "", c->verb, c->summary);
  if (c->opts[0].longs)
    {
      fputs ("Arguments\n", f);
      print_opts (f, c->opts);
      fputc ('\n', f);
    }
  fputs ("Global Arguments\n", f);
  print_opts (f, cli_global_opts);
}

/* How many words of `group`, from its start, equal argv[0], argv[1], ... (0 when the first does not). */
static int
group_prefix_words (const char *group, int argc, char **argv)
{
  int k = 0;
  const char *p = group;
  while (*p && k < argc)
    {
      size_t l = strcspn (p, " ");
      if (strlen (argv[k]) != l || strncmp (argv[k], p, l) != 0)
        break;
      k++;
      p += l;
      if (*p == ' ')
        p++;
    }
  return k;
}

/* Number of words in a group name. */
static int
group_word_count (const char *group)
{
  int n = 1;
  for (const char *p = group; *p; p++)
    n += *p == ' ';
  return n;
}

/* Lists what follows the group prefix `prefix` (one or more words): its verbs, and for longer
 * groups the remaining words with the verb ("assignment create"). */
static void
print_group_help (FILE *f, const char *prefix)
{
  size_t pl = strlen (prefix);
  fprintf (f, "Group\n    skiff %s\n\nCommands:\n", prefix);
  for (size_t i = 0; i < N_COMMANDS; i++)
    {
      const char *g = commands[i].group;
      if (g == NULL || strncmp (g, prefix, pl) != 0 || (g[pl] != '\0' && g[pl] != ' '))
        continue;
      char words[64];
      snprintf (words, sizeof words, "%s%s%s", g[pl] ? g + pl + 1 : "", g[pl] ? " " : "", commands[i].verb);
      fprintf (f, "    %-18s : %s\n", words, commands[i].summary);
    }
  fprintf (f, "\nRun 'skiff %s <command> --help' for the arguments of a command.\n", prefix);
}

static void
print_main_help (FILE *f)
{
  fputs ("skiff - a self-hosted Azure Container Instances look-alike.\n\n"
         "Usage: skiff <group> <command> [arguments]\n\n"
         "Groups:\n"
         "    container  : Manage container groups (create, show, list, delete, logs, start, stop, restart,\n"
         "                 export, exec, attach).\n"
         "    group      : Manage resource groups (create, show, list, delete).\n"
         "    sp         : Manage service principals (create, list, show, delete).\n"
         "    role       : Manage role assignments (role assignment create, list, delete).\n"
         "    ca         : Show where skiffd's local CA is and how to trust it (ca show).\n\n"
         "Commands:\n"
         "    version    : Show the version of skiff.\n\n"
         "Environment:\n"
         "    SKIFF_ENDPOINT      base URL of skiffd, http:// or https:// (default: the unix socket\n"
         "                        $SKIFF_DATA/api.sock when it exists, else the first line of $SKIFF_DATA/endpoint)\n"
         "    SKIFF_TOKEN         bearer token (default: the first line of $SKIFF_DATA/admin.token)\n"
         "    SKIFF_DATA          data folder (default /var/lib/skiff)\n"
         "    SKIFF_SUBSCRIPTION  subscription id (default: the first one the server lists)\n"
         "    SKIFF_CA_BUNDLE     CA certificates for an https endpoint (default: $SKIFF_DATA/pki/ca.pem\n"
         "                        for the endpoint file, else the system store)\n\n"
         "Exit status: 0 success, 1 error, 2 bad usage, 3 resource not found.\n",
         f);
}

static bool
is_help (const char *s)
{
  return strcmp (s, "-h") == 0 || strcmp (s, "--help") == 0 || strcmp (s, "help") == 0;
}

static int
run_command (const struct command *c, int argc, char **argv)
{
  cleanup_error skiff_error_t err = NULL;
  struct cli_args args;
  if (cli_args_parse (c->opts, argc, argv, &args, &err) < 0)
    {
      int rc = cli_report_error (err);
      fprintf (stderr, "Try 'skiff %s%s%s --help' for more information.\n", c->group ? c->group : "",
               c->group ? " " : "", c->verb);
      return rc;
    }
  if (cli_has (&args, "help"))
    {
      print_command_help (stdout, c);
      cli_args_free (&args);
      return CLI_EXIT_OK;
    }
  struct cli_ctx ctx = { .output = CLI_OUT_JSON };
  const char *o = cli_arg (&args, "output");
  if (o)
    {
      ctx.output_given = true;
      if (cli_output_parse (o, &ctx.output, &err) < 0)
        {
          cli_args_free (&args);
          return cli_report_error (err);
        }
    }
  cli_http_configure (cli_has (&args, "debug"), cli_arg (&args, "subscription"));
  int rc = c->run (&ctx, &args, &err);
  cli_args_free (&args);
  fflush (stdout);
  if (rc < 0)
    return cli_report_error (err);
  return CLI_EXIT_OK;
}

int
main (int argc, char **argv)
{
  /* A closed pipe (skiff ... | head) should end us quietly, as with any filter. */
  signal (SIGPIPE, SIG_DFL);

  if (argc < 2 || is_help (argv[1]))
    {
      print_main_help (stdout);
      return CLI_EXIT_OK;
    }
  if (strcmp (argv[1], "--version") == 0)
    {
      printf ("skiff %s\n", SKIFF_VERSION);
      return CLI_EXIT_OK;
    }
  for (size_t i = 0; i < N_COMMANDS; i++)
    if (commands[i].group == NULL && strcmp (commands[i].verb, argv[1]) == 0)
      return run_command (&commands[i], argc - 2, argv + 2);

  /* The longest command group spelled by argv[1..]; then its verb. */
  const struct command *best = NULL;
  int best_k = 0;
  int best_words = 0; /* words of argv matched by some group's prefix */
  for (size_t i = 0; i < N_COMMANDS; i++)
    {
      if (commands[i].group == NULL)
        continue;
      int k = group_prefix_words (commands[i].group, argc - 1, argv + 1);
      if (k == group_word_count (commands[i].group) && k + 1 < argc && strcmp (commands[i].verb, argv[k + 1]) == 0)
        {
          if (best == NULL || k > best_k)
            {
              best = &commands[i];
              best_k = k;
            }
        }
      if (k > best_words)
        best_words = k;
    }
  if (best)
    return run_command (best, argc - best_k - 2, argv + best_k + 2);
  if (best_words == 0)
    {
      fprintf (stderr, "ERROR: '%s' is misspelled or not recognized by the system.\n", argv[1]);
      fputs ("Run 'skiff --help' to see the available commands.\n", stderr);
      return CLI_EXIT_USAGE;
    }
  cleanup_free char *prefix = skiff_strdup (argv[1]);
  for (int i = 2; i <= best_words; i++)
    {
      char *n = skiff_strdup_printf ("%s %s", prefix, argv[i]);
      free (prefix);
      prefix = n;
    }
  if (argc <= best_words + 1 || is_help (argv[best_words + 1]))
    {
      print_group_help (stdout, prefix);
      return CLI_EXIT_OK;
    }
  fprintf (stderr, "ERROR: '%s' is misspelled or not recognized by the system.\n", argv[best_words + 1]);
  fprintf (stderr, "Run 'skiff %s --help' to see the available commands.\n", prefix);
  return CLI_EXIT_USAGE;
}
