"""A real SMTP server (aiosmtpd) for tests: it records what it receives, tests read the tokens."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller

from tests.processes import free_port

_TOKEN_PATTERNS = (re.compile(r"token=([A-Za-z0-9_-]{20,})"), re.compile(r"Your code: (\S+)"))


class Mailbox:
    """The aiosmtpd handler: every message accepted, kept parsed, in arrival order."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse_next = 0
        self._arrived = threading.Condition()

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd API)
        if self.refuse_next:
            self.refuse_next -= 1
            return "451 4.3.0 Try again later"
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self._arrived:
            self.messages.append(message)
            self._arrived.notify_all()
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]

    def wait_for(self, address: str, count: int = 1, deadline_s: float = 15.0) -> EmailMessage:
        """The `count`-th message to `address`, waiting for it with a deadline (no sleeps)."""
        give_up_at = time.monotonic() + deadline_s
        with self._arrived:
            while len(self.to(address)) < count:
                remaining = give_up_at - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no message #{count} for {address} within {deadline_s} s")
                self._arrived.wait(remaining)
            return self.to(address)[count - 1]


def text_of(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def html_of(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("html",)).get_content()


def token_in(message: EmailMessage) -> str:
    text = text_of(message)
    for pattern in _TOKEN_PATTERNS:
        match = pattern.search(text)
        if match:
            return match.group(1)
    raise AssertionError(f"no token in the message:\n{text}")


class SmtpServer:
    def __init__(self) -> None:
        self.mailbox = Mailbox()
        self.port = free_port()
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.controller.start()
    try:
        yield server
    finally:
        server.controller.stop()


@pytest.fixture
def mailbox(smtp_server: SmtpServer) -> Mailbox:
    return smtp_server.mailbox


@pytest.fixture
def smtp_app(make_app, smtp_server: SmtpServer):
    """The app sending real SMTP to the test's server, inline (no Redis)."""
    return make_app(EMAIL_BACKEND="smtp", SMTP_URL=smtp_server.url)


@pytest.fixture
def smtp_client(smtp_app):
    return smtp_app.test_client()
