#!/usr/bin/env python3
"""A stand-in for a service that crashes: logs a few lines, then dies of
SIGSEGV, as a buggy C extension would. Wrap it with logalarm:

    logalarm run -c examples/run.toml -- python3 examples/crash_app.py

The first two runs crash (each fires the on-exit alarm with the last lines
they wrote, and logalarm restarts the app after 0.5 s, then 1 s); the third
exits cleanly, and so does logalarm. The run count lives in
$TMPDIR/logalarm-crash-demo.count; delete it to start over.
"""
import os
import resource
import signal
import sys
import tempfile

# No core file in the current directory.
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

count_file = os.path.join(tempfile.gettempdir(), "logalarm-crash-demo.count")
try:
    with open(count_file) as f:
        run = int(f.read() or 0) + 1
except FileNotFoundError:
    run = 1
with open(count_file, "w") as f:
    f.write(str(run))

print(f"INFO run {run} started (pid {os.getpid()})", flush=True)
print("INFO GET /api/orders 200 12.1ms", flush=True)
if run <= 2:
    print("ERROR native extension returned a dangling pointer", file=sys.stderr, flush=True)
    os.kill(os.getpid(), signal.SIGSEGV)
os.remove(count_file)
print("INFO shutting down", flush=True)
