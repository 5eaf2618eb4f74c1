"""Security headers for every HTML page the service serves (unsubscribe, preferences).

A pure ASGI middleware, so no page can forget them and streaming bodies stay untouched. The
pages carry tokens in their URLs: `no-referrer` keeps a token from leaking through a link's
Referer, `no-store` keeps a shared machine's cache from replaying a reader's page.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Nothing is loaded from elsewhere: styles are inline in each template; a script, when a page
# has one, is allowed by the hash of its exact text (added by `policy`).
BASE_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SCRIPT_HASHES: list[str] = []  # "'sha256-…'" of each inline script a template carries


def policy() -> str:
    """The Content-Security-Policy value, with the inline scripts the templates need."""
    if not SCRIPT_HASHES:
        return BASE_POLICY
    return f"{BASE_POLICY}; script-src {' '.join(SCRIPT_HASHES)}"


def page_headers() -> list[tuple[bytes, bytes]]:
    return [
        (b"content-security-policy", policy().encode()),
        (b"referrer-policy", b"no-referrer"),
        (b"x-content-type-options", b"nosniff"),
        (b"cache-control", b"no-store"),
    ]


class PageHeaders:
    """Adds the headers above to each response whose content type is text/html."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                kind = dict(headers).get(b"content-type", b"")
                if kind.startswith(b"text/html"):
                    added = {name for name, _ in page_headers()}
                    headers = [h for h in headers if h[0].lower() not in added]
                    headers += page_headers()
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
