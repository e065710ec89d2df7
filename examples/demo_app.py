#!/usr/bin/env python3
"""A stand-in for a real service: prints ordinary log lines and, now and then,
the marker lines the example alarms watch for. Pipe it into logalarm:

    python3 examples/demo_app.py | logalarm -c examples/alarms.ini
"""
import sys
import time

LINES = [
    "INFO worker 1 started (pid 4242)",
    "INFO GET /health 200 0.8ms",
    "DEBUG cache warmed: 1024 keys",
    "TERRIBLE ALARM the world exploded !!!",
    "INFO GET /api/orders 200 12.1ms",
    "WARN slow query: 1520ms SELECT * FROM orders",
    "*** HARAKIRI ON WORKER 3 (pid: 4245, try: 1) ***",
    "DEBUG HARAKIRI ON WORKER 9 drill (no alarm: DEBUG lines never alarm)",
    "INFO GET /api/orders 200 11.7ms",
    "TERRIBLE ALARM the world exploded !!!",
    "ERROR uWSGI listen queue of socket 127.0.0.1:3031 (fd: 3) full !!! (101/100)",
    "INFO shutting down",
]

for line in LINES:
    print(line, flush=True)
    time.sleep(0.05)
sys.exit(0)
