/* skiffd - the skiff daemon: ARM API, store, and agent on one host.
 *
 * Crash-only: killing it never stops a container; the next start re-adopts every
 * group from the store and the monitors' files. */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "agent/agent.h"
#include "api/api.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "identity.h"
#include "netconfig.h"
#include "store/store.h"

#define MAX_LOCATIONS 16
#define MAX_INSECURE 16

static void
usage (FILE *f)
{
  fprintf (f, "usage: skiffd [options]\n"
              "  --data DIR              data folder (default /var/lib/skiff)\n"
              "  --listen ADDR           API address (default 127.0.0.1)\n"
              "  --port N                API port (default 8780; 0 picks a free one)\n"
              "  --location NAME         a location served (repeatable; default local)\n"
              "  --runtime PATH          OCI runtime (default /usr/bin/crun; runc works too)\n"
              "  --monitor PATH          skiff-monitor binary (default: next to skiffd)\n"
              "  --insecure-registry H   allow plain HTTP to registry H[:port] (repeatable)\n"
              "  --registry-ca FILE      also trust the CA certificates in FILE for registries\n"
              "  --backoff-initial-ms N  first restart back-off (default 10000)\n"
              "  --backoff-max-ms N      longest restart back-off (default 300000)\n"
              "  --stop-grace N          seconds between SIGTERM and SIGKILL on stop (default 10)\n"
              "  --log-max-bytes N       per-container log size before rotation (default 4194304)\n"
              "  --workers N             reconcile threads (default 4)\n"
              "  --api-threads N         HTTP event-loop threads (default 2)\n"
              "  --overcommit F          factor on host CPU and memory one group may ask for (default 1)\n"
              "  --tls-cert FILE         serve this PEM certificate chain (default: a local CA's, in DATA/pki)\n"
              "  --tls-key FILE          the private key of --tls-cert\n"
              "  --host-name NAME        a name or address clients use for this host (repeatable)\n"
              "  --socket PATH           plain-HTTP unix socket for local clients (default DATA/api.sock)\n"
              "  --token-lifetime N      access-token lifetime in seconds (default 3600)\n"
              "  --network CIDR|none     the groups' private network (default 10.242.0.0/16)\n"
              "  --bridge NAME           its bridge, also the name of its nftables table (default skiff0)\n"
              "  --public-ips POOL       public addresses: CIDR or FIRST-LAST, or `host` to publish ports on\n"
              "                          this host's own addresses (default 127.42.0.0/16, reached from the host)\n"
              "  --host-address IP       with --public-ips host: the address groups report (default: the first\n"
              "                          non-loopback address)\n"
              "  --dns-zone ZONE         DNS name labels are LABEL.LOCATION.ZONE (default skiff.internal)\n"
              "  --dns-listen ADDR:PORT|none  skiff's DNS server (default 127.0.0.1:8053)\n"
              "  --dns-update-server ADDR[:PORT]  also push the label records there (RFC 2136)\n"
              "  --dns-update-zone ZONE  the zone updated there (default --dns-zone)\n"
              "  --dns-update-key FILE   the TSIG key for the updates (tsig-keygen's format)\n"
              "  --dns-forward ADDR[:PORT],...|none  where containers' other DNS queries go\n"
              "                          (default: the nameservers of /etc/resolv.conf)\n");
}

static int
first_start (const char *data, store_t *store, char **sub, char **tenant, char **token, skiff_error_t *err)
{
  if (store_meta_get (store, "subscription_id", sub, err) < 0 || store_meta_get (store, "tenant_id", tenant, err) < 0)
    return -1;
  if (*sub == NULL)
    {
      char id[40];
      skiff_uuid (id);
      if (store_meta_set (store, "subscription_id", id, err) < 0)
        return -1;
      *sub = skiff_strdup (id);
    }
  if (*tenant == NULL)
    {
      char id[40];
      skiff_uuid (id);
      if (store_meta_set (store, "tenant_id", id, err) < 0)
        return -1;
      *tenant = skiff_strdup (id);
    }
  cleanup_free char *path = skiff_strdup_printf ("%s/admin.token", data);
  skiff_error_t e = NULL;
  if (skiff_read_file (path, 4096, token, NULL, &e) < 0)
    {
      skiff_error_release (&e);
      char hex[65];
      skiff_random_hex (hex, 32);
      cleanup_free char *line = skiff_strdup_printf ("%s\n", hex);
      if (skiff_write_file_atomic (path, line, strlen (line), 0600, err) < 0)
        return -1;
      *token = skiff_strdup (hex);
      log_info ("created the admin token in %s", path);
    }
  char *nl = strchr (*token, '\n');
  if (nl)
    *nl = '\0';
  if (strlen (*token) < 32)
    return skiff_error_set (err, 0, "the admin token in %s is too short", path);
  return 0;
}

int
main (int argc, char **argv)
{
  const char *data = "/var/lib/skiff", *listen_addr = "127.0.0.1", *runtime = "/usr/bin/crun";
  const char *monitor = NULL, *registry_ca = NULL, *tls_cert = NULL, *tls_key = NULL, *socket_path = NULL;
  const char *host_names[MAX_HOST_NAMES + 1] = { 0 };
  int n_host_names = 0, token_lifetime = 3600;
  skiffd_netopts_t netopts = { .network = "10.242.0.0/16",
                               .bridge = "skiff0",
                               .public_ips = "127.42.0.0/16",
                               .dns_zone = "skiff.internal",
                               .dns_listen = "127.0.0.1:8053" };
  int port = 8780, workers = 4, api_threads = 2, backoff_initial = 10000, backoff_max = 300000, grace = 10;
  long long log_max = 4 * 1024 * 1024;
  double overcommit = 1.0;
  const char *locations[MAX_LOCATIONS + 1] = { 0 };
  int n_locations = 0;
  const char *insecure[MAX_INSECURE + 1] = { 0 };
  int n_insecure = 0;
  static const struct option opts[] = { { "data", required_argument, 0, 'd' },
                                        { "listen", required_argument, 0, 'l' },
                                        { "port", required_argument, 0, 'p' },
                                        { "location", required_argument, 0, 'L' },
                                        { "runtime", required_argument, 0, 'r' },
                                        { "monitor", required_argument, 0, 'm' },
                                        { "insecure-registry", required_argument, 0, 'i' },
                                        { "registry-ca", required_argument, 0, 'C' },
                                        { "backoff-initial-ms", required_argument, 0, 'b' },
                                        { "backoff-max-ms", required_argument, 0, 'B' },
                                        { "stop-grace", required_argument, 0, 'g' },
                                        { "log-max-bytes", required_argument, 0, 'x' },
                                        { "workers", required_argument, 0, 'w' },
                                        { "api-threads", required_argument, 0, 't' },
                                        { "overcommit", required_argument, 0, 'o' },
                                        { "tls-cert", required_argument, 0, 'T' },
                                        { "tls-key", required_argument, 0, 'K' },
                                        { "host-name", required_argument, 0, 'H' },
                                        { "socket", required_argument, 0, 'S' },
                                        { "token-lifetime", required_argument, 0, 'E' },
                                        { "network", required_argument, 0, 'N' },
                                        { "bridge", required_argument, 0, 'R' },
                                        { "public-ips", required_argument, 0, 1001 },
                                        { "host-address", required_argument, 0, 1002 },
                                        { "dns-zone", required_argument, 0, 1003 },
                                        { "dns-listen", required_argument, 0, 1004 },
                                        { "dns-update-server", required_argument, 0, 1005 },
                                        { "dns-update-zone", required_argument, 0, 1006 },
                                        { "dns-update-key", required_argument, 0, 1007 },
                                        { "dns-forward", required_argument, 0, 1008 },
                                        { "help", no_argument, 0, 'h' },
                                        { 0, 0, 0, 0 } };
  int c;
  while ((c = getopt_long (argc, argv, "h", opts, NULL)) != -1)
    {
      switch (c)
        {
        case 'd':
          data = optarg;
          break;
        case 'l':
          listen_addr = optarg;
          break;
        case 'p':
          port = atoi (optarg);
          break;
        case 'L':
          if (n_locations < MAX_LOCATIONS)
            locations[n_locations++] = skiff_ascii_lower (skiff_strdup (optarg));
          break;
        case 'r':
          runtime = optarg;
          break;
        case 'm':
          monitor = optarg;
          break;
        case 'i':
          if (n_insecure < MAX_INSECURE)
            insecure[n_insecure++] = optarg;
          break;
        case 'C':
          registry_ca = optarg;
          break;
        case 'b':
          backoff_initial = atoi (optarg);
          break;
        case 'B':
          backoff_max = atoi (optarg);
          break;
        case 'g':
          grace = atoi (optarg);
          break;
        case 'x':
          log_max = atoll (optarg);
          break;
        case 'w':
          workers = atoi (optarg);
          break;
        case 't':
          api_threads = atoi (optarg);
          break;
        case 'o':
          overcommit = atof (optarg);
          break;
        case 'T':
          tls_cert = optarg;
          break;
        case 'K':
          tls_key = optarg;
          break;
        case 'H':
          if (n_host_names < MAX_HOST_NAMES)
            host_names[n_host_names++] = optarg;
          break;
        case 'S':
          socket_path = optarg;
          break;
        case 'E':
          token_lifetime = atoi (optarg);
          break;
        case 'N':
          netopts.network = optarg;
          break;
        case 'R':
          netopts.bridge = optarg;
          break;
        case 1001:
          netopts.public_ips = optarg;
          break;
        case 1002:
          netopts.host_address = optarg;
          break;
        case 1003:
          netopts.dns_zone = optarg;
          break;
        case 1004:
          netopts.dns_listen = optarg;
          break;
        case 1005:
          netopts.dns_update = optarg;
          break;
        case 1006:
          netopts.dns_update_zone = optarg;
          break;
        case 1007:
          netopts.dns_update_key = optarg;
          break;
        case 1008:
          netopts.dns_forward = optarg;
          break;
        case 'h':
          usage (stdout);
          return 0;
        default:
          usage (stderr);
          return 2;
        }
    }
  int locations_owned = n_locations > 0;
  if (n_locations == 0)
    locations[n_locations++] = "local";
  if (port < 0 || port > 65535 || backoff_initial < 0 || backoff_max < backoff_initial || grace < 0 || log_max < 4096
      || overcommit <= 0 || token_lifetime < 60 || token_lifetime > 86400 || (tls_cert == NULL) != (tls_key == NULL))
    {
      fprintf (stderr, "skiffd: invalid option value\n");
      return 2;
    }
  char exe[PATH_MAX];
  ssize_t el = readlink ("/proc/self/exe", exe, sizeof (exe) - 1);
  cleanup_free char *monitor_default = NULL;
  if (monitor == NULL && el > 0)
    {
      exe[el] = '\0';
      monitor = monitor_default = skiff_strdup_printf ("%s/skiff-monitor", dirname (exe));
    }
  if (monitor == NULL || access (monitor, X_OK) < 0)
    {
      fprintf (stderr, "skiffd: skiff-monitor not found (give --monitor)\n");
      return 1;
    }
  umask (022);
  cleanup_error skiff_error_t err = NULL;
  if (skiff_mkdir_p (data, 0700, &err) < 0)
    {
      log_error ("%s", err->msg);
      return 1;
    }
  chmod (data, 0711);
  char realdata[PATH_MAX];
  if (realpath (data, realdata) == NULL)
    {
      log_error ("data folder %s: %s", data, strerror (errno));
      return 1;
    }
  cleanup_free char *dbpath = skiff_strdup_printf ("%s/skiff.db", realdata);
  store_t *store = NULL;
  if (store_open_sqlite (dbpath, &store, &err) < 0)
    {
      log_error ("%s", err->msg);
      return 1;
    }
  cleanup_free char *sub = NULL, *tenant = NULL, *token = NULL;
  if (first_start (realdata, store, &sub, &tenant, &token, &err) < 0)
    {
      log_error ("%s", err->msg);
      return 1;
    }

  /* TLS and the token-signing key */
  identity_t id = { 0 };
  if (identity_setup (realdata, listen_addr, host_names, tls_cert, tls_key, &id, &err) < 0)
    {
      log_error ("%s", err->msg);
      return 1;
    }

  /* Block the signals we handle before any thread starts, so they all inherit the mask. */
  sigset_t set;
  sigemptyset (&set);
  sigaddset (&set, SIGTERM);
  sigaddset (&set, SIGINT);
  sigaddset (&set, SIGHUP);
  pthread_sigmask (SIG_BLOCK, &set, NULL);
  signal (SIGPIPE, SIG_IGN);

  skiffd_netconfig_t nc;
  if (skiffd_netconfig_parse (&netopts, &nc, &err) < 0)
    {
      log_error ("%s", err->msg);
      return 2;
    }
  dns_server_t *dns = NULL;
  if (nc.with_network && nc.with_dns && dns_server_start (nc.dns_addr, nc.dns_port, &dns, &err) < 0)
    {
      log_error ("DNS server on %s:%d: %s (--dns-listen none runs without)", nc.dns_addr, nc.dns_port, err->msg);
      return 1;
    }
  if (dns && dns_server_set_upstreams (dns, nc.upstreams, nc.n_upstreams, &err) < 0)
    {
      log_error ("--dns-forward: %s", err->msg);
      return 1;
    }
  for (size_t i = 0; dns && i < nc.n_upstreams; i++)
    {
      char ip[16];
      log_info ("DNS: containers' other queries go to %s:%d", net_format_ip (nc.upstreams[i].addr, ip),
                nc.upstreams[i].port);
    }
  agent_config_t acfg = { .data_dir = realdata,
                          .monitor_path = monitor,
                          .runtime_path = runtime,
                          .id_shift = 100000,
                          .id_range = 65536,
                          .workers = workers,
                          .backoff_initial_ms = backoff_initial,
                          .backoff_max_ms = backoff_max,
                          .stop_grace_seconds = grace,
                          .log_max_bytes = log_max,
                          .insecure_registries = insecure,
                          .registry_ca_file = registry_ca,
                          .net = nc.with_network ? &nc.net : NULL,
                          .public_first = nc.public_first,
                          .public_last = nc.public_last,
                          .host_address = nc.host_address,
                          .dns_zone = nc.dns_zone,
                          .dns = dns,
                          .dns_push = nc.with_push ? &nc.push : NULL };
  agent_t *agent = NULL;
  if (agent_start (&acfg, store, &agent, &err) < 0)
    {
      log_error ("agent: %s", err->msg);
      return 1;
    }
  struct sysinfo si;
  sysinfo (&si);
  api_ctx_t ctx
      = { .store = store,
          .agent = agent,
          .data_dir = realdata,
          .subscription_id = sub,
          .tenant_id = tenant,
          .admin_token = token,
          .limits = { .host_cpus = (double)sysconf (_SC_NPROCESSORS_ONLN) * overcommit,
                      .host_memory_gb = (double)si.totalram * si.mem_unit / (1024.0 * 1024 * 1024) * overcommit,
                      .locations = locations },
          .page_size = 100,
          .cache = api_cache_new (),
          .signing_key = id.signing_key,
          .token_lifetime_s = token_lifetime,
          .sessions = api_sessions_new (),
          .host_net = nc.with_network ? nc.net.subnet : 0,
          .host_net_prefix = nc.with_network ? nc.net.prefix : 0 };
  cleanup_free char *default_socket = skiff_strdup_printf ("%s/api.sock", realdata);
  api_server_config_t scfg = { .address = listen_addr,
                               .port = port,
                               .tls_cert = id.cert,
                               .tls_key = id.key,
                               .unix_path = socket_path ? socket_path : default_socket,
                               .threads = api_threads };
  api_server_t *server = NULL;
  if (api_server_start (&ctx, &scfg, &server, &err) < 0)
    {
      log_error ("api: %s", err->msg);
      return 1;
    }
  identity_audiences (&id, api_server_port (server));
  ctx.audiences = (const char *const *)id.audiences;
  const char *ep_host = strcmp (listen_addr, "0.0.0.0") == 0 ? "127.0.0.1" : listen_addr;
  cleanup_free char *endpoint = skiff_strdup_printf ("https://%s:%d\n", ep_host, api_server_port (server));
  cleanup_free char *epath = skiff_strdup_printf ("%s/endpoint", realdata);
  if (skiff_write_file_atomic (epath, endpoint, strlen (endpoint), 0644, &err) < 0)
    log_warn ("%s", err->msg);
  log_info ("skiffd serving https://%s:%d and %s (data %s, subscription %s, tenant %s)", listen_addr,
            api_server_port (server), scfg.unix_path, realdata, sub, tenant);
  if (id.ca)
    log_info ("clients trust the local CA %s", id.ca);
  if (dns)
    log_info ("DNS for %s and private DNS zones on %s:%d", nc.dns_zone, nc.dns_addr, dns_server_port (dns));

  int sig = 0;
  sigwait (&set, &sig);
  log_info ("skiffd: signal %d, exiting (containers keep running)", sig);
  api_server_stop (server);
  agent_stop (agent);
  dns_server_stop (dns);
  skiffd_netconfig_clear (&nc);
  store_close (store);
  api_cache_free (ctx.cache);
  api_sessions_free (ctx.sessions);
  identity_clear (&id);
  for (int i = 0; i < n_locations; i++)
    if (locations_owned)
      free ((char *)locations[i]);
  return 0;
}
