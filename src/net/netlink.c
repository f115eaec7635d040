/* netlink.c - the few rtnetlink requests the net module needs, over libmnl.
 *
 * Each request is sent with NLM_F_ACK and answered synchronously; errors come back as the
 * kernel's errno. A socket inside a group's network namespace is created by a short-lived
 * thread that setns()'d into it: the socket stays bound to that namespace for its life, so
 * the caller's thread (skiffd's) never changes namespace. */
#include "net/net_internal.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"

#define NL_BUF_SIZE 32768
#define NL_MAX_NAMES 65536
#define NL_MAX_ADDRS 4096

static int
nl_bind (nl_t *nl, skiff_error_t *err)
{
  if (mnl_socket_bind (nl->sock, 0, MNL_SOCKET_AUTOPID) < 0)
    {
      int e = errno;
      nl_close (nl);
      return skiff_error_set (err, e, "bind netlink socket");
    }
  nl->portid = mnl_socket_get_portid (nl->sock);
  nl->seq = (uint32_t)time (NULL);
  nl->buf = malloc (NL_BUF_SIZE);
  if (nl->buf == NULL)
    {
      nl_close (nl);
      return skiff_error_set (err, ENOMEM, "netlink buffer");
    }
  return 0;
}

int
nl_open (nl_t *nl, skiff_error_t *err)
{
  memset (nl, 0, sizeof *nl);
  nl->sock = mnl_socket_open2 (NETLINK_ROUTE, SOCK_CLOEXEC);
  if (nl->sock == NULL)
    return skiff_error_set (err, errno, "open netlink socket");
  return nl_bind (nl, err);
}

struct nsopen_job
{
  int netns_fd;
  struct mnl_socket *sock;
  int status;
  const char *what;
};

static void *
nsopen_thread (void *arg)
{
  struct nsopen_job *j = arg;
  if (setns (j->netns_fd, CLONE_NEWNET) < 0)
    {
      j->status = errno;
      j->what = "join network namespace";
      return NULL;
    }
  j->sock = mnl_socket_open2 (NETLINK_ROUTE, SOCK_CLOEXEC);
  if (j->sock == NULL)
    {
      j->status = errno;
      j->what = "open netlink socket in network namespace";
    }
  /* the thread ends here, and its namespace membership with it */
  return NULL;
}

int
nl_open_netns (nl_t *nl, int netns_fd, skiff_error_t *err)
{
  memset (nl, 0, sizeof *nl);
  struct nsopen_job job = { netns_fd, NULL, 0, "" };
  pthread_attr_t attr;
  pthread_t th;
  int r = pthread_attr_init (&attr);
  if (r != 0)
    return skiff_error_set (err, r, "pthread_attr_init");
  /* a small stack keeps the thread cheap: it only calls setns and socket */
  pthread_attr_setstacksize (&attr, 256 * 1024);
  r = pthread_create (&th, &attr, nsopen_thread, &job);
  pthread_attr_destroy (&attr);
  if (r != 0)
    return skiff_error_set (err, r, "pthread_create");
  pthread_join (th, NULL);
  if (job.status != 0)
    return skiff_error_set (err, job.status, "%s", job.what);
  nl->sock = job.sock;
  return nl_bind (nl, err);
}

void
nl_close (nl_t *nl)
{
  if (nl->sock)
    mnl_socket_close (nl->sock);
  nl->sock = NULL;
  free (nl->buf);
  nl->buf = NULL;
}

/* Sends nlh and reads the answer until the ACK (or DONE for a dump), handing each data
 * message to cb. Returns 0, or -1 with errno set (the kernel's error for NLMSG_ERROR). */
static int
nl_talk (nl_t *nl, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
  nlh->nlmsg_seq = ++nl->seq;
  /* NLM_F_DUMP shares its bits with NLM_F_EXCL and NLM_F_REPLACE: only a GET request
   * (rtnetlink's types 18, 22, 26, ... are GETs) is a dump */
  int is_dump = (nlh->nlmsg_type & 3) == 2 && (nlh->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;
  if (!is_dump)
    nlh->nlmsg_flags |= NLM_F_ACK;
  if (mnl_socket_sendto (nl->sock, nlh, nlh->nlmsg_len) < 0)
    return -1;
  for (;;)
    {
      ssize_t n = mnl_socket_recvfrom (nl->sock, nl->buf, NL_BUF_SIZE);
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          return -1;
        }
      int r = mnl_cb_run (nl->buf, (size_t)n, nlh->nlmsg_seq, nl->portid, cb, data);
      if (r < 0)
        return -1;
      if (r == MNL_CB_STOP)
        return 0;
    }
}

static struct nlmsghdr *
link_msg (char *buf, uint16_t type, uint16_t flags, int index)
{
  struct nlmsghdr *nlh = mnl_nlmsg_put_header (buf);
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = NLM_F_REQUEST | flags;
  struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header (nlh, sizeof *ifi);
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = index;
  return nlh;
}

struct link_info
{
  int index;
  char *kind;
};

static int
linkinfo_attr_cb (const struct nlattr *attr, void *data)
{
  struct link_info *li = data;
  if (mnl_attr_get_type (attr) == IFLA_INFO_KIND && li->kind && mnl_attr_validate (attr, MNL_TYPE_STRING) == 0)
    {
      const char *k = mnl_attr_get_str (attr);
      size_t len = strnlen (k, mnl_attr_get_payload_len (attr));
      if (len > 31)
        len = 31;
      memcpy (li->kind, k, len);
      li->kind[len] = '\0';
    }
  return MNL_CB_OK;
}

static int
link_attr_cb (const struct nlattr *attr, void *data)
{
  if (mnl_attr_get_type (attr) == IFLA_LINKINFO && mnl_attr_validate (attr, MNL_TYPE_NESTED) == 0)
    mnl_attr_parse_nested (attr, linkinfo_attr_cb, data);
  return MNL_CB_OK;
}

static int
link_get_cb (const struct nlmsghdr *nlh, void *data)
{
  struct link_info *li = data;
  if (nlh->nlmsg_type != RTM_NEWLINK || mnl_nlmsg_get_payload_len (nlh) < sizeof (struct ifinfomsg))
    return MNL_CB_OK;
  const struct ifinfomsg *ifi = mnl_nlmsg_get_payload (nlh);
  li->index = ifi->ifi_index;
  mnl_attr_parse (nlh, sizeof *ifi, link_attr_cb, li);
  return MNL_CB_OK;
}

int
nl_link_get (nl_t *nl, const char *name, int *index, char *kind, skiff_error_t *err)
{
  char buf[MNL_SOCKET_BUFFER_SIZE];
  struct nlmsghdr *nlh = link_msg (buf, RTM_GETLINK, 0, 0);
  mnl_attr_put_strz (nlh, IFLA_IFNAME, name);
  mnl_attr_put_u32 (nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  struct link_info li = { 0, kind };
  if (kind)
    kind[0] = '\0';
  *index = 0;
  if (nl_talk (nl, nlh, link_get_cb, &li) < 0)
    {
      if (errno == ENODEV)
        return 0;
      return skiff_error_set (err, errno, "look up interface `%s`", name);
    }
  *index = li.index;
  return 0;
}

int
nl_link_del (nl_t *nl, int index, skiff_error_t *err)
{
  char buf[MNL_SOCKET_BUFFER_SIZE];
  struct nlmsghdr *nlh = link_msg (buf, RTM_DELLINK, 0, index);
  if (nl_talk (nl, nlh, NULL, NULL) < 0 && errno != ENODEV)
    return skiff_error_set (err, errno, "delete interface %d", index);
  return 0;
}

int
nl_link_up (nl_t *nl, const char *name, skiff_error_t *err)
{
  char buf[MNL_SOCKET_BUFFER_SIZE];
  struct nlmsghdr *nlh = link_msg (buf, RTM_NEWLINK, 0, 0);
  struct ifinfomsg *ifi = mnl_nlmsg_get_payload (nlh);
  ifi->ifi_flags = IFF_UP;
  ifi->ifi_change = IFF_UP;
  mnl_attr_put_strz (nlh, IFLA_IFNAME, name);
  if (nl_talk (nl, nlh, NULL, NULL) < 0)
    return skiff_error_set (err, errno, "bring `%s` up", name);
  return 0;
}

int
nl_bridge_add (nl_t *nl, const char *name, skiff_error_t *err)
{
  return nl_link_add_kind (nl, name, "bridge", err);
}

int
nl_link_add_kind (nl_t *nl, const char *name, const char *kind, skiff_error_t *err)
{
  char buf[MNL_SOCKET_BUFFER_SIZE];
  struct nlmsghdr *nlh = link_msg (buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0);
  mnl_attr_put_strz (nlh, IFLA_IFNAME, name);
  struct nlattr *info = mnl_attr_nest_start (nlh, IFLA_LINKINFO);
  mnl_attr_put_strz (nlh, IFLA_INFO_KIND, kind);
  mnl_attr_nest_end (nlh, info);
  if (nl_talk (nl, nlh, NULL, NULL) < 0 && errno != EEXIST)
    return skiff_error_set (err, errno, "create %s `%s`", kind, name);
  return 0;
}

int
nl_veth_add (nl_t *nl, const char *name, int master_index, const char *peer_name, int peer_netns_fd,
             const uint8_t *peer_mac, skiff_error_t *err)
{
  char buf[MNL_SOCKET_BUFFER_SIZE];
  struct nlmsghdr *nlh = link_msg (buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0);
  struct ifinfomsg *ifi = mnl_nlmsg_get_payload (nlh);
  ifi->ifi_flags = IFF_UP;
  ifi->ifi_change = IFF_UP;
  mnl_attr_put_strz (nlh, IFLA_IFNAME, name);
  mnl_attr_put_u32 (nlh, IFLA_MASTER, (uint32_t)master_index);
  struct nlattr *info = mnl_attr_nest_start (nlh, IFLA_LINKINFO);
  mnl_attr_put_strz (nlh, IFLA_INFO_KIND, "veth");
  struct nlattr *data = mnl_attr_nest_start (nlh, IFLA_INFO_DATA);
  struct nlattr *peer = mnl_attr_nest_start (nlh, VETH_INFO_PEER);
  /* the peer's attributes follow its own ifinfomsg */
  struct ifinfomsg *pifi = mnl_nlmsg_put_extra_header (nlh, sizeof *pifi);
  pifi->ifi_family = AF_UNSPEC; /* not IFF_UP: the peer cannot be opened before its pair exists (ENOTCONN) */
  mnl_attr_put_strz (nlh, IFLA_IFNAME, peer_name);
  if (peer_mac)
    mnl_attr_put (nlh, IFLA_ADDRESS, 6, peer_mac);
  mnl_attr_put_u32 (nlh, IFLA_NET_NS_FD, (uint32_t)peer_netns_fd);
  mnl_attr_nest_end (nlh, peer);
  mnl_attr_nest_end (nlh, data);
  mnl_attr_nest_end (nlh, info);
  if (nl_talk (nl, nlh, NULL, NULL) < 0)
    return skiff_error_set (err, errno, "create veth `%s`", name);
  return 0;
}

static struct nlmsghdr *
addr_msg (char *buf, uint16_t type, uint16_t flags, int ifindex, uint32_t addr, int prefix)
{
  struct nlmsghdr *nlh = mnl_nlmsg_put_header (buf);
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = NLM_F_REQUEST | flags;
  struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header (nlh, sizeof *ifa);
  ifa->ifa_family = AF_INET;
  ifa->ifa_prefixlen = (unsigned char)prefix;
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  ifa->ifa_index = (unsigned)ifindex;
  mnl_attr_put_u32 (nlh, IFA_LOCAL, htonl (addr));
  mnl_attr_put_u32 (nlh, IFA_ADDRESS, htonl (addr));
  return nlh;
}

int
nl_addr_replace (nl_t *nl, int ifindex, uint32_t addr, int prefix, skiff_error_t *err)
{
  char buf[MNL_SOCKET_BUFFER_SIZE];
  struct nlmsghdr *nlh = addr_msg (buf, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, ifindex, addr, prefix);
  uint32_t mask = prefix ? 0xffffffffu << (32 - prefix) : 0;
  mnl_attr_put_u32 (nlh, IFA_BROADCAST, htonl (addr | ~mask));
  if (nl_talk (nl, nlh, NULL, NULL) < 0)
    return skiff_error_set (err, errno, "add address to interface %d", ifindex);
  return 0;
}

struct addr_entry
{
  uint32_t addr; /* host order */
  int prefix;
};

struct addr_list
{
  int ifindex;
  struct addr_entry *v;
  size_t n;
  int overflow;
};

static int
addr_attr_cb (const struct nlattr *attr, void *data)
{
  uint32_t *local = data;
  if (mnl_attr_get_type (attr) == IFA_LOCAL && mnl_attr_validate (attr, MNL_TYPE_U32) == 0)
    *local = ntohl (mnl_attr_get_u32 (attr));
  return MNL_CB_OK;
}

static int
addr_dump_cb (const struct nlmsghdr *nlh, void *data)
{
  struct addr_list *l = data;
  if (nlh->nlmsg_type != RTM_NEWADDR || mnl_nlmsg_get_payload_len (nlh) < sizeof (struct ifaddrmsg))
    return MNL_CB_OK;
  const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload (nlh);
  if (ifa->ifa_family != AF_INET || (int)ifa->ifa_index != l->ifindex)
    return MNL_CB_OK;
  uint32_t local = 0;
  mnl_attr_parse (nlh, sizeof *ifa, addr_attr_cb, &local);
  if (l->n >= NL_MAX_ADDRS)
    {
      l->overflow = 1;
      return MNL_CB_OK;
    }
  l->v[l->n].addr = local;
  l->v[l->n].prefix = ifa->ifa_prefixlen;
  l->n++;
  return MNL_CB_OK;
}

int
nl_addr_prune (nl_t *nl, int ifindex, const uint32_t *keep, const int *prefixes, size_t n_keep, skiff_error_t *err)
{
  char buf[MNL_SOCKET_BUFFER_SIZE];
  struct nlmsghdr *nlh = mnl_nlmsg_put_header (buf);
  nlh->nlmsg_type = RTM_GETADDR;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header (nlh, sizeof *ifa);
  ifa->ifa_family = AF_INET;
  cleanup_free struct addr_entry *v = calloc (NL_MAX_ADDRS, sizeof *v);
  if (v == NULL)
    return skiff_error_set (err, ENOMEM, "address list");
  struct addr_list l = { ifindex, v, 0, 0 };
  if (nl_talk (nl, nlh, addr_dump_cb, &l) < 0)
    return skiff_error_set (err, errno, "list addresses of interface %d", ifindex);
  if (l.overflow)
    return skiff_error_set (err, E2BIG, "interface %d has more than %d addresses", ifindex, NL_MAX_ADDRS);
  for (size_t i = 0; i < l.n; i++)
    {
      int kept = 0;
      for (size_t k = 0; k < n_keep && !kept; k++)
        kept = v[i].addr == keep[k] && v[i].prefix == prefixes[k];
      if (kept)
        continue;
      nlh = addr_msg (buf, RTM_DELADDR, 0, ifindex, v[i].addr, v[i].prefix);
      if (nl_talk (nl, nlh, NULL, NULL) < 0 && errno != EADDRNOTAVAIL)
        return skiff_error_set (err, errno, "remove old address from interface %d", ifindex);
    }
  return 0;
}

int
nl_route_default (nl_t *nl, int ifindex, uint32_t gateway, skiff_error_t *err)
{
  char buf[MNL_SOCKET_BUFFER_SIZE];
  struct nlmsghdr *nlh = mnl_nlmsg_put_header (buf);
  nlh->nlmsg_type = RTM_NEWROUTE;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE;
  struct rtmsg *rtm = mnl_nlmsg_put_extra_header (nlh, sizeof *rtm);
  rtm->rtm_family = AF_INET;
  rtm->rtm_dst_len = 0;
  rtm->rtm_table = RT_TABLE_MAIN;
  rtm->rtm_protocol = RTPROT_BOOT;
  rtm->rtm_scope = RT_SCOPE_UNIVERSE;
  rtm->rtm_type = RTN_UNICAST;
  mnl_attr_put_u32 (nlh, RTA_GATEWAY, htonl (gateway));
  mnl_attr_put_u32 (nlh, RTA_OIF, (uint32_t)ifindex);
  if (nl_talk (nl, nlh, NULL, NULL) < 0)
    return skiff_error_set (err, errno, "add default route");
  return 0;
}

struct name_list
{
  const char *prefix;
  size_t prefix_len;
  char **v;
  size_t n, cap;
  int failed; /* errno */
};

static int
name_attr_cb (const struct nlattr *attr, void *data)
{
  const char **name = data;
  if (mnl_attr_get_type (attr) == IFLA_IFNAME && mnl_attr_validate (attr, MNL_TYPE_NUL_STRING) == 0)
    *name = mnl_attr_get_str (attr);
  return MNL_CB_OK;
}

static int
name_dump_cb (const struct nlmsghdr *nlh, void *data)
{
  struct name_list *l = data;
  if (nlh->nlmsg_type != RTM_NEWLINK || mnl_nlmsg_get_payload_len (nlh) < sizeof (struct ifinfomsg) || l->failed)
    return MNL_CB_OK;
  const char *name = NULL;
  mnl_attr_parse (nlh, sizeof (struct ifinfomsg), name_attr_cb, &name);
  if (name == NULL || strncmp (name, l->prefix, l->prefix_len) != 0 || strnlen (name, IFNAMSIZ) >= IFNAMSIZ)
    return MNL_CB_OK;
  if (l->n + 1 >= l->cap)
    {
      if (l->cap >= NL_MAX_NAMES)
        {
          l->failed = E2BIG;
          return MNL_CB_OK;
        }
      size_t cap = l->cap ? l->cap * 2 : 16;
      char **nv = realloc (l->v, cap * sizeof *nv);
      if (nv == NULL)
        {
          l->failed = ENOMEM;
          return MNL_CB_OK;
        }
      l->v = nv;
      l->cap = cap;
    }
  l->v[l->n++] = skiff_strdup (name);
  l->v[l->n] = NULL;
  return MNL_CB_OK;
}

int
nl_link_names (nl_t *nl, const char *prefix, char ***names, skiff_error_t *err)
{
  char buf[MNL_SOCKET_BUFFER_SIZE];
  struct nlmsghdr *nlh = link_msg (buf, RTM_GETLINK, NLM_F_DUMP, 0);
  mnl_attr_put_u32 (nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  struct name_list l = { prefix, strlen (prefix), NULL, 0, 0, 0 };
  int r = nl_talk (nl, nlh, name_dump_cb, &l);
  cleanup_strv char **v = l.v;
  if (r < 0)
    return skiff_error_set (err, errno, "list interfaces");
  if (l.failed)
    return skiff_error_set (err, l.failed, "list interfaces");
  if (v == NULL)
    {
      v = calloc (1, sizeof *v);
      if (v == NULL)
        return skiff_error_set (err, ENOMEM, "list interfaces");
    }
  *names = steal_pointer (&v);
  return 0;
}
