#!/usr/bin/env python3
"""Build a large benchmark input by repeating and mutating real Loghub lines.

    gen_input.py [--size 1G] [--seed 1] [-o target/bench/input.log]

Every output line is a line of one of the 8 Loghub 2k samples with its
variable parts changed, never a synthetic format:

  * the header's timestamp is re-rendered from a per-system clock that moves
    forward (same format as the original: Apache `[Sun Dec 04 04:47:44 2005]`,
    BGL epoch + date + `2005-06-03-15.42.50.675872`, HDFS `081109 203615`,
    syslog `Jun 14 15:16:01`, Spark `17/06/09 20:10:40`, Zookeeper
    `2015-07-29 17:41:44,747`, HPC epoch);
  * process ids, HPC log ids and node names are drawn from the values seen in
    the corpus, with their digits varied;
  * in the message text only the parts that the template marks as variable
    (`<*>`) change: each is replaced by a value seen for that slot in the
    structured CSV, with digits, hex ids (0x…, hex words), IPv4 addresses
    (last two octets), ports and block ids varied while keeping length and shape.
    Literal template text is never touched, so every line still belongs to
    its original EventId and rules made by gen_rules.py keep their meaning.

Lines are emitted in runs of 1–64 consecutive lines of a randomly chosen
system (so bursts look like the original logs), with the original CRLF line
endings; like the corpus files, the last line has no terminator.  The output
is a pure function of --seed and --size.  The default size is 1 GiB
(env BENCH_SIZE overrides the default; K/M/G suffixes are binary).
"""

import argparse
import calendar
import os
import random
import re
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in benches/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loghub  # noqa: E402

POOL_BITS = 9  # 512 pre-mutated values per variable slot
POOL = 1 << POOL_BITS

_MON = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
_DAY = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]

# Per system: header regex (fullmatch).  Named groups are the parts that vary:
#   clkN  -> N-th string of the system's clock tuple
#   pid/logid/node -> drawn from a pool of corpus values, digits varied
#   bglnode (twice in BGL, always equal) -> drawn from corpus values as is
HEADER = {
    "Apache": r"\[(?P<clk0>\w{3} \w{3} \d\d \d\d:\d\d:\d\d \d{4})\] \[\w+\] ",
    "BGL": r"\S+ (?P<clk0>\d+) (?P<clk1>\d{4}\.\d\d\.\d\d) (?P<bglnode>\S+) "
           r"(?P<clk2>\d{4}-\d\d-\d\d-\d\d\.\d\d\.\d\d\.\d{6}) (?P<bglnode2>\S+) \S+ \S+ \S+ ",
    "HDFS": r"(?P<clk0>\d{6} \d{6}) (?P<pid>\d+) \w+ \S+: ",
    "HPC": r"(?P<logid>\d+) (?P<node>\S+) \S+ \S+ (?P<clk0>\d+) -?\d+ ",
    "Linux": r"(?P<clk0>\w{3} [ \d]\d \d\d:\d\d:\d\d) \S+ .*?(?:\[(?P<pid>\d+)\])?: +",
    "OpenSSH": r"(?P<clk0>\w{3} [ \d]\d \d\d:\d\d:\d\d) \S+ sshd\[(?P<pid>\d+)\]: ",
    "Spark": r"(?P<clk0>\d\d/\d\d/\d\d \d\d:\d\d:\d\d) \w+ \S+: ",
    "Zookeeper": r"(?P<clk0>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) - \w+ +\[.*?\] - ",
}

# Clock: start (UTC) taken from the first corpus line; step per emitted line is
# uniform in [0, 2**bits) microseconds (Spark ~16 ms per line ... Apache ~0.26 s).
CLOCK_BITS = {"Apache": 19, "BGL": 17, "HDFS": 16, "HPC": 18, "Linux": 19,
              "OpenSSH": 17, "Spark": 15, "Zookeeper": 17}
CLOCK_START = {  # how to read the first line's timestamp
    "Apache": ("%a %b %d %H:%M:%S %Y", None),
    "BGL": (None, None),
    "HDFS": ("%y%m%d %H%M%S", None),
    "HPC": (None, None),
    "Linux": ("%Y %b %d %H:%M:%S", "2005"),
    "OpenSSH": ("%Y %b %d %H:%M:%S", "2015"),
    "Spark": ("%y/%m/%d %H:%M:%S", None),
    "Zookeeper": ("%Y-%m-%d %H:%M:%S", None),
}


class Clock:
    """Per-system clock returning the header's timestamp strings for each line."""

    def __init__(self, system, first_header, rb):
        m = re.fullmatch(HEADER[system], first_header)
        fmt, year = CLOCK_START[system]
        v = m.group("clk0").split(",")[0]
        if fmt is None:
            sec = int(v)
        else:
            if year:
                v = "%s %s" % (year, re.sub(" +", " ", v))
            sec = calendar.timegm(time.strptime(v, fmt))
        self.us = sec * 1000000
        self.bits = CLOCK_BITS[system]
        self.rb = rb
        self.sec = None
        self.cache = None
        self.render = getattr(self, "_r_" + system)

    def tick(self):
        self.us += self.rb(self.bits)
        sec, frac = divmod(self.us, 1000000)
        if sec != self.sec:
            self.sec = sec
            self.cache = self.render(sec, time.gmtime(sec))
        c = self.cache
        if c[1] is None:
            return c[0]
        return c[1](frac)

    # each renderer returns (tuple, None) or (None, fn(frac) -> tuple)
    @staticmethod
    def _r_Apache(sec, t):
        return (("%s %s %02d %02d:%02d:%02d %d" % (_DAY[t.tm_wday], _MON[t.tm_mon - 1], t.tm_mday,
                                                   t.tm_hour, t.tm_min, t.tm_sec, t.tm_year),), None)

    @staticmethod
    def _r_BGL(sec, t):
        e = str(sec)
        d = "%d.%02d.%02d" % (t.tm_year, t.tm_mon, t.tm_mday)
        full = "%d-%02d-%02d-%02d.%02d.%02d." % (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)
        return (None, lambda frac: (e, d, "%s%06d" % (full, frac)))

    @staticmethod
    def _r_HDFS(sec, t):
        return (("%02d%02d%02d %02d%02d%02d" % (t.tm_year % 100, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec),), None)

    @staticmethod
    def _r_HPC(sec, t):
        return ((str(sec),), None)

    @staticmethod
    def _r_Linux(sec, t):
        return (("%s %2d %02d:%02d:%02d" % (_MON[t.tm_mon - 1], t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec),), None)

    _r_OpenSSH = _r_Linux

    @staticmethod
    def _r_Spark(sec, t):
        return (("%02d/%02d/%02d %02d:%02d:%02d" % (t.tm_year % 100, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec),), None)

    @staticmethod
    def _r_Zookeeper(sec, t):
        base = "%d-%02d-%02d %02d:%02d:%02d" % (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)
        return (None, lambda frac: ("%s,%03d" % (base, frac // 1000),))


# ---------------------------------------------------------------- mutation

_MUT = re.compile(
    r"(?P<ip>(?<![\w.])\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?![\w.]))"
    r"|(?P<port>(?<=:)[1-9]\d{3,4}(?!\d))"
    r"|(?P<hx>0x[0-9a-fA-F]+)"
    r"|(?P<hw>(?<![0-9A-Za-z])(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{6,}(?![0-9A-Za-z]))"
    r"|(?P<HW>(?<![0-9A-Za-z])(?=[0-9A-F]*[A-F])(?=[0-9A-F]*\d)[0-9A-F]{6,}(?![0-9A-Za-z]))"
    r"|(?P<num>\d+)"
)


def make_mutator(rng):
    rint = rng.randrange

    def digits(n):
        return "".join("0123456789"[rint(10)] for _ in range(n))

    def hexs(n, upper):
        s = "".join("0123456789abcdef"[rint(16)] for _ in range(n))
        return s.upper() if upper else s

    def repl(m):
        g = m.lastgroup
        v = m.group(0)
        if g == "ip":
            a, b, _, _ = v.split(".")
            return "%s.%s.%d.%d" % (a, b, rint(256), 1 + rint(254))
        if g == "port":  # after an address: a plausible port of the same width
            return str(1000 + rint(9000)) if len(v) == 4 else str(10000 + rint(55536))
        if g == "hx":
            body = v[2:]
            return "0x" + hexs(len(body), any(c in "ABCDEF" for c in body))
        if g == "hw":
            return hexs(len(v), False)
        if g == "HW":
            return hexs(len(v), True)
        # plain number: same length; years and single '0' kept as they are
        n = len(v)
        if n == 4 and v[:2] in ("19", "20"):
            return v
        if n == 1:
            return v if v == "0" else "123456789"[rint(9)]
        if v[0] == "0":
            return "0" + digits(n - 1)
        return "123456789"[rint(9)] + digits(n - 1)

    def mutate(v, ctx=""):
        """ctx: text just before v (only a trailing ':' matters: ports)."""
        if ctx.endswith(":"):
            return _MUT.sub(repl, ":" + v)[1:]
        return _MUT.sub(repl, v)

    return mutate


# ---------------------------------------------------------------- generator


class Generator:
    """Deterministic infinite source of mutated corpus lines (str, no terminator)."""

    def __init__(self, seed=1):
        rng = random.Random(seed)
        self.rng = rng
        self.rb = rng.getrandbits
        mutate = make_mutator(rng)
        self.systems = loghub.SYSTEMS
        self.fns = {}
        self.clocks = {}
        pools = {}

        def pool(key, seen, mut=True, ctx=""):
            p = pools.get(key)
            if p is None:
                seen = list(seen)
                if mut and any(re.search(r"\d", v) for v in seen):
                    p = [mutate(seen[rng.randrange(len(seen))], ctx) for _ in range(POOL)]
                else:
                    p = [seen[rng.randrange(len(seen))] for _ in range(POOL)]
                pools[key] = p
            return p

        for s in self.systems:
            lines, templates = loghub.load(s)
            hre = re.compile(HEADER[s])
            heads = []
            seen_hdr = {}
            for ln in lines:
                m = hre.fullmatch(ln.header)
                if m is None:
                    sys.exit("gen_input: %s line %d: header %r not understood" % (s, ln.index + 1, ln.header))
                heads.append(m)
                for k, v in m.groupdict().items():
                    if v is not None and not k.startswith("clk"):
                        seen_hdr.setdefault(k, []).append(v)
            self.clocks[s] = Clock(s, lines[0].header, self.rb)
            fns = []
            for ln, m in zip(lines, heads):
                fns.append(self._compile(s, ln, m, seen_hdr, pool))
            self.fns[s] = fns
        self.pools = pools

    def _compile(self, s, ln, m, seen_hdr, pool):
        """Build fn(ck) -> str for one corpus line."""
        fmt = []
        args = []
        env = {"rb": self.rb}
        pre = []

        def lit(text):
            fmt.append(text.replace("%", "%%"))

        def pool_arg(key, seen, mut=True, ctx=""):
            name = "P%d" % len(env)
            env[name] = pool(key, seen, mut, ctx)
            return "%s[rb(%d)]" % (name, POOL_BITS)

        # header
        h = ln.header
        pos = 0
        spans = sorted((m.start(g), m.end(g), g) for g in m.groupdict() if m.group(g) is not None)
        for a, b, g in spans:
            lit(h[pos:a])
            fmt.append("%s")
            if g.startswith("clk"):
                args.append("ck[%s]" % g[3:])
            elif g == "bglnode":
                pre.append("n = " + pool_arg((s, "bglnode"), seen_hdr["bglnode"], mut=False))
                args.append("n")
            elif g == "bglnode2":
                args.append("n")
            else:
                args.append(pool_arg((s, g), seen_hdr[g]))
            pos = b
        lit(h[pos:])
        # content: template literals + pools of slot values
        t = ln.template
        values = t.slot_values()
        for i, part in enumerate(t.parts):
            lit(part)
            if i < t.nslots:
                fmt.append("%s")
                args.append(pool_arg((s, t.eid, i), values[i], ctx=part))
        lit(ln.trailer)
        env["FMT"] = "".join(fmt)
        body = "".join("    %s\n" % p for p in pre)
        src = "def f(ck):\n%s    return FMT %% (%s,)\n" % (body, ", ".join(args))
        exec(src, env)
        return env["f"]

    def lines(self):
        rb = self.rb
        randrange = self.rng.randrange
        systems = self.systems
        while True:
            s = systems[rb(3)]
            fns = self.fns[s]
            tick = self.clocks[s].tick
            start = randrange(len(fns))
            for f in fns[start:start + 1 + rb(6)]:
                yield f(tick())

    def batch(self, n):
        """Next n lines as a list (shares the generator state across calls)."""
        if getattr(self, "_iter", None) is None:
            self._iter = self.lines()
        it = self._iter
        return [next(it) for _ in range(n)]


def write_input(path, size, seed=1, chunk_lines=1 << 15, progress=True):
    gen = Generator(seed)
    it = gen.lines()
    tmp = path + ".tmp"
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    total = 0
    nlines = 0
    t0 = time.monotonic()
    next_report = 1 << 28
    with open(tmp, "wb", buffering=0) as out:
        while True:
            batch = [next(it) for _ in range(chunk_lines)]
            data = ("\r\n".join(batch) + "\r\n").encode("utf-8")
            if total + len(data) >= size:
                # finish on a whole line, the last one without a terminator
                keep = []
                acc = total
                for ln in batch:
                    b = ln.encode("utf-8")
                    keep.append(b)
                    acc += len(b) + 2
                    if acc >= size:
                        break
                data = b"\r\n".join(keep)
                out.write(data)
                total += len(data)
                nlines += len(keep)
                break
            out.write(data)
            total += len(data)
            nlines += len(batch)
            if progress and total >= next_report:
                el = time.monotonic() - t0
                print("gen_input: %d MiB, %.1f MB/s" % (total >> 20, total / el / 1e6), file=sys.stderr)
                next_report += 1 << 28
    os.replace(tmp, path)
    return total, nlines, time.monotonic() - t0


def self_check(seed=1, per_line=5):
    """Every corpus line's generator, run per_line times, must yield a line whose
    header has the system's shape, whose message still fits the line's template
    and which the template's base rule (gen_rules.py) matches."""
    import gen_rules

    gen = Generator(seed)
    corpus = gen_rules.Corpus()
    base = {(r["system"], r["eid"]): re.compile(r["regex"]) for r in gen_rules.make_base(corpus)}
    n = bad = 0
    for s in loghub.SYSTEMS:
        lines, _ = loghub.load(s)
        hre = re.compile(HEADER[s])
        tick = gen.clocks[s].tick
        for ln, f in zip(lines, gen.fns[s]):
            for _ in range(per_line):
                out = f(tick())
                n += 1
                m = hre.match(out)
                body = out[m.end():len(out.rstrip(" \t"))] if m else None
                if body is None or not ln.template._cre.match(body) or not base[(s, ln.eid)].search(out):
                    bad += 1
                    if bad <= 5:
                        print("self-check: %s %s: %r" % (s, ln.eid, out[:200]), file=sys.stderr)
    print("gen_input: self-check: %d generated lines, %d bad" % (n, bad), file=sys.stderr)
    return bad == 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default=os.environ.get("BENCH_SIZE", "1G"),
                    help="target size (bytes or K/M/G, binary; default $BENCH_SIZE or 1G)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("-o", "--output", default=os.path.join(loghub.REPO_ROOT, "target", "bench", "input.log"))
    ap.add_argument("--check", action="store_true",
                    help="only self-check the generator against the templates and rules, write nothing")
    a = ap.parse_args()
    if a.check:
        sys.exit(0 if self_check(a.seed) else 1)
    size = loghub.parse_size(a.size)
    total, nlines, el = write_input(a.output, size, a.seed)
    print("gen_input: wrote %s: %d bytes, %d lines in %.1f s (%.1f MB/s)"
          % (a.output, total, nlines, el, total / max(el, 1e-9) / 1e6), file=sys.stderr)


if __name__ == "__main__":
    main()
