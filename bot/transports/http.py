"""A lean HTTP/1.1 client for the Slack Web API: POSTs over kept-alive asyncio streams.

aiohttp spent ~0.20 ms of CPU a call on work a JSON POST to one host does not need (its request
and response objects, header multidicts, tracing hooks); this ~0.08 ms (docs/performance.md).
It speaks only what the Web API answers: a status line, headers, and a body sized by
Content-Length, sent chunked, or ended by closing the connection. No proxies, as aiohttp's
session (trust_env off) had none. TLS for https with the system's default context.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from urllib.parse import urlsplit

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]
HEAD_LIMIT = 64 * 1024  # a status line and headers longer than this are not an answer


class Dropped(ConnectionError):
    """The connection closed before any answer (a kept-alive one the server dropped)."""


class BadAnswer(Exception):
    """What came back is not an HTTP/1.x answer."""


class HttpClient:
    """POSTs to one origin (`base_url`'s scheme, host and port), connections reused."""

    def __init__(self, base_url: str) -> None:
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self._tls = url.scheme == "https"
        self._host = url.hostname
        self._port = url.port or (443 if self._tls else 80)
        default = self._port == (443 if self._tls else 80)
        self._authority = self._host if default else f"{self._host}:{self._port}"
        self.path = url.path or "/"
        self._idle: list[Stream] = []
        self._context: ssl.SSLContext | None = None

    async def _open(self) -> Stream:
        if self._tls and self._context is None:
            self._context = ssl.create_default_context()
        return await asyncio.open_connection(self._host, self._port, ssl=self._context,
                                             limit=HEAD_LIMIT)

    async def _take(self) -> Stream:
        """A kept-alive connection the server has not closed meanwhile, or a new one."""
        while self._idle:
            reader, writer = self._idle.pop()
            if not reader.at_eof() and not writer.is_closing():
                return reader, writer
            writer.close()
        return await self._open()

    async def post(self, path: str, body: bytes, headers: Mapping[str, str]
                   ) -> tuple[int, dict[str, str], bytes]:
        """One POST: (status, headers with lower-case names, body). A connection closed
        before any answer raises `Dropped`; any failure closes the connection."""
        stream = await self._take()
        reader, writer = stream
        lines = [f"POST {path} HTTP/1.1", f"Host: {self._authority}",
                 f"Content-Length: {len(body)}",
                 *(f"{name}: {value}" for name, value in headers.items())]
        try:
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
            status_line = await reader.readline()
            if not status_line:
                raise Dropped("the connection closed before any answer")
            version, status, answer_headers = _head(status_line, await _header_lines(reader))
            raw = await _body(reader, answer_headers)
        except BaseException:  # a timeout or a cancel mid-answer too: the stream is unusable
            writer.close()
            raise
        if (version == "HTTP/1.0" or answer_headers.get("connection", "").lower() == "close"
                or ("content-length" not in answer_headers
                    and "chunked" not in answer_headers.get("transfer-encoding", "").lower())):
            writer.close()
        else:
            self._idle.append(stream)
        return status, answer_headers, raw

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for _, writer in idle:
            writer.close()


async def _header_lines(reader: asyncio.StreamReader) -> list[bytes]:
    lines: list[bytes] = []
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n"):
            return lines
        if not line:
            raise BadAnswer("the connection closed inside the headers")
        lines.append(line)
        if len(lines) > 200:
            raise BadAnswer("too many header lines")


def _head(status_line: bytes, lines: list[bytes]) -> tuple[str, int, dict[str, str]]:
    parts = status_line.decode("latin-1").split(None, 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise BadAnswer(f"not an HTTP answer: {status_line[:80]!r}")
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return parts[0], int(parts[1]), headers


async def _body(reader: asyncio.StreamReader, headers: Mapping[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks: list[bytes] = []
        while True:
            size_line = await reader.readline()
            try:
                size = int(size_line.split(b";")[0].strip(), 16)
            except ValueError:
                raise BadAnswer(f"bad chunk size: {size_line[:40]!r}") from None
            if size == 0:
                await _header_lines(reader)  # trailers, up to the blank line
                return b"".join(chunks)
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)  # the chunk's CRLF
    if "content-length" in headers:
        try:
            length = int(headers["content-length"])
        except ValueError:
            raise BadAnswer("bad Content-Length") from None
        return await reader.readexactly(length)
    return await reader.read()  # until the server closes
