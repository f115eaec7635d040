/* test_monitor_policy.c - restart policy, back-off and exit classification. */
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>

#include "monclient/monlogic.h"
#include "test.h"

static void
test_policy_parse (void)
{
  enum mon_policy p = MON_POLICY_NEVER;
  CHECK (mon_policy_parse ("Always", &p) == 0 && p == MON_POLICY_ALWAYS);
  CHECK (mon_policy_parse ("onfailure", &p) == 0 && p == MON_POLICY_ON_FAILURE);
  CHECK (mon_policy_parse ("NEVER", &p) == 0 && p == MON_POLICY_NEVER);
  p = MON_POLICY_ALWAYS;
  CHECK (mon_policy_parse ("Sometimes", &p) == -1 && p == MON_POLICY_ALWAYS);
  CHECK (mon_policy_parse (NULL, &p) == -1);
  CHECK (mon_policy_parse ("", &p) == -1);
  CHECK_STR (mon_policy_name (MON_POLICY_ON_FAILURE), "OnFailure");
  CHECK_STR (mon_policy_name (MON_POLICY_ALWAYS), "Always");
  CHECK_STR (mon_policy_name (MON_POLICY_NEVER), "Never");
}

static void
test_should_restart (void)
{
  CHECK (mon_policy_should_restart (MON_POLICY_ALWAYS, false, 0));
  CHECK (mon_policy_should_restart (MON_POLICY_ALWAYS, false, 1));
  CHECK (!mon_policy_should_restart (MON_POLICY_ALWAYS, true, 0)); /* init done for good */
  CHECK (mon_policy_should_restart (MON_POLICY_ALWAYS, true, 2));
  CHECK (!mon_policy_should_restart (MON_POLICY_ON_FAILURE, false, 0));
  CHECK (mon_policy_should_restart (MON_POLICY_ON_FAILURE, false, 137));
  CHECK (!mon_policy_should_restart (MON_POLICY_NEVER, false, 1));
  CHECK (!mon_policy_should_restart (MON_POLICY_NEVER, true, 1));
}

static void
test_backoff (void)
{
  struct mon_backoff b = { .initial_ms = 10000, .max_ms = 300000, .reset_after_ms = 600000 };
  CHECK (mon_backoff_delay_ms (&b, 1) == 10000);
  CHECK (mon_backoff_delay_ms (&b, 2) == 20000);
  CHECK (mon_backoff_delay_ms (&b, 3) == 40000);
  CHECK (mon_backoff_delay_ms (&b, 5) == 160000);
  CHECK (mon_backoff_delay_ms (&b, 6) == 300000);
  CHECK (mon_backoff_delay_ms (&b, 1000) == 300000);
  CHECK (mon_backoff_delay_ms (&b, 2147483647) == 300000);
  CHECK (mon_backoff_delay_ms (&b, 0) == 10000);
  CHECK (mon_backoff_delay_ms (&b, -5) == 10000);

  struct mon_backoff huge = { .initial_ms = INT64_MAX / 3, .max_ms = INT64_MAX, .reset_after_ms = 0 };
  CHECK (mon_backoff_delay_ms (&huge, 64) == INT64_MAX); /* capped, no overflow */

  struct mon_backoff zero = { 0 };
  CHECK (mon_backoff_delay_ms (&zero, 3) == 0);

  struct mon_backoff small = { .initial_ms = 100, .max_ms = 400, .reset_after_ms = 1000 };
  int n = 0;
  CHECK (mon_backoff_next (&small, &n, 5) == 100 && n == 1);
  CHECK (mon_backoff_next (&small, &n, 5) == 200 && n == 2);
  CHECK (mon_backoff_next (&small, &n, 5) == 400 && n == 3);
  CHECK (mon_backoff_next (&small, &n, 5) == 400 && n == 4);
  /* A run longer than resetAfterMs forgets the earlier failures. */
  CHECK (mon_backoff_next (&small, &n, 1001) == 100 && n == 1);
  CHECK (mon_backoff_next (&small, &n, 1000) == 200 && n == 2);
}

static void
test_exit_codes (void)
{
  CHECK (mon_exit_code (0) == 0);
  CHECK (mon_exit_code (3 << 8) == 3);
  CHECK (mon_exit_code (SIGKILL) == 137);
  CHECK (mon_exit_code (SIGTERM) == 143);
  CHECK (mon_exit_code (SIGSEGV | 0x80) == 128 + SIGSEGV); /* core dumped */
  CHECK_STR (mon_detail_status (0, false), "Completed");
  CHECK_STR (mon_detail_status (1, false), "Error");
  CHECK_STR (mon_detail_status (137, true), "OOMKilled");
  CHECK_STR (mon_detail_status (0, true), "OOMKilled");
  CHECK (mon_start_failure_code ("executable file `x` not found in $PATH: No such file or directory") == 127);
  CHECK (mon_start_failure_code ("open executable: Permission denied") == 126);
  CHECK (mon_start_failure_code ("cannot set memory limit") == 128);
  CHECK (mon_start_failure_code (NULL) == 128);
}

static void
test_oom_parse (void)
{
  CHECK (mon_parse_oom_kill ("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n") == 2);
  CHECK (mon_parse_oom_kill ("low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\noom_group_kill 0\n") == 1);
  CHECK (mon_parse_oom_kill ("oom_kill_disable 0\nunder_oom 0\n") == -1); /* old kernels */
  CHECK (mon_parse_oom_kill ("oom_kill 0") == 0);
  CHECK (mon_parse_oom_kill ("oom_kill_disable 5\n") == -1);
  CHECK (mon_parse_oom_kill ("") == -1);
  CHECK (mon_parse_oom_kill (NULL) == -1);
  CHECK (mon_parse_oom_kill ("oom_kill x\n") == -1);
}

int
main (void)
{
  test_policy_parse ();
  test_should_restart ();
  test_backoff ();
  test_exit_codes ();
  test_oom_parse ();
  TEST_MAIN_END ();
}
