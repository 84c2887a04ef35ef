/*
 * k8s_select.c — label selectors, field selectors and list paging (see k8s.h). Selectors
 * are parsed term by term from the raw query value; a term that does not parse is an error
 * (400 from the caller), as in Kubernetes, never a silent match-all.
 */
#include "control/api/k8s.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Selector terms are short; longer ones are refused rather than cut. */
#define SELECTOR_TERM_MAX 512

static void trim(char **s)
{
    while (isspace((unsigned char)**s)) (*s)++;
    size_t n = strlen(*s);
    while (n && isspace((unsigned char)(*s)[n - 1])) (*s)[--n] = 0;
}

/* Splits at top-level commas (not inside parentheses). Returns the next term or NULL. */
static char *next_term(char **p)
{
    if (!*p || !**p) return NULL;
    char *start = *p;
    int depth = 0;
    for (char *c = start; *c; c++) {
        if (*c == '(') depth++;
        if (*c == ')') depth--;
        if (*c == ',' && depth == 0) {
            *c = 0;
            *p = c + 1;
            return start;
        }
    }
    *p = start + strlen(start);
    return start;
}

static int in_set(const char *v, char *set)
{
    char *save = NULL;
    for (char *t = strtok_r(set, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        trim(&t);
        if (v && !strcmp(t, v)) return 1;
    }
    return 0;
}

/* One label term against labels: 1, 0, or -1 (invalid). */
static int label_term(const json_t *labels, char *t, char *err, size_t errlen)
{
    trim(&t);
    if (!*t) {
        snprintf(err, errlen, "empty label selector term");
        return -1;
    }
    if (t[0] == '!') {
        char *k = t + 1;
        trim(&k);
        return json_object_get(labels, k) == NULL;
    }
    char *op;
    if ((op = strstr(t, "!="))) {
        *op = 0;
        char *k = t, *v = op + 2;
        trim(&k);
        trim(&v);
        const char *have = json_string_value(json_object_get(labels, k));
        return !have || strcmp(have, v) != 0;
    }
    if ((op = strchr(t, '='))) {
        *op = 0;
        char *k = t, *v = op + 1 + (op[1] == '=');
        trim(&k);
        trim(&v);
        const char *have = json_string_value(json_object_get(labels, k));
        return have && !strcmp(have, v);
    }
    char *paren = strchr(t, '(');
    if (paren) {
        char *close = strrchr(t, ')');
        if (!close || close < paren || close[1]) {
            snprintf(err, errlen, "unterminated set in label selector");
            return -1;
        }
        *close = 0;
        *paren = 0;
        char *head = t;
        trim(&head);
        char *sp = head;
        while (*sp && !isspace((unsigned char)*sp)) sp++;
        if (!*sp) {
            snprintf(err, errlen, "expected 'in' or 'notin' in label selector");
            return -1;
        }
        *sp = 0;
        char *word = sp + 1;
        trim(&word);
        const char *have = json_string_value(json_object_get(labels, head));
        if (!strcmp(word, "in")) return in_set(have, paren + 1);
        if (!strcmp(word, "notin")) return !in_set(have, paren + 1);
        snprintf(err, errlen, "unknown operator '%.32s' in label selector", word);
        return -1;
    }
    for (char *c = t; *c; c++)
        if (isspace((unsigned char)*c)) {
            snprintf(err, errlen, "unable to parse requirement: '%.64s'", t);
            return -1;
        }
    return json_object_get(labels, t) != NULL;
}

int kp_k8s_label_match(const json_t *obj, const char *selector, char *err, size_t errlen)
{
    if (!selector || !*selector) return 1;
    if (strlen(selector) > SELECTOR_TERM_MAX * 8) {
        snprintf(err, errlen, "label selector too long");
        return -1;
    }
    json_t *labels = json_object_get(json_object_get(obj, "metadata"), "labels");
    char *copy = strdup(selector), *p = copy, *t;
    int ok = 1;
    while ((t = next_term(&p))) {
        int r = label_term(labels, t, err, errlen);
        if (r < 0) {
            ok = -1;
            break;
        }
        ok = ok && r;
    }
    free(copy);
    return ok;
}

/* The string at a dotted path of obj ("involvedObject.name"), NULL when absent. */
static const char *path_string(const json_t *obj, const char *path)
{
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", path);
    const json_t *v = obj;
    for (char *save = NULL, *t = strtok_r(buf, ".", &save); t && v; t = strtok_r(NULL, ".", &save))
        v = json_object_get(v, t);
    return json_string_value(v);
}

int kp_k8s_field_match_in(const json_t *obj, const char *selector, const char *const *fields,
                          char *err, size_t errlen)
{
    if (!selector || !*selector) return 1;
    char *copy = strdup(selector), *p = copy, *t;
    int ok = 1;
    while ((t = next_term(&p))) {
        trim(&t);
        char *op = strstr(t, "!=");
        int neg = op != NULL;
        if (!op) op = strchr(t, '=');
        if (!op) {
            snprintf(err, errlen, "invalid field selector term '%.64s': expected key=value", t);
            ok = -1;
            break;
        }
        char *v = op + (neg ? 2 : 1 + (op[1] == '='));
        *op = 0;
        char *k = t;
        trim(&k);
        trim(&v);
        const char *path = NULL;
        if (!strcmp(k, "metadata.name") || !strcmp(k, "metadata.namespace")) path = k;
        for (size_t i = 0; !path && fields && fields[i]; i += 2)
            if (!strcmp(k, fields[i])) path = fields[i + 1];
        if (!path) {
            snprintf(err, errlen, "field label not supported: %.64s", k);
            ok = -1;
            break;
        }
        const char *have = path_string(obj, path);
        int eq = have ? !strcmp(have, v) : !*v; /* an absent field equals "" */
        if (ok == 1) ok = neg ? !eq : eq;
    }
    free(copy);
    return ok;
}

int kp_k8s_field_match(const json_t *obj, const char *selector, char *err, size_t errlen)
{
    return kp_k8s_field_match_in(obj, selector, NULL, err, errlen);
}

/* The continue token: hex of "<namespace>/<name>" of the last item sent (names cannot hold
 * '/'), so paging survives writes between pages. */
static char *token_of(const json_t *obj)
{
    json_t *md = json_object_get(obj, "metadata");
    const char *ns = json_string_value(json_object_get(md, "namespace")) ?: "";
    const char *name = json_string_value(json_object_get(md, "name")) ?: "";
    size_t n = strlen(ns) + 1 + strlen(name);
    char *raw = malloc(n + 1), *hex = malloc(2 * n + 1);
    snprintf(raw, n + 1, "%s/%s", ns, name);
    for (size_t i = 0; i < n; i++) sprintf(hex + 2 * i, "%02x", (unsigned char)raw[i]);
    hex[2 * n] = 0;
    free(raw);
    return hex;
}

static int cmp_key(const json_t *obj, const char *ns, const char *name)
{
    json_t *md = json_object_get(obj, "metadata");
    int c = strcmp(json_string_value(json_object_get(md, "namespace")) ?: "", ns);
    return c ? c : strcmp(json_string_value(json_object_get(md, "name")) ?: "", name);
}

int kp_k8s_page(json_t *items, long limit, const char *cont, char **next, long *remaining)
{
    *next = NULL;
    *remaining = 0;
    size_t start = 0;
    if (cont && *cont) {
        size_t n = strlen(cont);
        if (n % 2 || n > 1024) return -1;
        char raw[513];
        for (size_t i = 0; i < n / 2; i++) {
            unsigned v;
            if (sscanf(cont + 2 * i, "%2x", &v) != 1 || !isxdigit((unsigned char)cont[2 * i + 1]))
                return -1;
            raw[i] = (char)v;
        }
        raw[n / 2] = 0;
        if (strlen(raw) != n / 2) return -1;
        char *slash = strchr(raw, '/');
        if (!slash) return -1;
        *slash = 0;
        while (start < json_array_size(items) &&
               cmp_key(json_array_get(items, start), raw, slash + 1) <= 0)
            start++;
    }
    size_t total = json_array_size(items);
    size_t end = limit > 0 && start + (size_t)limit < total ? start + (size_t)limit : total;
    if (end < total) {
        *next = token_of(json_array_get(items, end - 1));
        *remaining = (long)(total - end);
    }
    /* keep [start, end) */
    for (size_t i = total; i > end; i--) json_array_remove(items, i - 1);
    for (size_t i = 0; i < start; i++) json_array_remove(items, 0);
    return 0;
}
