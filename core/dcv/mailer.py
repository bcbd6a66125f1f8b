"""The SMTP edge of e-mail validation: one message through the configured server
([email]), with STARTTLS or implicit TLS (the server's certificate verified against
the system's CAs or `ca_file`), authenticated when a user is set. smtplib blocks: it
runs in a worker thread under the configured deadline."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import trio

from core.base.errors import Unavailable


class MailFailed(Unavailable):
    """The validation e-mail could not be handed to the SMTP server."""

    code = "email_not_sent"
    public_message = True  # says which step failed, nothing of the server or its secrets


@dataclass(frozen=True)
class MailSettings:
    host: str
    port: int
    security: str  # "starttls", "tls", "none"
    sender: str
    user: str = ""
    password: str = ""
    ca_file: str | None = None
    timeout: float = 30.0


class Mailer:
    def __init__(self, settings: MailSettings) -> None:
        self._settings = settings
        self.sent = 0

    async def send(self, to: str, subject: str, body: str) -> str:
        """Hand the message over; its Message-ID. MailFailed when the server refused
        it or did not answer in time."""
        msg = EmailMessage()
        s = self._settings
        msg["From"] = s.sender
        msg["To"] = to
        msg["Subject"] = subject
        msg["Date"] = formatdate(usegmt=True)
        msg["Message-ID"] = make_msgid(domain=s.sender.rpartition("@")[2] or None)
        msg["Auto-Submitted"] = "auto-generated"
        msg.set_content(body)
        with trio.move_on_after(s.timeout + 1):
            await trio.to_thread.run_sync(self._deliver, msg, abandon_on_cancel=True)
            self.sent += 1
            return str(msg["Message-ID"])
        raise MailFailed("the SMTP server did not take the validation e-mail in time")

    def _deliver(self, msg: EmailMessage) -> None:
        s = self._settings
        context = ssl.create_default_context(cafile=s.ca_file)
        try:
            if s.security == "tls":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    s.host, s.port, timeout=s.timeout, context=context
                )
            else:
                smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            with smtp:
                if s.security == "starttls":
                    smtp.starttls(context=context)
                if s.user:
                    smtp.login(s.user, s.password)
                smtp.send_message(msg)
        except smtplib.SMTPAuthenticationError:
            raise MailFailed("the SMTP server refused hanko's credentials") from None
        except smtplib.SMTPRecipientsRefused:
            raise MailFailed(f"the SMTP server refused the recipient {msg['To']}") from None
        except (smtplib.SMTPException, ssl.SSLError, OSError) as exc:
            raise MailFailed(
                f"the validation e-mail could not be sent ({exc.__class__.__name__})"
            ) from None
