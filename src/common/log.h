/* log.h - minimal leveled logging to stderr (journald or the log file catches it). */
#ifndef SKIFF_COMMON_LOG_H
#define SKIFF_COMMON_LOG_H

enum skiff_log_level
{
  SKIFF_LOG_DEBUG,
  SKIFF_LOG_INFO,
  SKIFF_LOG_WARN,
  SKIFF_LOG_ERROR
};

/* Sets the lowest level that is printed (default INFO; SKIFF_DEBUG=1 in the env gives DEBUG). */
void skiff_log_set_level (enum skiff_log_level level);

/* Prints one line "<time> <level> <message>" to stderr. Never prints secrets: callers
 * pass only names and ids. */
void skiff_log (enum skiff_log_level level, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

#define log_debug(...) skiff_log (SKIFF_LOG_DEBUG, __VA_ARGS__)
#define log_info(...) skiff_log (SKIFF_LOG_INFO, __VA_ARGS__)
#define log_warn(...) skiff_log (SKIFF_LOG_WARN, __VA_ARGS__)
#define log_error(...) skiff_log (SKIFF_LOG_ERROR, __VA_ARGS__)

#endif
