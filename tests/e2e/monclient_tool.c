/* monclient_tool.c - a command-line front for src/monclient, built by test_monitor.py
 * against build/libskiff.a, so the e2e test drives the real client library.
 *
 *   monclient_tool spawn BIN DIR
 *   monclient_tool request DIR JSON [TIMEOUT_MS]
 *   monclient_tool subscribe DIR N      (prints N updates, one per line, or "EOF")
 *   monclient_tool state DIR SINCE
 *   monclient_tool alive DIR
 *   monclient_tool stream DIR JSON [--no-read]
 *       opens an exec/attach stream (monclient_open_stream on DIR/monitor.sock), prints
 *       "open" on stderr, then copies stdin to the stream and the stream to stdout until
 *       the monitor closes it (stdin EOF does not close it); --no-read never reads it.
 *       An error reply prints "error <errno> <http status> <code> <message>" and exits 1.
 * Errors print "error <errno> <message>" and exit 1.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/jsonutil.h"
#include "monclient/monclient.h"

static int
fail (skiff_error_t err)
{
  printf ("error %d %s\n", err ? err->status : 0, err && err->msg ? err->msg : "?");
  return 1;
}

static void
print_json (json_t *j)
{
  cleanup_free char *s = json_dumps (j, JSON_COMPACT);
  printf ("%s\n", s ? s : "null");
  fflush (stdout);
}

int
main (int argc, char **argv)
{
  cleanup_error skiff_error_t err = NULL;
  if (argc >= 4 && strcmp (argv[1], "spawn") == 0)
    {
      if (monclient_spawn (argv[2], argv[3], &err) < 0)
        return fail (err);
      printf ("ok\n");
      return 0;
    }
  if (argc >= 4 && strcmp (argv[1], "request") == 0)
    {
      cleanup_json json_t *req = json_loads (argv[3], 0, NULL);
      cleanup_json json_t *reply = NULL;
      if (req == NULL)
        return 2;
      if (monclient_request (argv[2], req, argc > 4 ? atoi (argv[4]) : 30000, &reply, &err) < 0)
        return fail (err);
      print_json (reply);
      return 0;
    }
  if (argc >= 4 && strcmp (argv[1], "subscribe") == 0)
    {
      monclient_sub_t *sub = NULL;
      if (monclient_subscribe (argv[2], &sub, &err) < 0)
        return fail (err);
      printf ("subscribed\n");
      fflush (stdout);
      int want = atoi (argv[3]);
      for (int got = 0; got < want;)
        {
          json_t *u = NULL;
          int r = monclient_read_update (sub, &u, &err);
          if (r < 0)
            return fail (err);
          if (r == MONCLIENT_EOF)
            {
              printf ("EOF\n");
              break;
            }
          if (r == MONCLIENT_AGAIN)
            {
              struct pollfd p = { .fd = monclient_sub_fd (sub), .events = POLLIN };
              poll (&p, 1, -1);
              continue;
            }
          print_json (u);
          json_decref (u);
          got++;
        }
      monclient_sub_free (sub);
      return 0;
    }
  if (argc >= 4 && strcmp (argv[1], "state") == 0)
    {
      json_t *state = NULL, *events = NULL;
      if (monclient_read_state (argv[2], atoll (argv[3]), &state, &events, &err) < 0)
        return fail (err);
      cleanup_json json_t *o = json_pack ("{s:o?, s:o}", "state", state, "events", events);
      print_json (o);
      return 0;
    }
  if (argc >= 3 && strcmp (argv[1], "alive") == 0)
    {
      printf ("%d\n", monclient_monitor_alive (argv[2]));
      return 0;
    }
  if (argc >= 4 && strcmp (argv[1], "stream") == 0)
    {
      cleanup_json json_t *req = json_loads (argv[3], 0, NULL);
      if (req == NULL)
        return 2;
      cleanup_free char *sock = malloc (strlen (argv[2]) + 32);
      sprintf (sock, "%s/monitor.sock", argv[2]);
      int fd = -1;
      if (monclient_open_stream (sock, req, &fd, &err) < 0)
        {
          printf ("error %d %d %s %s\n", err->status, err->http_status, err->code ? err->code : "-", err->msg);
          return 1;
        }
      fprintf (stderr, "open\n");
      if (argc > 4 && strcmp (argv[4], "--no-read") == 0)
        for (;;)
          pause ();
      bool in_open = true;
      char buf[16384];
      for (;;)
        {
          struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = in_open ? 0 : -1, .events = POLLIN } };
          if (poll (p, 2, -1) < 0)
            continue;
          if (p[0].revents)
            {
              ssize_t r = read (fd, buf, sizeof (buf));
              if (r < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
              if (r <= 0)
                break;
              fwrite (buf, 1, (size_t)r, stdout);
              fflush (stdout);
            }
          if (p[1].revents)
            {
              ssize_t r = read (0, buf, sizeof (buf));
              if (r <= 0)
                {
                  in_open = false;
                  continue;
                }
              for (ssize_t off = 0; off < r;)
                {
                  ssize_t w = write (fd, buf + off, (size_t)(r - off));
                  if (w < 0 && errno == EAGAIN)
                    {
                      struct pollfd q = { .fd = fd, .events = POLLOUT };
                      poll (&q, 1, -1);
                      continue;
                    }
                  if (w < 0)
                    break;
                  off += w;
                }
            }
        }
      fprintf (stderr, "eof\n");
      close (fd);
      return 0;
    }
  fprintf (stderr, "usage: see the comment at the top of monclient_tool.c\n");
  return 2;
}
