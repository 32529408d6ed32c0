"""An OpenAI-compatible upstream that fails on purpose, for the soak (``soak.py``).

    python tests/soak/faulty_upstream.py --port 8101 --name u1 --seed 1 --fault-rate 0.2

It answers ``POST /v1/chat/completions`` like an OpenAI-compatible host (the wire format of
``tests/fakes/openai_api.py``: ``chat.completion`` bodies with ``usage``; ``chat.completion.chunk`` SSE events
with the usage chunk when ``stream_options.include_usage`` is set, then ``data: [DONE]``; errors as
``{"error": {message, type, param, code}}`` with ``x-request-id`` and, on 429, ``retry-after``). A seeded share
of requests (``--fault-rate``) fails instead, each in one of these ways, chosen uniformly among those that apply:

* ``rate_limit``: 429 with ``retry-after: 1``; ``server``: 500; ``overloaded``: 503;
* ``timeout``: reads the request and says nothing for ``--stall-s`` seconds;
* ``reset``: closes the connection with a TCP reset instead of answering;
* ``malformed``: 200 with a JSON body cut in half (a stream: an SSE event whose data is not JSON);
* streams only: ``stream_stall`` (a few chunks, then silence) and ``stream_break`` (a few chunks, then a reset).

``POST /_soak/outage?seconds=S`` makes every request answer 503 for S seconds (an outage the circuit breakers
should see). ``GET /_soak/stats`` returns what it did, in JSON: requests, faults by kind, and what it billed
per model: prompt and completion tokens of every answer it finished, of streams cut midway (the prompt plus
the text sent before the cut, as a provider bills a generation the client did not receive in full), and apart,
of answers finished after the client had hung up (``abandoned``: billed by a provider, never seen by a client).

Tokens are counted as OpenAI counts them (``o200k_base`` from the ``bpe-openai`` package; 3 tokens per message
plus 3 to prime the reply); an answer never has more completion tokens than the request's ``max_tokens``.
The server is plain asyncio (HTTP/1.1 with keep-alive), so it can reset a connection or stall at any byte.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import struct
import sys
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fakes.openai_api import ERRORS

WORDS = (
    "the", "router", "picks", "a", "model", "for", "every", "prompt", "and", "runs", "it", "while", "fleet",
    "keeps", "budgets", "exact", "ledgers", "whole", "under", "faults", "of", "kind", "that", "upstream",
    "hosts", "produce", "on", "bad", "day"
)  # fmt: skip

PLAIN_FAULTS = ("rate_limit", "server", "overloaded", "timeout", "reset", "malformed")
STREAM_FAULTS = (*PLAIN_FAULTS, "stream_stall", "stream_break")


class Tokens:
    """OpenAI's token count (bpe-openai's ``o200k_base``)."""

    def __init__(self) -> None:
        import bpe_openai

        self.enc = bpe_openai.get_encoding("o200k_base")

    def text(self, text: str) -> int:
        return len(self.enc.encode_ordinary(text))

    def prompt(self, messages: list[dict[str, Any]]) -> int:
        total = 3
        for m in messages:
            content = m.get("content") or ""
            if isinstance(content, list):
                content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            total += 3 + self.text(str(m.get("role", ""))) + self.text(content)
        return total


class Upstream:
    def __init__(self, name: str, seed: int, fault_rate: float, stall_s: float) -> None:
        self.name, self.rng, self.fault_rate, self.stall_s = name, random.Random(seed), fault_rate, stall_s
        self.tokens = Tokens()
        self.requests = 0
        self.faults: Counter[str] = Counter()
        self.billed: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # model -> [prompt, completion, answers]
        self.cut: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # streams reset midway, billed as sent
        self.stalled: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # streams gone silent, billed as sent
        self.abandoned: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # answered after the client left
        self.down_until = 0.0
        self.outages = 0

    def stats(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "requests": self.requests,
            "faults": dict(self.faults),
            "outages": self.outages,
            "billed": {m: dict(zip(("prompt", "completion", "answers"), v)) for m, v in self.billed.items()},
            "cut": {m: dict(zip(("prompt", "completion", "streams"), v)) for m, v in self.cut.items()},
            "stalled": {m: dict(zip(("prompt", "completion", "streams"), v)) for m, v in self.stalled.items()},
            "abandoned": {m: dict(zip(("prompt", "completion", "answers"), v)) for m, v in self.abandoned.items()},
        }

    # -- one connection -------------------------------------------------------------------------------

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await read_request(reader)
                if request is None:
                    return
                method, target, headers, body = request
                keep = await self.dispatch(method, target, body, writer, reader)
                if not keep or headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            return
        finally:
            if not writer.is_closing():
                writer.close()

    async def dispatch(
        self, method: str, target: str, body: bytes, writer: asyncio.StreamWriter, reader: asyncio.StreamReader
    ) -> bool:
        url = urlsplit(target)
        if url.path == "/_soak/stats":
            await respond(writer, 200, json.dumps(self.stats()).encode())
            return True
        if url.path == "/_soak/outage" and method == "POST":
            seconds = float(parse_qs(url.query).get("seconds", ["5"])[0])
            self.down_until, self.outages = time.monotonic() + seconds, self.outages + 1
            await respond(writer, 200, b'{"ok": true}')
            return True
        if url.path != "/v1/chat/completions" or method != "POST":
            await respond(writer, 404, error_body("Not found", "invalid_request_error", None))
            return True
        self.requests += 1
        try:
            payload = json.loads(body)
        except ValueError:
            await respond(writer, 400, error_body("We could not parse the JSON body.", "invalid_request_error", None))
            return True
        if time.monotonic() < self.down_until:
            self.faults["outage"] += 1
            return await self.fail(writer, "overloaded")
        stream = bool(payload.get("stream"))
        if self.rng.random() < self.fault_rate:
            kind = self.rng.choice(STREAM_FAULTS if stream else PLAIN_FAULTS)
            self.faults[kind] += 1
            if kind in ERRORS:
                return await self.fail(writer, kind)
            if kind == "timeout":
                await asyncio.sleep(self.stall_s)
                return False
            if kind == "reset":
                reset(writer)
                return False
            if kind == "malformed" and not stream:
                await respond(writer, 200, b'{"id": "chatcmpl-x", "object": "chat.completion", "choices": [{"ind')
                return True
            return await self.stream(payload, writer, fault=kind)
        await asyncio.sleep(self.rng.uniform(0.002, 0.02))  # a fast host's time to first byte
        if stream:
            return await self.stream(payload, writer, fault=None)
        return await self.complete(payload, writer, gone=reader.at_eof())

    async def fail(self, writer: asyncio.StreamWriter, kind: str) -> bool:
        status, type_, code, message = ERRORS[kind]
        extra = {"retry-after": "1", "x-ratelimit-remaining-requests": "0"} if status == 429 else {}
        await respond(writer, status, error_body(message, type_, code), extra)
        return True

    def answer(self, payload: dict[str, Any]) -> tuple[str, str, int, int]:
        """The model, a text of at most ``max_tokens`` tokens, and the prompt's and the text's token counts."""
        model = str(payload.get("model", ""))
        limit = int(payload.get("max_tokens") or payload.get("max_completion_tokens") or 64)
        words = [self.rng.choice(WORDS) for _ in range(self.rng.randint(1, max(1, limit)))]
        text = " ".join(words).capitalize() + "."
        while (out := self.tokens.text(text)) > limit:
            words = words[: len(words) - 1 - (out - limit)] or ["ok"]  # "ok": one token
            text = " ".join(words)
        return model, text, self.tokens.prompt(payload.get("messages") or []), out

    async def complete(self, payload: dict[str, Any], writer: asyncio.StreamWriter, gone: bool = False) -> bool:
        """A ``chat.completion``; ``gone``: the client hung up while it was made (billed apart: a provider bills
        the generation, the client never learns its usage)."""
        model, text, prompt, out = self.answer(payload)
        body = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                 "logprobs": None, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": prompt, "completion_tokens": out, "total_tokens": prompt + out},
            "system_fingerprint": "fp_soak",
        }  # fmt: skip
        await respond(writer, 200, json.dumps(body).encode())
        bill = (self.abandoned if gone else self.billed)[model]
        bill[0], bill[1], bill[2] = bill[0] + prompt, bill[1] + out, bill[2] + 1
        return True

    async def stream(self, payload: dict[str, Any], writer: asyncio.StreamWriter, fault: str | None) -> bool:
        model, text, prompt, out = self.answer(payload)
        cid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        usage_on = bool((payload.get("stream_options") or {}).get("include_usage"))

        def chunk(delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> bytes:
            data: dict[str, Any] = {
                "id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                "system_fingerprint": "fp_soak",
                "choices": [] if usage else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }  # fmt: skip
            if usage_on:
                data["usage"] = usage
            return f"data: {json.dumps(data)}\n\n".encode()

        head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ntransfer-encoding: chunked\r\n"
        writer.write(f"{head}x-request-id: req_{uuid.uuid4().hex[:24]}\r\n\r\n".encode())
        if fault == "malformed":
            await send_chunk(writer, b'data: {"id": "chatcmpl-x", "choices": [{"delta": {"content\n\n')
            await send_chunk(writer, b"")
            return True
        await send_chunk(writer, chunk({"role": "assistant", "content": "", "refusal": None}))
        parts = text.split(" ")
        parts = [p if i == 0 else " " + p for i, p in enumerate(parts)]
        cut_at = max(1, len(parts) // 2) if fault in ("stream_stall", "stream_break") else None
        sent: list[str] = []
        try:
            for i, part in enumerate(parts):
                if cut_at is not None and i == cut_at:
                    break
                await send_chunk(writer, chunk({"content": part}))
                sent.append(part)
            if cut_at is None:
                await send_chunk(writer, chunk({}, "stop"))
                if usage_on:
                    usage = {"prompt_tokens": prompt, "completion_tokens": out, "total_tokens": prompt + out}
                    await send_chunk(writer, chunk({}, usage=usage))
                await send_chunk(writer, b"data: [DONE]\n\n")
                await send_chunk(writer, b"")
                bill = self.billed[model]
                bill[0], bill[1], bill[2] = bill[0] + prompt, bill[1] + out, bill[2] + 1
                return True
        finally:
            if cut_at is not None or len(sent) < len(parts):
                cut = (self.stalled if fault == "stream_stall" else self.cut)[model]  # the prompt and what was sent
                cut[0], cut[1], cut[2] = cut[0] + prompt, cut[1] + self.tokens.text("".join(sent)), cut[2] + 1
        if fault == "stream_stall":
            await asyncio.sleep(self.stall_s)
        else:
            reset(writer)
        return False


# -- HTTP/1.1, by hand ---------------------------------------------------------------------------------


async def read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return method, target, headers, body


def error_body(message: str, type_: str, code: str | None) -> bytes:
    return json.dumps({"error": {"message": message, "type": type_, "param": None, "code": code}}).encode()


REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error",
           503: "Service Unavailable"}  # fmt: skip


async def respond(writer: asyncio.StreamWriter, status: int, body: bytes, extra: dict[str, str] | None = None) -> None:
    headers = {"content-type": "application/json", "content-length": str(len(body)),
               "x-request-id": f"req_{uuid.uuid4().hex[:24]}", **(extra or {})}  # fmt: skip
    head = f"HTTP/1.1 {status} {REASONS[status]}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    writer.write(head.encode() + b"\r\n" + body)
    await writer.drain()


async def send_chunk(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
    await writer.drain()


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a crashed host or a proxy cutting the line would."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", default="upstream")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fault-rate", type=float, default=0.2)
    parser.add_argument("--stall-s", type=float, default=10.0)
    args = parser.parse_args()
    upstream = Upstream(args.name, args.seed, args.fault_rate, args.stall_s)
    server = await asyncio.start_server(upstream.serve, "127.0.0.1", args.port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main())
