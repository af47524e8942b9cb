/*
 * A small JSON reader for the events files (one record per line) and the
 * writer helpers the summaries share.  Records are small and read once, so
 * the reader builds a tree; it refuses anything that is not exactly one
 * JSON value, never reads past the input, and nests at most 64 deep.
 */
#ifndef ELMON_CLI_JSON_H
#define ELMON_CLI_JSON_H

#include <stddef.h>
#include <stdio.h>

enum jtype { J_NULL, J_FALSE, J_TRUE, J_NUM, J_STR, J_ARR, J_OBJ };

struct jval {
    enum jtype type;
    double num;
    char *str;                  /* J_STR, NUL-terminated (may hold U+0000 as "\0") */
    size_t n;                   /* members of J_ARR / J_OBJ */
    char **keys;                /* J_OBJ */
    struct jval **items;        /* J_ARR, J_OBJ */
};

/* The value in s[0..n), or NULL (not one complete value, or out of memory). */
struct jval *jv_parse(const char *s, size_t n);
void jv_free(struct jval *v);

/* Member of an object, or NULL (also when o is not an object). */
const struct jval *jv_get(const struct jval *o, const char *key);
/* The member as a string / number / integer, or def when absent or of
 * another type. */
const char *jv_str(const struct jval *o, const char *key, const char *def);
double jv_num(const struct jval *o, const char *key, double def);
int jv_bool(const struct jval *o, const char *key, int def);

/* s as a JSON string literal (quotes included; invalid UTF-8 as U+FFFD;
 * C0, DEL and C1 controls as \u escapes, never raw). */
void json_put_str(FILE *f, const char *s);

#endif
