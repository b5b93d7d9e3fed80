"""Outgoing mail: to the outbox by default, through a real SMTP server when SMTP_URL is set."""
import random
from email import message_from_bytes, policy
from email.header import decode_header, make_header

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message

from saas import mail
from saas.runtime.embedded import free_port

WORDS = "Компания в «Ромашка» ООО приглашает вас DealDocs и партнёры Строй-Монтаж 2026 — сделка".split()


def test_non_latin_subjects_arrive_unchanged(app):
    rng = random.Random(7)
    with app.app_context():
        for _ in range(300):
            subject = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 14)))
            raw = bytes(mail.build_message("ivan@example.com", subject, "Текст письма"))
            assert message_from_bytes(raw, policy=policy.default)["Subject"] == subject


def test_outbox_by_default(app, outbox):
    with app.app_context():
        mail.send(mail.build_message("ivan@example.com", "Привет", "Тело"))
    (written,) = outbox.glob("*.eml")
    message = message_from_bytes(written.read_bytes(), policy=policy.default)
    assert message["To"] == "ivan@example.com" and message.get_content().strip() == "Тело"


class _Inbox(Message):
    def __init__(self):
        super().__init__()
        self.messages = []

    def handle_message(self, message):
        self.messages.append(message)


@pytest.fixture
def smtp_server():
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


def test_smtp_when_configured(make_app, smtp_server, tmp_path):
    controller, inbox = smtp_server
    app = make_app(SMTP_URL=f"smtp://127.0.0.1:{controller.port}")
    with app.app_context():
        mail.send(mail.build_message("ivan@example.com", "Приглашение в «Ромашка»", "Ссылка"))
    assert [str(make_header(decode_header(m["Subject"]))) for m in inbox.messages] == ["Приглашение в «Ромашка»"]
    assert not (tmp_path / "outbox").exists()
