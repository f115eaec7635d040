/* shared.c - compiles the monitor's pure logic from src/monclient/ into skiff-monitor.
 *
 * The same files are part of libskiff.a (for unit tests and skiffd); the build links
 * skiff-monitor only from src/monitor/ and src/common/, so they are included here. */
#include "monclient/logfmt.c"
#include "monclient/monstate.c"
#include "monclient/policy.c"
