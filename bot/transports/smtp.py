"""SMTP transport: a few connections kept open and reused, replies classified by code."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage

import aiosmtplib

from bot.transports import DeliveryError, Outgoing


class SmtpTransport:
    """Sends over at most `connections` SMTP sessions, each reused until the queue runs dry.

    One session is the default: one connection reused across a batch. A single
    session sends one message at a time, each waiting on the relay's replies, so a large
    digest run goes faster with two or three (`[email] connections`), if the relay allows.
    """

    def __init__(self, host: str, port: int | None, security: str, username: str | None,
                 password: str | None, timeout: float = 30.0, connections: int = 1) -> None:
        self._host = host
        self._port = port
        self._security = security
        self._username = username
        self._password = password
        self._timeout = timeout
        self._limit = connections
        self._idle: list[aiosmtplib.SMTP] = []
        self._open = 0
        self._freed: asyncio.Condition | None = None

    async def _connect(self) -> aiosmtplib.SMTP:
        client = aiosmtplib.SMTP(
            hostname=self._host, port=self._port, timeout=self._timeout,
            use_tls=self._security == "tls", start_tls=self._security == "starttls",
        )
        await client.connect()
        if self._username:
            await client.login(self._username, self._password or "")
        return client

    async def _take(self) -> aiosmtplib.SMTP:
        """An open session, a new one while under the limit, or wait for one to come back."""
        if self._freed is None:
            self._freed = asyncio.Condition()
        async with self._freed:
            while not self._idle and self._open >= self._limit:
                await self._freed.wait()
            while self._idle:
                client = self._idle.pop()
                if client.is_connected:
                    return client
                self._open -= 1  # the relay closed it while it sat idle
            self._open += 1
        try:
            return await self._connect()
        except BaseException:
            await self._give(None)
            raise

    async def _give(self, client: aiosmtplib.SMTP | None) -> None:
        """Return a session for reuse, or None for one that broke (it is closed)."""
        assert self._freed is not None
        async with self._freed:
            if client is not None and client.is_connected:
                self._idle.append(client)
            else:
                self._open -= 1
                if client is not None:
                    client.close()
            self._freed.notify()

    async def send(self, message: EmailMessage | Outgoing) -> str | None:
        try:
            client = await self._take()
        except aiosmtplib.SMTPResponseException as exc:  # e.g. 535: the login was refused
            raise _by_code(exc.code, exc.message) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise DeliveryError(f"SMTP unreachable: {type(exc).__name__}: {exc}") from None
        healthy: aiosmtplib.SMTP | None = client
        try:
            if isinstance(message, Outgoing):
                await client.sendmail(message.sender, [message.recipient], message.data)
                return message.message_id
            await client.send_message(message)
            return str(message["Message-ID"])
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refusal = exc.recipients[0]
            raise _by_code(refusal.code, refusal.message) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise _by_code(exc.code, exc.message) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            healthy = None  # the session is in an unknown state: drop it
            raise DeliveryError(f"SMTP unreachable: {type(exc).__name__}: {exc}") from None
        finally:
            await self._give(healthy)

    async def idle(self) -> None:
        await self.close()

    async def close(self) -> None:
        """QUIT every idle session (the queue ran dry, or the service stops).

        A session counts against `connections` until its QUIT is answered (the relay may
        hold it open till then): a send meanwhile waits for the slot rather than open one
        more. Cancelled mid-QUIT (the service stopping), the connection is dropped."""
        if self._freed is None:
            return
        async with self._freed:
            idle, self._idle = self._idle, []
        for client in idle:
            try:
                if client.is_connected:
                    await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                pass  # closed below all the same
            finally:
                client.close()
                await self._give(None)


def _by_code(code: int, text: str) -> DeliveryError:
    # RFC 5321: 4yz is a transient failure, 5yz a permanent one for this recipient.
    return DeliveryError(f"SMTP {code} {text}".strip(), permanent=500 <= code < 600)
