"""Which of an agent's words reach the customer, decided from the thread's texts alone (no store)."""

from __future__ import annotations

from mailgate.mail import agent_words
from mailgate.mail.parse import parse
from mailgate.store.sent import SentMail, ThreadTexts

from ..conftest import mail

SECRET = b"0123456789abcdef0123456789abcdef"
NOTICE = SentMail(
    text="Hello Anna,\n\nA new ticket is waiting in the support queue for you.\nPrinter on fire\n",
    subject="[#1001] Printer on fire",
    from_address="support@example.test",
)


def test_no_ticket_or_no_words_leave_the_words_as_they_are() -> None:
    thread = ThreadTexts(seen=(), answered=(NOTICE,))
    assert agent_words.for_customer("Done.", None, SECRET) == agent_words.Words("Done.", False)
    assert agent_words.for_customer("", thread, SECRET) == agent_words.Words("", False)


def test_an_unmarked_copy_of_our_notification_is_cut() -> None:
    # A client whose attribution the phrase tables do not know: our mail follows as plain lines.
    words = "We sent a new one.\n\nOd: support@example.test\nA new ticket is waiting in the support queue for you.\n"
    cut = agent_words.for_customer(words, ThreadTexts(seen=(), answered=(NOTICE,)), SECRET)
    assert cut == agent_words.Words("We sent a new one.", True)


def test_quoted_customer_questions_stay_and_our_frame_goes() -> None:
    customer = "Is the printer under warranty?"
    words = f"> {customer}\nYes, two years.\n> A new ticket is waiting in the support queue for you.\nBye"
    cut = agent_words.for_customer(words, ThreadTexts(seen=(customer,), answered=(NOTICE,)), SECRET)
    assert cut.text == f"> {customer}\nYes, two years.\n>\nBye"
    assert not cut.pasted


def test_answered_ids_are_in_reply_to_and_the_last_references() -> None:
    raw = mail(headers={"In-Reply-To": "<a@x>", "References": "<r1@x> <r2@x> <r3@x> <r4@x>"})
    assert agent_words.answered_ids(parse(raw)) == ["a@x", "r2@x", "r3@x", "r4@x"]
