"""Real local receivers for delivery tests: an SMTP server (aiosmtpd) and a Slack-webhook HTTP server."""

from __future__ import annotations

import json
import socket
import threading
from collections import deque
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    """aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.recipients: list[list[str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


class SmtpServer:
    def __init__(self) -> None:
        self.inbox = Inbox()
        self.port = free_port()
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    @property
    def env(self) -> dict[str, str]:
        return {"KVWATCH_SMTP_HOST": "127.0.0.1", "KVWATCH_SMTP_PORT": str(self.port), "KVWATCH_SMTP_SECURITY": "none",
                "KVWATCH_SMTP_FROM": "kvwatch@kvwatch.test"}


class SlackReceiver:
    """Answers webhook posts (Slack, JSON webhooks, Apprise's json://) with scripted (status, body, headers)
    in turn (the last repeats); keeps the payloads, their headers and raw bodies."""

    def __init__(self, *answers: tuple[int, str, dict[str, str]], hold_from: int | None = None) -> None:
        self.answers = deque(answers or [(200, "ok", {})])
        self.posts: list[Any] = []
        self.headers: list[dict[str, str]] = []
        self.bodies: list[bytes] = []
        self.statuses: list[int] = []
        self.hold_from = hold_from  # the post number (1-based) from which answers wait for `release`
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, text, headers = receiver.answers[0] if len(receiver.answers) == 1 else receiver.answers.popleft()
                receiver.posts.append(json.loads(body))
                receiver.headers.append({k.lower(): v for k, v in self.headers.items()})
                receiver.bodies.append(body)
                receiver.statuses.append(status)
                if receiver.hold_from is not None and len(receiver.posts) >= receiver.hold_from:
                    receiver.release.wait(30)  # a stalled Slack: the client waits for its answer
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text.encode())

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/services/T000/B000/XXXX"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> SlackReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def ok_posts(self) -> list[dict[str, Any]]:
        return [p for p, s in zip(self.posts, self.statuses) if s == 200]
