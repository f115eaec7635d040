/* shellsplit.c - POSIX shell word splitting without expansion (see shellsplit.h). */
#include "common/shellsplit.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"

static bool
is_blank (char c)
{
  return c == ' ' || c == '\t' || c == '\n';
}

int
skiff_shell_split (const char *s, char ***argv_out, skiff_error_t *err)
{
  *argv_out = NULL;
  if (s == NULL)
    return skiff_error_arm (err, 400, "InvalidRequestContent", "the command is empty");
  size_t len = strnlen (s, SKIFF_SHELL_SPLIT_MAX_INPUT + 1);
  if (len > SKIFF_SHELL_SPLIT_MAX_INPUT)
    return skiff_error_arm (err, 400, "InvalidRequestContent", "the command is longer than %d bytes",
                            SKIFF_SHELL_SPLIT_MAX_INPUT);
  /* A word is never longer than the input. */
  cleanup_strv char **argv = calloc (SKIFF_SHELL_SPLIT_MAX_WORDS + 1, sizeof (char *));
  cleanup_free char *word = malloc (len + 1);
  if (argv == NULL || word == NULL)
    return skiff_error_set (err, ENOMEM, "split the command");
  size_t n = 0, wl = 0;
  bool in_word = false;
  size_t i = 0;
  while (i <= len)
    {
      char c = s[i];
      if (c == '\0' || is_blank (c))
        {
          if (in_word)
            {
              if (n >= SKIFF_SHELL_SPLIT_MAX_WORDS)
                return skiff_error_arm (err, 400, "InvalidRequestContent", "the command has more than %d words",
                                        SKIFF_SHELL_SPLIT_MAX_WORDS);
              argv[n] = strndup (word, wl);
              if (argv[n] == NULL)
                return skiff_error_set (err, ENOMEM, "split the command");
              n++;
              wl = 0;
              in_word = false;
            }
          i++;
          continue;
        }
      if (c == '\\')
        {
          if (s[i + 1] == '\n')
            {
              i += 2; /* line continuation */
              continue;
            }
          in_word = true;
          if (s[i + 1] == '\0')
            {
              word[wl++] = '\\';
              i++;
              continue;
            }
          word[wl++] = s[i + 1];
          i += 2;
          continue;
        }
      if (c == '\'')
        {
          const char *end = strchr (s + i + 1, '\'');
          if (end == NULL)
            return skiff_error_arm (err, 400, "InvalidRequestContent", "the command has an unterminated ' quote");
          size_t l = (size_t)(end - (s + i + 1));
          memcpy (word + wl, s + i + 1, l);
          wl += l;
          in_word = true;
          i = (size_t)(end - s) + 1;
          continue;
        }
      if (c == '"')
        {
          in_word = true;
          i++;
          for (;;)
            {
              char d = s[i];
              if (d == '\0')
                return skiff_error_arm (err, 400, "InvalidRequestContent", "the command has an unterminated \" quote");
              if (d == '"')
                {
                  i++;
                  break;
                }
              if (d == '\\' && s[i + 1] != '\0' && strchr ("\"\\$`\n", s[i + 1]))
                {
                  if (s[i + 1] != '\n')
                    word[wl++] = s[i + 1];
                  i += 2;
                  continue;
                }
              word[wl++] = d;
              i++;
            }
          continue;
        }
      word[wl++] = c;
      in_word = true;
      i++;
    }
  if (n == 0)
    return skiff_error_arm (err, 400, "InvalidRequestContent", "the command is empty");
  *argv_out = steal_pointer (&argv);
  return (int)n;
}
