"""A real local S3 server for the fetch tests: moto in server mode on 127.0.0.1, a free port.

The WSGI app is moto's own; a thin middleware around it records every response (method, key,
Range header, body bytes sent) so that tests can count what crossed the wire, and can slow one
key down (``slow``) so that a fetch can be killed in the middle of a file.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from moto.server import DomainDispatcherApplication, ThreadedMotoServer, create_backend_app
from moto.server import MotoRequestHandler
from werkzeug.serving import make_server


@dataclass
class Served:
    method: str
    bucket: str
    key: str
    range: str | None
    sent: int


class QuietHandler(MotoRequestHandler):
    def log_request(self, *args, **kwargs) -> None:  # no line per request in the test output
        pass


class CountingMotoServer(ThreadedMotoServer):
    """moto's threaded server with a byte-counting, optionally throttling middleware."""

    def __init__(self):
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)
        self.log: list[Served] = []
        self.slow: dict[str, float] = {}  # key → seconds to wait per 64 KiB sent
        self._lock = threading.Lock()

    def _server_entry(self) -> None:  # moto's, with the middleware around its app
        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(self._ip_address, self._port, self._count(app), True,
                                   request_handler=QuietHandler)
        self._server_ready_event.set()
        self._server.serve_forever()

    def _count(self, app):
        def middleware(environ, start_response):
            path = unquote(environ.get("PATH_INFO", "")).lstrip("/")
            bucket, _, key = path.partition("/")
            record = Served(environ["REQUEST_METHOD"], bucket, key, environ.get("HTTP_RANGE"), 0)
            body = app(environ, start_response)
            delay = self.slow.get(key, 0.0) if record.method == "GET" else 0.0
            with self._lock:  # logged first, counted before each piece is sent: no byte reaches a client uncounted
                self.log.append(record)
            try:
                for block in body:
                    for start in range(0, len(block), 1 << 16):
                        piece = block[start:start + (1 << 16)]
                        if delay:
                            time.sleep(delay)
                        record.sent += len(piece)
                        yield piece
            finally:
                if hasattr(body, "close"):
                    body.close()
        return middleware

    @property
    def url(self) -> str:
        host, port = self.get_host_and_port()
        return f"http://{host}:{port}"

    def sent(self, bucket: str, key: str | None = None, method: str = "GET") -> int:
        """Body bytes sent for GETs of ``key`` (or of every key of ``bucket``)."""
        with self._lock:
            return sum(r.sent for r in self.log if r.method == method and r.bucket == bucket
                       and (key is None or r.key == key))

    def requests(self, bucket: str, key: str) -> list[Served]:
        with self._lock:
            return [r for r in self.log if r.bucket == bucket and r.key == key and r.method == "GET"]

    def reset(self) -> None:
        with self._lock:
            self.log.clear()


def seed(server: CountingMotoServer, bucket: str, region: str, folder: Path, prefix: str = "") -> dict[str, int]:
    """Upload every file under ``folder`` as ``prefix + relative path``, public-read; returns key → size."""
    import boto3

    client = boto3.client("s3", endpoint_url=server.url, region_name=region, aws_access_key_id="test",
                          aws_secret_access_key="test")
    config = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    client.create_bucket(Bucket=bucket, ACL="public-read", **config)
    sizes = {}
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file():
            key = prefix + path.relative_to(folder).as_posix()
            client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes(), ACL="public-read")
            sizes[key] = path.stat().st_size
    return sizes
