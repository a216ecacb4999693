"""The bounce taxonomy (issue 17): each class from mails shaped like real ones.

The wording of each server reply is modelled on bounces in sisimai's public set-of-emails
(github.com/sisimai/set-of-emails, maildir/bsd: lhost-postfix-80 for the Spamhaus listing,
lhost-dragonfly-01 for DragonFly's ``From: MAILER-DAEMON <>`` and Gmail's DMARC refusal,
lhost-exim-32 for the missing PTR, lhost-sendmail-05 for the size limit, rfc3464-52 for
Gmail's "address not found"), and on RFC 3463 status codes; the mails are our own, written
here, none is copied from the corpus. The desk's decisions for them are in
tests/test_abuse_desk.py.
"""

from __future__ import annotations

import email
from email.message import Message
from email.policy import default

import pytest

from abusekit import postfix_bounce
from bruteguard.abuse.bounce import MailKind, classify

CASE = "20261123-a1b2c3"
ORIGINAL = (
    "From: Example Hosting <abuse-reports@reports.example.org>\n"
    "To: abuse@example.net\n"
    "Subject: [bruteguard case 20261123-a1b2c3] login attacks from 198.51.100.7\n"
    f"Message-ID: <bg-{CASE}@reports.example.org>\n\n"
    "Body.\n"
).encode()

DEAD, FULL = MailKind.DEAD_CONTACT, MailKind.MAILBOX_FULL
REFUSED, TEMP = MailKind.OUR_MAIL_REFUSED, MailKind.TRANSIENT
AUTO, UNKNOWN = MailKind.AUTO_REPLY, MailKind.UNKNOWN


def dsn(status: str, diagnostic: str) -> Message:
    raw = postfix_bounce(ORIGINAL, "abuse@example.net", status, diagnostic)
    return email.message_from_bytes(raw, policy=default)


def text_bounce(body: str, sender: str = "MAILER-DAEMON@mail.example.net") -> Message:
    """A non-DSN bounce: the server's words, then our complaint's headers quoted."""
    head = ORIGINAL.decode().partition("\n\n")[0]
    raw = (
        f"From: {sender}\nTo: abuse-reports@reports.example.org\nSubject: Mail delivery failed\n"
        f"Message-Id: <e0720@mail.example.net>\n\n{body}\n\nMessage headers follow.\n\n{head}\n"
    )
    return email.message_from_string(raw, policy=default)


@pytest.mark.parametrize(
    ("status", "diagnostic", "kind"),
    [
        ("5.1.1", "550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown", DEAD),
        (
            "5.1.10",
            "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
            DEAD,
        ),
        ("5.2.1", "550 5.2.1 The email account that you tried to reach is disabled.", DEAD),
        (
            "5.4.4",
            "Host or domain name not found. Name service error for name=gone.example.net"
            " type=A: Host not found",
            DEAD,
        ),
        ("5.2.2", "552 5.2.2 <{rcpt}>: Mailbox full", FULL),
        (
            "5.1.0",
            "550-5.1.0 MXIN506 MailFrom domain is listed in Spamhaus. To request"
            " removal from this list see https://www.spamhaus.org/query/lookup/",
            REFUSED,
        ),
        (
            "5.7.1",
            "554 5.7.1 Service unavailable; Client host [192.0.2.25] blocked using"
            " zen.spamhaus.org",
            REFUSED,
        ),
        (
            "5.7.23",
            "550 5.7.23 The message was rejected because of Sender Policy Framework violation",
            REFUSED,
        ),
        (
            "5.7.26",
            "550 5.7.26 Unauthenticated email from example.org is not accepted due to"
            " domain's DMARC policy",
            REFUSED,
        ),
        ("5.7.1", "554 5.7.1 <{rcpt}>: Relay access denied", REFUSED),
        ("5.2.3", "552 5.2.3 Message size exceeds fixed maximum message size (10485760)", REFUSED),
        ("5.0.0", "550 Message rejected as spam by Content Filtering", REFUSED),
        ("4.4.1", "connect to mx.example.net[192.0.2.30]:25: Connection timed out", TEMP),
        ("4.7.1", "450 4.7.1 <{rcpt}>: Recipient address rejected: Greylisted", TEMP),
        ("5.0.0", "550 Requested action not taken", UNKNOWN),
    ],
)
def test_delivery_status_notifications(status: str, diagnostic: str, kind: MailKind) -> None:
    result = classify(dsn(status, diagnostic))
    assert (result.case_id, result.kind) == (CASE, kind)


def test_a_failed_action_with_a_temporary_status_is_an_expiry_not_a_dead_contact() -> None:
    raw = postfix_bounce(ORIGINAL, "abuse@example.net", "5.4.7", "delivery time expired")
    raw = raw.replace(b"Status: 5.4.7", b"Status: 4.4.7")
    assert classify(email.message_from_bytes(raw, policy=default)).kind is TEMP


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ("<abuse@example.net>:\nSorry, no mailbox here by that name. (#5.1.1)", DEAD),
        (
            "<abuse@example.net>:\n192.0.2.30 does not like recipient.\nRemote host said:"
            " 571 No PTR Record found. Reverse DNS required: 192.0.2.25",
            REFUSED,
        ),
        ("  abuse@example.net\n    retry timeout exceeded", TEMP),
        (
            "<abuse@example.net>: 452 4.2.2 The email account that you tried to reach is over"
            " quota",
            FULL,
        ),
        ("Your message could not be delivered to abuse@example.net.", UNKNOWN),
        # Lotus Domino's and Mail.Ru's wording (sisimai: lhost-domino-01, lhost-mailru-05).
        (
            "was not delivered to:\n\n  abuse@example.net\n\nbecause:\n\n  User abuse"
            " (abuse@example.net) not listed in Domino Directory",
            DEAD,
        ),
        ("  abuse@example.net\n    an MX or SRV record indicated no SMTP service", DEAD),
    ],
)
def test_text_bounces(body: str, kind: MailKind) -> None:
    result = classify(text_bounce(body))
    assert (result.case_id, result.kind) == (CASE, kind)


def test_mailer_daemon_with_an_empty_address_is_a_bounce() -> None:
    """DragonFly Mail Agent writes ``From: MAILER-DAEMON <>`` and no Return-Path."""
    body = (
        "This is the DragonFly Mail Agent v0.13 at mail.example.org.\n\n"
        "There was an error delivering your mail to <abuse@example.net>.\n\n"
        "mx.example.net [192.0.2.30] did not like our final DATA:\n"
        "550-5.7.26 Unauthenticated email from example.org is not accepted due to domain's\n"
        "550 5.7.26 DMARC policy."
    )
    result = classify(text_bounce(body, sender="MAILER-DAEMON <>"))
    assert (result.case_id, result.kind, result.status) == (CASE, REFUSED, "5.7.26")


def test_a_delivery_notice_is_noted_only() -> None:
    raw = postfix_bounce(ORIGINAL, "abuse@example.net", "2.0.0", "250 2.0.0 Ok: queued")
    raw = raw.replace(b"Action: delayed", b"Action: relayed")
    assert classify(email.message_from_bytes(raw, policy=default)).kind is AUTO


def test_a_tmda_challenge_is_an_auto_reply() -> None:
    """TMDA asks the sender to confirm; it is a robot's question, not a bounce."""
    raw = (
        "Return-Path: <>\n"
        "From: abuse-confirm+1795420800.12345.abcdef@example.net\n"
        "To: abuse-reports@reports.example.org\n"
        f"Subject: Please confirm your message\n"
        f"In-Reply-To: <bg-{CASE}@reports.example.org>\n"
        "X-Delivery-Agent: TMDA/1.1.12 (Macallan)\n"
        "X-Primary-Address: abuse@example.net\n\n"
        "Your message was not delivered. This message was created automatically by mail\n"
        "delivery software (TMDA). To release your message, reply to this confirmation.\n"
    )
    result = classify(email.message_from_string(raw, policy=default))
    assert (result.case_id, result.kind) == (CASE, AUTO)


@pytest.mark.parametrize(
    ("diagnostic", "kind"),
    [
        # Given up after temporary refusals of our relay: the admin must hear of it.
        (
            "450 4.7.1 Client host rejected: cannot find your reverse hostname, [192.0.2.25]",
            REFUSED,
        ),
        ("421 4.7.0 Messages from 192.0.2.25 temporarily deferred due to poor reputation", REFUSED),
        # Given up after greylisting, or a plain timeout: only waiting was possible.
        ("450 4.7.1 <{rcpt}>: Recipient address rejected: Greylisted, see postgrey", TEMP),
        ("connect to mx.example.net[192.0.2.30]:25: Connection timed out", TEMP),
    ],
)
def test_given_up_after_temporary_failures(diagnostic: str, kind: MailKind) -> None:
    raw = postfix_bounce(ORIGINAL, "abuse@example.net", "5.4.7", diagnostic)
    raw = raw.replace(b"Status: 5.4.7", b"Status: 4.4.7")
    result = classify(email.message_from_bytes(raw, policy=default))
    assert (result.case_id, result.kind) == (CASE, kind)
