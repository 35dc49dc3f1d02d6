"""Where alerts go: a Slack-compatible webhook (`{"text": ...}` as JSON) and e-mail over SMTP.

Both are the standard library's (urllib, smtplib): one POST and one message per alert need no client
of their own. A channel that fails raises `NotifyError`; the alert check records it and tries again at
its next run, and nothing else waits for it.
"""

from __future__ import annotations

import json
import smtplib
import urllib.error
import urllib.request
from email.message import EmailMessage
from typing import Protocol

from engine.errors import UpstreamUnavailableError
from engine.settings import Alerts, Email

WEBHOOK = "webhook"
EMAIL = "email"


class NotifyError(UpstreamUnavailableError):
    """An alert channel did not take the alert (unreachable, refused, timed out)."""


class Notifier(Protocol):
    #: The channel's name, part of each incident's key ("webhook", "email").
    channel: str

    def send(self, subject: str, text: str) -> None:
        """Deliver one alert; raises NotifyError when the channel did not take it."""
        ...


class WebhookNotifier:
    channel = WEBHOOK

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self.timeout = timeout

    def send(self, subject: str, text: str) -> None:
        body = json.dumps({"text": f"*{subject}*\n{text}"}).encode()
        request = urllib.request.Request(  # noqa: S310 - the URL is validated http(s) by the settings
            self.url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                response.read()
        except urllib.error.HTTPError as error:
            raise NotifyError("the alert webhook refused the alert", detail=f"HTTP {error.code}") from error
        except (urllib.error.URLError, OSError) as error:
            raise NotifyError("the alert webhook is unreachable", detail=str(error)) from error


class EmailNotifier:
    channel = EMAIL

    def __init__(self, settings: Email, timeout: float) -> None:
        self.settings = settings
        self.timeout = timeout

    def send(self, subject: str, text: str) -> None:
        s = self.settings
        message = EmailMessage()
        message["Subject"] = f"[ledgersync] {subject}"
        message["From"] = s.sender
        message["To"] = ", ".join(s.to)
        message.set_content(text)
        try:
            with smtplib.SMTP(s.host, s.port, timeout=self.timeout) as smtp:
                if s.starttls:
                    smtp.starttls()
                if s.username is not None:
                    password = s.password.get_secret_value() if s.password else ""
                    smtp.login(s.username, password)
                smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as error:
            raise NotifyError(
                "the alert e-mail was not sent", detail=f"{type(error).__name__}: {error}"
            ) from error


def notifiers(settings: Alerts) -> list[Notifier]:
    """The channels the `alerts:` settings configure (none: alerts are off)."""
    found: list[Notifier] = []
    if settings.webhook_url is not None:
        found.append(WebhookNotifier(settings.webhook_url, settings.timeout_seconds))
    if settings.email is not None:
        found.append(EmailNotifier(settings.email, settings.timeout_seconds))
    return found
