/*
 * A small JSON reader for the events files (one record per line), the
 * writer helpers the summaries share, and the escaping of host and file
 * text for a terminal that every printer uses.  Records are small and read once, so
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
/* The whole document: only a value jv_parse returned (its members live and
 * die with it). */
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
/* The same for JSON inside an HTML <script> element: '<', '>' and '&' as
 * \u escapes too, so no string can close the element ("</script>") or
 * open a comment in it, whatever it holds. */
void json_put_str_html(FILE *f, const char *s);

/*
 * Text for a terminal: what comes from a monitored host or from a file
 * (thread, process and program names, command lines, culprits, frames,
 * file names, stats fields), made safe before any printer writes it.
 *
 * A process names its threads and itself, and anyone who can write an
 * events file or a directory entry chooses those strings too: printed raw,
 * "\x1b]0;...\x07" retitles the reader's terminal, "\x1b[2J" clears it, a
 * CR overwrites the line before it, and some terminals act on C1 controls
 * (U+009B is CSI).  So, unit by unit:
 *   C0 (0x00-0x1f) and DEL (0x7f)     \xHH       ESC shows as \x1b
 *   C1 as UTF-8 (U+0080-U+009F)       \u00HH
 *   a byte that is not valid UTF-8    \xHH       (overlong, surrogate, cut)
 *   any other valid UTF-8 character   as it is
 * An escape sequence is harmless once its ESC is escaped; what follows it
 * is printable.  A backslash stays one: libelmon already writes names it
 * escaped itself (Python code names) as "\x1b" text, and doubling it would
 * show those as "\\x1b"; telling "\x1b" text from an escaped ESC is not
 * what this is for.  JSON output escapes through json_put_str instead.
 *
 * It lives beside the JSON writer because every program made of the
 * command's printers (elmon itself, the fuzzer of its reader and
 * summaries, the tests) already builds json.c.
 */

/* The longest text of one unit: "\u009b" or four bytes of UTF-8, NUL. */
#define ESC_UNIT_MAX 8

/* The unit at s (s[0] != 0) as a terminal gets it, into out (NUL-terminated);
 * returns how many bytes of s it took (1 to 4, never past a NUL). */
size_t esc_unit(const char *s, char out[ESC_UNIT_MAX]);

/* s escaped into out[0..size) (size >= 1), cut before the first unit that
 * does not fit whole, never inside an escape or a character: for columns
 * of a fixed width.  NULL prints as "".  Returns out. */
char *esc_cut(char *out, size_t size, const char *s);

/* s escaped whole, for a printf argument: the result lives in one of a few
 * buffers used in turn, valid until ESC_SLOTS more calls.  NULL gives "". */
#define ESC_SLOTS 8
const char *esc(const char *s);

#endif
