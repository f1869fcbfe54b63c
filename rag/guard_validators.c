/* guard_validators.c — check-digit and structure validators for guardrail
 * rules: Luhn, IBAN (ISO 13616 mod 97), German Steuer-IdNr (ISO 7064
 * MOD 11,10 and the digit-frequency rule), IPv4/IPv6, phone, e-mail, citation. */
#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>

#include "rag/guard_internal.h"

static const struct { const char *name; guard_validator v; } validator_names[] = {
    {"luhn", GUARD_V_LUHN},         {"card", GUARD_V_LUHN},
    {"iban", GUARD_V_IBAN},         {"steuer_id", GUARD_V_STEUER_ID},
    {"ipv4", GUARD_V_IPV4},         {"ipv6", GUARD_V_IPV6},
    {"phone", GUARD_V_PHONE},       {"email", GUARD_V_EMAIL},
    {"citation", GUARD_V_CITATION},
};

guard_validator rag_guard_validator_by_name(const char *name, size_t len, bool *ok) {
    for (size_t i = 0; i < sizeof validator_names / sizeof validator_names[0]; i++) {
        if (strlen(validator_names[i].name) == len && memcmp(validator_names[i].name, name, len) == 0) {
            *ok = true;
            return validator_names[i].v;
        }
    }
    *ok = false;
    return GUARD_V_NONE;
}

const char *rag_guard_validator_name(guard_validator v) {
    for (size_t i = 0; i < sizeof validator_names / sizeof validator_names[0]; i++)
        if (validator_names[i].v == v) return validator_names[i].name;
    return "none";
}

/* Luhn over 13..19 digits, written without separators or grouped the way
 * cards are printed with one kind of separator (space or dash): groups of
 * four with a shorter last group, or 4-6-5 / 4-6-4 (Amex, Diners), so a row
 * of unrelated numbers in a table is not taken for a card. All-equal digit
 * runs (0000 0000 ...) pass Luhn by accident and are rejected. */
static bool v_luhn(const char *s, size_t len) {
    int digits[32], n = 0, groups[24], ng = 0, cur = 0;
    char sep = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= '0' && c <= '9') {
            if (n == 32) return false;
            digits[n++] = c - '0';
            cur++;
        } else if (c == ' ' || c == '-') {
            if ((sep && sep != c) || cur == 0 || ng == 23) return false;
            sep = (char)c;
            groups[ng++] = cur;
            cur = 0;
        } else {
            return false;
        }
    }
    groups[ng++] = cur;
    if (n < 13 || n > 19) return false;
    if (ng > 1) {
        bool fours = true;
        for (int i = 0; i < ng - 1; i++) fours &= groups[i] == 4;
        fours &= groups[ng - 1] >= 1 && groups[ng - 1] <= 4;
        bool amex = ng == 3 && groups[0] == 4 && groups[1] == 6 && (groups[2] == 5 || groups[2] == 4);
        if (!fours && !amex) return false;
    }
    bool all_same = true;
    for (int i = 1; i < n; i++) all_same &= digits[i] == digits[0];
    if (all_same) return false;
    int sum = 0;
    for (int i = n - 1, k = 0; i >= 0; i--, k++) {
        int d = digits[i];
        if (k & 1) { d *= 2; if (d > 9) d -= 9; }
        sum += d;
    }
    return sum % 10 == 0;
}

/* IBAN lengths by country (the SWIFT IBAN registry). */
static const struct { char cc[3]; unsigned char len; } iban_lengths[] = {
    {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16},
    {"BG", 22}, {"BH", 22}, {"BI", 27}, {"BR", 29}, {"BY", 28}, {"CH", 21}, {"CR", 22},
    {"CY", 28}, {"CZ", 24}, {"DE", 22}, {"DJ", 27}, {"DK", 18}, {"DO", 28}, {"EE", 20},
    {"EG", 29}, {"ES", 24}, {"FI", 18}, {"FK", 18}, {"FO", 18}, {"FR", 27}, {"GB", 22},
    {"GE", 22}, {"GI", 23}, {"GL", 18}, {"GR", 27}, {"GT", 28}, {"HR", 21}, {"HU", 28},
    {"IE", 22}, {"IL", 23}, {"IQ", 23}, {"IS", 26}, {"IT", 27}, {"JO", 30}, {"KW", 30},
    {"KZ", 20}, {"LB", 28}, {"LC", 32}, {"LI", 21}, {"LT", 20}, {"LU", 20}, {"LV", 21},
    {"LY", 25}, {"MC", 27}, {"MD", 24}, {"ME", 22}, {"MK", 19}, {"MN", 20}, {"MR", 27},
    {"MT", 31}, {"MU", 30}, {"NI", 28}, {"NL", 18}, {"NO", 15}, {"OM", 23}, {"PK", 24},
    {"PL", 28}, {"PS", 29}, {"PT", 25}, {"QA", 29}, {"RO", 24}, {"RS", 22}, {"RU", 33},
    {"SA", 24}, {"SC", 31}, {"SD", 18}, {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27},
    {"SO", 23}, {"ST", 25}, {"SV", 28}, {"TL", 23}, {"TN", 24}, {"TR", 26}, {"UA", 29},
    {"VA", 22}, {"VG", 24}, {"XK", 20}, {"YE", 30},
};

static int iban_country_length(char a, char b) {
    for (size_t i = 0; i < sizeof iban_lengths / sizeof iban_lengths[0]; i++)
        if (iban_lengths[i].cc[0] == a && iban_lengths[i].cc[1] == b) return iban_lengths[i].len;
    return 0;
}

/* IBAN: country code, known length, mod 97 == 1 over the rearranged string.
 * Single spaces may separate characters. When the candidate runs on past the
 * country's length, the extra part must start a new space-separated group
 * and the accepted span is shortened to the IBAN itself. */
static bool v_iban(const char *s, size_t len, size_t *acc_len) {
    char c[40];
    size_t pos[40];
    size_t n = 0;
    for (size_t i = 0; i < len && n < sizeof c; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == ' ') continue;
        if (!isalnum(ch)) return false;
        pos[n] = i;
        c[n++] = (char)toupper(ch);
    }
    if (n < 4 || !isupper((unsigned char)c[0]) || !isupper((unsigned char)c[1]) ||
        !isdigit((unsigned char)c[2]) || !isdigit((unsigned char)c[3]))
        return false;
    int want = iban_country_length(c[0], c[1]);
    if (want == 0 || n < (size_t)want) return false;
    size_t end = pos[want - 1] + 1;
    if ((size_t)want < n || end < len) {
        /* more characters follow: only acceptable after a space */
        if (end >= len || s[end] != ' ') return false;
    }
    unsigned rem = 0;
    for (int k = 0; k < want; k++) {
        char ch = c[(k + 4) % want];
        unsigned v;
        if (ch >= '0' && ch <= '9') {
            v = (unsigned)(ch - '0');
            rem = (rem * 10 + v) % 97;
        } else {
            v = (unsigned)(ch - 'A' + 10);
            rem = (rem * 100 + v) % 97;
        }
    }
    if (rem != 1) return false;
    *acc_len = end;
    return true;
}

/* German tax id (Steuerliche Identifikationsnummer): 11 digits (single
 * spaces allowed), first digit not 0; among the first ten digits exactly one
 * digit occurs twice or three times (three never all adjacent) and every
 * other digit at most once; the last digit is the ISO 7064 MOD 11,10 check
 * digit of the first ten. */
static bool v_steuer_id(const char *s, size_t len) {
    int d[11], n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == ' ') continue;
        if (ch < '0' || ch > '9' || n == 11) return false;
        d[n++] = ch - '0';
    }
    if (n != 11 || d[0] == 0) return false;
    int count[10] = {0};
    for (int i = 0; i < 10; i++) count[d[i]]++;
    int multi = 0;
    for (int k = 0; k < 10; k++) {
        if (count[k] > 3) return false;
        if (count[k] >= 2) multi++;
        if (count[k] == 3)
            for (int i = 0; i + 2 < 10; i++)
                if (d[i] == k && d[i + 1] == k && d[i + 2] == k) return false;
    }
    if (multi != 1) return false;
    int product = 10;
    for (int i = 0; i < 10; i++) {
        int sum = (d[i] + product) % 10;
        if (sum == 0) sum = 10;
        product = (sum * 2) % 11;
    }
    int check = 11 - product;
    if (check == 10) check = 0;
    return check == d[10];
}

static bool v_inet(int af, const char *s, size_t len) {
    char buf[64];
    unsigned char addr[16];
    if (len == 0 || len >= sizeof buf) return false;
    memcpy(buf, s, len);
    buf[len] = 0;
    return inet_pton(af, buf, addr) == 1;
}

/* IPv4: inet_pton accepts it (four octets 0..255, no leading zeros), and it
 * is not a version number or a non-personal address: all four octets of
 * one digit ("GCC 2.7.2.3"), loopback 127/8, 0.0.0.0, 255.255.255.255. */
static bool v_ipv4(const char *s, size_t len) {
    unsigned char a[4];
    char buf[20];
    if (len == 0 || len >= sizeof buf) return false;
    memcpy(buf, s, len);
    buf[len] = 0;
    if (inet_pton(AF_INET, buf, a) != 1) return false;
    if (len == 7) return false; /* d.d.d.d */
    if (a[0] == 127) return false;
    if ((a[0] | a[1] | a[2] | a[3]) == 0) return false;
    if ((a[0] & a[1] & a[2] & a[3]) == 255) return false;
    return true;
}

/* IPv6: inet_pton accepts it, at least two groups carry digits and one
 * group has two or more, so "::", "::1" and one-letter "a::b" are not
 * reported. */
static bool v_ipv6(const char *s, size_t len) {
    if (!v_inet(AF_INET6, s, len)) return false;
    int groups = 0, cur = 0, longest = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == ':' || s[i] == '.') {
            if (cur) groups++;
            if (cur > longest) longest = cur;
            cur = 0;
        } else {
            cur++;
        }
    }
    return groups >= 2 && longest >= 2;
}

/* Phone numbers: international (+CC or 00CC, 8..15 digits, "(0)" trunk
 * allowed) or German national (leading 0, first group of 3..6 digits
 * including the 0, 9..13 digits, so "0900-1700" is not one). Separators:
 * space, '/', '-', one pair of parentheses; at most three separator
 * characters in a row (" / "). */
static bool v_phone(const char *s, size_t len) {
    size_t i = 0;
    bool intl = false;
    if (len && s[0] == '+') { intl = true; i = 1; }
    else if (len >= 2 && s[0] == '0' && s[1] == '0') intl = true;
    int digits = 0, run_sep = 0, parens = 0, first_group = -1, cur = 0;
    bool in_paren = false;
    for (; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= '0' && ch <= '9') {
            digits++;
            cur++;
            run_sep = 0;
            continue;
        }
        if (ch == '(') {
            if (in_paren || parens) return false;
            in_paren = true;
            parens++;
        } else if (ch == ')') {
            if (!in_paren) return false;
            in_paren = false;
        } else if (ch != ' ' && ch != '/' && ch != '-') {
            return false;
        }
        if (++run_sep > 3) return false; /* "030 / 123", "030 - 123" */
        if (cur && first_group < 0 && ch != '(' && ch != ')') first_group = cur;
        if (cur && first_group < 0 && ch == ')') first_group = cur;
        cur = 0;
    }
    if (in_paren) return false;
    if (first_group < 0) first_group = cur;
    if (intl) {
        int d = s[0] == '+' ? digits : digits - 2;
        return d >= 8 && d <= 15;
    }
    /* national: skip a leading '(' for the "(030) 1234567" form */
    const char *p = s;
    if (*p == '(') p++;
    if (*p != '0' || (len > 1 && p[1] == '0')) return false;
    return first_group >= 3 && first_group <= 6 && digits >= 9 && digits <= 13;
}

/* E-mail: local part 1..64 without leading/trailing/double dots; domain of
 * dot-separated labels (1..63, no leading/trailing '-'), alphabetic TLD. */
static bool v_email(const char *s, size_t len) {
    const char *at = memchr(s, '@', len);
    if (!at || len > 254) return false;
    size_t local = (size_t)(at - s);
    if (local == 0 || local > 64 || s[0] == '.' || s[local - 1] == '.') return false;
    for (size_t i = 1; i < local; i++)
        if (s[i] == '.' && s[i - 1] == '.') return false;
    const char *d = at + 1, *end = s + len;
    size_t labels = 0, label_len = 0;
    for (const char *p = d; p <= end; p++) {
        if (p == end || *p == '.') {
            if (label_len == 0 || label_len > 63 || p[-1] == '-') return false;
            labels++;
            label_len = 0;
            continue;
        }
        unsigned char ch = (unsigned char)*p;
        if (label_len == 0 && ch == '-') return false;
        if (!isalnum(ch) && ch != '-') return false;
        label_len++;
    }
    /* the top-level domain is alphabetic */
    const char *dot = NULL;
    for (const char *p = end; p > d; p--) if (p[-1] == '.') { dot = p; break; }
    if (!dot) return false;
    for (const char *p = dot; p < end; p++) if (!isalpha((unsigned char)*p)) return false;
    return labels >= 2 && end - dot >= 2;
}

/* Citation marker "[n]" (optionally after one space or tab): valid — i.e. the
 * rule fires — when n names no provided source (n < 1 or n > n_sources).
 * n_sources < 0 means "unknown": nothing fires. */
static bool v_citation(const char *s, size_t len, int n_sources) {
    if (n_sources < 0) return false;
    long n = 0;
    bool any = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= '0' && ch <= '9') {
            any = true;
            if (n < 100000000) n = n * 10 + (ch - '0');
        }
    }
    return any && (n < 1 || n > n_sources);
}

bool rag_guard_run_validator(guard_validator v, const char *s, size_t len, int n_sources, size_t *acc_len) {
    *acc_len = len;
    switch (v) {
    case GUARD_V_NONE: return true;
    case GUARD_V_LUHN: return v_luhn(s, len);
    case GUARD_V_IBAN: return v_iban(s, len, acc_len);
    case GUARD_V_STEUER_ID: return v_steuer_id(s, len);
    case GUARD_V_IPV4: return v_ipv4(s, len);
    case GUARD_V_IPV6: return v_ipv6(s, len);
    case GUARD_V_PHONE: return v_phone(s, len);
    case GUARD_V_EMAIL: return v_email(s, len);
    case GUARD_V_CITATION: return v_citation(s, len, n_sources);
    }
    return false;
}

bool rag_guard_validate(const char *name, const char *s, size_t len) {
    bool ok;
    guard_validator v = rag_guard_validator_by_name(name, strlen(name), &ok);
    size_t acc;
    if (!ok || v == GUARD_V_CITATION) return false;
    return rag_guard_run_validator(v, s, len, -1, &acc) && acc == len;
}
