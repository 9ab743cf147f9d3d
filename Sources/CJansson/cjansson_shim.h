/* Thin shim over jansson: what Swift cannot import (type-test macros, refcount macros). */
#ifndef CJANSSON_SHIM_H
#define CJANSSON_SHIM_H
#include <jansson.h>
#include <string.h>

static inline int cj_is_object(const json_t *j) { return json_is_object(j); }
static inline int cj_is_array(const json_t *j) { return json_is_array(j); }
static inline int cj_is_string(const json_t *j) { return json_is_string(j); }
static inline int cj_is_integer(const json_t *j) { return json_is_integer(j); }
static inline int cj_is_real(const json_t *j) { return json_is_real(j); }
static inline int cj_is_number(const json_t *j) { return json_is_number(j); }
static inline int cj_is_boolean(const json_t *j) { return json_is_boolean(j); }
static inline int cj_is_true(const json_t *j) { return json_is_true(j); }
static inline int cj_is_null(const json_t *j) { return json_is_null(j); }
static inline void cj_decref(json_t *j) { json_decref(j); }
static inline json_t *cj_incref(json_t *j) { return json_incref(j); }
static inline json_t *cj_true(void) { return json_true(); }
static inline json_t *cj_false(void) { return json_false(); }
static inline json_t *cj_boolean(int v) { return json_boolean(v); }
static inline json_t *cj_null(void) { return json_null(); }
static inline size_t cj_compact_flags(void) { return JSON_COMPACT; }
/* Rejects duplicate keys and keeps bytes the peer sent as-is otherwise. */
static inline size_t cj_decode_flags(void) { return JSON_REJECT_DUPLICATES; }
/* A signalling payload may be any JSON value, not only an object or an array. */
static inline size_t cj_any_decode_flags(void) { return JSON_DECODE_ANY; }
static inline size_t cj_any_compact_flags(void) { return JSON_COMPACT | JSON_ENCODE_ANY; }
/* json_error_code() reads a char array Swift cannot index: say whether a parse failed
   only because a number does not fit (valid JSON, out-of-range value). */
static inline int cj_error_is_numeric_overflow(const json_error_t *e) {
    return json_error_code(e) == json_error_numeric_overflow;
}
/* Whether `text` has at most `limit` opening brackets (`{` and `[`, in strings too), counted
   with memchr, which passes over a byte far faster than a loop reads one. */
static inline int cj_openers_within(const unsigned char *text, size_t length, int limit) {
    int openers = 0;
    const unsigned char *end = text + length;
    for (const char *bracket = "{["; *bracket; bracket++) {
        for (const unsigned char *p = text; p < end; p++) {
            p = memchr(p, *bracket, (size_t)(end - p));
            if (p == NULL) break;
            if (++openers > limit) return 0;
        }
    }
    return 1;
}
/* Whether objects and arrays in `text` nest at most `max_depth` deep, brackets in strings
   aside. Checked before json_loadb: jansson recurses once per level (up to 2048, about 100
   bytes of stack each). Works on any bytes: UTF-8 continuation bytes never look like ASCII
   punctuation. Nothing nests deeper than it has opening brackets: nearly every message has
   a few and is done at the first line; the rest are read byte by byte. */
static inline int cj_nesting_within(const unsigned char *text, size_t length, int max_depth) {
    if (cj_openers_within(text, length, max_depth)) return 1;
    int depth = 0, in_string = 0, escaped = 0;
    for (size_t i = 0; i < length; i++) {
        unsigned char c = text[i];
        if (in_string) {
            if (escaped) escaped = 0;
            else if (c == '\\') escaped = 1;
            else if (c == '"') in_string = 0;
            continue;
        }
        if (c == '"') in_string = 1;
        else if (c == '[' || c == '{') { if (++depth > max_depth) return 0; }
        else if (c == ']' || c == '}') depth--;
    }
    return 1;
}
#endif
