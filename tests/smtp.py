"""A real SMTP server on 127.0.0.1 (aiosmtpd) that records what it accepts and can refuse.

``server.refuse(address, "451 4.3.0 Try again later", times=2)`` answers RCPT
for that address with the reply, ``times`` times (forever when None).
"""

from __future__ import annotations

import asyncio
import email
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller


@dataclass
class Received:
    recipients: list[str]
    message: Message

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])


class Recorder:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.delay = 0.0
        self._refusals: dict[str, list[Any]] = {}
        self._lock = threading.Lock()
        self.port = 0

    def refuse(self, address: str, reply: str, times: int | None = None) -> None:
        self._refusals[address.lower()] = [reply, times]

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        with self._lock:
            rule = self._refusals.get(address.lower())
            if rule is not None and (rule[1] is None or rule[1] > 0):
                if rule[1] is not None:
                    rule[1] -= 1
                return str(rule[0])
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        message = email.message_from_bytes(envelope.content)
        with self._lock:
            self.received.append(Received(list(envelope.rcpt_tos), message))
        return "250 Message accepted"

    def recipients(self) -> Counter[str]:
        """How many messages each address received."""
        with self._lock:
            return Counter(address.lower() for r in self.received for address in r.recipients)

    def count(self) -> int:
        with self._lock:
            return len(self.received)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[Recorder]:
    recorder = Recorder()
    recorder.port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=recorder.port)
    controller.start()
    try:
        yield recorder
    finally:
        controller.stop()
