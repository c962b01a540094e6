"""Bounces without (or beside) an RFC 3464 report: recognised by format, and whom they name."""

from __future__ import annotations

import base64

import pytest

from mailgate.mail.bounces import bounced_recipients
from mailgate.mail.parse import parse
from mailgate.models import MailKind

RETURNED = (
    b"Return-Path: <support@help.example.com>\n"
    b"From: Support <support@help.example.com>\n"
    b"To: {rcpt}\n"
    b"Subject: [#1042] Your order\n"
    b"Message-ID: <t1042.r7@help.example.com>\n"
    b"Date: Mon, 23 Nov 2026 09:00:00 +0000\n\n"
    b"Hello, your parcel is on its way.\n"
)


def returned(rcpt: str) -> bytes:
    return RETURNED.replace(b"{rcpt}", rcpt.encode())


def ses_mail_bounce() -> bytes:
    return (
        b"Return-Path: <>\nX-SES-Outgoing: 2026.11.23-54.240.8.1\n"
        b"From: MAILER-DAEMON@email-bounces.amazonses.com\nTo: support@help.example.com\n"
        b"Subject: Delivery Status Notification (Failure)\nMessage-ID: <ses-1@email-bounces.amazonses.com>\n"
        b'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b1"\n\n--b1\n'
        b"Content-Type: text/plain; charset=UTF-8\n\n"
        b"An error occurred while trying to deliver the mail to the following recipients:\n"
        b"pat.doe@shop.example.net\n\n--b1\nContent-Type: message/rfc822\n\n"
        + returned("pat.doe@shop.example.net")
        + b"\n--b1--\n"
    )


def ses_sns(kind: str) -> bytes:
    body = (
        '{"notificationType":"KIND","bounce":{"bounceType":"Permanent","bounceSubType":"General",'
        '"bouncedRecipients":[{"emailAddress":"lee@shop.example.net","action":"failed","status":"5.1.1",'
        '"diagnosticCode":"smtp; 550 5.1.1 user unknown"}],"reportingMTA":"dsn; a1.smtp-out.example.com"},'
        '"mail":{"source":"support@help.example.com","destination":["lee@shop.example.net"]}}'
    ).replace("KIND", kind)
    return (
        b"From: AWS Notifications <no-reply@sns.example.com>\nTo: ops@help.example.com\n"
        b"Subject: AWS Notification Message\nMessage-ID: <sns-1@email.example.com>\n"
        b"x-amz-sns-message-id: 0b6d1f7e-0000-4c1e-9f00-5f5b5c0e1a11\n"
        b"Content-Type: text/plain; charset=UTF-8\n\n" + body.encode() + b"\n\n--\nIf you wish to stop receiving"
        b" notifications from this topic, please click the link below to unsubscribe.\n"
    )


def interscan(subject: bytes, sender: bytes = b'"InterScan MSS" <postmaster@gw.example.co.jp>') -> bytes:
    return (
        b"From: " + sender + b"\nTo: support@help.example.com\nSubject: " + subject + b"\n"
        b"Message-ID: <ism-7@gw.example.co.jp>\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/mixed; boundary="ism"\n\n--ism\nContent-Type: text/plain; charset=us-ascii\n\n'
        b"Sent <<< RCPT TO:<sato@corp.example.co.jp>\n"
        b"Received >>> 550 5.1.1 <sato@corp.example.co.jp>... User unknown\n\n"
        b"Unable to deliver message to <sato@corp.example.co.jp>.\n\n"
        b"--ism\nContent-type: message/rfc822\n\n" + returned("sato@corp.example.co.jp") + b"\n--ism--\n"
    )


def kddi() -> bytes:
    # au by KDDI: "Mail" as the subject, a no-reply sender, a Shift_JIS body labelled ISO-2022-JP.
    note = "メールボックスが一杯のため配信できませんでした。".encode("cp932")
    return (
        b"Return-Path: <>\nReceived: from mx01.ezweb.ne.jp (mx01.ezweb.ne.jp [192.0.2.9])\n"
        b"\tby mx.help.example.com (Postfix) with ESMTP id 4F1A2\n"
        b"From: no-reply@0123456789.dion.ne.jp\nReply-To: no-reply@app.auone-net.jp\n"
        b"To: <support@help.example.com>\nSubject: Mail\nMessage-ID: <k1@nm01.auone-net.jp>\n"
        b'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="kd"\n\n--kd\n'
        b'Content-Type: text/plain; charset="ISO-2022-JP"\nContent-Transfer-Encoding: 8bit\n\n'
        b"Your mail sent on: Mon, 23 Nov 2026 18:00:00 +0900\n"
        b"     Could not be delivered to: <hanako@ezweb.example.jp>\n"
        b"     As their mailbox is full.\n" + note + b"\n\n"
        b"--kd\nContent-Type: message/rfc822\n\n" + returned("hanako@ezweb.example.jp") + b"\n--kd--\n"
    )


def sendmail5() -> bytes:
    return (
        b"Return-Path: <>\nFrom: Mail Delivery Subsystem <MAILER-DAEMON@relay.example.org>\n"
        b"To: support@help.example.com\nSubject: Returned mail: User unknown\n"
        b"Message-Id: <9411230900.AA01234@relay.example.org>\n\n"
        b"   ----- Transcript of session follows -----\n"
        b"While talking to mx.example.org:\n>>> RCPT To:<jsmith@example.org>\n"
        b"<<< 550 <jsmith@example.org>... User unknown\n550 <jsmith@example.org>... User unknown\n\n"
        b"   ----- Unsent message follows -----\n" + returned("jsmith@example.org")
    )


def verizon_vtext() -> bytes:
    # A reply-looking subject and a post_master sender: only the format tells it apart.
    return (
        b"From: post_master@vtext.example.com\nTo: support@help.example.com\nSubject: Re:Your order\n"
        b"Message-ID: <vt1@vtext.example.com>\nContent-Type: text/plain; charset=us-ascii\n\n"
        b"Error: Invalid user address\n\nError message below:\n"
        b"550 - Requested action not taken: no such user here\n\nMessage details:\n"
        b"  Subject: [#1042] Your order\n  Sent date: Mon Nov 23 09:00:00 GMT 2026\n"
        b"  MAIL FROM: support@help.example.com\n  RCPT TO: 5551230000@vtext.example.com\n"
        b"  From: support@help.example.com\n  Size (in bytes): 812\n"
    )


def verizon_mms() -> bytes:
    return (
        b"From: MMSC NDR Administrator <sysadmin@m02.vzwpix.example.com>\nTo: support@help.example.com\n"
        b"Subject: Undeliverable Message\nMessage-ID: <mm1@vzwpix.example.com>\n"
        b"Content-Type: text/plain; charset=us-ascii\n\n"
        b"Message could not be delivered to mobile.\nError: No valid recipients for this MM\n\n\n"
        b"Original Message:\nFrom: Support <support@help.example.com>\nTo: 5559870000@vzwpix.example.com\n"
        b"Subject: [#1042] Your order\n"
    )


def dsn_with_precedence_bulk() -> bytes:
    return (
        b"Return-Path: <>\nFrom: postmaster@mx.example.net\nTo: support@help.example.com\n"
        b"Subject: Undelivered Mail Returned to Sender\nPrecedence: bulk\nAuto-Submitted: auto-replied\n"
        b"List-Id: <announce.example.net>\nMessage-ID: <dsn-b1@mx.example.net>\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="r"\n\n'
        b"--r\nContent-Type: text/plain\n\nYour message could not be delivered.\n\n"
        b"--r\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\n"
        b"Final-Recipient: rfc822; gone@example.net\nAction: failed\nStatus: 5.1.1\n\n"
        b"Final-Recipient: rfc822; ok@example.net\nAction: delivered\nStatus: 2.0.0\n\n"
        b"--r\nContent-Type: text/rfc822-headers\n\nTo: gone@example.net, ok@example.net\n"
        b"Message-ID: <t1042.r7@help.example.com>\n\n--r--\n"
    )


@pytest.mark.parametrize(
    ("raw", "recipients"),
    [
        (ses_mail_bounce(), ["pat.doe@shop.example.net"]),
        (ses_sns("Bounce"), ["lee@shop.example.net"]),
        (interscan(b"Mail could not be delivered"), ["sato@corp.example.co.jp"]),
        (
            interscan(b"=?UTF-8?B?" + base64.b64encode("メッセージを配信できません。".encode()) + b"?="),
            ["sato@corp.example.co.jp"],
        ),
        (kddi(), ["hanako@ezweb.example.jp"]),
        (sendmail5(), ["jsmith@example.org"]),
        (verizon_vtext(), ["5551230000@vtext.example.com"]),
        (verizon_mms(), ["5559870000@vzwpix.example.com"]),
        (dsn_with_precedence_bulk(), ["gone@example.net"]),
    ],
    ids=["ses", "ses-sns", "interscan", "interscan-ja", "kddi", "sendmail5", "vtext", "vzwpix", "dsn-bulk"],
)
def test_bounce_formats_read_as_bounces(raw: bytes, recipients: list[str]) -> None:
    p = parse(raw)
    assert p.kind is MailKind.BOUNCE
    assert list(bounced_recipients(raw)) == recipients


def test_kddi_note_is_read_in_its_real_charset() -> None:
    p = parse(kddi())
    assert "メールボックスが一杯のため配信できませんでした。" in p.text
    assert p.bounce_of == "t1042.r7@help.example.com"


def test_ses_complaint_is_a_notice_not_a_bounce() -> None:
    assert parse(ses_sns("Complaint")).kind is MailKind.AUTO_REPLY


def test_postfix_verify_report_is_not_a_failure() -> None:
    raw = dsn_with_precedence_bulk().replace(b"Action: failed\nStatus: 5.1.1", b"Action: deliverable\nStatus: 2.1.5")
    assert parse(raw).kind is MailKind.AUTO_REPLY
    assert bounced_recipients(raw) == ()


def test_hotmail_complaint_is_a_notice() -> None:
    raw = (
        b"From: staff@mail.example.com\nTo: abuse@help.example.com\n"
        b"Subject: complaint about message from 192.0.2.7\nMessage-ID: <c1@mail.example.com>\n"
        b'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="c"\n\n--c\n'
        b"Content-Type: text/plain\n\nThis is an email abuse report.\n\n--c\nContent-Type: message/rfc822\n\n"
        + returned("someone@mail.example.com")
        + b"\n--c--\n"
    )
    assert parse(raw).kind is MailKind.AUTO_REPLY


@pytest.mark.parametrize(
    "raw",
    [
        # A customer forwarding a bounce to ask what went wrong is a person writing.
        b"From: Pat Doe <pat@shop.example.net>\nTo: support@help.example.com\n"
        b"Subject: Fwd: Returned mail: User unknown\nMessage-ID: <p1@shop.example.net>\n\n"
        b"Hi, I got this back, can you check?\n\n   ----- Transcript of session follows -----\n"
        b"550 <jsmith@example.org>... User unknown\n",
        # A no-reply shop mail that uses the words, without any carrier's signs.
        b"From: no-reply@shop.example.net\nTo: support@help.example.com\nSubject: Mail\n"
        b"Message-ID: <p2@shop.example.net>\n\nYour parcel could not be delivered to: our depot.\n",
        # A person whose mail server is called InterScan in name only, writing normally.
        b"From: Ken <ken@interscan.example.org>\nTo: support@help.example.com\nSubject: Invoice\n"
        b"Message-ID: <p3@interscan.example.org>\n\nPlease send the invoice again.\n",
        # ... even when the subject and body talk about failed deliveries.
        b"From: Ken <ken@interscan.example.org>\nTo: support@help.example.com\n"
        b"Subject: Parcel could not be delivered\nMessage-ID: <p4@interscan.example.org>\n\n"
        b"The courier says my parcel could not be delivered. Can you send it again?\n",
        # A customer of a Japanese carrier writing from the carrier's own domain.
        b"Received: from mx02.ezweb.ne.jp (mx02.ezweb.ne.jp [192.0.2.10])\n\tby mx.help.example.com\n"
        b"From: taro@ezweb.example.jp\nTo: support@help.example.com\nSubject: Mail\n"
        b"Message-ID: <p5@ezweb.example.jp>\n\nYour mail sent on Monday arrived, thank you.\n",
    ],
    ids=["forwarded", "no-reply-words", "interscan-name", "interscan-words", "carrier-customer"],
)
def test_people_writing_about_bounces_are_messages(raw: bytes) -> None:
    assert parse(raw).kind is MailKind.MESSAGE


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # Exim, with an alias that expanded to the failing address.
        (
            b"This message was created automatically by mail delivery software.\n\nA message that you sent could"
            b" not be delivered to one or more of its recipients. This is a permanent error. The following"
            b" address(es) failed:\n\n  lee@example.org\n    SMTP error from remote mail server after RCPT"
            b" TO:<lee@example.org>:\n    550 5.1.1 User unknown\n\n------ This is a copy of the message,"
            b" including all the headers. ------\nTo: other@example.org\n",
            ["lee@example.org"],
        ),
        # Exchange 2003.
        (
            b"Your message\n\n  To:      kim@example.net\n  Subject: Order\n\ndid not reach the following"
            b" recipient(s):\n\nkim@example.net on Mon, 23 Nov 2026 09:00:00 -0000\n    The recipient name is"
            b" not recognized\n",
            ["kim@example.net"],
        ),
        # qmail, two recipients, the second on a line of its own.
        (
            b"Hi. This is the qmail-send program at mx.example.com.\nI'm afraid I wasn't able to deliver your"
            b" message to the following addresses.\nThis is a permanent error; I've given up. Sorry it didn't"
            b" work out.\n\n<a.one@example.com>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n"
            b"<b.two@example.com>:\nmailbox is full\n\n--- Below this line is a copy of the message.\n\n"
            b"To: c.three@example.com\n",
            ["a.one@example.com", "b.two@example.com"],
        ),
        # A quoted local part survives.
        (
            b'Delivery to the following recipients failed.\n\n       "Jo Bloggs"@example.org\n',
            ['"Jo Bloggs"@example.org'],
        ),
    ],
    ids=["exim", "exchange", "qmail", "quoted"],
)
def test_recipients_from_plain_text_bounces(body: bytes, expected: list[str]) -> None:
    raw = (
        b"Return-Path: <>\nFrom: MAILER-DAEMON@mx.example.com\nTo: support@help.example.com\n"
        b"Subject: failure notice\nMessage-ID: <f1@mx.example.com>\n\n" + body
    )
    assert parse(raw).kind is MailKind.BOUNCE
    assert list(bounced_recipients(raw)) == expected


@pytest.mark.parametrize("raw", [b"", b"\xff\xfe garbage", b"Content-Type: multipart/report\n\n--x\n" * 50])
def test_recipients_never_raise(raw: bytes) -> None:
    assert isinstance(bounced_recipients(raw), tuple)
