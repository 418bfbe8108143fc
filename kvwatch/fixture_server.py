"""A loopback HTTP server for tests, benchmarks and `kvwatch demo`.

Serves files from a folder (ETag and Last-Modified, 304 on a matching conditional GET), answers
scripted routes (any status, body and headers; or a connection reset, a stall, a truncated body),
works as a plain forward proxy (absolute-URI requests), and logs every request it saw.
It refuses to bind anything but a loopback address.
"""

from __future__ import annotations

import hashlib
import ipaddress
import mimetypes
import socket
import struct
import threading
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

# close: no Content-Length, the body ends when the connection does; challenge: see `challenge_page`
BEHAVIOURS = ("serve", "reset", "stall", "truncate", "close", "challenge")
CHALLENGE_COOKIE = "kvw_ts"
TYPES = {".htm": "text/html", ".html": "text/html", ".pdf": "application/pdf", ".json": "application/json", ".txt": "text/plain"}


@dataclass(frozen=True)
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    behaviour: str = "serve"
    stall_seconds: float = 5.0
    solvable: bool = True  # challenge: does the script ever set the cookie the server wants?
    allow_from: tuple[str, ...] = ()  # geography by the client's source address: others get a 403 "not in your region" page


@dataclass(frozen=True)
class Seen:
    host: str
    path: str
    headers: dict[str, str]
    via_proxy: bool
    client: str = ""  # the source address the request came from


class FixtureServer:
    """`with FixtureServer(folder) as server: server.url("page.html")`."""

    def __init__(self, root: str | Path, host: str = "127.0.0.1", port: int = 0, last_modified: float = 1_760_000_000.0):
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"fixture server binds loopback addresses only, not {host!r}")
        self.root, self.last_modified = Path(root), last_modified
        self.routes: dict[str, Route | list[Route]] = {}
        self.seen: list[Seen] = []
        self.inflight: dict[str, int] = {}
        self.max_inflight: dict[str, int] = {}
        self.host_inflight: dict[str, int] = {}  # per Host header: concurrent requests now, and the most ever seen
        self.max_host_inflight: dict[str, int] = {}
        self.client_inflight: dict[str, int] = {}  # per source address: requests being answered now
        self.stop_stalls = threading.Event()
        self.lock = threading.Lock()
        self.httpd = _Server((host, port), _Handler)
        self.httpd.fixture = self  # type: ignore[attr-defined]
        self.host, self.port = self.httpd.server_address[:2]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> FixtureServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.stop_stalls.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def base(self) -> str:
        return f"http://{self.host!s}:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"

    def route(self, path: str, *routes: Route) -> None:
        """Script `path`: one route answers every request; several answer in turn (the last repeats)."""
        key = "/" + path.lstrip("/")
        with self.lock:
            if not routes:
                self.routes.pop(key, None)
            else:
                self.routes[key] = routes[0] if len(routes) == 1 else list(routes)

    def route_host(self, host: str, path: str, *routes: Route) -> None:
        """Script `path` on one host only: for a crawl that reaches real-looking hosts through this
        server as its proxy (`http_proxy`), so no name is ever resolved."""
        self.route(f"{host}/{path.lstrip('/')}", *routes)

    def requests_for(self, path: str) -> list[Seen]:
        key = "/" + path.lstrip("/")
        return [s for s in self.seen if s.path == key]

    def _answer(self, path: str) -> Route | None:
        with self.lock:
            route = self.routes.get(path)
            if isinstance(route, list):
                return route.pop(0) if len(route) > 1 else route[0]
            return route

    def _file(self, path: str) -> Route | None:
        target = (self.root / path.lstrip("/")).resolve()
        if not target.is_file() or self.root.resolve() not in target.parents:
            return None
        body = target.read_bytes()
        ctype = TYPES.get(target.suffix.lower()) or mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        return Route(200, body, {"Content-Type": ctype})


def challenge_answer(host: str) -> str:
    """The cookie value the challenge script computes for a host (a plain client cannot know it
    without running the script): a small hash of `location.host`, as the script does it. One cookie
    opens every page of the host, as on the real sites."""
    value = 7
    for char in host:
        value = (value * 31 + ord(char)) % 1_000_003
    return str(value)


def challenge_page(solvable: bool = True) -> bytes:
    """A 412 page modelled on the real anti-bot layer: no text, a script that computes a cookie and
    reloads. Unsolvable: the script "fails its environment check", never sets the cookie, and reloads anyway."""
    compute = f"""var p = location.host, v = 7;
  for (var i = 0; i < p.length; i++) {{ v = (v * 31 + p.charCodeAt(i)) % 1000003; }}
  document.cookie = '{CHALLENGE_COOKIE}=' + v + '; path=/';""" if solvable else "var $_ts = {}; /* environment check failed */"
    return f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title></title>
<script>var $_ts = window['$_ts'] || {{}}; $_ts.nsd = 41723;
  {compute}
  location.reload();
</script></head><body></body></html>""".encode()


def _cookie(header: str) -> str:
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == CHALLENGE_COOKIE:
            return value
    return ""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # resets and broken pipes are scripted here, not errors

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        if request.fileno() != -1:
            super().shutdown_request(request)


class _Handler(BaseHTTPRequestHandler):
    server_version = "fixture/1"
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: object) -> None:  # silence stderr
        pass

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        fixture: FixtureServer = self.server.fixture  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        via_proxy = bool(parts.scheme)
        path = parts.path or "/"
        host = parts.hostname if via_proxy else (self.headers.get("Host") or "")
        client = str(self.client_address[0])
        with fixture.lock:
            fixture.seen.append(Seen(str(host), path, {k.lower(): v for k, v in self.headers.items()}, via_proxy, client))
            fixture.inflight[path] = fixture.inflight.get(path, 0) + 1
            fixture.max_inflight[path] = max(fixture.max_inflight.get(path, 0), fixture.inflight[path])
            fixture.host_inflight[str(host)] = fixture.host_inflight.get(str(host), 0) + 1
            fixture.max_host_inflight[str(host)] = max(fixture.max_host_inflight.get(str(host), 0), fixture.host_inflight[str(host)])
            fixture.client_inflight[client] = fixture.client_inflight.get(client, 0) + 1
        try:
            self._serve(fixture, path, str(host or "").split(":")[0], client)
        finally:
            with fixture.lock:
                fixture.inflight[path] -= 1
                fixture.host_inflight[str(host)] -= 1
                fixture.client_inflight[client] -= 1

    def _serve(self, fixture: FixtureServer, path: str, host: str = "", client: str = "") -> None:
        route = (fixture._answer(f"/{host}{path}") if host else None) or fixture._answer(path) or fixture._file(path) \
            or Route(404, b"<html><body>404 Not Found</body></html>", {"Content-Type": "text/html"})
        if route.behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {route.behaviour!r}; valid: {', '.join(BEHAVIOURS)}")
        if route.behaviour == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()  # with SO_LINGER 0: an RST, not a FIN
            self.close_connection = True
            return
        if route.behaviour == "stall":
            fixture.stop_stalls.wait(route.stall_seconds)
        if route.allow_from and client not in route.allow_from:
            route = Route(403, "<html><body><h1>403 Forbidden</h1><p>访问受限：该页面仅对本地区开放。</p></body></html>".encode(),
                          {"Content-Type": "text/html; charset=utf-8"})
        host = self.headers.get("Host", "")
        if route.behaviour == "challenge" and _cookie(self.headers.get("Cookie", "")) != challenge_answer(host):
            route = Route(412, challenge_page(route.solvable), {"Content-Type": "text/html; charset=utf-8", "Set-Cookie": "kvw_seed=41723; Path=/"})
        self._send(fixture, route)

    def _send(self, fixture: FixtureServer, route: Route) -> None:
        etag = '"' + hashlib.sha1(route.body).hexdigest()[:16] + '"'
        if route.status == 200 and self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        self.send_response(route.status)
        headers = {"ETag": etag, "Last-Modified": formatdate(fixture.last_modified, usegmt=True), **route.headers}
        if route.behaviour != "close":
            headers["Content-Length"] = str(len(route.body) * 2 + 100 if route.behaviour == "truncate" else len(route.body))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            try:
                self.wfile.write(route.body)
            except (BrokenPipeError, ConnectionResetError):
                pass
