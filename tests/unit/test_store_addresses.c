/* Unit tests: group addresses in the SQLite store (lowest free first, stable per group, reuse,
 * exhaustion, survival across a reopen). */
#include <stdlib.h>
#include <unistd.h>

#include "common/util.h"
#include "store/store.h"
#include "test.h"

int
main (void)
{
  char dir[] = "/tmp/skiff-test-addr-XXXXXX";
  if (mkdtemp (dir) == NULL)
    return 1;
  char *db = skiff_strdup_printf ("%s/skiff.db", dir);
  skiff_error_t err = NULL;
  store_t *s = NULL;
  CHECK (store_open_sqlite (db, &s, &err) == 0);
  uint32_t a = 0, b = 0, c = 0, again = 0;
  const uint32_t first = 0x0a000002, last = 0x0a000004; /* 10.0.0.2 - 10.0.0.4 */
  CHECK (store_address_get (s, "g1", &a, &err) == 0 && a == 0);
  CHECK (store_address_allocate (s, "g1", first, last, &a, &err) == 0 && a == first);
  CHECK (store_address_allocate (s, "g2", first, last, &b, &err) == 0 && b == first + 1);
  CHECK (store_address_allocate (s, "g1", first, last, &again, &err) == 0 && again == a); /* stable */
  CHECK (store_address_allocate (s, "g3", first, last, &c, &err) == 0 && c == first + 2);
  CHECK (store_address_allocate (s, "g4", first, last, &again, &err) < 0);
  CHECK_STR (err->code, "InsufficientAddressSpace");
  skiff_error_release (&err);
  /* a released address is the next one handed out */
  CHECK (store_address_release (s, "g2", &err) == 0);
  CHECK (store_address_release (s, "g2", &err) == 0);
  CHECK (store_address_get (s, "g2", &again, &err) == 0 && again == 0);
  CHECK (store_address_allocate (s, "g4", first, last, &again, &err) == 0 && again == first + 1);
  /* durable */
  store_close (s);
  CHECK (store_open_sqlite (db, &s, &err) == 0);
  CHECK (store_address_get (s, "g4", &again, &err) == 0 && again == first + 1);
  CHECK (store_address_get (s, "g3", &again, &err) == 0 && again == first + 2);
  store_close (s);
  char *cmd = skiff_strdup_printf ("rm -rf %s", dir);
  CHECK (system (cmd) == 0);
  free (cmd);
  free (db);
  TEST_MAIN_END ();
}
