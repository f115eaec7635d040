/* b64url.c - base64url (RFC 4648 §5) without padding, with strict decoding. */
#include "auth.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *
auth_b64url_encode (const void *data, size_t len)
{
  const unsigned char *in = data;
  size_t full = len / 3, rem = len % 3;
  size_t out_len = full * 4 + (rem ? rem + 1 : 0);
  char *out = malloc (out_len + 1);
  if (out == NULL)
    abort ();
  char *o = out;
  for (size_t i = 0; i < full; i++, in += 3)
    {
      uint32_t v = ((uint32_t)in[0] << 16) | ((uint32_t)in[1] << 8) | in[2];
      *o++ = alphabet[(v >> 18) & 63];
      *o++ = alphabet[(v >> 12) & 63];
      *o++ = alphabet[(v >> 6) & 63];
      *o++ = alphabet[v & 63];
    }
  if (rem)
    {
      uint32_t v = (uint32_t)in[0] << 16;
      if (rem == 2)
        v |= (uint32_t)in[1] << 8;
      *o++ = alphabet[(v >> 18) & 63];
      *o++ = alphabet[(v >> 12) & 63];
      if (rem == 2)
        *o++ = alphabet[(v >> 6) & 63];
    }
  *o = '\0';
  return out;
}

static int
value_of (unsigned char c)
{
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '-')
    return 62;
  if (c == '_')
    return 63;
  return -1;
}

int
auth_b64url_decode (const char *s, size_t len, unsigned char **out, size_t *out_len, skiff_error_t *err)
{
  if (s == NULL)
    return skiff_error_set (err, EINVAL, "base64url: no input");
  if (len > (size_t)AUTH_MAX_JWT_BYTES * 2)
    return skiff_error_set (err, 0, "base64url: input of %zu bytes is too long", len);

  /* Optional padding: at most two '=' at the very end of a length that is a multiple of 4. */
  size_t pad = 0;
  while (pad < len && s[len - 1 - pad] == '=')
    pad++;
  size_t n = len - pad;
  size_t rem = n % 4;
  if (rem == 1)
    return skiff_error_set (err, 0, "base64url: impossible length %zu", n);
  if (pad > 0 && (pad > 2 || len % 4 != 0 || (rem == 2 && pad != 2) || (rem == 3 && pad != 1) || rem == 0))
    return skiff_error_set (err, 0, "base64url: bad padding");

  size_t dlen = n / 4 * 3 + (rem ? rem - 1 : 0);
  unsigned char *buf = malloc (dlen + 1);
  if (buf == NULL)
    abort ();
  unsigned char *o = buf;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++)
    {
      int v = value_of ((unsigned char)s[i]);
      if (v < 0)
        {
          free (buf);
          return skiff_error_set (err, 0, "base64url: invalid character at offset %zu", i);
        }
      acc = (acc << 6) | (uint32_t)v;
      bits += 6;
      if (bits >= 8)
        {
          bits -= 8;
          *o++ = (unsigned char)((acc >> bits) & 0xff);
        }
    }
  /* Leftover bits must be zero: every byte string has exactly one encoding. */
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
    {
      free (buf);
      return skiff_error_set (err, 0, "base64url: non-canonical trailing bits");
    }
  *o = '\0';
  *out = buf;
  if (out_len)
    *out_len = (size_t)(o - buf);
  return 0;
}
