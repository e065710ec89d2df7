# The HTTP test server: `webhook.py PORT SCRIPT [CERT KEY]` on 127.0.0.1.
# SCRIPT is a comma-separated list of answers, one per request, the last one
# repeated: `500,200`; `429:1` (a 429 with Retry-After: 1); `slow:3` (200
# after 3 s). The path /status/CODE always answers CODE. Each request is
# printed as one JSON line; "READY" once it listens.
import http.server, json, ssl, sys, threading, time

port, script = int(sys.argv[1]), sys.argv[2].split(",")
lock, count = threading.Lock(), [0]

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.startswith("/status/"):
            step = self.path[len("/status/"):]
        else:
            with lock:
                step = script[min(count[0], len(script) - 1)]
                count[0] += 1
        record = json.dumps({
            "at": time.monotonic(), "method": self.command, "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body.decode("utf-8", "replace"), "step": step,
        })
        with lock:  # one whole line per request, whatever the threads do
            sys.stdout.write(record + "\n")
            sys.stdout.flush()
        parts = step.split(":")
        if parts[0] == "slow":
            time.sleep(float(parts[1]))
            parts = ["200"]
        status = int(parts[0])
        payload = b"ok" if status < 300 else b'{"error": "scripted %d"}' % status
        self.send_response(status)
        if len(parts) > 1:
            self.send_header("Retry-After", parts[1])
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_POST = do_PUT = do_PATCH = do_GET = do_DELETE = answer

    def log_message(self, *args):
        pass

class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    def handle_error(self, request, client_address):
        pass  # a client that timed out and left is part of the tests

server = Server(("127.0.0.1", port), Handler)
if len(sys.argv) > 3:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(sys.argv[3], sys.argv[4])
    server.socket = context.wrap_socket(server.socket, server_side=True)
print("READY", flush=True)
server.serve_forever()
