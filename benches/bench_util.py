#!/usr/bin/env python3
"""Helpers for benches/throughput.sh (not meant to be run by hand).

    bench_util.py lines FILE
        number of lines in FILE (a last line without terminator counts)
    bench_util.py validate --bin B --config C --input F --out J [--timeout S] [--label L]
        run `B -c C < F` once, untimed by hyperfine: check the exit code, that
        stdout is byte-identical to the input (pass-through), count the
        "[logalarm] ALARM: bench " lines on stderr, keep other stderr lines,
        wall time and peak RSS; write JSON to J (L: which logalarm build it was)
    bench_util.py time --runs N --warmup W --export-json J NAME CMD [NAME CMD ...]
        stand-in for hyperfine (same JSON fields) when hyperfine is missing
    bench_util.py report --dir D --input F [--out MD]
        Markdown report from D/hf-FAMILY-N.json, D/density-FAMILY-N.txt,
        D/validate-FAMILY-N.json and D/load-FAMILY-N.txt: one section per
        rule-set family (sparse first, then dense), one row per N found
"""

import argparse
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import threading
import time

ALARM_PREFIX = b"[logalarm] ALARM: bench "


def count_lines(path):
    n = 0
    last = b"\n"
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 24)
            if not b:
                break
            n += b.count(b"\n")
            last = b[-1:]
    return n + (0 if last == b"\n" else 1)


def cmd_lines(a):
    print(count_lines(a.file))


def cmd_validate(a):
    res = {"bin": a.bin, "label": a.label, "config": a.config, "input": a.input}
    stderr_other = []
    summary = []
    counts = {"alarms": 0, "stderr_lines": 0, "warnings": 0}

    def read_stderr(pipe):
        # counted in C-speed chunks so that the harness is not the slow consumer
        other = re.compile(rb"(?m)^(?!" + re.escape(ALARM_PREFIX) + rb").+$")
        carry = b""
        while True:
            chunk = pipe.read1(1 << 20) if hasattr(pipe, "read1") else pipe.read(1 << 20)
            if not chunk:
                break
            buf = carry + chunk
            cut = buf.rfind(b"\n") + 1
            complete, carry = buf[:cut], buf[cut:]
            if not complete:
                continue
            counts["stderr_lines"] += complete.count(b"\n")
            counts["alarms"] += complete.count(b"\n" + ALARM_PREFIX) + (1 if complete.startswith(ALARM_PREFIX) else 0)
            for m in other.finditer(complete):
                note(m.group(0))
        if carry:
            counts["stderr_lines"] += 1
            if carry.startswith(ALARM_PREFIX):
                counts["alarms"] += 1
            else:
                note(carry)

    def note(raw):
        text = raw.decode("utf-8", "replace").rstrip("\r\n")[:300]
        if " delivered, " in text:
            summary.append(text)
        if text.startswith("[logalarm] warn"):
            counts["warnings"] += 1
        if len(stderr_other) < 20:
            stderr_other.append(text)

    t0 = time.monotonic()
    with open(a.input, "rb") as fin, open(a.input, "rb") as ref:
        p = subprocess.Popen([a.bin, "-c", a.config], stdin=fin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        th = threading.Thread(target=read_stderr, args=(p.stderr,), daemon=True)
        th.start()
        timer = threading.Timer(a.timeout, p.kill)
        timer.start()
        out_bytes = 0
        first_diff = None
        while True:
            chunk = p.stdout.read(1 << 20)
            if not chunk:
                break
            if first_diff is None:
                want = ref.read(len(chunk))
                if want != chunk:
                    n = min(len(want), len(chunk))
                    i = next((k for k in range(n) if want[k] != chunk[k]), n)
                    first_diff = out_bytes + i
            out_bytes += len(chunk)
        rc = p.wait()
        timer.cancel()
        th.join(10)
        if first_diff is None and ref.read(1):
            first_diff = out_bytes  # output is a strict prefix of the input
    res["wall_s"] = time.monotonic() - t0
    res["exit_code"] = rc
    res["timed_out"] = rc == -9 and res["wall_s"] >= a.timeout
    res["stdout_bytes"] = out_bytes
    res["input_bytes"] = os.path.getsize(a.input)
    res["passthrough_identical"] = first_diff is None and out_bytes == res["input_bytes"]
    res["first_difference_at"] = first_diff
    res["alarms"] = counts["alarms"]
    res["stderr_lines"] = counts["stderr_lines"]
    res["stderr_other"] = stderr_other
    res["warnings"] = counts["warnings"]
    res["summary"] = summary
    stats = {}
    for text in summary:
        for num, what in re.findall(r"(\d+) (delivered|failed|suppressed|dropped)", text):
            stats[what] = stats.get(what, 0) + int(num)
    res["delivery"] = stats
    res["max_rss_kib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    ok = rc == 0 and res["passthrough_identical"]
    print("validate: exit %s, %.1f s, stdout %s, %d alarm lines, %d other stderr lines%s"
          % (rc, res["wall_s"], "identical to input" if res["passthrough_identical"]
             else "DIFFERS from input at byte %s (%d bytes out)" % (first_diff, out_bytes),
             res["alarms"], res["stderr_lines"] - res["alarms"],
             (": " + stderr_other[0]) if stderr_other else ""), file=sys.stderr)
    sys.exit(0 if ok else 1)


def cmd_time(a):
    names, cmds = a.pairs[0::2], a.pairs[1::2]
    if len(names) != len(cmds):
        sys.exit("time: arguments are NAME CMD pairs")
    results = []
    for name, cmd in zip(names, cmds):
        times, codes = [], []
        for i in range(a.warmup + a.runs):
            t0 = time.perf_counter()
            rc = subprocess.call(["/bin/sh", "-c", cmd], stdout=subprocess.DEVNULL)
            dt = time.perf_counter() - t0
            if rc != 0:
                sys.exit("time: %r exited %d" % (cmd, rc))
            if i >= a.warmup:
                times.append(dt)
                codes.append(rc)
        results.append({"command": name, "mean": statistics.mean(times),
                        "stddev": statistics.stdev(times) if len(times) > 1 else 0.0,
                        "median": statistics.median(times), "min": min(times), "max": max(times),
                        "times": times, "exit_codes": codes})
        print("  %-10s mean %.3f s (min %.3f, max %.3f, %d runs)" % (name, results[-1]["mean"], min(times), max(times), len(times)),
              file=sys.stderr)
    with open(a.export_json, "w") as f:
        json.dump({"results": results}, f, indent=1)


def _read(path, default=None):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


FAMILIES = ("sparse", "dense")
FAMILY_TEXT = {
    "sparse": "**sparse** rules (`gen_rules.py --family sparse`): alarms on rare events, narrowed to a user, "
              "subnet, node or code seen in the corpus, chosen so that the whole set matches about 0.1–1 % of "
              "the lines; nearly every line is a non-match, as for real alarm rules.",
    "dense": "**dense** rules (`gen_rules.py`, one per Loghub template plus variants): a stress case, "
             "100 rules match about half the lines and 1000 all of them, so logalarm delivers an alarm "
             "for every second line.",
}


def _rows(d):
    """(family, N) pairs with results in d, families in FAMILIES order, N ascending."""
    found = set()
    for name in os.listdir(d):
        m = re.fullmatch(r"(?:hf|validate|density)-([a-z]+)-(\d+)\.(?:json|txt)", name)
        if m:
            found.add((m.group(1), int(m.group(2))))
    order = {f: i for i, f in enumerate(FAMILIES)}
    return sorted(found, key=lambda fn: (order.get(fn[0], len(order)), fn[0], fn[1]))


def cmd_report(a):
    size = os.path.getsize(a.input)
    nlines = int(_read(os.path.join(a.dir, "input.lines"), "0") or 0) or count_lines(a.input)
    mb = size / 1e6
    rows = _rows(a.dir)
    labels = {}
    sections = []
    timing_rows, notes = [], []
    for fam in [f for f in FAMILIES if any(r[0] == f for r in rows)] + \
            sorted(set(r[0] for r in rows) - set(FAMILIES)):
        speed_rows, density_rows = [], []
        for _, n in [r for r in rows if r[0] == fam]:
            key = "%s-%d" % (fam, n)
            hf = _read(os.path.join(a.dir, "hf-%s.json" % key))
            val = _read(os.path.join(a.dir, "validate-%s.json" % key))
            val = json.loads(val) if val else None
            load = _read(os.path.join(a.dir, "load-%s.txt" % key), "")
            res = {}
            if hf:
                for r in json.loads(hf)["results"]:
                    res[r["command"]] = r

            def rate(name):
                r = res.get(name)
                return (mb / r["mean"]) if r else None

            cat, rg, la = rate("cat"), rate("rg"), rate("logalarm")
            la_note = ""
            if la is None and val is not None:
                if val["exit_code"] != 0:
                    la_note = "FAILED (exit %s)" % val["exit_code"]
                else:  # too slow for repeated runs: the single validation run
                    la = mb / val["wall_s"]
                    la_note = "%.1f (1 run)" % la
            mark = ""
            if val is not None:
                lab = val.get("label") or "(build not recorded)"
                labels.setdefault(lab, []).append(key)
                mark = "LABEL:" + lab

            def f(x):
                return "%.1f" % x if x is not None else "–"

            speed_rows.append(("| %d | %s | %s | %s | %s |" % (
                n, f(cat), f(rg), la_note or f(la), ("%.2f" % (la / rg)) if (la and rg) else "–"), mark))
            for name in ("cat", "rg", "logalarm"):
                r = res.get(name)
                if r:
                    timing_rows.append("| %s | %d | %s | %.3f ± %.3f | %.3f | %.3f | %d | %s |" % (
                        fam, n, name, r["mean"], r.get("stddev") or 0.0, r["min"], r["max"], len(r.get("times", [])),
                        " → ".join(x.split(" ", 1)[1].rsplit(" ", 2)[0] for x in load.splitlines() if " " in x)
                        if name == "cat" else ""))
            matched = _read(os.path.join(a.dir, "density-%s.txt" % key))
            if matched is not None:
                m = int(matched)
                if val is not None:
                    dl = val.get("delivery") or {}
                    sup, drop, failed = dl.get("suppressed"), dl.get("dropped"), dl.get("failed", 0)
                    if sup is None or drop is None:
                        adds = "? (no summary)"
                    else:
                        got = val["alarms"] + sup + drop + (failed or 0)
                        adds = "yes" if got == m else "**no**: %d ≠ %d" % (got, m)
                    extra = " | %s | %s | %s | %s | %s | %s | %s" % (
                        val["alarms"], "–" if sup is None else sup, "–" if drop is None else drop, adds,
                        val["exit_code"], "yes" if val["passthrough_identical"] else
                        "**no** (first difference at byte %s)" % val["first_difference_at"],
                        "%.0f" % (val["max_rss_kib"] / 1024))
                else:
                    extra = " | – | – | – | – | – | – | –"
                density_rows.append("| %d | %d | %.3f %%%s |" % (n, m, 100.0 * m / max(nlines, 1), extra))
            if val is not None:
                for text in val.get("summary") or val.get("stderr_other", [])[:1]:
                    notes.append("- %s %d, check run (%.1f s): `%s`%s" % (
                        fam, n, val["wall_s"], text,
                        " (%d warning lines on stderr)" % val["warnings"] if val.get("warnings") else ""))
        sections.append((fam, speed_rows, density_rows))
    versions = _read(os.path.join(a.dir, "versions.txt"), "")
    latest = None
    m = re.search(r"^logalarm (.*?) \(binary sha256 (\w+)\)$", versions, re.M)
    if m:
        latest = "%s, binary sha256 %s" % (m.group(1), m.group(2))
    foot = {}
    for lab in labels:
        if lab != latest:
            foot[lab] = "†" * (len(foot) + 1)
    out = []
    out.append("# logalarm throughput")
    out.append("")
    out.append("Input: `%s`, %d bytes (%.1f MB), %d lines, mutated Loghub lines from 8 systems (benches/gen_input.py)."
               % (os.path.relpath(a.input, os.getcwd()) if a.input.startswith(os.getcwd()) else a.input, size, mb, nlines))
    out.append("Machine: %s, %d cores. %s" % (_cpu_model(), os.cpu_count() or 0, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())))
    if versions:
        out.append("Versions: " + versions.replace("\n", "; "))
    out.append("MB/s = input bytes / mean wall time / 10^6 (hyperfine, warm page cache).")
    out.append("Commands: `cat input > /dev/null`; `rg --no-config --crlf -c -f rules.txt input`; "
               "`logalarm -c rules.toml < input > /dev/null 2>/dev/null` (pass-through to /dev/null, alarms `log:bench` to stderr).")
    for fam, speed_rows, density_rows in sections:
        out.append("")
        out.append("## %s rules" % fam)
        out.append("")
        if fam in FAMILY_TEXT:
            out.append(FAMILY_TEXT[fam])
            out.append("")
        out.append("| rules | cat MB/s | rg MB/s | logalarm MB/s | logalarm÷rg |")
        out.append("|---:|---:|---:|---:|---:|")
        for text, mark in speed_rows:
            lab = mark[len("LABEL:"):] if mark else None
            if lab in foot:
                text = text.replace(" |", " %s |" % foot[lab], 1)
            out.append(text)
        out.append("")
        out.append("Match density (lines matched by any rule, `rg --crlf -c`) and one untimed logalarm run checked for "
                   "exit code, byte-identical pass-through and alarm count (alarm lines + suppressed + dropped = "
                   "lines matched):")
        out.append("")
        out.append("| rules | lines matched (rg) | of all lines | alarm lines (logalarm) | suppressed by alarm-freq "
                   "| dropped, queue full | adds up | exit | stdout = input | peak RSS MiB |")
        out.append("|---:|---:|---:|---:|---:|---:|---|---:|---|---:|")
        out.extend(density_rows)
    if foot:
        out.append("")
        for lab, sym in foot.items():
            out.append("%s measured with an earlier build: logalarm %s." % (sym, lab))
    out.append("")
    out.append("Raw timings (seconds; load average before → after the row, for other work on the machine):")
    out.append("")
    out.append("| family | rules | command | mean ± σ | min | max | runs | load avg (1/5/15 min) |")
    out.append("|---|---:|---|---:|---:|---:|---:|---|")
    out.extend(timing_rows)
    if notes:
        out.append("")
        out.append("logalarm's own end-of-run summary in the check run (stderr was read by the harness, a slower "
                   "consumer than /dev/null in the timed runs):")
        out.append("")
        out.extend(notes)
    text = "\n".join(out) + "\n"
    sys.stdout.write(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd_name", required=True)
    p = sub.add_parser("lines")
    p.add_argument("file")
    p.set_defaults(fn=cmd_lines)
    p = sub.add_parser("validate")
    p.add_argument("--bin", required=True)
    p.add_argument("--config", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--timeout", type=float, default=3600)
    p.add_argument("--label", default="")
    p.set_defaults(fn=cmd_validate)
    p = sub.add_parser("time")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--export-json", required=True)
    p.add_argument("pairs", nargs="+", metavar="NAME CMD")
    p.set_defaults(fn=cmd_time)
    p = sub.add_parser("report")
    p.add_argument("--dir", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--out")
    p.set_defaults(fn=cmd_report)
    a = ap.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
