/* Unit tests: POSIX-shell-like splitting of exec commands (common/shellsplit.c). */
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/shellsplit.h"
#include "test.h"

/* Splits s and joins the words as [w1][w2]..., or returns "ERR <code>/<status>". */
static const char *
split (const char *s)
{
  static char out[70000];
  char **argv = NULL;
  skiff_error_t err = NULL;
  int n = skiff_shell_split (s, &argv, &err);
  if (n < 0)
    {
      snprintf (out, sizeof (out), "ERR %s/%d", err->code ? err->code : "?", err->http_status);
      skiff_error_release (&err);
      return out;
    }
  size_t off = 0;
  int count = 0;
  for (char **p = argv; *p; p++, count++)
    off += (size_t)snprintf (out + off, sizeof (out) - off, "[%s]", *p);
  if (count != n)
    snprintf (out, sizeof (out), "COUNT MISMATCH %d %d", count, n);
  skiff_strv_free (argv);
  return out;
}

static void
test_basic (void)
{
  CHECK_STR (split ("ls"), "[ls]");
  CHECK_STR (split ("  ls   -la\t/tmp \n"), "[ls][-la][/tmp]");
  CHECK_STR (split ("/bin/sh -c 'echo hi'"), "[/bin/sh][-c][echo hi]");
  CHECK_STR (split ("echo 'a \"b\" \\c'"), "[echo][a \"b\" \\c]");
  CHECK_STR (split ("echo \"a 'b' c\""), "[echo][a 'b' c]");
  CHECK_STR (split ("a'b'\"c\"d"), "[abcd]");
  CHECK_STR (split ("echo '' \"\" x"), "[echo][][][x]");
  CHECK_STR (split ("echo $HOME `id` * ~"), "[echo][$HOME][`id`][*][~]");
}

static void
test_backslashes (void)
{
  CHECK_STR (split ("a\\ b c"), "[a b][c]");
  CHECK_STR (split ("\\'x\\\""), "['x\"]");
  CHECK_STR (split ("a\\\\b"), "[a\\b]");
  CHECK_STR (split ("a\\\nb"), "[ab]");
  CHECK_STR (split ("a\\"), "[a\\]");
  CHECK_STR (split ("\"\\\" \\\\ \\$ \\` \\n \\a\""), "[\" \\ $ ` \\n \\a]");
  CHECK_STR (split ("\"a\\\nb\""), "[ab]");
  CHECK_STR (split ("'\\'"), "[\\]");
  CHECK_STR (split ("\"a\"'b'\\ c"), "[ab c]");
}

static void
test_errors (void)
{
  CHECK_STR (split (""), "ERR InvalidRequestContent/400");
  CHECK_STR (split ("  \t\n "), "ERR InvalidRequestContent/400");
  CHECK_STR (split ("echo 'abc"), "ERR InvalidRequestContent/400");
  CHECK_STR (split ("echo \"abc"), "ERR InvalidRequestContent/400");
  CHECK_STR (split ("echo \"abc\\\""), "ERR InvalidRequestContent/400");
  CHECK_STR (split (NULL), "ERR InvalidRequestContent/400");

  /* 256 words pass, 257 fail */
  char buf[1024];
  size_t off = 0;
  for (int i = 0; i < 256; i++)
    off += (size_t)snprintf (buf + off, sizeof (buf) - off, "w ");
  CHECK (strncmp (split (buf), "[w][w]", 6) == 0);
  snprintf (buf + off, sizeof (buf) - off, "w");
  CHECK_STR (split (buf), "ERR InvalidRequestContent/400");

  /* 64 KiB of input pass, one byte more fails */
  char *big = malloc (65536 + 2);
  memset (big, 'x', 65536);
  big[65536] = '\0';
  CHECK (strlen (split (big)) == 65536 + 2);
  big[65536] = 'x';
  big[65537] = '\0';
  CHECK_STR (split (big), "ERR InvalidRequestContent/400");
  free (big);

  /* cleanup_strv frees the result */
  {
    cleanup_strv char **argv = NULL;
    skiff_error_t err = NULL;
    CHECK (skiff_shell_split ("a b", &argv, &err) == 2);
    CHECK (argv && argv[2] == NULL && strcmp (argv[1], "b") == 0);
  }
}

int
main (void)
{
  test_basic ();
  test_backslashes ();
  test_errors ();
  TEST_MAIN_END ();
}
