#!/usr/bin/env python3
"""Make N alarm rules (regexes) from the Loghub templates.

    gen_rules.py N OUTDIR [--family dense|sparse] [--seed S] [--input-seed S]

Writes
  OUTDIR/rules.txt   one regex per line (for `rg --crlf -f rules.txt`)
  OUTDIR/rules.toml  a logalarm config: alarm `bench` (action `log:bench`),
                     alarm_freq = 3, one [[rule]] per regex
  OUTDIR/rules.tsv   provenance of each rule: kind, system, EventId, number of
                     corpus lines (of the 16,000) it matches, regex (sparse:
                     also its estimated share of the input lines, and the sum)

Two families (both nested: the first 10 of the 100 rules are the 10 rules):
  dense   (default) one rule per template plus variants (below): 100 rules
          match about half of the generated input's lines, 1000 rules all.
  sparse  alarms on rare, bad events, narrowed to a user, network, node or
          code seen in the corpus, picked so that the first 10/100/1000 rules
          match about 0.2/0.35/0.95 % of the lines gen_input.py generates (see
          the "sparse family" section below).

How dense rules are made
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
        # (regex, (with header tail, anchored at end of line))
        cands = [(core, (False, False))]
        if not core.endswith(".*?"):
            cands.append((core + END, (False, True)))
        cands += [(pfx + core, (True, False))]
        if not core.endswith(".*?"):
            cands.append((pfx + core + END, (True, True)))
        best = None
        for rx, form in cands:
            hits = corpus.matches(rx)
            missed = own - set(hits)
            fp = len(hits) - (len(own) - len(missed))
            if missed:
                continue
            if best is None or fp < best[1]:
                best = (rx, fp, hits, form)
            if fp == 0:
                break
        if best is None:
            sys.exit("no regex for %s matches all of its lines: %r" % (t.key, t.merged))
        rules.append(
            dict(kind="base", system=t.system, eid=t.eid, regex=best[0], hits=len(best[2]),
                 core=core, classes=classes, template=t, form=best[3])
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


# ------------------------------------------------------------------ sparse family
#
# Alarm rules as people write them: on rare, bad events, often narrowed to one
# user, subnet, node or code.  Each rule is a base rule of an alarm-worthy
# template, narrowed with real values from the structured CSV (or the header),
# and the set is chosen so that it matches a small share of the lines that
# gen_input.py generates.  That share is computed from gen_input.py itself: the
# share of output lines that comes from each corpus line (runs of 1-64 lines
# from a uniform start in a uniformly chosen system) times the fraction of the
# generator's value pools (for the input's --seed) that the fixed values match.

# Template text that someone would alarm on ...
ALARM_TEXT = re.compile(
    r"(?i)error|fail|exception|fatal|panic|denied|refused|\binvalid\b|illegal|unexpected|abort|timed out"
    r"|severed|reset by peer|not.responding|unavailable|break-in|too many|can't|cannot|can not|couldn't"
    r"|time out\b|exceeded|unable|no such|corrupt|critical|warning|halt|killed|lost|broken|is full|no longer"
    r"|no server|do not match|not fully functional|exceeds|died|assert|unknown|forbidden|abnormally|alert"
    r"|\bbad\b|missing|problem|not running|parity|accepted password|session opened|login"
    r"|link in reset|configured out|core files|generating core|received signal|shutting down|max retries"
    r"|did not receive identification|not connected")
# ... or a header level that says something is wrong (HPC's `error` and
# `bcast-error` are event classes that include "Link ok": not a level).
ALARM_LEVEL = re.compile(r"\[(?:error|crit|alert|emerg)\]|\b(?:WARN|WARNING|ERROR|FATAL|SEVERE|FAILURE)\b")
# Per node, only events that are bad on their own (or logged at such a level).
NODE_TEXT = re.compile(r"(?i)error|fail|fatal|panic|core|not.responding|unavailable|halt|abort|critical"
                       r"|warning|configured out|exceeds|is full|no longer|no server")
# Every sparse rule is expected to fire: at least this share of the input
# lines (about once in a 1 GiB input of ~9.3 million lines).
MIN_SHARE = 1e-7

# Cumulative share of input lines the first N sparse rules may match (sum of the
# rules' own shares): (N, target).  Past the last stage the rules have to fit
# under SPARSE_CEILING.
SPARSE_STAGES = [(10, 0.0020), (100, 0.0035), (1000, 0.0095)]
SPARSE_CEILING = 0.0100
SPARSE_KINDS = ("rare", "ctx", "value", "value2", "net", "node", "node2")

# Generator.lines() in gen_input.py: system = SYSTEMS[rb(3)], then a run of
# 1 + rb(6) consecutive lines from a uniformly chosen start line.
RUN_LINES = 64


# The lines of a BGL register dump that follow a FATAL interrupt (`machine check
# enable..............0`, `iar 00106210 dear 0244c22c`): FATAL by level, but one
# alarms on the interrupt, not on each line of the dump.  Nor on the interrupt
# statistics and alignment-exception counts (performance, not failures).
BGL_DUMP = re.compile(r"\.{2,}|touch\.<\*>|(?i:register)|^[a-z]+\d*=<\*>|^lr:|^iar |address: <\*>$|^fpr\d+="
                      r"|total interrupts|alignment exceptions")


def alarm_worthy(t):
    if t.system == "BGL" and BGL_DUMP.search(t.merged):
        return False
    return bool(ALARM_TEXT.search(t.merged)) or any(ALARM_LEVEL.search(ln.header) for ln in t.lines)


class InputModel:
    """What gen_input.py --seed S emits: each corpus line's share of the output
    lines and the pools of values that its slots and header fields take."""

    def __init__(self, corpus, seed):
        import gen_input  # noqa: E402 (same directory)

        gen = gen_input.Generator(seed)
        self.pools = gen.pools
        cover = []
        for ln in corpus.lines:
            n = len(gen.fns[ln.system])
            i = ln.index
            # expected number of times line i is emitted by one run in its system
            cover.append(sum((RUN_LINES - k) / RUN_LINES for k in range(min(i, RUN_LINES - 1) + 1)) / n)
        total = sum(cover)  # the 8 systems are equally likely
        self.share = [c / total for c in cover]
        self._frac = {}

    def frac(self, key, rx):
        """Fraction of the pool `key` whose values fully match rx."""
        k = (key, rx)
        if k not in self._frac:
            pool = self.pools[key]
            cre = re.compile(rx)
            self._frac[k] = sum(1 for v in pool if cre.fullmatch(v)) / len(pool)
        return self._frac[k]


_IPV4 = re.compile(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(\s*)")


def value_forms(v, cls, before, after):
    """How a slot can be pinned to a value v seen in the CSV: [(kind, regex)].

    IPv4 addresses become their /16 and /24 networks (gen_input.py varies the
    last two octets, and an alarm on one exact address would never fire), short
    numbers in numeric slots stay as they are (error codes, signals, states),
    and other values with a letter are used literally (users, domains, paths).
    Hex ids, long numbers (pids, ports, block ids) and session ids are not."""
    m = _IPV4.fullmatch(v)
    if m:
        a, b, c, _, tail = m.groups()
        return [("net", r"%s\.%s\.\d+\.\d+%s" % (a, b, esc(tail))),
                ("net", r"%s\.%s\.%s\.\d+%s" % (a, b, c, esc(tail)))]
    labels = v.split(".")
    if len(labels) >= 3 and re.fullmatch(r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+\.[a-z]{2,6}", v):
        # a host name: its domain (gen_input.py varies the digits of host names)
        n = 3 if len(labels[-2]) <= 3 and len(labels[-1]) == 2 else 2
        dom = ".".join(labels[-n:])
        out = []
        if len(labels) > n and not re.search(r"\d", dom):
            out.append(("net", r"\S+\." + esc(dom)))
        if not re.search(r"\d", v):
            out.append(("value", esc(v)))
        return out
    if cls == r"\d+" and re.fullmatch(r"\d{1,3}", v):
        # a code after its name ("state 6", "signal 15", "node-57", "ALERT 3"),
        # not a part of a version, address, size or time, nor a line number,
        # port, pid or duration
        if (re.search(r"[A-Za-z][ =-]$", before) and not re.match(r"[.:](?! )", after)
                and not re.search(r"\b(?:line|port|pid|child|slot|size|over|after|took) $", before)):
            return [("value", v)]
        return []
    if (len(v) >= 2 and re.search(r"[A-Za-z]", v) and not re.match(r"(?i)0x", v)
            and not re.search(r"\d{5}|[0-9a-f]{8}|\d:\d|\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun|Jan|Feb|Mar|Apr|May"
                              r"|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\b", v) and v == v.strip()):
        return [("value", esc(v))]
    return []


def node_forms(system, header):
    """Node named in a line's header: [(regex, pool key)] (a BGL location, its
    node card and its midplane; an HPC node)."""
    if system == "BGL":
        m = re.search(r" (R\d\d-M\d-[^ ]+) \S+ \S+ \S+ $", header)
        if m:
            node = m.group(1)
            out = [(esc(node), ("BGL", "bglnode"))]
            card = re.match(r"R\d\d-M\d-N\w-", node)
            if card:
                out.append((esc(card.group(0)) + r"\S+", ("BGL", "bglnode")))
            out.append((esc(re.match(r"R\d\d-M\d-", node).group(0)) + r"\S+", ("BGL", "bglnode")))
            return out
    elif system == "HPC":
        m = re.match(r"\d+ ([A-Za-z][^ ]*) ", header)
        if m:
            return [(esc(m.group(1)), ("HPC", "node"))]
    return []


def make_sparse(corpus, base_rules, model):
    """Candidate sparse rules: dicts with kind, system, eid, regex, share, hits."""
    pos = {id(ln): i for i, ln in enumerate(corpus.lines)}
    out = []
    seen = set()

    for b in base_rules:
        t = b["template"]
        if not alarm_worthy(t):
            continue
        core, classes = b["core"], b["classes"]
        with_pfx, with_end = b["form"]
        pfx = SYS_PREFIX[t.system] if with_pfx else ""
        end = END if with_end else ""
        own = [pos[id(ln)] for ln in t.lines]
        own_set = set(own)
        share_all = sum(model.share[i] for i in own)
        cands = []  # (kind, regex, share of the lines of t it can match, [(pool, regex)])

        def shaped(fixed):
            return pfx + build(t.parts, classes, fixed) + end

        # rare: the template itself
        cands.append(("rare", b["regex"], share_all, []))
        # ctx: preceded by the header context of its lines (level, component, process)
        ctxs = sorted(set(header_context(ln) for ln in t.lines) - {None})
        for c in ctxs:
            rx = c + core + end
            cre = re.compile(rx)
            w = sum(model.share[i] for i in own if cre.search(corpus.raw[i]))
            cands.append(("ctx", rx, w, []))
        values = t.slot_values()
        forms_by_line = []
        for li in range(len(t.lines)):
            forms_by_line.append([value_forms(values[si][li], classes[si], t.parts[si], t.parts[si + 1])
                                  for si in range(t.nslots)])
        # node: a BGL location / node card / midplane or an HPC node, with the
        # header context; node2: the same with a value (a program, a code) as on that line
        node_seen = set()
        ctx_share = {}
        for li, ln in enumerate(t.lines):
            c = header_context(ln)
            if c is None or not (NODE_TEXT.search(t.merged) or ALARM_LEVEL.search(ln.header)):
                continue
            if c not in ctx_share:
                cre = re.compile(c + core + end)
                ctx_share[c] = sum(model.share[i] for i in own if cre.search(corpus.raw[i]))
            w = ctx_share[c]
            for nrx, key in node_forms(t.system, ln.header):
                if (nrx, c) not in node_seen:
                    node_seen.add((nrx, c))
                    cands.append(("node", nrx + " " + c + core + end, w, [(key, nrx)]))
                for si, fl in enumerate(forms_by_line[li]):
                    for kind, frx in fl:
                        if kind == "value" and (nrx, c, si, frx) not in node_seen:
                            node_seen.add((nrx, c, si, frx))
                            cands.append(("node2", nrx + " " + c + build(t.parts, classes, {si: frx}) + end, w,
                                          [(key, nrx), ((t.system, t.eid, si), frx)]))
        # value / net: one slot pinned; value2: two slots pinned as on one corpus line
        single = set()
        pairs = set()
        for forms in forms_by_line:
            for si, fl in enumerate(forms):
                for kind, frx in fl:
                    single.add((si, kind, frx))
            for si in range(t.nslots):
                for sj in range(si + 1, t.nslots):
                    for ka, fa in forms[si]:
                        for kb, fb in forms[sj]:
                            if ka == kb == "net":
                                continue  # a value and its network, or two values
                            pairs.add((si, fa, sj, fb))
        # and a user (host, path ...) with a /16 network seen in another line
        cross = set()
        for si, ka, fa in single:
            for sj, kb, fb in single:
                if (si != sj and ka == "value" and re.search("[A-Za-z]", fa) and kb == "net"
                        and fb.endswith(r"\d+\.\d+") and fb.count(r"\d+") == 2):
                    key = (si, fa, sj, fb) if si < sj else (sj, fb, si, fa)
                    if key not in pairs:
                        cross.add(key)
        pairs |= cross
        for si, kind, frx in sorted(single):
            cands.append((kind, shaped({si: frx}), share_all, [((t.system, t.eid, si), frx)]))
        cross_rx = set()
        for si, fa, sj, fb in sorted(pairs):
            rx = shaped({si: fa, sj: fb})
            if (si, fa, sj, fb) in cross:
                cross_rx.add(rx)
            cands.append(("value2", rx, share_all, [((t.system, t.eid, si), fa), ((t.system, t.eid, sj), fb)]))

        for kind, rx, w, pins in cands:
            if rx in seen:
                continue
            share = w
            for key, prx in pins:
                f = model.frac(key, prx)
                if f >= 1.0 and kind != "node":
                    share = -1  # pins nothing down
                    break
                share *= f
            if share < MIN_SHARE:
                continue  # would (almost) never fire in the generated input, or pins nothing
            try:
                re.compile(rx)
            except re.error:
                continue
            hits = corpus.matches(rx)
            if not set(hits) <= own_set or not (hits or rx in cross_rx):
                continue  # must match some of its own corpus lines (a cross pair: its values do) and no others
            seen.add(rx)
            out.append(dict(kind=kind, system=t.system, eid=t.eid, regex=rx, share=share, hits=len(hits)))
    return out


def order_sparse(cands, n, rng):
    """First n rules, so that the first 10/100/1000 stay near SPARSE_STAGES.

    Each system's candidates are queued round-robin over its templates (seeded
    shuffle; within a template, kinds interleaved).  Systems take turns in
    proportion to the square root of their number of templates (smooth
    weighted round-robin), so BGL's hundred error templates weigh more than
    Apache's three but do not crowd out the others.  At its turn a system
    gives the first queued candidate whose share fits the stage: at most 2.5x
    the stage's remaining budget per remaining rule (and in the first stage at
    least 0.3x, so that the 10-rule set does fire)."""
    queues = OrderedDict()
    weight = {}
    for s in loghub.SYSTEMS:
        eids = OrderedDict()
        for c in cands:
            if c["system"] == s:
                eids.setdefault(c["eid"], []).append(c)
        if not eids:
            continue
        per_t = []
        for lst in eids.values():
            by_kind = [[c for c in lst if c["kind"] == k] for k in SPARSE_KINDS]
            for kl in by_kind:
                rng.shuffle(kl)
            q = []
            while any(by_kind):
                for kl in by_kind:
                    if kl:
                        q.append(kl.pop(0))
            per_t.append(q)
        rng.shuffle(per_t)
        q = []
        while any(per_t):
            for tl in per_t:
                if tl:
                    q.append(tl.pop(0))
        queues[s] = q
        weight[s] = len(eids) ** 0.5
    order = list(queues)
    rng.shuffle(order)
    credit = dict((s, 0.0) for s in order)
    shares = sorted(c["share"] for q in queues.values() for c in q)  # of the candidates left
    chosen = []
    total = 0.0
    while len(chosen) < n:
        k = len(chosen)
        end, target = next(((e, tg) for e, tg in SPARSE_STAGES if k < e), (None, SPARSE_CEILING))
        left = (end - k) if end else max(n - k, 1)
        avg = max(target - total, 0.0) / left
        hi = 2.5 * avg
        lo = 0.3 * avg if k < SPARSE_STAGES[0][0] else 0.0
        # Every later stage must stay reachable: this share plus the smallest
        # shares left for the rest of each stage within its target.
        prefix = [0.0]
        for x in shares[:SPARSE_STAGES[-1][0]]:
            prefix.append(prefix[-1] + x)
        checks = [(e - k - 1, tg - total) for e, tg in SPARSE_STAGES if e > k]

        def smallest_others(m, share):
            """Sum of the m smallest shares left, not counting the candidate's own."""
            m = min(m, len(prefix) - 2)
            return prefix[m + 1] - share if share <= shares[m] else prefix[m]

        def fits(share):
            return lo <= share <= hi and all(share + smallest_others(m, share) <= budget for m, budget in checks)

        for s in order:
            credit[s] += weight[s]
        pick = None
        for s in sorted(order, key=lambda s: -credit[s]):  # stable: ties in seeded order
            qi = next((i for i, c in enumerate(queues[s]) if fits(c["share"])), None)
            if qi is not None:
                pick = (s, qi)
                break
        if pick is None:  # nothing fits: the smallest one left
            rest = [(c["share"], s, qi) for s in order for qi, c in enumerate(queues[s])]
            if not rest:
                sys.exit("only %d sparse rules can be made, %d asked" % (len(chosen), n))
            _, s, qi = min(rest)
            pick = (s, qi)
        s, qi = pick
        c = queues[s].pop(qi)
        shares.remove(c["share"])
        credit[s] -= sum(weight.values())
        chosen.append(c)
        total += c["share"]
    return chosen


def select_sparse(n, seed, input_seed):
    corpus = Corpus()
    rng = random.Random(seed)
    base = make_base(corpus)
    model = InputModel(corpus, input_seed)
    cands = make_sparse(corpus, base, model)
    return corpus, order_sparse(cands, n, rng), len(cands)


def write(outdir, corpus, rules, family="dense"):
    os.makedirs(outdir, exist_ok=True)
    regexes = [r["regex"] for r in rules]
    assert len(set(regexes)) == len(regexes), "duplicate rules"
    for rx in regexes:
        assert "\n" not in rx and "\r" not in rx and rx.strip() == rx and rx
        re.compile(rx)
    with open(os.path.join(outdir, "rules.txt"), "w", newline="\n") as f:
        f.write("".join(rx + "\n" for rx in regexes))
    with open(os.path.join(outdir, "rules.toml"), "w", newline="\n") as f:
        if family == "dense":
            f.write("# generated by benches/gen_rules.py: %d rules from the Loghub templates\n" % len(rules))
        else:
            f.write("# generated by benches/gen_rules.py --family %s: %d rules from the Loghub templates\n"
                    "# and values; estimated to match %.3f %% of the lines of gen_input.py's output\n"
                    % (family, len(rules), 100.0 * sum(r["share"] for r in rules)))
        f.write("alarm_freq = 3\n\n[alarm.bench]\naction = \"log:bench\"\n")
        for r in rules:
            f.write("\n# %s %s/%s\n[[rule]]\nregex = %s\nalarms = [\"bench\"]\n"
                    % (r["kind"], r["system"], r["eid"], toml_str(r["regex"])))
    with open(os.path.join(outdir, "rules.tsv"), "w", newline="\n") as f:
        if family == "dense":
            f.write("n\tkind\tsystem\tevent\tcorpus_hits\tregex\n")
            for i, r in enumerate(rules, 1):
                f.write("%d\t%s\t%s\t%s\t%d\t%s\n" % (i, r["kind"], r["system"], r["eid"], r["hits"], r["regex"]))
        else:  # plus the estimated share of input lines, per rule and cumulative
            f.write("n\tkind\tsystem\tevent\tcorpus_hits\tinput_share\tcumulative\tregex\n")
            cum = 0.0
            for i, r in enumerate(rules, 1):
                cum += r["share"]
                f.write("%d\t%s\t%s\t%s\t%d\t%.3e\t%.3e\t%s\n"
                        % (i, r["kind"], r["system"], r["eid"], r["hits"], r["share"], cum, r["regex"]))


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
    ap.add_argument("--family", choices=("dense", "sparse"), default="dense",
                    help="dense: one rule per template plus variants (default); "
                         "sparse: narrow alarms that match about 0.1-1 %% of the input")
    ap.add_argument("--input-seed", type=int, default=1,
                    help="sparse: the gen_input.py --seed whose output the rule shares are computed for (default 1)")
    a = ap.parse_args()
    if a.n < 1:
        ap.error("N must be >= 1")
    if a.family == "dense":
        corpus, rules = select(a.n, a.seed)
        extra = ""
    else:
        corpus, rules, ncands = select_sparse(a.n, a.seed, a.input_seed)
        extra = ("; from %d candidates; estimated to match %.3f %% of the input lines"
                 % (ncands, 100.0 * sum(r["share"] for r in rules)))
    write(a.outdir, corpus, rules, a.family)
    py_count, rg_count = verify(a.outdir, corpus, rules)
    kinds = Counter(r["kind"] for r in rules)
    systems = Counter(r["system"] for r in rules)
    print("gen_rules: %d %s rules -> %s (%s; %s); they match %d of %d corpus lines%s%s"
          % (len(rules), a.family, a.outdir, ", ".join("%s %d" % kv for kv in kinds.items()),
             " ".join("%s:%d" % kv for kv in systems.items()), py_count, len(corpus.raw),
             "" if rg_count is None else " (rg agrees)" if rg_count == py_count else " (rg: %d)" % rg_count,
             extra),
          file=sys.stderr)


if __name__ == "__main__":
    main()
