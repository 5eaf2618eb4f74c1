"""SMTP transport: one connection reused across a batch, replies classified by code."""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib

from bot.transports import DeliveryError


class SmtpTransport:
    def __init__(self, host: str, port: int | None, security: str, username: str | None,
                 password: str | None, timeout: float = 30.0) -> None:
        self._host = host
        self._port = port
        self._security = security
        self._username = username
        self._password = password
        self._timeout = timeout
        self._client: aiosmtplib.SMTP | None = None

    async def _connection(self) -> aiosmtplib.SMTP:
        if self._client is not None and self._client.is_connected:
            return self._client
        client = aiosmtplib.SMTP(
            hostname=self._host, port=self._port, timeout=self._timeout,
            use_tls=self._security == "tls", start_tls=self._security == "starttls",
        )
        await client.connect()
        if self._username:
            await client.login(self._username, self._password or "")
        self._client = client
        return client

    async def send(self, message: EmailMessage) -> str | None:
        try:
            client = await self._connection()
            await client.send_message(message)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refusal = exc.recipients[0]
            raise _by_code(refusal.code, refusal.message) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise _by_code(exc.code, exc.message) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            await self.close()
            raise DeliveryError(f"SMTP unreachable: {type(exc).__name__}: {exc}") from None
        return str(message["Message-ID"])

    async def idle(self) -> None:
        await self.close()

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and client.is_connected:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()


def _by_code(code: int, text: str) -> DeliveryError:
    # RFC 5321: 4yz is a transient failure, 5yz a permanent one for this recipient.
    return DeliveryError(f"SMTP {code} {text}".strip(), permanent=500 <= code < 600)
