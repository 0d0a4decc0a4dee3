"""A local stand-in for the model hub on 127.0.0.1, with two origins as the real one has.

The hub origin answers HEAD and GET on `/{repo}/resolve/{revision}/{path}`: small files with 200, an ETag
(their git blob id) and X-Repo-Commit; large (LFS) files with a 302 to the second origin (the "CDN"),
carrying X-Repo-Commit, X-Linked-Etag (SHA-256) and X-Linked-Size. A 404 carries X-Error-Code. The file
list API (`/api/models/{repo}/revision/{rev}?blobs=true`) lists siblings with sizes and LFS hashes. The CDN
serves bytes with Range support, optionally slowly (so a test can kill a download midway). Every request
is logged. `tamper` makes the CDN send other bytes than the ones announced.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"
LFS_THRESHOLD = 2048


def git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class StandInHub:
    def __init__(self, repos: dict[str, dict[str, bytes]], *, bytes_per_second: float | None = None,
                 redirect_lfs: bool = True):
        self.repos = repos
        self.bytes_per_second = bytes_per_second
        # False: large files answered by the hub origin itself, their SHA-256 as the ETag (as some mirrors do)
        self.redirect_lfs = redirect_lfs
        self.tamper: set[str] = set()  # repo paths "owner/name/path" served with changed bytes
        self.log: list[dict] = []
        self._blobs: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._hub = ThreadingHTTPServer(("127.0.0.1", 0), self._handler(self._serve_hub))
        self._cdn = ThreadingHTTPServer(("127.0.0.1", 0), self._handler(self._serve_cdn))
        for server in (self._hub, self._cdn):
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._hub.server_address[1]}"

    @property
    def cdn(self) -> str:
        return f"http://127.0.0.1:{self._cdn.server_address[1]}"

    def close(self) -> None:
        for server in (self._hub, self._cdn):
            server.shutdown()
            server.server_close()

    def requests(self, origin: str, method: str | None = None) -> list[dict]:
        with self._lock:
            return [entry for entry in self.log if entry["origin"] == origin
                    and (method is None or entry["method"] == method)]

    def _handler(self, serve):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_HEAD(self):
                serve(self, head=True)

            def do_GET(self):
                serve(self, head=False)

        del hub
        return Handler

    def _record(self, origin: str, handler) -> None:
        with self._lock:
            self.log.append({"origin": origin, "method": handler.command, "path": handler.path,
                             "range": handler.headers.get("Range")})

    @staticmethod
    def _send(handler, status: int, headers: dict[str, str], body: bytes = b"", head: bool = False) -> None:
        handler.send_response(status)
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if not head and body:
            handler.wfile.write(body)

    def _serve_hub(self, handler, head: bool) -> None:
        self._record("hub", handler)
        path = urllib.parse.unquote(urllib.parse.urlsplit(handler.path).path)
        if path.startswith("/api/models/"):
            return self._serve_api(handler, path[len("/api/models/"):], head)
        parts = path.lstrip("/").split("/", 4)
        if len(parts) < 5 or parts[2] != "resolve":
            return self._send(handler, 404, {"X-Error-Code": "EntryNotFound"}, b"not found", head)
        repo, revision, file_path = f"{parts[0]}/{parts[1]}", parts[3], parts[4]
        files = self.repos.get(repo)
        if files is None:
            return self._send(handler, 404, {"X-Error-Code": "RepoNotFound"}, b"Repository not found", head)
        if revision not in ("main", COMMIT):
            return self._send(handler, 404, {"X-Error-Code": "RevisionNotFound"}, b"Invalid rev id", head)
        data = files.get(file_path)
        if data is None:
            return self._send(handler, 404, {"X-Error-Code": "EntryNotFound"}, b"Entry not found", head)
        if len(data) >= LFS_THRESHOLD:
            sha = hashlib.sha256(data).hexdigest()
            served = data if f"{repo}/{file_path}" not in self.tamper else bytes([data[0] ^ 0xFF]) + data[1:]
            if not self.redirect_lfs:
                return self._send(handler, 200, {"ETag": f'"{sha}"', "X-Repo-Commit": COMMIT}, served, head)
            with self._lock:
                self._blobs[sha] = served
            return self._send(handler, 302, {
                "Location": f"{self.cdn}/blobs/{sha}", "X-Repo-Commit": COMMIT, "X-Linked-Etag": f'"{sha}"',
                "X-Linked-Size": str(len(data)), "ETag": f'"{sha}"'}, b"", head)
        return self._send(handler, 200, {"ETag": f'"{git_oid(data)}"', "X-Repo-Commit": COMMIT}, data, head)

    def _serve_api(self, handler, rest: str, head: bool) -> None:
        repo, _, revision = rest.partition("/revision/")
        files = self.repos.get(repo)
        if files is None:
            return self._send(handler, 404, {"X-Error-Code": "RepoNotFound"}, b"Repository not found", head)
        siblings = []
        for name, data in files.items():
            item = {"rfilename": name, "size": len(data), "blobId": git_oid(data)}
            if len(data) >= LFS_THRESHOLD:
                item["lfs"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
            siblings.append(item)
        body = json.dumps({"id": repo, "sha": COMMIT, "siblings": siblings}).encode()
        return self._send(handler, 200, {"Content-Type": "application/json"}, body, head)

    def _serve_cdn(self, handler, head: bool) -> None:
        self._record("cdn", handler)
        sha = urllib.parse.urlsplit(handler.path).path.rpartition("/")[2]
        with self._lock:
            data = self._blobs.get(sha)
        if data is None:
            return self._send(handler, 404, {}, b"no such blob", head)
        start, status, headers = 0, 200, {}
        wanted = handler.headers.get("Range")
        if wanted and wanted.startswith("bytes="):
            start = int(wanted[len("bytes="):].split("-")[0])
            if start >= len(data):
                return self._send(handler, 416, {"Content-Range": f"bytes */{len(data)}"}, b"", head)
            status, headers = 206, {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"}
        body = data[start:]
        handler.send_response(status)
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if head:
            return
        step = 16384
        try:
            for offset in range(0, len(body), step):
                handler.wfile.write(body[offset:offset + step])
                if self.bytes_per_second:
                    handler.wfile.flush()
                    time.sleep(step / self.bytes_per_second)
        except (BrokenPipeError, ConnectionResetError):
            pass


class ForwardProxy:
    """A plain HTTP forward proxy on 127.0.0.1 (absolute-URI requests), logging what passes through it."""

    def __init__(self):
        self.seen: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _relay(self):
                import http.client

                proxy.seen.append(f"{self.command} {self.path}")
                target = urllib.parse.urlsplit(self.path)
                upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                headers = {key: value for key, value in self.headers.items()
                           if key.lower() not in ("proxy-connection", "connection")}
                upstream.request(self.command, target.path + (f"?{target.query}" if target.query else ""),
                                 headers=headers)
                response = upstream.getresponse()
                body = response.read()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                length = response.getheader("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", length or str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
                upstream.close()

            do_GET = do_HEAD = _relay

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
