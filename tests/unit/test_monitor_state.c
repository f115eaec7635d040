/* test_monitor_state.c - state/event JSON, the events.jsonl reader, monitor.json. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/jsonutil.h"
#include "common/util.h"
#include "monclient/monlogic.h"
#include "test.h"

#define T0 (1704067200LL * 1000000000LL) /* 2024-01-01T00:00:00Z */

static void
test_states (void)
{
  cleanup_json json_t *r = mon_state_running (T0 + 5000000);
  CHECK_STR (json_string_value (json_object_get (r, "state")), "Running");
  CHECK_STR (json_string_value (json_object_get (r, "startTime")), "2024-01-01T00:00:00.005Z");

  cleanup_json json_t *t = mon_state_terminated (T0, T0 + 61500000000LL, 137, "OOMKilled");
  CHECK_STR (json_string_value (json_object_get (t, "state")), "Terminated");
  CHECK (json_integer_value (json_object_get (t, "exitCode")) == 137);
  CHECK_STR (json_string_value (json_object_get (t, "finishTime")), "2024-01-01T00:01:01.500Z");
  CHECK_STR (json_string_value (json_object_get (t, "startTime")), "2024-01-01T00:00:00.000Z");
  CHECK_STR (json_string_value (json_object_get (t, "detailStatus")), "OOMKilled");

  cleanup_json json_t *never = mon_state_terminated (0, T0, 127, NULL);
  CHECK (json_object_get (never, "startTime") == NULL); /* never ran */
  CHECK_STR (json_string_value (json_object_get (never, "detailStatus")), "");

  cleanup_json json_t *w = mon_state_waiting ("CrashLoopBackOff");
  CHECK_STR (json_string_value (json_object_get (w, "state")), "Waiting");
  CHECK_STR (json_string_value (json_object_get (w, "detailStatus")), "CrashLoopBackOff");

  cleanup_json json_t *e = mon_event_new (7, "c1", "BackOff", "Warning", "Back-off restarting failed container", T0);
  cleanup_free char *s = json_dumps (e, JSON_COMPACT | JSON_SORT_KEYS);
  CHECK_STR (s, "{\"container\":\"c1\",\"message\":\"Back-off restarting failed container\",\"name\":\"BackOff\","
                "\"seq\":7,\"timestamp\":\"2024-01-01T00:00:00.000Z\",\"type\":\"Warning\"}");
}

static void
test_events_read (void)
{
  char dir[] = "/tmp/skiff-events-XXXXXX";
  CHECK (mkdtemp (dir) != NULL);
  cleanup_free char *path = skiff_strdup_printf ("%s/events.jsonl", dir);
  skiff_error_t err = NULL;
  json_t *events = NULL;
  int64_t last = -1;
  CHECK (mon_events_read (path, 0, 100, &events, &last, &err) == 0); /* missing file */
  CHECK (json_array_size (events) == 0 && last == 0);
  json_decref (events);

  const char *text = "{\"seq\":1,\"name\":\"Started\"}\n"
                     "{\"seq\":2,\"name\":\"Terminated\"}\n"
                     "not json\n"
                     "{\"name\":\"no seq\"}\n"
                     "{\"seq\":3,\"name\":\"BackOff\"}\n"
                     "{\"seq\":4,\"name\":\"Star"; /* torn last write */
  CHECK (skiff_write_file_atomic (path, text, strlen (text), 0644, &err) == 0);
  events = NULL;
  CHECK (mon_events_read (path, 1, 100, &events, &last, &err) == 0);
  CHECK (json_array_size (events) == 2 && last == 3);
  CHECK (json_integer_value (json_object_get (json_array_get (events, 0), "seq")) == 2);
  json_decref (events);

  /* max keeps the newest; max 0 only finds the last seq. */
  events = NULL;
  CHECK (mon_events_read (path, 0, 1, &events, &last, &err) == 0);
  CHECK (json_array_size (events) == 1);
  CHECK (json_integer_value (json_object_get (json_array_get (events, 0), "seq")) == 3);
  json_decref (events);
  events = NULL;
  CHECK (mon_events_read (path, 0, 0, &events, &last, &err) == 0);
  CHECK (json_array_size (events) == 0 && last == 3);
  json_decref (events);
  CHECK (skiff_rm_rf (dir, &err) == 0);
  skiff_error_release (&err);
}

static int
parse (const char *text, struct mon_config *cfg, skiff_error_t *err)
{
  cleanup_json json_t *j = json_loads (text, 0, NULL);
  return mon_config_parse (j, cfg, err);
}

static void
test_config (void)
{
  struct mon_config cfg;
  skiff_error_t err = NULL;
  const char *good = "{\"group\":\"g\",\"runtime\":\"/usr/bin/crun\",\"runtimeRoot\":\"/run/skiff/crun\","
                     "\"restartPolicy\":\"OnFailure\",\"backoff\":{\"initialMs\":100,\"maxMs\":400},"
                     "\"stopGraceSeconds\":3,\"logMaxBytes\":1000,"
                     "\"initContainers\":[{\"name\":\"i1\",\"id\":\"g-i1\",\"bundle\":\"/b/i1\"}],"
                     "\"containers\":[{\"name\":\"c1\",\"id\":\"g-c1\",\"bundle\":\"/b/c1\",\"memoryCgroup\":\"\"},"
                     "{\"name\":\"c2\",\"id\":\"g-c2\",\"bundle\":\"/b/c2\",\"memoryCgroup\":\"/sys/fs/cgroup/x\"}]}";
  CHECK (parse (good, &cfg, &err) == 0);
  CHECK (cfg.n_ctrs == 3);
  CHECK (cfg.policy == MON_POLICY_ON_FAILURE);
  CHECK (cfg.backoff.initial_ms == 100 && cfg.backoff.max_ms == 400 && cfg.backoff.reset_after_ms == 600000);
  CHECK (cfg.stop_grace_s == 3 && cfg.log_max_bytes == 1000);
  CHECK (cfg.ctrs[0].init && !cfg.ctrs[1].init);
  CHECK_STR (cfg.ctrs[0].name, "i1");
  CHECK (cfg.ctrs[1].memory_cgroup == NULL);
  CHECK_STR (cfg.ctrs[2].memory_cgroup, "/sys/fs/cgroup/x");
  mon_config_free (&cfg);

  /* Defaults. */
  CHECK (parse ("{\"runtime\":\"/c\",\"runtimeRoot\":\"/r\"}", &cfg, &err) == 0);
  CHECK (cfg.policy == MON_POLICY_ALWAYS && cfg.backoff.initial_ms == 10000 && cfg.backoff.max_ms == 300000);
  CHECK (cfg.stop_grace_s == 10 && cfg.log_max_bytes == 4194304 && cfg.n_ctrs == 0);
  mon_config_free (&cfg);

  const char *bad[] = {
    "[]",
    "{\"runtimeRoot\":\"/r\"}",
    "{\"runtime\":\"crun\",\"runtimeRoot\":\"/r\"}",
    "{\"runtime\":\"/c\",\"runtimeRoot\":\"/r\",\"restartPolicy\":\"Sometimes\"}",
    "{\"runtime\":\"/c\",\"runtimeRoot\":\"/r\",\"containers\":[{\"name\":\"../x\",\"id\":\"a\",\"bundle\":\"/b\"}]}",
    "{\"runtime\":\"/c\",\"runtimeRoot\":\"/r\",\"containers\":[{\"name\":\"x\",\"id\":\"a/b\",\"bundle\":\"/b\"}]}",
    "{\"runtime\":\"/c\",\"runtimeRoot\":\"/r\",\"containers\":[{\"name\":\"x\",\"id\":\"a\",\"bundle\":\"b\"}]}",
    ("{\"runtime\":\"/c\",\"runtimeRoot\":\"/r\",\"containers\":[{\"name\":\"x\",\"id\":\"a\",\"bundle\":\"/b\"},"
     "{\"name\":\"x\",\"id\":\"b\",\"bundle\":\"/b\"}]}"),
    "{\"runtime\":\"/c\",\"runtimeRoot\":\"/r\",\"containers\":{}}",
    "{\"runtime\":\"/c\",\"runtimeRoot\":\"/r\",\"backoff\":{\"initialMs\":-1}}",
  };
  for (size_t i = 0; i < sizeof (bad) / sizeof (bad[0]); i++)
    {
      int r = parse (bad[i], &cfg, &err);
      CHECK (r < 0);
      CHECK (err != NULL && err->msg != NULL);
      CHECK (cfg.ctrs == NULL && cfg.n_ctrs == 0);
      skiff_error_release (&err);
    }
}

int
main (void)
{
  test_states ();
  test_events_read ();
  test_config ();
  TEST_MAIN_END ();
}
