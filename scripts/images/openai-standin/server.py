#!/usr/bin/env python3
"""A stand-in for an OpenAI-compatible model server (vLLM's), for tests: no model, no GPU.

It obeys the flags ds01ctl derives as vLLM does: it listens on --host:--port and answers only
for --served-model-name (--model when unset), so a wrong derived flag fails a test. Unknown
flags are refused with vLLM's exit status (argparse: 2). Readiness is `/v1/models` listing the
served name; --ready-delay makes it answer 503 before that, --never-ready always (or the
environment's STANDIN_READY_DELAY and STANDIN_NEVER_READY=1, as a recipe's env sets them).
With VLLM_API_KEY in its environment, /v1/* answers 401 without `Authorization: Bearer <key>`,
as vLLM does.

    GET  /health               200 once listening (liveness, like vLLM's)
    GET  /v1/models            the served model, or 503 while loading
    POST /v1/chat/completions  a deterministic echo of the last user message

Standard library only: it runs on any image with python3.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="openai-standin", allow_abbrev=False)
    parser.add_argument("--model", required=True)
    parser.add_argument("--served-model-name", nargs="+", default=None)
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--tensor-parallel-size", type=int, default=1)
    parser.add_argument("--max-model-len", type=int, default=None)
    delay = float(os.environ.get("STANDIN_READY_DELAY") or 0)
    never = os.environ.get("STANDIN_NEVER_READY") == "1"
    parser.add_argument("--ready-delay", type=float, default=delay, metavar="SECONDS")
    parser.add_argument("--never-ready", action="store_true", default=never)
    return parser.parse_args(argv)


class Handler(BaseHTTPRequestHandler):
    server_version = "openai-standin/1"
    names: ClassVar[list[str]] = []
    ready_at = 0.0
    never_ready = False

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _ready(self) -> bool:
        return not self.never_ready and time.monotonic() >= self.ready_at

    def _error(self, status: int, message: str, kind: str) -> None:
        self._send(status, {"error": {"message": message, "type": kind, "code": status}})

    def _authorised(self) -> bool:
        key = os.environ.get("VLLM_API_KEY")
        if not key or self.headers.get("Authorization") == f"Bearer {key}":
            return True
        self._error(401, "Unauthorized", "AuthenticationError")
        return False

    def do_GET(self) -> None:
        if self.path.startswith("/v1/") and not self._authorised():
            return
        if self.path == "/health":
            self._send(200, {})
        elif self.path == "/v1/models":
            if not self._ready():
                self._error(503, "model is loading", "ServiceUnavailable")
                return
            models = [
                {"id": name, "object": "model", "created": 0, "owned_by": "standin"}
                for name in self.names
            ]
            self._send(200, {"object": "list", "data": models})
        else:
            self._error(404, f"no route {self.path}", "NotFoundError")

    def do_POST(self) -> None:
        if self.path.startswith("/v1/") and not self._authorised():
            return
        if self.path != "/v1/chat/completions":
            self._error(404, f"no route {self.path}", "NotFoundError")
            return
        if not self._ready():
            self._error(503, "model is loading", "ServiceUnavailable")
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
            request = json.loads(self.rfile.read(length) or b"{}")
            model = request["model"]
            messages = request["messages"]
        except (ValueError, KeyError, TypeError):
            self._error(400, "expected JSON with model and messages", "BadRequestError")
            return
        if model not in self.names:
            self._error(404, f"The model `{model}` does not exist.", "NotFoundError")
            return
        last = next(
            (m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), ""
        )
        reply = f"echo: {last}"
        self._send(
            200,
            {
                "id": "chatcmpl-standin",
                "object": "chat.completion",
                "created": 0,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": len(str(last).split()),
                    "completion_tokens": len(reply.split()),
                    "total_tokens": len(str(last).split()) + len(reply.split()),
                },
            },
        )


def main(argv: list[str]) -> int:
    args = parse(argv)
    Handler.names = args.served_model_name or [args.model]
    Handler.ready_at = time.monotonic() + args.ready_delay
    Handler.never_ready = args.never_ready
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print(
        f"serving {', '.join(Handler.names)} on http://{args.host}:{server.server_port}", flush=True
    )
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
