#!/usr/bin/env python3
"""A real SMTP server for tests/smtp.rs: aiosmtpd on 127.0.0.1, on a free port.

Prints "PORT <n>" on stdout once it listens. Every message that reaches DATA
(accepted or not) is parsed with Python's email module and written to --out as
one JSON line: envelope, the decoded headers, the text body, whether the
connection was TLS and who logged in. --mode reject5 / reject4 answer DATA with
a 554 / 451 reply instead of accepting. --silent accepts connections but never
says a word (a server hung before its greeting).
"""

import argparse
import asyncio
import email
import email.policy
import email.utils
import json
import socket
import ssl
import sys
import time

try:
    from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
except ImportError as e:  # the Rust test shows this and fails
    print(f"aiosmtpd is missing ({e}); install python3-aiosmtpd (scripts/test does)", file=sys.stderr)
    sys.exit(3)


class Recorder:
    def __init__(self, out, mode):
        self.out = out
        self.mode = mode

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        date = msg["Date"]
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": server.transport.get_extra_info("ssl_object") is not None,
            "login": session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None,
            "mechanism": getattr(session, "mechanism", None),
            "headers": {k: str(v) for k, v in msg.items()},
            "date_epoch": email.utils.parsedate_to_datetime(str(date)).timestamp() if date else None,
            "content_type": msg.get_content_type(),
            "charset": msg.get_content_charset(),
            "body": msg.get_content() if not msg.is_multipart() else None,
            "raw": raw.decode("utf-8", "replace"),
            "accepted": self.mode == "accept",
            "received": time.time(),
        }
        with open(self.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if self.mode == "reject5":
            return "554 5.7.1 Message rejected by the test server"
        if self.mode == "reject4":
            return "451 4.3.0 Try again later (test server)"
        return "250 2.0.0 Message accepted for delivery"


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user \
            and auth_data.password.decode() == password
        session.mechanism = mechanism
        if ok:
            return AuthResult(success=True, auth_data=auth_data)
        # Not handled here: aiosmtpd answers 535 itself.
        return AuthResult(success=False, handled=False)
    return check


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--mode", choices=["accept", "reject5", "reject4"], default="accept")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--starttls", action="store_true", help="offer and require STARTTLS")
    p.add_argument("--implicit", action="store_true", help="TLS from the first byte (smtps)")
    p.add_argument("--auth", help="USER:PASSWORD; AUTH then required")
    p.add_argument("--mechanism", choices=["LOGIN", "PLAIN"], help="offer only this AUTH mechanism")
    p.add_argument("--silent", action="store_true")
    p.add_argument("--port", type=int, default=0, help="listen here (default: a free port)")
    a = p.parse_args()

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    if a.silent:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        print(f"PORT {sock.getsockname()[1]}", flush=True)
        # Connections complete in the kernel's backlog; nobody ever answers.
        while True:
            time.sleep(3600)

    context = None
    if a.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(a.cert, a.key)

    kwargs = {}
    if a.auth:
        user, password = a.auth.split(":", 1)
        kwargs.update(authenticator=authenticator(user, password), auth_required=True,
                      # aiosmtpd only counts STARTTLS as TLS; plain-text AUTH is what
                      # the uWSGI docs' example does against a local relay.
                      auth_require_tls=False)
        if a.mechanism:
            kwargs["auth_exclude_mechanism"] = {"LOGIN", "PLAIN"} - {a.mechanism}
    handler = Recorder(a.out, a.mode)

    def factory():
        return SMTP(handler, hostname="test.smtp.local", loop=loop,
                    tls_context=context if a.starttls else None,
                    require_starttls=a.starttls, **kwargs)

    server = loop.run_until_complete(loop.create_server(
        factory, host="127.0.0.1", port=a.port, ssl=context if a.implicit else None))
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    loop.run_forever()


if __name__ == "__main__":
    main()
