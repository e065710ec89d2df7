"""Shared loader for the Loghub corpus used by the benchmark generators.

The corpus lives in ``../shared/corpus`` relative to the repository root
(override with the environment variable ``LOGALARM_CORPUS``, which may name
either the ``corpus`` directory or its ``loghub`` sub-directory).

For every system ``S`` the loader reads ``S/S_2k.log`` (raw, CRLF, last line
possibly unterminated) together with ``S/S_2k.log_structured.csv`` and splits
each raw line into ``header`` + ``content`` + ``trailer`` (trailing blanks that
Loghub stripped from ``Content``).  Templates come from the structured CSV
(which is the ground truth for which line belongs to which EventId) and are
cross-checked against ``S/S_2k.log_templates.csv``.
"""

import csv
import os
import re
import sys
from collections import OrderedDict

SYSTEMS = ["Apache", "BGL", "HDFS", "HPC", "Linux", "OpenSSH", "Spark", "Zookeeper"]

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)

# Characters that are special in Python `re`, Rust `regex` and ripgrep alike.
# Escaping only these keeps the patterns in the common subset of all three
# (Rust's regex rejects escapes of some other characters, e.g. `\<`).
_META = set("\\.+*?()|[]{}^$")


def rx_escape(text):
    return "".join("\\" + c if c in _META else c for c in text)


def corpus_dir():
    """Directory that holds the per-system folders (…/corpus/loghub)."""
    env = os.environ.get("LOGALARM_CORPUS")
    base = env if env else os.path.join(REPO_ROOT, "..", "shared", "corpus")
    base = os.path.abspath(base)
    if os.path.isdir(os.path.join(base, "loghub")):
        base = os.path.join(base, "loghub")
    if not os.path.isdir(os.path.join(base, SYSTEMS[0])):
        sys.exit(
            "loghub corpus not found at %s (set LOGALARM_CORPUS to the shared/corpus directory)"
            % base
        )
    return base


def merge_slots(template):
    """Collapse runs of adjacent ``<*>`` into one (``<*><*>`` means the same)."""
    while "<*><*>" in template:
        template = template.replace("<*><*>", "<*>")
    return template


def capture_regex(template):
    """Regex that fully matches a Content of `template`, one group per ``<*>``."""
    parts = template.split("<*>")
    return re.compile("(.*?)".join(re.escape(p) for p in parts) + r"\Z", re.S)


class Line:
    __slots__ = ("system", "index", "eid", "template", "raw", "header", "content", "trailer", "row")

    def __init__(self, system, index, eid, template, raw, header, content, trailer, row):
        self.system = system
        self.index = index
        self.eid = eid
        self.template = template
        self.raw = raw
        self.header = header
        self.content = content
        self.trailer = trailer
        self.row = row


class Template:
    """One EventId of one system, with the corpus lines that belong to it."""

    def __init__(self, system, eid, text):
        self.system = system
        self.eid = eid
        self.text = text  # as published
        self.merged = merge_slots(text)
        self.parts = self.merged.split("<*>")  # literal pieces; len(parts)-1 slots
        self.lines = []
        self._cre = capture_regex(self.merged)
        self._values = None

    @property
    def key(self):
        return "%s/%s" % (self.system, self.eid)

    @property
    def nslots(self):
        return len(self.parts) - 1

    def slot_values(self):
        """For each slot, the list of values it takes in the corpus (one per line)."""
        if self._values is None:
            vals = [[] for _ in range(self.nslots)]
            for ln in self.lines:
                m = self._cre.match(ln.content)
                if m is None:  # cannot happen for Loghub 2k, checked in load()
                    continue
                for i, v in enumerate(m.groups()):
                    vals[i].append(v)
            self._values = vals
        return self._values


def _read_raw_lines(path):
    with open(path, "rb") as f:
        data = f.read()
    text = data.decode("utf-8")
    lines = text.split("\r\n")
    if lines and lines[-1] == "":  # file ended with a terminator
        lines.pop()
    return lines


_CACHE = {}


def load(system):
    """Return (lines, templates) for one system; templates is an OrderedDict eid -> Template."""
    if system in _CACHE:
        return _CACHE[system]
    d = os.path.join(corpus_dir(), system)
    raw_lines = _read_raw_lines(os.path.join(d, "%s_2k.log" % system))
    with open(os.path.join(d, "%s_2k.log_structured.csv" % system), newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    with open(os.path.join(d, "%s_2k.log_templates.csv" % system), newline="", encoding="utf-8") as f:
        published = OrderedDict((r["EventId"], r["EventTemplate"]) for r in csv.DictReader(f))
    if len(rows) != len(raw_lines):
        sys.exit("%s: %d raw lines but %d structured rows" % (system, len(raw_lines), len(rows)))
    templates = OrderedDict((eid, Template(system, eid, t)) for eid, t in published.items())
    lines = []
    for i, (raw, row) in enumerate(zip(raw_lines, rows)):
        eid, content = row["EventId"], row["Content"]
        tpl = templates.get(eid)
        if tpl is None:
            tpl = templates[eid] = Template(system, eid, row["EventTemplate"])
        stripped = raw.rstrip(" \t")
        if not stripped.endswith(content):
            sys.exit("%s line %d: Content is not a suffix of the raw line" % (system, i + 1))
        header = stripped[: len(stripped) - len(content)]
        trailer = raw[len(stripped):]
        if not tpl._cre.match(content):
            sys.exit("%s line %d: Content does not fit template %s" % (system, i + 1, eid))
        ln = Line(system, i, eid, tpl, raw, header, content, trailer, row)
        tpl.lines.append(ln)
        lines.append(ln)
    _CACHE[system] = (lines, templates)
    return lines, templates


def load_all():
    """Return (all_lines, all_templates) over the 8 systems, in SYSTEMS order."""
    all_lines, all_templates = [], []
    for s in SYSTEMS:
        lines, templates = load(s)
        all_lines.extend(lines)
        all_templates.extend(templates.values())
    return all_lines, all_templates


def parse_size(text):
    """'1G', '100M', '512MiB', '1e9', '123456' -> bytes (K/M/G/T are binary multiples)."""
    m = re.fullmatch(r"\s*([0-9.eE+]+)\s*([kKmMgGtT]?)(i?[bB])?\s*", str(text))
    if not m:
        raise ValueError("bad size: %r" % text)
    mult = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[m.group(2).lower()]
    return int(float(m.group(1)) * mult)
