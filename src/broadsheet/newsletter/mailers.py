"""Ways a newsletter batch hands messages on: one connection per batch, errors by kind.

``SmtpMailer`` speaks SMTP itself (smtplib), so that a refusal arrives with
its reply code: 4xx is temporary and retried later, 5xx is permanent.  The
other backends (console, file, memory) go through Flask-Mailman's
connection.  Adding a backend is a class here and a line in ``mailer_for``.
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
from collections.abc import Mapping
from email.utils import parseaddr
from typing import Any, Protocol

from flask_mailman import EmailMessage

from broadsheet.extensions import mail

SMTP_TIMEOUT = 15.0


class MailError(Exception):
    """The message was not accepted; ``code`` is the SMTP reply code (None: no reply at all).

    ``unsendable``: the message itself could not be made (a header a mail library refuses,
    say); no server saw it, and trying again would fail the same way.
    """

    def __init__(self, code: int | None, reply: str, *, unsendable: bool = False) -> None:
        super().__init__(f"{code} {reply}" if code else reply)
        self.code = code
        self.reply = f"{code} {reply}" if code else reply
        self.unsendable = unsendable

    @property
    def temporary(self) -> bool:
        """4xx replies and lost connections are worth another try; 5xx replies are not."""
        if self.unsendable:
            return False
        return self.code is None or 400 <= self.code < 500

    @property
    def connection_lost(self) -> bool:
        return self.code is None and not self.unsendable


def _build(message: EmailMessage) -> bytes:
    """The message as the wire carries it, or MailError(unsendable) if it cannot be made.

    Flask-Mailman refuses a header with a newline (BadHeaderError, a ValueError), and the
    email package raises others of the same kinds for what it cannot encode.
    """
    try:
        return message.message().as_bytes(linesep="\r\n")
    except (ValueError, TypeError, LookupError) as error:  # UnicodeError is a ValueError
        raise MailError(
            None, f"the message could not be made: {type(error).__name__}: {error}", unsendable=True
        ) from None


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> None:
        """Hand one message on, or raise MailError."""

    def close(self) -> None: ...


def _text(reply: bytes | str) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


class SmtpMailer:
    """One SMTP connection, opened on the first message and reused until ``close``."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        use_tls: bool = False,
        use_ssl: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = SMTP_TIMEOUT,
    ) -> None:
        self.host, self.port = host, port
        self.use_tls, self.use_ssl = use_tls, use_ssl
        self.username, self.password = username, password
        self.timeout = timeout
        self.connection: smtplib.SMTP | None = None

    def _open(self) -> smtplib.SMTP:
        context = ssl.create_default_context()
        connection: smtplib.SMTP
        if self.use_ssl:
            connection = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=context
            )
        else:
            connection = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            if self.use_tls:
                connection.starttls(context=context)
        if self.username and self.password:
            connection.login(self.username, self.password)
        return connection

    def send(self, message: EmailMessage) -> None:
        sender = parseaddr(message.from_email)[1]
        data = _build(message)
        try:
            if self.connection is None:
                self.connection = self._open()
            self.connection.sendmail(sender, message.recipients(), data)
        except smtplib.SMTPRecipientsRefused as error:
            code, reply = next(iter(error.recipients.values()))
            raise MailError(code, _text(reply)) from None
        except smtplib.SMTPResponseException as error:
            if error.smtp_code in (421, -1):  # the server is closing the connection
                self._drop()
            raise MailError(error.smtp_code, _text(error.smtp_error)) from None
        except (smtplib.SMTPException, OSError) as error:
            self._drop()
            raise MailError(None, f"{type(error).__name__}: {error}") from None

    def _drop(self) -> None:
        if self.connection is not None:
            try:
                self.connection.close()
            finally:
                self.connection = None

    def close(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self.connection.quit()
            self._drop()


class BackendMailer:
    """Flask-Mailman's configured backend (console, file, memory), one connection a batch."""

    def __init__(self) -> None:
        self.connection: Any = None

    def send(self, message: EmailMessage) -> None:
        _build(message)  # refuse what cannot be made before the backend sees it
        if self.connection is None:
            self.connection = mail.get_connection(fail_silently=False)
            self.connection.open()
        try:
            self.connection.send_messages([message])
        except OSError as error:
            raise MailError(None, f"{type(error).__name__}: {error}") from None

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def mailer_for(config: Mapping[str, Any]) -> Mailer:
    """The mailer for the configured MAIL_BACKEND."""
    if config["MAIL_BACKEND"] == "smtp":
        return SmtpMailer(
            config["MAIL_SERVER"],
            int(config["MAIL_PORT"]),
            use_tls=bool(config["MAIL_USE_TLS"]),
            use_ssl=bool(config["MAIL_USE_SSL"]),
            username=config.get("MAIL_USERNAME"),
            password=config.get("MAIL_PASSWORD"),
        )
    return BackendMailer()
