"""A local OpenAI-compatible server that serves a toy model through the hf backend (tests only).

Routes: POST /v1/chat/completions, POST /v1/completions, GET /v1/models. Each request's `seed`
drives the seeded sampler, so the server answers exactly what the hf backend generates for the
same request. `faults` injects failures: "429", "500", "sleep:<seconds>" (one per incoming request).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tasks.generate.config import EngineConfig
from tasks.generate.hf_backend import HFBackend
from tasks.generate.requests import GenerationRequest


class StandinServer:
    def __init__(self, model_dir: str, *, api_key: str | None = None) -> None:
        self.backend = HFBackend(EngineConfig(model=str(model_dir), batch_size=8, cpu_threads=1))
        self.api_key = api_key
        self.faults: deque[str] = deque()
        self.n_requests = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> StandinServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, path: str, body: dict) -> dict:
        chat = path.endswith("/chat/completions")
        messages = body.get("messages") or []
        system = next((m["content"] for m in messages if m["role"] == "system"), None)
        user = next((m["content"] for m in messages if m["role"] == "user"), None) if chat else body["prompt"]
        k = int(body.get("top_logprobs") or 0) if chat else int(body.get("logprobs") or 0)
        req = GenerationRequest(
            request_key="standin", prompt_id="-", sample_index=0, prompt_text=user,
            temperature=float(body.get("temperature", 1.0)), top_p=float(body.get("top_p", 1.0)),
            max_tokens=int(body.get("max_tokens", 16)), seed=int(body.get("seed", 0)),
            stop=tuple(body.get("stop") or ()), system_prompt=system, logprobs_top_k=k,
        )
        with self._lock:  # one generation at a time on the shared model
            res = self.backend.generate([req], use_chat_template=chat)[0]
        tok = self.backend.tokenizer
        pieces = tok.batch_decode([[i] for i in res.token_ids], skip_special_tokens=False)
        tops = [tok.batch_decode([[i] for i in row], skip_special_tokens=False) for row in (res.top_token_ids or [])]
        usage = {"prompt_tokens": res.n_prompt_tokens, "completion_tokens": res.n_completion_tokens,
                 "total_tokens": res.n_prompt_tokens + res.n_completion_tokens}
        if chat:
            content = [
                {"token": p, "logprob": lp, "bytes": list(p.encode()),
                 "top_logprobs": [{"token": t, "logprob": v, "bytes": list(t.encode())}
                                  for t, v in zip(tops[i], res.top_logprobs[i])] if k else []}
                for i, (p, lp) in enumerate(zip(pieces, res.logprobs))
            ]
            choice = {"index": 0, "message": {"role": "assistant", "content": res.completion_text},
                      "logprobs": {"content": content}, "finish_reason": res.finish_reason}
            return {"id": "cmpl-standin", "object": "chat.completion", "model": body.get("model"),
                    "choices": [choice], "usage": usage}
        logprobs = {"tokens": pieces, "token_logprobs": res.logprobs,
                    "top_logprobs": [dict(zip(tops[i], res.top_logprobs[i])) for i in range(len(pieces))] if k else None,
                    "text_offset": [s for s in res.char_starts]}
        choice = {"index": 0, "text": res.completion_text, "logprobs": logprobs, "finish_reason": res.finish_reason}
        return {"id": "cmpl-standin", "object": "text_completion", "model": body.get("model"),
                "choices": [choice], "usage": usage}

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                return None

            def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._send(200, {"object": "list", "data": [{"id": "toy", "object": "model"}]})

            def do_POST(self) -> None:
                with server._lock:
                    server.n_requests += 1
                    fault = server.faults.popleft() if server.faults else None
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if server.api_key and self.headers.get("Authorization") != f"Bearer {server.api_key}":
                    return self._send(401, {"error": {"message": "bad api key"}})
                if fault == "429":
                    return self._send(429, {"error": {"message": "rate limited"}}, {"Retry-After": "0"})
                if fault == "500":
                    return self._send(500, {"error": {"message": "boom"}})
                if fault and fault.startswith("sleep:"):
                    time.sleep(float(fault.split(":", 1)[1]))
                if self.path not in ("/v1/chat/completions", "/v1/completions"):
                    return self._send(404, {"error": {"message": f"no route {self.path}"}})
                self._send(200, server.answer(self.path, body))

        return Handler
