#!/usr/bin/env python3
"""check_triggers.py — proves the trigger: lines of guardrail rule files
sound against their patterns (docs/guardrails.md, "Triggers").

For every rule with a trigger, every top-level branch of its pattern must be
covered by some trigger item: each group of the item ('+'-joined) must hold
a prefix that every match of the branch contains at a word start (or, for
"word$", as a whole word). The pattern is read with Python's regular
expression parser (the rule patterns use the syntax PCRE2 and Python
share); what the walk cannot prove counts as not covered, so a failure is
either a wrong trigger or a pattern this checker cannot read — both need a
person. Usage: check_triggers.py FILE.rules... ; exit 1 on any problem."""
import re
import sys

try:
    import re._parser as sp
    import re._constants as sc
except ImportError:  # Python < 3.11
    import sre_parse as sp
    import sre_constants as sc


def parse_rules(path):
    rules, cur, key = [], None, None
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if not line.strip():
            cur, key = None, None
            continue
        if line.lstrip().startswith("#") and not line.startswith((" ", "\t")):
            continue
        if line.startswith((" ", "\t")):
            if cur is not None and key:
                cur[key] = cur.get(key, "") + ("\n" if key == "trigger" else "") + line.strip()
            continue
        k, _, v = line.partition(":")
        key = k.strip()
        if key == "id":
            cur = {"id": v.strip(), "file": path}
            rules.append(cur)
        elif cur is not None:
            cur[key] = v.strip()
    return rules


def is_word(ch):
    return ch.isalnum() or ch == "_"


def class_nonword(items):
    """True when an IN class matches only non-word characters."""
    for op, av in items:
        if op == sc.LITERAL:
            if is_word(chr(av)):
                return False
        elif op == sc.CATEGORY:
            if av not in (sc.CATEGORY_SPACE, sc.CATEGORY_NOT_WORD, sc.CATEGORY_NOT_DIGIT) or av == sc.CATEGORY_NOT_DIGIT:
                return False
        elif op == sc.NEGATE:
            return False
        elif op == sc.RANGE:
            lo, hi = av
            if any(is_word(chr(c)) for c in range(lo, hi + 1)):
                return False
        else:
            return False
    return True


def ends_nonword(node):
    """True when every string the node matches (non-empty) ends in a non-word
    character or the node is a zero-width word boundary."""
    op, av = node
    if op == sc.LITERAL:
        return not is_word(chr(av))
    if op == sc.IN:
        return class_nonword(av)
    if op == sc.AT:
        return av in (sc.AT_BOUNDARY, sc.AT_BEGINNING, sc.AT_BEGINNING_STRING, sc.AT_UNI_BOUNDARY, sc.AT_LOC_BOUNDARY)
    if op == sc.ASSERT_NOT:
        direction, sub = av
        # (?<!\w) before: the previous character is not a word character
        return direction < 0 and len(sub.data) == 1 and sub.data[0][0] == sc.IN and not class_nonword(sub.data[0][1])
    return False


REPEATS = tuple(x for x in (sc.MAX_REPEAT, sc.MIN_REPEAT, getattr(sc, "POSSESSIVE_REPEAT", None)) if x is not None)
MAX_PATHS = 200000


class TooMany(Exception):
    pass


def expand(items):
    """Every way through items with each mandatory alternation resolved to
    one alternative: flat lists of nodes. Groups are inlined; a repeat of at
    least one is one pass of its body, then the optional rest (opaque);
    optional parts stay opaque (their words are never counted on)."""
    paths = [[]]
    for node in items:
        op, av = node
        if op == sc.SUBPATTERN:
            alts = list(expand(list(av[-1].data)))
        elif op == sc.BRANCH:
            alts = [p for b in av[1] for p in expand(list(b.data))]
        elif op in REPEATS and av[0] >= 1:
            lo, hi, sub = av
            rest = [] if hi == 1 else [(op, (0, hi, sub))]
            alts = [p + rest for p in expand(list(sub.data))]
        else:
            alts = [[node]]
        if len(paths) * len(alts) > MAX_PATHS:
            raise TooMany()
        paths = [p + a for p in paths for a in alts]
    return paths


def ends_word_start(node, ws):
    """Is a word start right after node (ws: one was right before it)?"""
    op, av = node
    if op in (sc.ASSERT, sc.ASSERT_NOT, sc.AT):
        return ws or ends_nonword(node)
    if op in REPEATS:
        lo, hi, sub = av
        inner = all(seq_ends_word_start(list(p), ws) for p in expand(list(sub.data)))
        return inner if lo >= 1 else (ws and inner)
    if op == sc.SUBPATTERN:
        return all(seq_ends_word_start(p, ws) for p in expand(list(av[-1].data)))
    if op == sc.BRANCH:
        return all(seq_ends_word_start(p, ws) for b in av[1] for p in expand(list(b.data)))
    return ends_nonword(node)


def seq_ends_word_start(items, ws):
    for node in items:
        ws = ends_word_start(node, ws)
    return ws


def starts_nonword(node):
    op, av = node
    if op == sc.LITERAL:
        return not is_word(chr(av))
    if op == sc.IN:
        return class_nonword(av)
    if op == sc.AT:
        return av in (sc.AT_BOUNDARY, sc.AT_END, sc.AT_END_STRING, sc.AT_UNI_BOUNDARY)
    if op in REPEATS and av[0] >= 1:
        d = av[2].data
        return len(d) > 0 and starts_nonword(d[0])
    if op == sc.ASSERT_NOT:
        direction, sub = av
        return direction > 0 and len(sub.data) == 1 and sub.data[0][0] == sc.IN and not class_nonword(sub.data[0][1])
    if op == sc.ASSERT:
        direction, sub = av
        return direction > 0 and len(sub.data) > 0 and starts_nonword(sub.data[0])
    return False


def words_of(path, caseless):
    """The literal words of a flat path: (text, starts a word, is whole)."""
    out, ws, i, n = [], False, 0, len(path)
    while i < n:
        op, av = path[i]
        if op == sc.LITERAL and is_word(chr(av)):
            j = i
            while j < n and path[j][0] == sc.LITERAL and is_word(chr(path[j][1])):
                j += 1
            run = "".join(chr(path[k][1]) for k in range(i, j))
            out.append((run.lower() if caseless else run, ws, j < n and starts_nonword(path[j])))
            ws = False
            i = j
            continue
        ws = ends_word_start(path[i], ws)
        i += 1
    return out


def group_covers(group, words):
    for w, start, whole in words:
        if not start:
            continue
        for p in group:
            if (p.endswith("$") and whole and w == p[:-1]) or (not p.endswith("$") and w.startswith(p)):
                return True
    return False


def top_branches(parsed):
    data = list(parsed.data)
    if len(data) == 1 and data[0][0] == sc.BRANCH:
        return [list(b.data) for b in data[0][1][1]]
    if len(data) == 1 and data[0][0] == sc.SUBPATTERN:
        return top_branches(data[0][1][-1])
    return [data]


def check_rule(r):
    problems = []
    trig = r.get("trigger")
    if not trig or "pattern" not in r:
        return problems
    flags = r.get("flags", "")
    caseless = "i" in flags
    pflags = (re.I if caseless else 0) | (re.X if "x" in flags else 0) | (re.S if "s" in flags else 0) | (re.M if "m" in flags else 0)
    try:
        parsed = sp.parse(r["pattern"], pflags)
    except Exception as e:  # noqa: BLE001 - a pattern this checker cannot read
        return ["%s: pattern not readable here (%s): the trigger cannot be proved" % (r["id"], e)]
    items = [[g.split("|") for g in item.split("+")] for item in trig.replace(",", " ").split()]
    for bi, branch in enumerate(top_branches(parsed)):
        try:
            paths = expand(branch)
        except TooMany:
            problems.append("%s: branch %d has too many ways through to check" % (r["id"], bi + 1))
            continue
        for path in paths:
            words = words_of(path, caseless)
            if not any(all(group_covers(g, words) for g in item) for item in items):
                shown = " ".join(w for w, _, _ in words)
                problems.append("%s (%s): branch %d: a match with the words [%s] holds no trigger item" % (r["id"], r["file"], bi + 1, shown))
                break
    return problems


def main(argv):
    problems, n = [], 0
    for path in argv[1:]:
        for r in parse_rules(path):
            if r.get("trigger"):
                n += 1
                problems += check_rule(r)
    for p in problems:
        print(p)
    print("%d rules with triggers, %d problems" % (n, len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
