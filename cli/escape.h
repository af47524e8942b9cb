/*
 * Text that comes from a monitored host or from a file (thread, process
 * and program names, command lines, culprits, frames, file names, stats
 * fields), made safe for a terminal before any printer writes it.
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
 */
#ifndef ELMON_CLI_ESCAPE_H
#define ELMON_CLI_ESCAPE_H

#include <stddef.h>

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
