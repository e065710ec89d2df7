#!/usr/bin/env python3
"""Line-to-action latency of logalarm.

    latency.py [--probes 500] [--interval-ms 20] [--filler-lines 200] [--bin PATH]

Starts

    logalarm --alarm-freq 0 --no-passthrough \\
             --alarm 'lat cmd:printf "%s\\n" "$LOGALARM_LINE" > FIFO' \\
             --log-alarm 'lat LATENCY-PROBE'

with its stdin a pipe.  Every --interval-ms the harness writes --filler-lines
mutated Loghub lines (benches/gen_input.py) followed by one line
`LATENCY-PROBE <seq>`, recording time.monotonic_ns() just before writing the
probe.  The cmd action (`/bin/sh -c …`) writes the line it was given to a FIFO
that a reader thread reads, stamping time.monotonic_ns() on receipt.  The
latency of a probe is receipt − write, on the one machine's monotonic clock.
It therefore includes logalarm reading and matching the line, queueing the
alarm, forking/exec'ing /bin/sh and the shell running printf — i.e. /bin/sh
start-up is part of the figure.  For reference the harness also measures the
same /bin/sh command spawned directly from Python.

Prints p50, p90, p99 and max in milliseconds and writes target/bench/latency.md.
"""

import argparse
import fcntl
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in benches/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loghub  # noqa: E402

PROBE = "LATENCY-PROBE"


def percentile(sorted_vals, p):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_vals:
        return float("nan")
    k = max(0, min(len(sorted_vals) - 1, int(-(-p * len(sorted_vals) // 100)) - 1))
    return sorted_vals[k]


class FifoReader(threading.Thread):
    """Reads `LATENCY-PROBE <seq>` lines from a FIFO, stamping each on receipt."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path = path
        # open the read end without blocking, then hold a write end ourselves so
        # that the reader never sees EOF between two cmd actions
        self.rfd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self.wfd = os.open(path, os.O_WRONLY)
        fl = fcntl.fcntl(self.rfd, fcntl.F_GETFL)
        fcntl.fcntl(self.rfd, fcntl.F_SETFL, fl & ~os.O_NONBLOCK)
        self.received = {}
        self.junk = []
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)

    def run(self):
        buf = b""
        while True:
            data = os.read(self.rfd, 65536)
            now = time.monotonic_ns()
            if not data:
                break
            buf += data
            *lines, buf = buf.split(b"\n")
            with self.cond:
                for ln in lines:
                    parts = ln.split()
                    if len(parts) == 2 and parts[0] == PROBE.encode() and parts[1].isdigit():
                        self.received.setdefault(int(parts[1]), now)
                    elif ln.strip():
                        self.junk.append(ln[:200])
                self.cond.notify_all()

    def wait_for(self, keys, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not all(k in self.received for k in keys):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
        return True

    def close(self):
        os.close(self.wfd)  # with every cmd writer gone, read() returns EOF
        self.join(5)
        os.close(self.rfd)


def shell_command(fifo):
    return 'printf "%%s\\n" "$LOGALARM_LINE" > %s' % fifo


def direct_sh_reference(reader, fifo, n, base_seq):
    """Latency of the same /bin/sh command spawned directly by this process."""
    cmd = shell_command(fifo)
    lat = []
    env = dict(os.environ)
    for i in range(n):
        seq = base_seq + i
        env["LOGALARM_LINE"] = "%s %d" % (PROBE, seq)
        t0 = time.monotonic_ns()
        p = subprocess.Popen(["/bin/sh", "-c", cmd], env=env, stdin=subprocess.DEVNULL)
        if reader.wait_for([seq], 5):
            lat.append((reader.received[seq] - t0) / 1e6)
        p.wait()
    return sorted(lat)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--probes", type=int, default=int(os.environ.get("LATENCY_PROBES", 500)))
    ap.add_argument("--interval-ms", type=float, default=20.0)
    ap.add_argument("--filler-lines", type=int, default=200,
                    help="corpus lines written before each probe (default 200, ~2.3 MB/s at 20 ms)")
    ap.add_argument("--warmup", type=int, default=5, help="first probes left out of the statistics")
    ap.add_argument("--reference", type=int, default=100, help="direct /bin/sh spawns for the reference figure (0: skip)")
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--bin", default=os.environ.get("LOGALARM_BIN"))
    ap.add_argument("--out", default=os.path.join(loghub.REPO_ROOT, "target", "bench", "latency.md"))
    a = ap.parse_args()

    binary = a.bin or os.path.join(loghub.REPO_ROOT, "target", "release", "logalarm")
    if not a.bin:
        print("latency: cargo build --release", file=sys.stderr)
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=loghub.REPO_ROOT, check=True)
    if not os.access(binary, os.X_OK):
        sys.exit("latency: no logalarm binary at %s" % binary)

    from gen_input import Generator

    gen = Generator(a.seed)
    fillers = [("".join(ln + "\r\n" for ln in gen.batch(a.filler_lines))).encode() for _ in range(min(a.probes, 50))]

    tmp = tempfile.mkdtemp(prefix="logalarm-lat-")
    fifo = os.path.join(tmp, "probe.fifo")
    os.mkfifo(fifo)
    reader = FifoReader(fifo)
    reader.start()
    errpath = os.path.join(tmp, "stderr.txt")
    argv = [binary, "--alarm-freq", "0", "--no-passthrough",
            "--alarm", "lat cmd:" + shell_command(fifo),
            "--log-alarm", "lat " + PROBE]
    errf = open(errpath, "wb")
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errf)
    fd = proc.stdin.fileno()

    def write_all(data):
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]

    sent = {}
    interval = int(a.interval_ms * 1e6)
    broken = None
    t_next = time.monotonic_ns() + interval
    try:
        for seq in range(a.probes):
            write_all(fillers[seq % len(fillers)])
            line = ("%s %d\r\n" % (PROBE, seq)).encode()
            t0 = time.monotonic_ns()
            write_all(line)
            sent[seq] = t0
            now = time.monotonic_ns()
            if t_next > now:
                time.sleep((t_next - now) / 1e9)
            t_next += interval
    except BrokenPipeError as e:
        broken = e
    try:
        proc.stdin.close()
    except BrokenPipeError:
        pass
    try:
        rc = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = "timeout (killed after 60 s at EOF)"
    errf.close()
    reader.wait_for(list(sent), 5)

    ref = []
    if a.reference > 0:
        ref = direct_sh_reference(reader, fifo, a.reference, base_seq=10 ** 9)
    reader.close()
    with open(errpath, "rb") as f:
        stderr = f.read().decode("utf-8", "replace").splitlines()

    with reader.lock:
        received = dict(reader.received)
        junk = list(reader.junk)
    lat = sorted((received[s] - t) / 1e6 for s, t in sent.items() if s >= a.warmup and s in received)
    missing = [s for s in sent if s not in received]
    measured = len([s for s in sent if s >= a.warmup])

    def fmt(v):
        return "%.2f" % v

    lines = []
    lines.append("# logalarm line-to-action latency")
    lines.append("")
    lines.append("`logalarm --alarm-freq 0 --no-passthrough --alarm %s --log-alarm %s`"
                 % (shlex.quote("lat cmd:" + shell_command("FIFO")), shlex.quote("lat " + PROBE)))
    lines.append("")
    lines.append("%d probes every %g ms (first %d not counted), each after %d mutated Loghub filler lines; "
                 "latency = FIFO receipt − probe write, `time.monotonic_ns()` on one machine. "
                 "**The figure includes /bin/sh start-up** (the cmd action forks and execs `/bin/sh -c`)."
                 % (a.probes, a.interval_ms, a.warmup, a.filler_lines))
    lines.append("")
    lines.append("| | probes | p50 ms | p90 ms | p99 ms | max ms |")
    lines.append("|---|---:|---:|---:|---:|---:|")
    lines.append("| logalarm (line → cmd action) | %d/%d | %s | %s | %s | %s |" % (
        len(lat), measured, fmt(percentile(lat, 50)), fmt(percentile(lat, 90)), fmt(percentile(lat, 99)),
        fmt(lat[-1]) if lat else "nan"))
    if ref:
        lines.append("| reference: same /bin/sh command spawned by the Python harness | %d/%d | %s | %s | %s | %s |" % (
            len(ref), a.reference, fmt(percentile(ref, 50)), fmt(percentile(ref, 90)), fmt(percentile(ref, 99)), fmt(ref[-1])))
    lines.append("")
    lines.append("Machine: %d cores; %s" % (os.cpu_count() or 0, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())))
    problems = []
    if rc != 0:
        problems.append("logalarm exit status: %s" % rc)
    if broken:
        problems.append("logalarm closed its stdin early (%s)" % broken)
    if missing:
        problems.append("%d probe(s) never reached the FIFO, e.g. seq %s" % (len(missing), missing[:10]))
    if junk:
        problems.append("unexpected FIFO lines: %r" % junk[:3])
    if problems:
        lines.append("")
        lines.append("Problems:")
        lines.extend("- " + p for p in problems)
        if stderr:
            lines.append("- logalarm stderr (first lines): `%s`" % " / ".join(stderr[:5]))
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        f.write(text)
    try:
        os.unlink(fifo)
        os.unlink(errpath)
        os.rmdir(tmp)
    except OSError:
        pass
    sys.exit(0 if not problems and lat else 1)


if __name__ == "__main__":
    main()
