"""Outgoing mail: SMTP when SMTP_URL is set, else .eml files in the instance outbox."""
import smtplib
import ssl
import uuid
from email import policy
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from urllib.parse import unquote, urlparse

from flask import current_app


# Folding at 78 columns drops spaces next to non-ASCII words (about 1 Cyrillic subject in 10
# arrived changed); SMTP allows 998-character lines, so fold only there.
POLICY = policy.SMTP.clone(max_line_length=998)


def build_message(to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage(policy=POLICY)
    message["From"] = current_app.config["MAIL_FROM"]
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="dealdocs.local")
    message.set_content(body)
    return message


def send(message: EmailMessage) -> None:
    url = current_app.config["SMTP_URL"]
    if url:
        _send_smtp(url, message)
    else:
        outbox = Path(current_app.config["OUTBOX_DIR"])
        outbox.mkdir(parents=True, exist_ok=True)
        (outbox / f"{uuid.uuid4().hex}.eml").write_bytes(bytes(message))


def _send_smtp(url: str, message: EmailMessage) -> None:
    """smtp://user:pass@host:25 (STARTTLS when offered) or smtps://user:pass@host:465."""
    parsed = urlparse(url)
    if parsed.scheme == "smtps":
        client = smtplib.SMTP_SSL(parsed.hostname, parsed.port or 465, context=ssl.create_default_context(), timeout=30)
    else:
        client = smtplib.SMTP(parsed.hostname, parsed.port or 25, timeout=30)
    with client:
        if parsed.scheme == "smtp" and client.has_extn("starttls"):
            client.starttls(context=ssl.create_default_context())
        if parsed.username:
            client.login(unquote(parsed.username), unquote(parsed.password or ""))
        client.send_message(message)
