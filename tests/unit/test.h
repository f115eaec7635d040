/* test.h - a tiny assertion harness for the C unit tests. Each test binary prints
 * one line per failed check and a closing "N passed, N failed" line. */
#ifndef SKIFF_TEST_H
#define SKIFF_TEST_H

#include <stdio.h>
#include <string.h>

static int test_passed, test_failed;

#define CHECK(cond)                                                                                                    \
  do                                                                                                                   \
    {                                                                                                                  \
      if (cond)                                                                                                        \
        test_passed++;                                                                                                 \
      else                                                                                                             \
        {                                                                                                              \
          test_failed++;                                                                                               \
          fprintf (stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                                             \
        }                                                                                                              \
    }                                                                                                                  \
  while (0)

#define CHECK_STR(a, b)                                                                                                \
  do                                                                                                                   \
    {                                                                                                                  \
      const char *_a = (a), *_b = (b);                                                                                 \
      if (_a && _b && strcmp (_a, _b) == 0)                                                                            \
        test_passed++;                                                                                                 \
      else                                                                                                             \
        {                                                                                                              \
          test_failed++;                                                                                               \
          fprintf (stderr, "FAIL %s:%d: %s == %s (\"%s\" vs \"%s\")\n", __FILE__, __LINE__, #a, #b,                    \
                   _a ? _a : "(null)", _b ? _b : "(null)");                                                            \
        }                                                                                                              \
    }                                                                                                                  \
  while (0)

#define TEST_MAIN_END()                                                                                                \
  do                                                                                                                   \
    {                                                                                                                  \
      printf ("%s: %d passed, %d failed\n", __FILE__, test_passed, test_failed);                                       \
      return test_failed ? 1 : 0;                                                                                      \
    }                                                                                                                  \
  while (0)

#endif
