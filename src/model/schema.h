/* schema.h - internal: the ACI schema as a table and the canonicalizer over it. */
#ifndef SKIFF_MODEL_SCHEMA_H
#define SKIFF_MODEL_SCHEMA_H

#include <jansson.h>

#include "common/error.h"

typedef enum
{
  SCHEMA_STRING,
  SCHEMA_NUMBER,
  SCHEMA_INT,
  SCHEMA_BOOL,
  SCHEMA_OBJECT,
  SCHEMA_OBJECT_ARRAY,
  SCHEMA_STRING_ARRAY,
  SCHEMA_STRING_MAP
} schema_type_t;

typedef struct schema_field
{
  const char *name; /* canonical name */
  schema_type_t type;
  const struct schema_field *sub; /* fields of an object or of the objects of an array */
} schema_field_t;

extern const schema_field_t schema_group_fields[];

/* Copies `in` into a new object with canonical property names, dropping unknown
 * properties and type-checking known ones (400 InvalidRequestContent naming the path). */
int schema_canonicalize (const json_t *in, const schema_field_t *fields, json_t **out, skiff_error_t *err);

#endif
