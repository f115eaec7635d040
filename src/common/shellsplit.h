/* shellsplit.h - splits a command line into words the way a POSIX shell would,
 * without running a shell and without any expansion. */
#ifndef SKIFF_COMMON_SHELLSPLIT_H
#define SKIFF_COMMON_SHELLSPLIT_H

#include "common/error.h"

#define SKIFF_SHELL_SPLIT_MAX_WORDS 256
#define SKIFF_SHELL_SPLIT_MAX_INPUT (64 * 1024)

/* Splits s into words: blanks (space, tab, newline) separate words; '...' is literal;
 * inside "..." a backslash escapes only " \ $ ` and newline (backslash-newline is
 * removed) and stays as it is before any other character; outside quotes a backslash
 * makes the next character literal (backslash-newline is removed; a backslash at the
 * very end stays). "" and '' make empty words. $, `, *, ~ and the like are plain
 * characters: nothing is expanded. On success *argv_out is a NULL-terminated array
 * (free it with skiff_strv_free or cleanup_strv) and the word count is returned.
 * Fails with a 400 InvalidRequestContent error for an unterminated quote, no words,
 * more than 256 words or more than 64 KiB of input. */
int skiff_shell_split (const char *s, char ***argv_out, skiff_error_t *err);

#endif
