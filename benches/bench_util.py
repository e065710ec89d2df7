#!/usr/bin/env python3
"""Helpers for benches/throughput.sh (not meant to be run by hand).

    bench_util.py lines FILE
        number of lines in FILE (a last line without terminator counts)
    bench_util.py validate --bin B --config C --input F --out J [--timeout S]
        run `B -c C < F` once, untimed by hyperfine: check the exit code, that
        stdout is byte-identical to the input (pass-through), count the
        "[logalarm] ALARM: bench " lines on stderr, keep other stderr lines,
        wall time and peak RSS; write JSON to J
    bench_util.py time --runs N --warmup W --export-json J NAME CMD [NAME CMD ...]
        stand-in for hyperfine (same JSON fields) when hyperfine is missing
    bench_util.py report --dir D --input F --sets "10 100 1000" [--out MD]
        Markdown report from D/hf-N.json, D/density-N.txt, D/validate-N.json
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
    res = {"bin": a.bin, "config": a.config, "input": a.input}
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


def cmd_report(a):
    size = os.path.getsize(a.input)
    nlines = int(_read(os.path.join(a.dir, "input.lines"), "0") or 0) or count_lines(a.input)
    sets = a.sets.split()
    mb = size / 1e6
    rows, timing_rows, density_rows, notes = [], [], [], []
    for n in sets:
        hf = _read(os.path.join(a.dir, "hf-%s.json" % n))
        val = _read(os.path.join(a.dir, "validate-%s.json" % n))
        val = json.loads(val) if val else None
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
        def f(x):
            return "%.1f" % x if x is not None else "–"
        rows.append("| %s | %s | %s | %s | %s |" % (
            n, f(cat), f(rg), la_note or f(la), ("%.2f" % (la / rg)) if (la and rg) else "–"))
        for name in ("cat", "rg", "logalarm"):
            r = res.get(name)
            if r:
                timing_rows.append("| %s | %s | %.3f ± %.3f | %.3f | %.3f | %d |" % (
                    n, name, r["mean"], r.get("stddev") or 0.0, r["min"], r["max"], len(r.get("times", []))))
        matched = _read(os.path.join(a.dir, "density-%s.txt" % n))
        if matched is not None:
            m = int(matched)
            alarms = "–"
            extra = ""
            if val is not None:
                alarms = str(val["alarms"])
                dl = val.get("delivery") or {}
                extra = " | %s | %s | %s | %s | %s" % (
                    dl.get("suppressed", "–"), dl.get("dropped", "–"), val["exit_code"], "yes" if val["passthrough_identical"] else
                    "**no** (first difference at byte %s)" % val["first_difference_at"],
                    "%.0f" % (val["max_rss_kib"] / 1024))
            else:
                extra = " | – | – | – | – | –"
            density_rows.append("| %s | %d | %.2f %% | %s%s |" % (n, m, 100.0 * m / max(nlines, 1), alarms, extra))
        if val is not None:
            for text in val.get("summary") or val.get("stderr_other", [])[:1]:
                notes.append("- %s rules, check run: `%s`%s" % (
                    n, text, " (%d warning lines on stderr)" % val["warnings"] if val.get("warnings") else ""))
    versions = _read(os.path.join(a.dir, "versions.txt"), "")
    out = []
    out.append("# logalarm throughput")
    out.append("")
    out.append("Input: `%s`, %d bytes (%.1f MB), %d lines, mutated Loghub lines from 8 systems (benches/gen_input.py)."
               % (os.path.relpath(a.input, os.getcwd()) if a.input.startswith(os.getcwd()) else a.input, size, mb, nlines))
    out.append("Machine: %s, %d cores. %s" % (_cpu_model(), os.cpu_count() or 0, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())))
    if versions:
        out.append("Versions: " + versions.replace("\n", "; "))
    out.append("MB/s = input bytes / mean wall time / 10^6 (hyperfine, warm page cache).")
    out.append("")
    out.append("| rules | cat MB/s | rg MB/s | logalarm MB/s | logalarm÷rg |")
    out.append("|---:|---:|---:|---:|---:|")
    out.extend(rows)
    out.append("")
    out.append("Commands: `cat input > /dev/null`; `rg --no-config --crlf -c -f rules.txt input`; "
               "`logalarm -c rules.toml < input > /dev/null 2>/dev/null` (pass-through to /dev/null, alarms `log:bench` to stderr).")
    out.append("")
    out.append("Match density (lines matched by any rule, `rg --crlf -c`) and one untimed logalarm run checked for exit code, "
               "byte-identical pass-through and the number of `[logalarm] ALARM: bench` lines it wrote:")
    out.append("")
    out.append("| rules | lines matched (rg) | of all lines | alarm lines (logalarm) | suppressed by alarm-freq | dropped, queue full | exit | stdout = input | peak RSS MiB |")
    out.append("|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    out.extend(density_rows)
    out.append("")
    out.append("Raw timings (seconds):")
    out.append("")
    out.append("| rules | command | mean ± σ | min | max | runs |")
    out.append("|---:|---|---:|---:|---:|---:|")
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
    p.add_argument("--sets", required=True)
    p.add_argument("--out")
    p.set_defaults(fn=cmd_report)
    a = ap.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
