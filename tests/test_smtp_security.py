"""SMTP security modes (SMTP_SECURITY) against a real server: STARTTLS and implicit TLS, with AUTH.

The client trusts a throwaway CA through SSL_CERT_FILE, which Python's default SSL context
reads: no setting exists only for tests.
"""

from __future__ import annotations

import email
import ssl
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from email import policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from bot.messages.mail import compose
from bot.messages.render import Item
from bot.settings import Settings
from bot.stories.model import Story
from bot.transports import DeliveryError
from bot.transports.smtp import SmtpTransport
from tests.conftest import story
from tests.fakes import SmtpRecorder, authenticator, free_port


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


@pytest.fixture
def trust(certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))


def message(to: str) -> email.message.EmailMessage:
    item = Item(Story.model_validate(story(title="Encrypted alert")), "why")
    return compose("alert", [item], to, Settings.model_validate({}), b"k", datetime.now(UTC))


@pytest.fixture
def starttls_server(certificate: tuple[Path, Path]) -> Iterator[tuple[SmtpRecorder, int]]:
    recorder = SmtpRecorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port(),
                            tls_context=server_context(certificate), require_starttls=True,
                            auth_required=True, authenticator=authenticator(recorder, b"s3cret"))
    controller.start()
    yield recorder, int(controller.port)
    controller.stop()


@pytest.mark.usefixtures("trust")
async def test_starttls_with_auth_delivers_encrypted(starttls_server: tuple[SmtpRecorder, int]
                                                     ) -> None:
    recorder, port = starttls_server
    transport = SmtpTransport("127.0.0.1", port, "starttls", "alertbot", "s3cret")
    await transport.send(message("a@desk.example"))
    await transport.send(message("b@desk.example"))
    await transport.close()
    assert recorder.logins == [(b"alertbot", b"s3cret")]  # one login: one connection
    assert recorder.encrypted == [True, True]
    received = email.message_from_bytes(recorder.messages[0][2], policy=policy.default)
    assert str(received["Subject"]) == "[Action item] Encrypted alert"


@pytest.mark.usefixtures("trust")
async def test_a_wrong_password_is_a_clear_permanent_error(
    starttls_server: tuple[SmtpRecorder, int],
) -> None:
    _, port = starttls_server
    transport = SmtpTransport("127.0.0.1", port, "starttls", "alertbot", "wrong")
    with pytest.raises(DeliveryError) as failure:
        await transport.send(message("a@desk.example"))
    await transport.close()
    assert failure.value.permanent and "535" in str(failure.value)
    assert "wrong" not in str(failure.value)  # the password never lands in an error


async def test_starttls_refuses_an_untrusted_certificate(
    starttls_server: tuple[SmtpRecorder, int],
) -> None:
    recorder, port = starttls_server
    transport = SmtpTransport("127.0.0.1", port, "starttls", "alertbot", "s3cret")
    with pytest.raises(DeliveryError):
        await transport.send(message("a@desk.example"))
    await transport.close()
    assert recorder.messages == []


@pytest.mark.usefixtures("trust")
async def test_implicit_tls_delivers_encrypted(certificate: tuple[Path, Path]) -> None:
    recorder = SmtpRecorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port(),
                            server_hostname="127.0.0.1", ssl_context=server_context(certificate))
    controller.start()
    try:
        transport = SmtpTransport("127.0.0.1", int(controller.port), "tls", None, None)
        await transport.send(message("a@desk.example"))
        await transport.close()
    finally:
        controller.stop()
    assert recorder.encrypted == [True]
