/* test_monitor_logfmt.c - CRI log prefixes, line splitting and log rotation. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "monclient/monlogic.h"
#include "test.h"

/* Collects the entries a line buffer emits. */
struct collect
{
  int n;
  size_t len[16];
  bool partial[16];
  char first[16][32];
};

static int
collect_cb (void *opaque, const char *a, size_t alen, const char *b, size_t blen, bool partial)
{
  struct collect *c = opaque;
  if (c->n >= 16)
    return -1;
  c->len[c->n] = alen + blen;
  c->partial[c->n] = partial;
  char tmp[32] = "";
  size_t k = 0;
  for (size_t i = 0; i < alen && k < 31; i++)
    tmp[k++] = a[i];
  for (size_t i = 0; i < blen && k < 31; i++)
    tmp[k++] = b[i];
  tmp[k] = '\0';
  memcpy (c->first[c->n], tmp, sizeof (tmp));
  c->n++;
  return 0;
}

static void
test_prefix (void)
{
  char buf[64];
  /* 2024-01-01T00:00:00.000000123Z */
  size_t n = mon_log_prefix (buf, sizeof (buf), 1704067200LL * 1000000000LL + 123, MON_STDOUT, false);
  CHECK_STR (buf, "2024-01-01T00:00:00.000000123Z stdout F ");
  CHECK (n == strlen (buf));
  mon_log_prefix (buf, sizeof (buf), 1704067200LL * 1000000000LL + 999999999, MON_STDERR, true);
  CHECK_STR (buf, "2024-01-01T00:00:00.999999999Z stderr P ");
}

static void
test_linebuf (void)
{
  struct mon_linebuf lb = { 0 };
  struct collect c = { 0 };
  CHECK (mon_linebuf_feed (&lb, "one\ntwo\nthr", 11, collect_cb, &c) == 0);
  CHECK (c.n == 2);
  CHECK_STR (c.first[0], "one");
  CHECK_STR (c.first[1], "two");
  CHECK (lb.len == 3);
  CHECK (mon_linebuf_feed (&lb, "ee\n\n", 4, collect_cb, &c) == 0);
  CHECK (c.n == 4);
  CHECK_STR (c.first[2], "three");
  CHECK (!c.partial[2]);
  CHECK (c.len[3] == 0); /* an empty line is an entry too */
  CHECK (lb.len == 0);

  /* A line of 40000 bytes: two P entries of 16 KiB and an F with the rest. */
  memset (&c, 0, sizeof (c));
  size_t big = 40000;
  char *data = malloc (big + 1);
  memset (data, 'x', big);
  data[big] = '\n';
  /* Fed in uneven pieces, as a pipe would deliver it. */
  size_t off = 0, step = 7000;
  while (off < big + 1)
    {
      size_t k = big + 1 - off < step ? big + 1 - off : step;
      CHECK (mon_linebuf_feed (&lb, data + off, k, collect_cb, &c) == 0);
      off += k;
    }
  CHECK (c.n == 3);
  CHECK (c.len[0] == MON_LOG_LINE_MAX && c.partial[0]);
  CHECK (c.len[1] == MON_LOG_LINE_MAX && c.partial[1]);
  CHECK (c.len[2] == big - 2 * MON_LOG_LINE_MAX && !c.partial[2]);
  CHECK (lb.len == 0);

  /* Exactly MON_LOG_LINE_MAX bytes then a newline is one full entry. */
  memset (&c, 0, sizeof (c));
  data[MON_LOG_LINE_MAX] = '\n';
  CHECK (mon_linebuf_feed (&lb, data, MON_LOG_LINE_MAX + 1, collect_cb, &c) == 0);
  CHECK (c.n == 1 && c.len[0] == MON_LOG_LINE_MAX && !c.partial[0]);
  free (data);

  /* An unterminated last line comes out at flush, as F. */
  memset (&c, 0, sizeof (c));
  CHECK (mon_linebuf_feed (&lb, "tail", 4, collect_cb, &c) == 0 && c.n == 0);
  CHECK (mon_linebuf_flush (&lb, collect_cb, &c) == 0);
  CHECK (c.n == 1 && !c.partial[0]);
  CHECK_STR (c.first[0], "tail");
  CHECK (mon_linebuf_flush (&lb, collect_cb, &c) == 0 && c.n == 1);
  mon_linebuf_free (&lb);
  CHECK (lb.buf == NULL);
}

static off_t
file_size (const char *p)
{
  struct stat st;
  return stat (p, &st) == 0 ? st.st_size : -1;
}

static void
test_log_rotation (void)
{
  char dir[] = "/tmp/skiff-logfmt-XXXXXX";
  CHECK (mkdtemp (dir) != NULL);
  cleanup_free char *path = skiff_strdup_printf ("%s/c1.log", dir);
  cleanup_free char *old = skiff_strdup_printf ("%s/c1.log.1", dir);
  struct mon_log l;
  skiff_error_t err = NULL;
  CHECK (mon_log_open (&l, path, 200, &err) == 0);
  int64_t ns = 1704067200LL * 1000000000LL;
  /* Each entry: 30 (time) + 1 + 6 + 1 + 1 + 1 + 10 + 1 = 51 bytes. */
  for (int i = 0; i < 3; i++)
    CHECK (mon_log_write (&l, ns, MON_STDOUT, false, "0123456789", 10, NULL, 0, &err) == 0);
  CHECK (file_size (path) == 153);
  CHECK (file_size (old) == -1);
  CHECK (mon_log_write (&l, ns, MON_STDERR, false, "01234", 5, "56789", 5, &err) == 0);
  CHECK (file_size (old) == 153);
  CHECK (file_size (path) == 51);
  cleanup_free char *text = NULL;
  CHECK (skiff_read_file (path, 4096, &text, NULL, &err) == 0);
  CHECK_STR (text, "2024-01-01T00:00:00.000000000Z stderr F 0123456789\n");
  /* An entry bigger than the cap is still written whole into a fresh file. */
  char big[300];
  memset (big, 'y', sizeof (big));
  CHECK (mon_log_write (&l, ns, MON_STDOUT, true, big, sizeof (big), NULL, 0, &err) == 0);
  CHECK (file_size (old) == 51);
  CHECK (file_size (path) == 341);
  mon_log_close (&l);
  mon_log_close (&l);

  /* Reopening appends and knows the size. */
  CHECK (mon_log_open (&l, path, 0, &err) == 0);
  CHECK (l.size == 341);
  CHECK (mon_log_write (&l, ns, MON_STDOUT, false, "", 0, NULL, 0, &err) == 0);
  CHECK (file_size (path) == 341 + 41);
  mon_log_close (&l);
  CHECK (skiff_rm_rf (dir, &err) == 0);
  skiff_error_release (&err);
}

int
main (void)
{
  test_prefix ();
  test_linebuf ();
  test_log_rotation ();
  TEST_MAIN_END ();
}
