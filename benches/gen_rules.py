#!/usr/bin/env python3
"""Make N alarm rules (regexes) from the Loghub templates.

    gen_rules.py N OUTDIR [--seed S]

Writes
  OUTDIR/rules.txt   one regex per line (for `rg --crlf -f rules.txt`)
  OUTDIR/rules.toml  a logalarm config: alarm `bench` (action `log:bench`),
                     alarm_freq = 3, one [[rule]] per regex
  OUTDIR/rules.tsv   provenance of each rule: kind, system, EventId, number of
                     corpus lines (of the 16,000) it matches, regex

How rules are made
  * base: one rule per template (417 in Loghub 2k; templates that are only
    `<*>` would be dropped).  Literal text is escaped, each `<*>` becomes
    `\\d+` if every value it takes in the structured CSV is digits, `\\S+` if
    none has blanks (`\\S*` if some are empty), else lazy `.*?`; a `.*?` at
    either end is dropped (a no-op for an unanchored search).  If that regex
    also matches corpus lines of other templates, the least ambiguous of
    "anchored at end of line" (`[ \\t]*$`), "preceded by the system's header
    tail" and both is used instead.  Every base rule is checked to match every
    line of its EventId in the corpus (the structured CSV is ground truth).
  * variants, only used past the number of templates (e.g. for 1000):
      ctx   base preceded by the header context that the template's lines carry
            (level/component/process), e.g. `sshd\\[\\d+\\]: Failed password …`
      lit   one `<*>` replaced by a concrete (non-numeric) value seen in the
            structured CSV, e.g. `Invalid user admin from \\S+`
      lit2  the same with an alternation of two seen values
      anch  base anchored differently (end of line, or header tail)
      loose first and last literal phrase of the template joined by `.*?`
      ci    base made case-insensitive (`(?i)`)
    Each variant must compile, differ from every other rule and match at least
    one corpus line.

For N <= number of templates the rules are a seeded sample of base rules,
round-robin over the 8 systems, so 10 ⊂ 100 ⊂ 1000.

Patterns use only syntax common to Python `re`, Rust `regex` and ripgrep.
`$` is used for end of line: logalarm matches lines without their \\r\\n, and
ripgrep needs `--crlf` for `$` to match before \\r\\n.
"""

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
from collections import Counter, OrderedDict

sys.dont_write_bytecode = True  # no __pycache__ in benches/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loghub  # noqa: E402
from loghub import rx_escape as esc  # noqa: E402

END = r"[ \t]*$"

# Regex for the tail of each system's header, i.e. what directly precedes the
# message text.  Used to disambiguate short templates ("running", "active").
SYS_PREFIX = {
    "Apache": r"\[[a-z]+\] ",
    "BGL": r"[A-Z]+ [A-Z]+ [A-Z]+ ",
    "HDFS": r"[\w$.]+: ",
    "HPC": r"\d+ -?\d+ ",
    "Linux": r"\]?: ",
    "OpenSSH": r"sshd\[\d+\]: ",
    "Spark": r"[A-Z]+ [\w$.]+: ",
    "Zookeeper": r"@\d+\] - ",
}


def header_context(line):
    """Literal-ish header context of one corpus line, as a regex (or None)."""
    h, s = line.header, line.system
    if s == "Apache":
        m = re.search(r"(\[[a-z]+\] )$", h)
        return esc(m.group(1)) if m else None
    if s == "BGL":
        m = re.search(r"(\S+ \S+ \S+ )$", h)
        return esc(m.group(1)) if m else None
    if s in ("HDFS", "Spark"):
        m = re.search(r"([A-Z]+ \S+: )$", h)
        return esc(m.group(1)) if m else None
    if s == "HPC":
        m = re.search(r"(\S+ \S+) \d+ -?\d+ $", h)
        return esc(m.group(1)) + r" \d+ -?\d+ " if m else None
    if s == "Linux":
        m = re.search(r"^\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ (.*?)(\[\d+\])?: $", h)
        if not m:
            return None
        comp = m.group(1).strip()
        return esc(comp) + (r"\[\d+\]" if m.group(2) else "") + ": "
    if s == "OpenSSH":
        m = re.search(r"(\S+) sshd\[\d+\]: $", h)
        return esc(m.group(1)) + r" sshd\[\d+\]: " if m else None
    if s == "Zookeeper":
        m = re.search(r" - ([A-Z]+) +\[.*?([\w$.]+)@\d+\] - $", h)
        return r"%s +\[.*?%s@\d+\] - " % (m.group(1), esc(m.group(2))) if m else None
    return None


def slot_class(values):
    if values and all(v.isdigit() and v.isascii() for v in values):
        return r"\d+"
    if any(re.search(r"\s", v) for v in values):
        return ".*?"
    if any(v == "" for v in values):
        return r"\S*"
    return r"\S+"


def build(parts, classes, fixed=None):
    """Regex from literal parts and slot classes; fixed = {slot: regex} overrides."""
    fixed = fixed or {}
    pieces = []
    n = len(classes)
    for i, p in enumerate(parts):
        pieces.append(("lit", esc(p)))
        if i < n:
            pieces.append(("slot", fixed.get(i, classes[i]), i in fixed))
    # drop no-op slots at either end (after empty literals)
    while pieces and (pieces[0] == ("lit", "") or (pieces[0][0] == "slot" and not pieces[0][2] and pieces[0][1] in (".*?", r"\S*"))):
        pieces.pop(0)
    while pieces and (pieces[-1] == ("lit", "") or (pieces[-1][0] == "slot" and not pieces[-1][2] and pieces[-1][1] in (".*?", r"\S*"))):
        pieces.pop()
    # a literal left at either end loses its outer blanks (invisible in a rules file)
    if pieces and pieces[-1][0] == "lit":
        pieces[-1] = ("lit", pieces[-1][1].rstrip(" "))
    if pieces and pieces[0][0] == "lit":
        pieces[0] = ("lit", pieces[0][1].lstrip(" "))
    return "".join(p[1] for p in pieces)


def required_literal(rx):
    """Longest plain literal run of a regex built here (for fast prefiltering)."""
    best = ""
    # split on anything that is not a plain or escaped literal character
    for run in re.findall(r"(?:\\[\\.+*?()|\[\]{}^$]|[^\\.+*?()|\[\]{}^$])+", rx):
        lit = re.sub(r"\\(.)", r"\1", run)
        if len(lit) > len(best):
            best = lit
    return best


class Corpus:
    def __init__(self):
        self.lines, self.templates = loghub.load_all()
        self.raw = [ln.raw for ln in self.lines]
        self.raw_lower = [r.lower() for r in self.raw]

    def matches(self, rx, limit_to=None, first_only=False):
        """Indices of corpus lines (or of limit_to) that rx matches (search)."""
        cre = re.compile(rx)
        ci = rx.startswith("(?i)")
        lit = required_literal(rx[4:] if ci else rx)
        lit = lit.lower() if ci else lit
        pool = self.raw_lower if ci else self.raw
        idx = range(len(self.raw)) if limit_to is None else limit_to
        out = []
        for i in idx:
            if lit in pool[i] and cre.search(self.raw[i]):
                out.append(i)
                if first_only:
                    break
        return out


def make_base(corpus):
    """One rule per template: list of dicts."""
    pos = {id(ln): i for i, ln in enumerate(corpus.lines)}
    rules = []
    for t in corpus.templates:
        if t.merged.strip() == "<*>" or not "".join(t.parts).strip():
            continue  # only a variable part: not a usable rule
        classes = [slot_class(v) for v in t.slot_values()]
        core = build(t.parts, classes)
        own = set(pos[id(ln)] for ln in t.lines)
        pfx = SYS_PREFIX[t.system]
        cands = [core]
        if not core.endswith(".*?"):
            cands.append(core + END)
        cands += [pfx + core]
        if not core.endswith(".*?"):
            cands.append(pfx + core + END)
        best = None
        for rx in cands:
            hits = corpus.matches(rx)
            missed = own - set(hits)
            fp = len(hits) - (len(own) - len(missed))
            if missed:
                continue
            if best is None or fp < best[1]:
                best = (rx, fp, hits)
            if fp == 0:
                break
        if best is None:
            sys.exit("no regex for %s matches all of its lines: %r" % (t.key, t.merged))
        rules.append(
            dict(kind="base", system=t.system, eid=t.eid, regex=best[0], hits=len(best[2]),
                 core=core, classes=classes, template=t)
        )
    return rules


def make_variants(corpus, base_rules):
    pos = {id(ln): i for i, ln in enumerate(corpus.lines)}
    kinds = OrderedDict((k, []) for k in ("ctx", "lit", "anch", "loose", "lit2", "ci"))
    for b in base_rules:
        t, core, classes = b["template"], b["core"], b["classes"]
        own = [pos[id(ln)] for ln in t.lines]
        base_rx = b["regex"]
        anchored_end = base_rx.endswith(END)

        def add(kind, rx, lines=own):
            kinds[kind].append(dict(kind=kind, system=t.system, eid=t.eid, regex=rx, lines=lines))

        # ctx: the most common header context of this template's lines
        ctxs = Counter(header_context(ln) for ln in t.lines)
        ctxs.pop(None, None)
        if ctxs:
            ctx = ctxs.most_common(1)[0][0]
            add("ctx", ctx + core + (END if anchored_end else ""))
        # anch: anchored differently from the chosen base
        if not core.endswith(".*?"):
            add("anch", (core if anchored_end else base_rx) + ("" if anchored_end else END))
        if not base_rx.startswith(SYS_PREFIX[t.system]):
            add("anch", SYS_PREFIX[t.system] + base_rx)
        # ci
        add("ci", "(?i)" + base_rx)
        # loose: first and last literal phrase
        lits = [p.strip() for p in t.parts if len(p.strip()) >= 3]
        if len(lits) >= 2 and t.nslots >= 1:
            add("loose", esc(lits[0]) + ".*?" + esc(lits[-1]))
        # lit / lit2: a concrete non-numeric value for one slot
        for si, vals in enumerate(t.slot_values()):
            cnt = Counter(v for v in vals if len(v) >= 2 and re.search(r"[A-Za-z]", v) and not re.search(r"\d", v))
            good = [v for v, c in cnt.most_common() if c >= 2]
            for v in good[:3]:
                rx = build(t.parts, classes, {si: esc(v)})
                lines = [pos[id(ln)] for ln, val in zip(t.lines, vals) if val == v]
                add("lit", rx + (END if anchored_end else ""), lines)
            if len(good) >= 2:
                alt = "(?:%s|%s)" % (esc(good[0]), esc(good[1]))
                rx = build(t.parts, classes, {si: alt})
                lines = [pos[id(ln)] for ln, val in zip(t.lines, vals) if val in good[:2]]
                add("lit2", rx + (END if anchored_end else ""), lines)
    return kinds


def stratified(rules, rng):
    """Seeded order, round-robin over systems (each system's rules shuffled)."""
    by = OrderedDict((s, []) for s in loghub.SYSTEMS)
    for r in rules:
        by[r["system"]].append(r)
    for lst in by.values():
        rng.shuffle(lst)
    order = list(by)
    rng.shuffle(order)
    out = []
    while any(by.values()):
        for s in order:
            if by[s]:
                out.append(by[s].pop(0))
    return out


def toml_str(s):
    if "'" not in s and not any(ord(c) < 0x20 or c == "\x7f" for c in s):
        return "'" + s + "'"
    out = []
    for c in s:
        if c == "\\":
            out.append("\\\\")
        elif c == '"':
            out.append('\\"')
        elif ord(c) < 0x20 or c == "\x7f":
            out.append("\\u%04x" % ord(c))
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def select(n, seed):
    corpus = Corpus()
    rng = random.Random(seed)
    base = make_base(corpus)
    ordered = stratified(base, rng)
    chosen = ordered[:n]
    if n > len(ordered):
        seen = set(r["regex"] for r in chosen)
        kinds = make_variants(corpus, base)
        for lst in kinds.values():
            rng.shuffle(lst)
        pools = [list(lst) for lst in kinds.values()]
        while len(chosen) < n and any(pools):
            for pool in pools:
                while pool:
                    v = pool.pop(0)
                    if v["regex"] in seen:
                        continue
                    try:
                        re.compile(v["regex"])
                    except re.error:
                        continue
                    if not corpus.matches(v["regex"], v["lines"], first_only=True):
                        continue
                    v["hits"] = len(corpus.matches(v["regex"]))
                    seen.add(v["regex"])
                    chosen.append(v)
                    break
                if len(chosen) >= n:
                    break
        if len(chosen) < n:
            sys.exit("only %d distinct rules can be made, %d asked" % (len(chosen), n))
    return corpus, chosen


def write(outdir, corpus, rules):
    os.makedirs(outdir, exist_ok=True)
    regexes = [r["regex"] for r in rules]
    assert len(set(regexes)) == len(regexes), "duplicate rules"
    for rx in regexes:
        assert "\n" not in rx and "\r" not in rx and rx.strip() == rx and rx
        re.compile(rx)
    with open(os.path.join(outdir, "rules.txt"), "w", newline="\n") as f:
        f.write("".join(rx + "\n" for rx in regexes))
    with open(os.path.join(outdir, "rules.toml"), "w", newline="\n") as f:
        f.write("# generated by benches/gen_rules.py: %d rules from the Loghub templates\n" % len(rules))
        f.write("alarm_freq = 3\n\n[alarm.bench]\naction = \"log:bench\"\n")
        for r in rules:
            f.write("\n# %s %s/%s\n[[rule]]\nregex = %s\nalarms = [\"bench\"]\n"
                    % (r["kind"], r["system"], r["eid"], toml_str(r["regex"])))
    with open(os.path.join(outdir, "rules.tsv"), "w", newline="\n") as f:
        f.write("n\tkind\tsystem\tevent\tcorpus_hits\tregex\n")
        for i, r in enumerate(rules, 1):
            f.write("%d\t%s\t%s\t%s\t%d\t%s\n" % (i, r["kind"], r["system"], r["eid"], r["hits"], r["regex"]))


def verify(outdir, corpus, rules):
    """Round-trip the TOML; check rg accepts rules.txt and agrees with Python."""
    import tomllib

    with open(os.path.join(outdir, "rules.toml"), "rb") as f:
        cfg = tomllib.load(f)
    got = [r["regex"] for r in cfg["rule"]]
    if got != [r["regex"] for r in rules]:
        sys.exit("rules.toml does not round-trip")
    if cfg.get("alarm_freq") != 3 or cfg["alarm"]["bench"]["action"] != "log:bench":
        sys.exit("rules.toml: bad alarm section")
    matched = set()
    for r in rules:
        matched.update(corpus.matches(r["regex"]))
    py_count = len(matched)
    rg = shutil.which("rg")
    if not rg:
        print("gen_rules: rg not installed; skipped the ripgrep check", file=sys.stderr)
        return py_count, None
    # ripgrep over the raw corpus files must accept the file and agree with Python
    cdir = loghub.corpus_dir()
    files = [os.path.join(cdir, s, "%s_2k.log" % s) for s in loghub.SYSTEMS]
    p = subprocess.run([rg, "--no-config", "--crlf", "-c", "--no-filename", "-f", os.path.join(outdir, "rules.txt")] + files,
                       capture_output=True, text=True)
    if p.returncode not in (0, 1):
        sys.exit("rg rejected %s/rules.txt:\n%s" % (outdir, p.stderr))
    rg_count = sum(int(x) for x in p.stdout.split())
    if rg_count != py_count:
        print("gen_rules: WARNING: rg matches %d corpus lines, Python re %d" % (rg_count, py_count), file=sys.stderr)
    return py_count, rg_count


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("n", type=int)
    ap.add_argument("outdir")
    ap.add_argument("--seed", type=int, default=20240611)
    a = ap.parse_args()
    if a.n < 1:
        ap.error("N must be >= 1")
    corpus, rules = select(a.n, a.seed)
    write(a.outdir, corpus, rules)
    py_count, rg_count = verify(a.outdir, corpus, rules)
    kinds = Counter(r["kind"] for r in rules)
    systems = Counter(r["system"] for r in rules)
    print("gen_rules: %d rules -> %s (%s; %s); they match %d of %d corpus lines%s"
          % (len(rules), a.outdir, ", ".join("%s %d" % kv for kv in kinds.items()),
             " ".join("%s:%d" % kv for kv in systems.items()), py_count, len(corpus.raw),
             "" if rg_count is None else " (rg agrees)" if rg_count == py_count else " (rg: %d)" % rg_count),
          file=sys.stderr)


if __name__ == "__main__":
    main()
