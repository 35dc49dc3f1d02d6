"""Real local receivers for alerts: an HTTP endpoint that keeps each JSON body, and a small SMTP server
(the protocol's plain subset: HELO/EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) that keeps each message."""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from engine.web.serve import free_port


@dataclass
class WebhookReceiver:
    url: str
    bodies: list[dict[str, Any]] = field(default_factory=list)
    #: Answer this many requests with 500 before taking any.
    fail_next: int = 0
    refused: int = 0


@contextmanager
def webhook_receiver() -> Iterator[WebhookReceiver]:
    port = free_port()
    receiver = WebhookReceiver(f"http://127.0.0.1:{port}/hooks/alerts")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                failing = receiver.fail_next > 0
                if failing:
                    receiver.fail_next -= 1
                    receiver.refused += 1
                else:
                    receiver.bodies.append(json.loads(body))
            self.send_response(500 if failing else 200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            return None

    with _serving(ThreadingHTTPServer(("127.0.0.1", port), Handler)):
        yield receiver


@dataclass
class SmtpReceiver:
    host: str
    port: int
    messages: list[Message] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)


@contextmanager
def smtp_receiver() -> Iterator[SmtpReceiver]:
    port = free_port()
    receiver = SmtpReceiver("127.0.0.1", port)
    lock = threading.Lock()

    class Handler(socketserver.StreamRequestHandler):
        def reply(self, line: str) -> None:
            self.wfile.write(line.encode() + b"\r\n")

        def handle(self) -> None:
            self.reply("220 obs-test SMTP ready")
            rcpt: list[str] = []
            while line := self.rfile.readline():
                command = line.decode(errors="replace").strip()
                verb = command.split(" ", 1)[0].upper()
                if verb in ("HELO", "EHLO"):
                    self.reply("250 obs-test")
                elif verb == "MAIL":
                    rcpt = []
                    self.reply("250 OK")
                elif verb == "RCPT":
                    rcpt.append(command.split(":", 1)[1].strip(" <>"))
                    self.reply("250 OK")
                elif verb == "DATA":
                    self.reply("354 end with <CRLF>.<CRLF>")
                    data = b""
                    while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                        data += chunk[1:] if chunk.startswith(b"..") else chunk
                    with lock:
                        receiver.messages.append(message_from_bytes(data))
                        receiver.recipients.append(rcpt)
                    self.reply("250 OK queued")
                elif verb in ("RSET", "NOOP"):
                    self.reply("250 OK")
                elif verb == "QUIT":
                    self.reply("221 bye")
                    return
                else:
                    self.reply("502 not implemented")

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    with _serving(Server(("127.0.0.1", port), Handler)):
        yield receiver


@contextmanager
def _serving(server: socketserver.BaseServer) -> Iterator[None]:
    """`server` answering on a thread of its own until the block ends."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
