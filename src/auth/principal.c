/* principal.c — RFC 2253 subjects and Kafka's ssl.principal.mapping.rules (PCRE2). */
#include "auth/principal.h"

#include "core/buf.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <openssl/bio.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rule {
    int is_default;
    pcre2_code *re;
    char *replacement; /* in PCRE2 substitute syntax */
    char caseconv;     /* 0, 'L' or 'U' */
} rule_t;

struct kp_principal_rules {
    rule_t *rules;
    int n;
};

void kp_principal_rules_free(kp_principal_rules_t *r)
{
    if (!r) return;
    for (int i = 0; i < r->n; i++) {
        pcre2_code_free(r->rules[i].re);
        free(r->rules[i].replacement);
    }
    free(r->rules);
    free(r);
}

/* Reads up to an unescaped '/'. A backslash and the character after it are one unit, as in
 * Kafka's rule syntax ((\\.|[^\\/])*): "\/" becomes "/", any other pair is kept as it is
 * (so "\\" followed by "/" is an escaped backslash, then the delimiter). */
static const char *read_part(const char *s, kp_buf_t *out)
{
    while (*s && *s != '/') {
        if (s[0] == '\\' && s[1]) {
            if (s[1] == '/')
                kp_buf_append(out, "/", 1);
            else
                kp_buf_append(out, s, 2);
            s += 2;
            continue;
        }
        kp_buf_append(out, s, 1);
        s++;
    }
    kp_buf_append(out, "", 1);
    return s;
}

/* Java replacement syntax ($1, \$, \\) to PCRE2's (${1}, $$, \). Group references follow
 * Kafka (SslPrincipalMapper) and Java: "$<digits>" takes the longest prefix of the digits
 * that names an existing group ("$12" with one group is group 1 and "2"), and a reference
 * whose first digit is already past the last group is literal text ("$2" with one group). */
static char *java_to_pcre2_replacement(const char *s, uint32_t groups)
{
    kp_buf_t b;
    kp_buf_init(&b);
    for (; *s; s++) {
        if (s[0] == '\\' && s[1]) {
            if (s[1] == '$')
                kp_buf_append(&b, "$$", 2);
            else
                kp_buf_append(&b, s + 1, 1);
            s++;
        } else if (s[0] == '$' && isdigit((unsigned char)s[1])) {
            uint32_t ref = (uint32_t)(s[1] - '0');
            if (ref > groups) {
                kp_buf_append(&b, "$$", 2); /* literal; the digits follow as text */
                continue;
            }
            s += 2;
            while (isdigit((unsigned char)*s) && ref * 10 + (uint32_t)(*s - '0') <= groups)
                ref = ref * 10 + (uint32_t)(*s++ - '0');
            char t[24];
            int n = snprintf(t, sizeof(t), "${%u}", ref);
            kp_buf_append(&b, t, (size_t)n);
            s--;
        } else {
            kp_buf_append(&b, s, 1);
        }
    }
    kp_buf_append(&b, "", 1);
    return (char *)b.data;
}

kp_principal_rules_t *kp_principal_rules_parse(const char *text, char *err, size_t errlen)
{
    kp_principal_rules_t *r = kp_xcalloc(1, sizeof(*r));
    if (!text || !*text) text = "DEFAULT";
    const char *s = text;
    for (;;) {
        while (*s == ' ' || *s == '\t' || *s == '\n' || *s == ',') s++;
        if (!*s) break;
        r->rules = kp_xrealloc(r->rules, (size_t)(r->n + 1) * sizeof(rule_t));
        rule_t *rule = &r->rules[r->n];
        memset(rule, 0, sizeof(*rule));
        if (!strncmp(s, "DEFAULT", 7)) {
            rule->is_default = 1;
            r->n++;
            s += 7;
            continue;
        }
        if (strncmp(s, "RULE:", 5) != 0) {
            snprintf(err, errlen,
                     "ssl.principal.mapping.rules: expected RULE: or DEFAULT at '%.20s'", s);
            goto fail;
        }
        s += 5;
        kp_buf_t pat, rep;
        kp_buf_init(&pat);
        kp_buf_init(&rep);
        s = read_part(s, &pat);
        if (*s != '/') {
            kp_buf_free(&pat);
            kp_buf_free(&rep);
            snprintf(err, errlen,
                     "ssl.principal.mapping.rules: a rule needs /pattern/replacement/");
            goto fail;
        }
        s = read_part(s + 1, &rep);
        if (*s != '/') {
            kp_buf_free(&pat);
            kp_buf_free(&rep);
            snprintf(err, errlen,
                     "ssl.principal.mapping.rules: a rule needs /pattern/replacement/");
            goto fail;
        }
        s++;
        if (*s == 'L' || *s == 'U') rule->caseconv = *s++;
        int ecode;
        PCRE2_SIZE eoff;
        rule->re = pcre2_compile((PCRE2_SPTR)pat.data, PCRE2_ZERO_TERMINATED,
                                 PCRE2_ANCHORED | PCRE2_ENDANCHORED, &ecode, &eoff, NULL);
        if (!rule->re) {
            PCRE2_UCHAR msg[128];
            pcre2_get_error_message(ecode, msg, sizeof(msg));
            snprintf(err, errlen, "ssl.principal.mapping.rules: pattern '%s': %s at %zu",
                     (char *)pat.data, (char *)msg, (size_t)eoff);
            kp_buf_free(&pat);
            kp_buf_free(&rep);
            goto fail;
        }
        uint32_t groups = 0;
        pcre2_pattern_info(rule->re, PCRE2_INFO_CAPTURECOUNT, &groups);
        rule->replacement = java_to_pcre2_replacement((const char *)rep.data, groups);
        kp_buf_free(&pat);
        kp_buf_free(&rep);
        r->n++;
    }
    return r;
fail:
    kp_principal_rules_free(r);
    return NULL;
}

int kp_principal_rules_apply(const kp_principal_rules_t *r, const char *dn, char *out,
                             size_t outlen)
{
    for (int i = 0; i < r->n; i++) {
        const rule_t *rule = &r->rules[i];
        if (rule->is_default) {
            if (strlen(dn) >= outlen) return -1;
            strcpy(out, dn);
            return 0;
        }
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(rule->re, NULL);
        int rc = pcre2_match(rule->re, (PCRE2_SPTR)dn, strlen(dn), 0, 0, md, NULL);
        if (rc < 0) {
            pcre2_match_data_free(md);
            continue;
        }
        PCRE2_SIZE n = outlen;
        rc = pcre2_substitute(rule->re, (PCRE2_SPTR)dn, strlen(dn), 0, PCRE2_SUBSTITUTE_MATCHED, md,
                              NULL, (PCRE2_SPTR)rule->replacement, PCRE2_ZERO_TERMINATED,
                              (PCRE2_UCHAR *)out, &n);
        pcre2_match_data_free(md);
        if (rc < 0) return -1;
        for (char *p = out; *p && rule->caseconv; p++)
            *p = (char)(rule->caseconv == 'L' ? tolower((unsigned char)*p)
                                              : toupper((unsigned char)*p));
        return 0;
    }
    return -1;
}

int kp_cert_subject_rfc2253(X509 *cert, char *out, size_t outlen)
{
    X509_NAME *name = X509_get_subject_name(cert);
    if (!name) return -1;
    BIO *bio = BIO_new(BIO_s_mem());
    if (!bio) return -1;
    /* RFC 2253: most specific RDN first, comma separated, RFC 2253 escaping, UTF-8 */
    unsigned long flags = XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB;
    if (X509_NAME_print_ex(bio, name, 0, flags) < 0) {
        BIO_free(bio);
        return -1;
    }
    char *data;
    long len = BIO_get_mem_data(bio, &data);
    int rc = -1;
    if (len >= 0 && (size_t)len < outlen) {
        memcpy(out, data, (size_t)len);
        out[len] = 0;
        rc = 0;
    }
    BIO_free(bio);
    return rc;
}
