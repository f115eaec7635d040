/* seccomp_compile.c - compiles the default seccomp profile to BPF once per skiffd.
 *
 * crun compiles the JSON seccomp section of every bundle with libseccomp, about 17 ms a
 * container here: most of a container's start. The same profile compiled once with
 * libseccomp and handed over as raw BPF (crun's run.oci.seccomp_bpf_data annotation) gives
 * the same filter for free. runc does not know the annotation and keeps the JSON. */
#include <errno.h>
#include <openssl/evp.h>
#include <seccomp.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/jsonutil.h"
#include "common/util.h"
#include "runtime/runtime.h"

#define BPF_MAX (1024 * 1024)

static void
release_ctx (scmp_filter_ctx *c)
{
  if (*c)
    seccomp_release (*c);
}

static int
action_of (json_t *rule, uint32_t *out)
{
  const char *a = json_string_value (json_object_get (rule, "action"));
  if (a && strcmp (a, "SCMP_ACT_ALLOW") == 0)
    *out = SCMP_ACT_ALLOW;
  else if (a && strcmp (a, "SCMP_ACT_ERRNO") == 0)
    {
      json_t *r = json_object_get (rule, "errnoRet");
      *out = SCMP_ACT_ERRNO (r ? (uint16_t)json_integer_value (r) : EPERM);
    }
  else
    return -1;
  return 0;
}

static int
op_of (const char *op, enum scmp_compare *out)
{
  static const struct
  {
    const char *name;
    enum scmp_compare op;
  } ops[] = { { "SCMP_CMP_NE", SCMP_CMP_NE },
              { "SCMP_CMP_LT", SCMP_CMP_LT },
              { "SCMP_CMP_LE", SCMP_CMP_LE },
              { "SCMP_CMP_EQ", SCMP_CMP_EQ },
              { "SCMP_CMP_GE", SCMP_CMP_GE },
              { "SCMP_CMP_GT", SCMP_CMP_GT },
              { "SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ } };
  for (size_t i = 0; op && i < sizeof (ops) / sizeof (ops[0]); i++)
    if (strcmp (ops[i].name, op) == 0)
      {
        *out = ops[i].op;
        return 0;
      }
  return -1;
}

int
runtime_seccomp_compile (json_t *profile, char **b64_out, skiff_error_t *err)
{
  json_t *ret = json_object_get (profile, "defaultErrnoRet");
  scmp_filter_ctx ctx __attribute__ ((cleanup (release_ctx)))
  = seccomp_init (SCMP_ACT_ERRNO (ret ? (uint16_t)json_integer_value (ret) : EPERM));
  if (ctx == NULL)
    return skiff_error_set (err, ENOMEM, "seccomp_init");
  /* crun sets no_new_privs itself; the filter must not depend on it */
  seccomp_attr_set (ctx, SCMP_FLTATR_CTL_NNP, 0);
  static const uint32_t arches[] = { SCMP_ARCH_X86, SCMP_ARCH_X32 };
  for (size_t i = 0; i < sizeof (arches) / sizeof (arches[0]); i++)
    {
      int r = seccomp_arch_add (ctx, arches[i]);
      if (r < 0 && r != -EEXIST)
        return skiff_error_set (err, -r, "seccomp_arch_add");
    }
  size_t i;
  json_t *rule;
  json_array_foreach (json_object_get (profile, "syscalls"), i, rule)
  {
    uint32_t action;
    if (action_of (rule, &action) < 0)
      return skiff_error_set (err, EINVAL, "seccomp rule %zu: unsupported action", i);
    struct scmp_arg_cmp cmps[6];
    unsigned n_cmp = 0;
    size_t k;
    json_t *arg;
    json_array_foreach (json_object_get (rule, "args"), k, arg)
    {
      enum scmp_compare op;
      if (n_cmp == 6 || op_of (json_string_value (json_object_get (arg, "op")), &op) < 0)
        return skiff_error_set (err, EINVAL, "seccomp rule %zu: unsupported argument", i);
      cmps[n_cmp].arg = (unsigned)json_integer_value (json_object_get (arg, "index"));
      cmps[n_cmp].op = op;
      cmps[n_cmp].datum_a = (scmp_datum_t)json_integer_value (json_object_get (arg, "value"));
      cmps[n_cmp].datum_b = (scmp_datum_t)json_integer_value (json_object_get (arg, "valueTwo"));
      n_cmp++;
    }
    size_t j;
    json_t *name;
    json_array_foreach (json_object_get (rule, "names"), j, name)
    {
      int nr = seccomp_syscall_resolve_name (json_string_value (name));
      if (nr == __NR_SCMP_ERROR)
        continue; /* unknown to this libseccomp: skipped, as the runtime does */
      int r = seccomp_rule_add_array (ctx, action, nr, n_cmp, n_cmp ? cmps : NULL);
      if (r < 0 && r != -EEXIST)
        return skiff_error_set (err, -r, "seccomp rule for `%s`", json_string_value (name));
    }
  }
  cleanup_close int fd = memfd_create ("skiff-seccomp", MFD_CLOEXEC);
  if (fd < 0)
    return skiff_error_set (err, errno, "memfd_create");
  int r = seccomp_export_bpf (ctx, fd);
  if (r < 0)
    return skiff_error_set (err, -r, "seccomp_export_bpf");
  off_t len = lseek (fd, 0, SEEK_END);
  if (len <= 0 || len > BPF_MAX)
    return skiff_error_set (err, EFBIG, "seccomp BPF of %lld bytes", (long long)len);
  cleanup_free unsigned char *bpf = malloc ((size_t)len);
  if (bpf == NULL || pread (fd, bpf, (size_t)len, 0) != len)
    return skiff_error_set (err, errno ? errno : EIO, "read seccomp BPF");
  char *b64 = malloc (4 * (((size_t)len + 2) / 3) + 1);
  if (b64 == NULL)
    return skiff_error_set (err, ENOMEM, "encode seccomp BPF");
  EVP_EncodeBlock ((unsigned char *)b64, bpf, (int)len);
  *b64_out = b64;
  return 0;
}
