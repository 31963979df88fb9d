"""A fake catalog, mirror and web server for corpus tests: nothing here touches the internet."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from contextlib import contextmanager
from pathlib import Path

FAKE_TEXT = ("To be, or not to be, that is the question:\n"
             "Whether 'tis nobler in the mind to suffer\n") * 60


def closed_port_url(name: str) -> str:
    """An http URL on 127.0.0.1 where nothing listens: connections are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/{name}"


def write_catalog(path: Path, entries: dict[str, dict]) -> Path:
    lines = ["format = 1", ""]
    for name, fields in entries.items():
        lines.append(f"[corpus.{name}]")
        for key, value in fields.items():
            lines.append(f"{key} = {value!r}" if isinstance(value, int) else f'{key} = "{value}"')
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def entry_fields(data: bytes, filename: str, url: str | None = None) -> dict:
    return {"description": f"a fake corpus in {filename}", "url": url or closed_port_url(filename),
            "filename": filename, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
            "licence": "our own words"}


@contextmanager
def serve(files: dict[str, bytes], plan: list[str]):
    """A local web server. Each request takes the next step of `plan` (the last one repeats):
    "ok" serves the file, "cut" announces the full length then hangs up halfway, "500" fails."""
    requests: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            step = plan[min(len(requests), len(plan) - 1)]
            requests.append(step)
            data = files.get(self.path.lstrip("/"))
            if data is None or step == "500":
                self.send_error(404 if data is None else 500)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data if step == "ok" else data[: len(data) // 2])
            self.close_connection = True

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()
