"""Mail that comes back after a complaint, read by bruteguard.abuse.bounce.

The samples in tests/data/abuse/mail are bounces, auto-replies and replies laid out as the
MTAs and mail programs named in their README write them. Each is parsed the way the daemon may
parse it (the email package's compat32 and default policies) and must read the same either way.
Everything in such a mail is hostile input, so every result is also checked for shape: a case
id of exactly bruteguard's form, a clean address, one bounded printable summary line.
"""

from __future__ import annotations

import base64
import email
import logging
import random
import re
import time
from email.message import EmailMessage, Message
from email.policy import Policy, compat32, default
from pathlib import Path

import pytest

from bruteguard.abuse.bounce import (
    MAX_PARTS,
    Classified,
    MailKind,
    classify,
    find_case_ids,
)
from bruteguard.abuse.contact import clean_email

DATA = Path(__file__).parent / "data" / "abuse" / "mail"
CASE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
POLICIES = [pytest.param(compat32, id="compat32"), pytest.param(default, id="default")]

P, FULL, TRANS = MailKind.DEAD_CONTACT, MailKind.MAILBOX_FULL, MailKind.TRANSIENT
REFUSED, UNKNOWN = MailKind.OUR_MAIL_REFUSED, MailKind.UNKNOWN
AUTO, HUMAN, NONE = MailKind.AUTO_REPLY, MailKind.HUMAN_REPLY, MailKind.UNRELATED

# file -> (case_id, kind, status, recipient)
SAMPLES: dict[str, tuple[str | None, MailKind, str | None, str | None]] = {
    "postfix-5.1.1-user-unknown.eml": ("20261123-a1b2c3", P, "5.1.1", "abuse@example.net"),
    "postfix-5.4.4-host-not-found.eml": (
        "20261123-a1b2c4",
        P,
        "5.4.4",
        "abuse@nonexistent.example.net",
    ),
    "postfix-5.1.2-domain-not-found.eml": ("20261123-a1b2c5", P, "5.1.2", "abuse@gone.example.com"),
    "postfix-4.4.1-given-up.eml": ("20261118-5e6f70", TRANS, "4.4.1", "abuse@example.net"),
    "postfix-delayed-4.4.1.eml": ("20261122-77aa01", TRANS, "4.4.1", "abuse@example.net"),
    "exim-dsn-5.1.1.eml": ("20261123-b4c5d6", P, "5.1.1", "abuse@example.net"),
    "exim-classic-5.1.1.eml": ("20261123-c7d8e9", P, "5.1.1", "abuse@example.net"),
    "sendmail-dsn-5.1.1.eml": ("20261124-1a2b3c", P, "5.1.1", "abuse@example.com"),
    "exchange-o365-5.1.10.eml": ("20261124-0c9d8e", P, "5.1.10", "abuse@example.net"),
    "gmail-5.2.2-mailbox-full.eml": ("20261125-f00d42", FULL, "5.2.2", "abuse-desk@example.com"),
    "qmail-5.1.1-no-mailbox.eml": ("20261123-9b8a7f", P, "5.1.1", "abuse@example.net"),
    "qmail-5.2.2-over-quota.eml": ("20261123-2c3d4e", FULL, "5.2.2", "abuse@example.net"),
    "auto-reply-sieve-vacation.eml": ("20261123-a1b2c3", AUTO, None, None),
    "auto-reply-exchange-oof.eml": ("20261124-0c9d8e", AUTO, None, None),
    "auto-reply-cpanel-autorespond.eml": ("20261126-0a0b0c", AUTO, None, None),
    "auto-reply-subject-only.eml": ("20261126-0d0e0f", AUTO, None, None),
    "ticket-ack-rt.eml": ("20261123-a1b2c3", AUTO, None, None),
    "ticket-ack-helpdesk.eml": ("20261125-5a5b5c", AUTO, None, None),
    "human-reply-rt.eml": ("20261123-a1b2c3", HUMAN, None, None),
    "human-reply-thunderbird.eml": ("20261123-a1b2c3", HUMAN, None, None),
    "human-reply-outlook-html.eml": ("20261124-0c9d8e", HUMAN, None, None),
    "unrelated-bounce-not-ours.eml": (None, NONE, "5.1.1", "customer@example.com"),
}
HOSTILE = {
    "hostile-junk-case-ids.eml": (None, NONE),
    "hostile-crlf-reply.eml": ("20261123-a1b2c3", HUMAN),
    "hostile-broken-mime.eml": ("20261123-a1b2c3", HUMAN),
    "hostile-no-boundary.eml": ("20261123-a1b2c3", HUMAN),
}


def raw(name: str) -> bytes:
    return (DATA / name).read_bytes()


def parse(data: bytes, policy: Policy = compat32) -> Message:
    return email.message_from_bytes(data, policy=policy)


def load(name: str, policy: Policy = compat32) -> Message:
    return parse(raw(name), policy)


def check_shape(result: Classified) -> None:
    """What the case file and the log may rely on, whatever the input was."""
    assert isinstance(result.kind, MailKind)
    assert result.case_id is None or CASE.match(result.case_id)
    assert (result.case_id is None) == (result.kind is MailKind.UNRELATED)
    assert result.summary and len(result.summary) <= 200 and result.summary.isprintable()
    assert not result.summary.startswith("unreadable mail"), result.summary  # no internal error
    assert len(result.text) <= 4000
    assert all(line.isprintable() for line in result.text.split("\n"))
    if result.kind not in (MailKind.HUMAN_REPLY, MailKind.AUTO_REPLY):
        assert result.text == ""
    if result.message_id is not None:
        assert len(result.message_id) <= 250 and result.message_id.isprintable()
    assert result.recipient is None or clean_email(result.recipient) == result.recipient
    assert result.status is None or re.fullmatch(r"[245]\.[0-9]{1,3}\.[0-9]{1,3}", result.status)


def test_every_sample_file_is_tested() -> None:
    assert {p.name for p in DATA.glob("*.eml")} == set(SAMPLES) | set(HOSTILE)


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample(name: str, policy: Policy) -> None:
    result = classify(load(name, policy))
    assert (result.case_id, result.kind, result.status, result.recipient) == SAMPLES[name]
    check_shape(result)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_both_policies_read_the_same(name: str) -> None:
    assert classify(load(name, compat32)) == classify(load(name, default))


@pytest.mark.parametrize(
    ("name", "summary"),
    [
        (
            "postfix-5.1.1-user-unknown.eml",
            "5.1.1 <abuse@example.net>: Recipient address rejected: User unknown in virtual "
            "mailbox table",
        ),
        (
            "postfix-5.4.4-host-not-found.eml",
            "5.4.4 <abuse@nonexistent.example.net>: Host or domain name not found. Name service "
            "error for name=nonexistent.example.net type=MX: Host not found",
        ),
        (
            "postfix-4.4.1-given-up.eml",
            "4.4.1 <abuse@example.net>: connect to mx1.example.net[192.0.2.25]:25: Connection "
            "timed out",
        ),
        (
            "exim-dsn-5.1.1.eml",
            "5.1.1 <abuse@example.net>: Recipient address rejected: User unknown in virtual "
            "mailbox table",
        ),
        (
            "exim-classic-5.1.1.eml",
            "5.1.1 <abuse@example.net>: Recipient address rejected: User unknown in local "
            "recipient table",
        ),
        (
            "qmail-5.1.1-no-mailbox.eml",
            "5.1.1 <abuse@example.net>: Sorry, no mailbox here by that name. (#5.1.1)",
        ),
        (
            "exchange-o365-5.1.10.eml",
            "5.1.10 <abuse@example.net>: RESOLVER.ADR.RecipientNotFound; Recipient "
            "abuse@example.net not found by SMTP address lookup",
        ),
    ],
)
def test_bounce_summary(name: str, summary: str) -> None:
    assert classify(load(name)).summary == summary


def test_gmail_summary_is_cut_to_one_line() -> None:
    summary = classify(load("gmail-5.2.2-mailbox-full.eml")).summary
    assert summary.startswith("5.2.2 <abuse-desk@example.com>: The recipient's inbox is out of")
    assert "552" not in summary  # the multi-line reply's repeated codes are gone
    assert len(summary) == 200 and summary.endswith("...")


@pytest.mark.parametrize(
    ("name", "message_id"),
    [
        ("postfix-5.1.1-user-unknown.eml", "<4Ch9Tl2Vb8z9sWq@mail.reports.example.org>"),
        ("human-reply-thunderbird.eml", "<5d2f7c1e-8a3b-4c6d-9e0f-1a2b3c4d5e6f@example.net>"),
        (
            "exchange-o365-5.1.10.eml",  # folded onto its own line in the file
            "<e3f1b2a4-5c6d-4e7f-8a9b-0c1d2e3f4a5b@DB9PR01MB1234.eurprd01.prod.exchangelabs.com>",
        ),
        ("qmail-5.1.1-no-mailbox.eml", None),  # qmail bounces have none
    ],
)
def test_message_id_of_the_incoming_mail(name: str, message_id: str | None) -> None:
    assert classify(load(name)).message_id == message_id


@pytest.mark.parametrize(
    ("name", "present", "absent"),
    [
        # The case can only have come from where the test says: the other places are empty.
        ("postfix-5.1.1-user-unknown.eml", "message/rfc822", ("in-reply-to", "references")),
        ("postfix-delayed-4.4.1.eml", "text/rfc822-headers", ("in-reply-to", "references")),
        ("exim-classic-5.1.1.eml", "text/plain", ("in-reply-to", "references")),
        ("qmail-5.1.1-no-mailbox.eml", "text/plain", ("in-reply-to", "references", "mime-version")),
        ("auto-reply-subject-only.eml", "text/plain", ("in-reply-to", "references")),
    ],
)
def test_each_way_of_finding_the_case(name: str, present: str, absent: tuple[str, ...]) -> None:
    message = load(name)
    assert all(message.get(header) is None for header in absent)
    assert present in {part.get_content_type() for part in message.walk()}
    assert find_case_ids(message) == [SAMPLES[name][0]]


def test_reply_text_is_the_persons_words() -> None:
    thunderbird = classify(load("human-reply-thunderbird.eml"))
    assert thunderbird.text.startswith("Hello,\n\nThanks, the machine has been shut down.")
    assert thunderbird.summary == (
        "reply from j.doe@example.net: Re: [bruteguard case 20261123-a1b2c3] login attacks "
        "from 198.51.100.7 (EXAMPLE-NET)"
    )
    outlook = classify(load("human-reply-outlook-html.eml")).text
    assert "we have suspended the customer\u2019s server (198.51.100.7) \u2013 it was" in outlook
    assert "<p>" not in outlook and "margin" not in outlook  # markup and style dropped
    assert "Gr\u00fc\u00dfe, Jan" in classify(load("auto-reply-subject-only.eml")).text
    assert "08:00\u201317:00" in classify(load("auto-reply-exchange-oof.eml")).text


def test_ticket_system_reply_by_a_person_is_not_an_auto_reply() -> None:
    """RT sends a person's answers with Precedence: bulk too; only its AutoReply is automatic."""
    human, auto = load("human-reply-rt.eml"), load("ticket-ack-rt.eml")
    assert human["Precedence"] == auto["Precedence"] == "bulk"
    assert classify(human).kind is MailKind.HUMAN_REPLY
    assert classify(auto).kind is MailKind.AUTO_REPLY


# --- case ids ----------------------------------------------------------------------------------


def report_with_case_everywhere() -> EmailMessage:
    """A bounce naming four different cases, one in each place a case id is looked for."""
    msg = EmailMessage()
    msg["From"] = "MAILER-DAEMON@mail.example.net"
    msg["To"] = "abuse-reports@reports.example.org"
    msg["Subject"] = "Undelivered: [bruteguard case 20261101-dddddd] login attacks"
    msg["In-Reply-To"] = "<bg-20261101-aaaaaa@reports.example.org>"
    msg["References"] = "<other@example.net> <bg-20261101-aaaaaa@reports.example.org>"
    msg.set_content(
        "Delivery failed.\n\n--- Below this line is a copy of the message.\n\n"
        "X-Bruteguard-Case: 20261101-cccccc\n"
    )
    original = EmailMessage()
    original["Message-ID"] = "<bg-20261101-bbbbbb@reports.example.org>"
    original["X-Bruteguard-Case"] = "20261101-bbbbbb"
    original.set_content("complaint\n")
    msg.add_attachment(original)
    return msg


def test_case_ids_in_priority_order_without_repeats() -> None:
    msg = report_with_case_everywhere()
    assert find_case_ids(msg) == [
        "20261101-aaaaaa",  # In-Reply-To / References
        "20261101-bbbbbb",  # the returned original (Message-ID and X-Bruteguard-Case: once)
        "20261101-cccccc",  # quoted original headers in the text
        "20261101-dddddd",  # Subject
    ]
    assert classify(msg).case_id == "20261101-aaaaaa"


def test_subject_words_are_not_case_ids() -> None:
    msg = EmailMessage()
    msg["Subject"] = "Re: in case you care, case closed"
    msg.set_content("hello\n")
    assert find_case_ids(msg) == []
    assert classify(msg).kind is MailKind.UNRELATED


@pytest.mark.parametrize(
    "junk",
    [
        "../../x",
        "bg-<script>",
        "20261123-a1b2c3/../../x",
        ".hidden",
        "-dash",
        "a" * 65,
        "20261123-a1b2c3\u0000",
        "20261123-a1b2c3 ; rm",
        "\uff12\uff10\uff12\uff16",  # fullwidth digits
    ],
)
def test_junk_case_ids_are_ignored_everywhere(junk: str) -> None:
    data = raw("postfix-5.1.1-user-unknown.eml").replace(
        b"20261123-a1b2c3", junk.encode("utf-8", "surrogateescape")
    )
    msg = parse(data)
    assert find_case_ids(msg) == []
    result = classify(msg)
    assert result.case_id is None and result.kind is MailKind.UNRELATED
    check_shape(result)


def test_top_level_case_header_is_not_trusted() -> None:
    """Only a returned original's X-Bruteguard-Case counts; anyone can put one on their mail."""
    msg = EmailMessage()
    msg["Subject"] = "hello"
    msg["X-Bruteguard-Case"] = "20261123-a1b2c3"
    msg.set_content("hi\n")
    assert find_case_ids(msg) == []


# --- bounces in detail -------------------------------------------------------------------------


def dsn_with(recipients: str) -> Message:
    """The Postfix 5.1.1 sample with its per-recipient fields replaced."""
    text = raw("postfix-5.1.1-user-unknown.eml").decode()
    start = text.index("Final-Recipient:")
    end = text.index("\n\n", start)
    return parse((text[:start] + recipients.strip("\n") + text[end:]).encode())


DELAYED = """Final-Recipient: rfc822; noc@example.net
Action: delayed
Status: 4.4.1
Diagnostic-Code: X-Postfix; connect to mx2.example.net[192.0.2.26]:25: Connection timed out
"""
FULL_522 = """Final-Recipient: rfc822; abuse@example.net
Action: failed
Status: 5.2.2
Diagnostic-Code: smtp; 552 5.2.2 <abuse@example.net>: Mailbox full
"""
UNKNOWN = """Final-Recipient: rfc822; security@example.net
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <security@example.net>: User unknown
"""


@pytest.mark.parametrize(
    ("blocks", "kind", "status", "recipient", "more"),
    [
        ([DELAYED, FULL_522, UNKNOWN], P, "5.1.1", "security@example.net", 2),
        ([UNKNOWN, DELAYED], P, "5.1.1", "security@example.net", 1),
        ([DELAYED, FULL_522], FULL, "5.2.2", "abuse@example.net", 1),
        ([DELAYED], TRANS, "4.4.1", "noc@example.net", 0),
    ],
)
def test_worst_recipient_wins(
    blocks: list[str], kind: MailKind, status: str, recipient: str, more: int
) -> None:
    result = classify(dsn_with("\n".join(blocks)))
    assert (result.kind, result.status, result.recipient) == (kind, status, recipient)
    if more:
        assert result.summary.endswith(f"(+{more} more recipient{'s' if more > 1 else ''})")
    else:
        assert "more recipient" not in result.summary
    check_shape(result)


@pytest.mark.parametrize(
    ("fields", "kind", "status"),
    [
        ("Action: failed\nStatus: 4.2.2\n", FULL, "4.2.2"),  # given up on a full mailbox
        ("Action: delayed\nStatus: 4.2.2\n", TRANS, "4.2.2"),  # still trying
        ("Action: failed\nStatus: 4.4.2\n", TRANS, "4.4.2"),  # lost connection: temporary
        ("Action: failed\nStatus: 5.7.1\n", REFUSED, "5.7.1"),  # policy: our mail
        (
            "Action: failed\nStatus: 5.0.0\nDiagnostic-Code: smtp; 552 quota exceeded\n",
            FULL,
            "5.0.0",
        ),
        ("Action: error\nStatus: 5.1.1\n", P, "5.1.1"),  # OpenSMTPD's non-standard action
        ("Status: 5.1.1\n", P, "5.1.1"),  # no Action: the status decides
        ("Action: failed (permanent)\nStatus: 5.1.1 (bad mailbox)\n", P, "5.1.1"),
        ("Action: delivered\nStatus: 2.0.0\n", AUTO, "2.0.0"),  # a success notice: nothing to do
    ],
)
def test_action_and_status(fields: str, kind: MailKind, status: str) -> None:
    result = classify(dsn_with("Final-Recipient: rfc822; abuse@example.net\n" + fields))
    assert (result.case_id, result.kind, result.status) == ("20261123-a1b2c3", kind, status)
    check_shape(result)


def test_recipient_that_is_not_one_clean_address_is_dropped() -> None:
    result = classify(
        dsn_with(
            "Final-Recipient: rfc822; abuse@example.net, victim@example.com\n"
            "Action: failed\nStatus: 5.1.1\n"
        )
    )
    assert (result.kind, result.status, result.recipient) == (P, "5.1.1", None)


def test_original_recipient_is_preferred_to_the_final_one() -> None:
    result = classify(
        dsn_with(
            "Final-Recipient: rfc822; noc-team@internal.example.net\n"
            "Original-Recipient: rfc822;abuse@example.net\nAction: failed\nStatus: 5.1.1\n"
        )
    )
    assert result.recipient == "abuse@example.net"


def text_bounce(sender: str, body: str, subject: str = "Returned mail") -> bytes:
    """A bounce none of flufl.bounce's detectors knows, with our complaint quoted in it."""
    complaint = raw("exim-classic-5.1.1.eml").decode().split("------ This is a copy", 1)[1]
    return (
        f"Return-Path: <>\nFrom: {sender}\nTo: abuse-reports@reports.example.org\n"
        f"Subject: {subject}\nMessage-ID: <nd-1@mail.example.net>\n\n{body}\n\n"
        f"------ This is a copy{complaint}"
    ).encode()


def test_unknown_bounce_format_from_mailer_daemon() -> None:
    body = (
        "Your message could not be delivered.\n\n"
        "  abuse@example.net: 550 5.7.1 Message rejected by local policy"
    )
    result = classify(parse(text_bounce("MAILER-DAEMON@mail.example.net", body)))
    assert (result.case_id, result.kind, result.status) == ("20261123-c7d8e9", REFUSED, "5.7.1")
    assert result.summary == "5.7.1 Message rejected by local policy"


def test_unknown_warning_format_is_transient() -> None:
    body = "This is a warning only. Delivery to abuse@example.net has been delayed; 451 4.4.1"
    result = classify(parse(text_bounce("MAILER-DAEMON@mail.example.net", body, "Warning")))
    assert (result.kind, result.status) == (TRANS, "4.4.1")


def test_postmaster_writing_as_a_person_is_a_reply() -> None:
    """From postmaster@ and a null Return-Path alone do not make a bounce (RFC 3834 replies)."""
    msg = EmailMessage()
    msg["Return-Path"] = "<>"
    msg["From"] = "postmaster@example.net"
    msg["Subject"] = "Re: [bruteguard case 20261123-a1b2c3] login attacks"
    msg["In-Reply-To"] = "<bg-20261123-a1b2c3@reports.example.org>"
    msg.set_content("Thanks, we have blocked the customer.\n")
    result = classify(msg)
    assert result.kind is MailKind.HUMAN_REPLY
    assert result.text == "Thanks, we have blocked the customer."


def test_postmaster_bounce_with_failure_words_is_a_bounce() -> None:
    body = "Delivery has failed to these recipients: abuse@example.net (mailbox unavailable)"
    result = classify(parse(text_bounce("postmaster@mail.example.net", body, "Undeliverable")))
    assert (result.kind, result.case_id) == (P, "20261123-c7d8e9")


def test_bounce_of_a_mail_that_is_not_ours_is_unrelated() -> None:
    result = classify(load("unrelated-bounce-not-ours.eml"))
    assert result.kind is MailKind.UNRELATED and result.case_id is None
    assert result.summary.startswith("bounce for a mail that is not ours: 5.1.1")
    qmail = raw("qmail-5.1.1-no-mailbox.eml")
    other = re.sub(rb"<bg-[^@]+@", b"<shop-4711@", qmail).replace(b"X-Bruteguard-Case", b"X-Other")
    other = other.replace(b"bruteguard case", b"order")
    assert classify(parse(other)).kind is MailKind.UNRELATED


def test_mail_naming_no_case_is_unrelated() -> None:
    msg = EmailMessage()
    msg["From"] = "news@example.com"
    msg["Subject"] = "Our newsletter"
    msg.set_content("Buy now.\n")
    result = classify(msg)
    assert (result.case_id, result.kind, result.text) == (None, MailKind.UNRELATED, "")
    assert result.summary == "names no case: reply from news@example.com: Our newsletter"


def test_read_receipt_is_an_automatic_answer() -> None:
    """An RFC 8098 disposition notification, as Outlook sends for "Read: ..." receipts."""
    mdn = (
        b"From: abuse@example.net\nSubject: Read: [bruteguard case 20261123-a1b2c3] attacks\n"
        b"MIME-Version: 1.0\nContent-Type: multipart/report; report-type=disposition-notification;"
        b' boundary="r"\n\n--r\nContent-Type: text/plain\n\nYour message was read on Monday.\n'
        b"--r\nContent-Type: message/disposition-notification\n\n"
        b"Reporting-UA: mail.example.net; Microsoft Exchange\n"
        b"Final-Recipient: rfc822;abuse@example.net\n"
        b"Disposition: automatic-action/MDN-sent-automatically; displayed\n\n--r--\n"
    )
    result = classify(parse(mdn))
    assert (result.case_id, result.kind) == ("20261123-a1b2c3", MailKind.AUTO_REPLY)
    assert result.summary.startswith("read receipt (displayed) from abuse@example.net")


# --- hostile input -----------------------------------------------------------------------------


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_sample(name: str, policy: Policy) -> None:
    msg = load(name, policy)
    result = classify(msg)
    assert (result.case_id, result.kind) == HOSTILE[name]
    assert find_case_ids(msg) == ([HOSTILE[name][0]] if HOSTILE[name][0] else [])
    check_shape(result)


def test_hostile_headers_stay_text() -> None:
    result = classify(load("hostile-crlf-reply.eml"))
    assert "victim@example.com" not in result.summary  # the CR/LF display name added no sender
    assert result.summary.startswith("reply from abuse@example.net: Re: case 20261123-a1b2c3")
    assert "\\x1b[2J" in result.summary and "\\u202e" in result.summary  # shown, not obeyed
    assert "\x1b" not in result.text and "\u202e" not in result.text
    assert "the machine\\x1b]0;retitled\\x07 has been" in result.text
    assert len(result.message_id or "") == 250
    junk = classify(load("hostile-junk-case-ids.eml"))
    assert junk.recipient is None and junk.status == "5.1.1"


def test_broken_mime_still_gives_what_can_be_read() -> None:
    assert classify(load("hostile-broken-mime.eml")).text.startswith("The server was cleaned.")
    assert "No boundary parameter at all" in classify(load("hostile-no-boundary.eml")).text


@pytest.mark.parametrize(
    "charset",
    [b"x-no-such-charset", b'"a\x00b"', b"utf-7", b"punycode", b"idna", b"base64", b"utf-16"],
)
def test_bad_charsets(charset: bytes, caplog: pytest.LogCaptureFixture) -> None:
    """Unknown, unsafe (quadratic) and non-text codecs: the body is still read as text."""
    caplog.set_level(logging.ERROR, logger="flufl.bounce")
    data = (
        b"From: noc@example.net\nSubject: Re: [bruteguard case 20261123-a1b2c3] attacks\n"
        b"Content-Type: text/plain; charset=" + charset + b"\nContent-Transfer-Encoding: 8bit\n\n"
        b"Done, the host is off.\n+2D8- \xff\xfe " + b"a-" * 50000 + b"\n"
    )
    for policy in (compat32, default):
        result = classify(parse(data, policy))
        assert (result.case_id, result.kind) == ("20261123-a1b2c3", MailKind.HUMAN_REPLY)
        check_shape(result)
    assert not caplog.records


def with_parts(extra: bytes) -> bytes:
    """The Thunderbird reply turned into multipart/mixed, followed by ``extra`` parts."""
    head, body = raw("human-reply-thunderbird.eml").split(b"\n\n", 1)
    head = re.sub(rb"\nContent-Type: .*\nContent-Transfer-Encoding: 8bit", b"", head)
    return (
        head + b'\nContent-Type: multipart/mixed; boundary="mix"\n\n'
        b"--mix\nContent-Type: text/plain; charset=utf-8\n\n" + body + extra + b"\n--mix--\n"
    )


def test_huge_attachments_are_bounded() -> None:
    five_mb = 5 * 1024 * 1024
    noise = base64.encodebytes(random.Random(1).randbytes(five_mb))
    data = with_parts(
        b"\n--mix\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n"
        b"Content-Disposition: attachment; filename=dump.bin\n\n" + noise + b"\n--mix\n"
        b"Content-Type: text/plain; charset=punycode\n\n" + b"a" * five_mb + b"\n--mix\n"
        b"Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n"
        + base64.encodebytes(b"Z" * five_mb)
    )
    msg = parse(data)
    started = time.monotonic()
    result = classify(msg)
    assert time.monotonic() - started < 10  # typically well under a second
    assert (result.case_id, result.kind) == ("20261123-a1b2c3", MailKind.HUMAN_REPLY)
    assert result.text.startswith("Hello,\n\nThanks, the machine has been shut down.")
    check_shape(result)


def test_parts_beyond_the_limit_are_not_read() -> None:
    def quoted_in_part(index: int) -> Message:
        parts = b"".join(
            b"\n--mix\nContent-Type: text/plain\n\n"
            + (b"X-Bruteguard-Case: 20261101-eeeeee\n" if i == index else b"filler\n")
            for i in range(MAX_PARTS + 10)
        )
        return parse(with_parts(parts))

    assert find_case_ids(quoted_in_part(5)) == ["20261123-a1b2c3", "20261101-eeeeee"]
    assert find_case_ids(quoted_in_part(MAX_PARTS + 5)) == ["20261123-a1b2c3"]


def test_deep_nesting() -> None:
    nested = b"".join(
        b'\n--%s\nContent-Type: multipart/mixed; boundary="n%d"\n'
        % (b"mix" if i == 0 else b"n%d" % i, i + 1)
        for i in range(300)
    )
    result = classify(parse(with_parts(nested + b"\n--n300\nContent-Type: text/plain\n\ndeep\n")))
    assert (result.case_id, result.kind) == ("20261123-a1b2c3", MailKind.HUMAN_REPLY)
    check_shape(result)


def test_not_a_message_at_all() -> None:
    result = classify(None)  # type: ignore[arg-type]
    assert (result.case_id, result.kind, result.text) == (None, MailKind.UNRELATED, "")
    assert result.summary.startswith("unreadable mail")
    assert find_case_ids(None) == []  # type: ignore[arg-type]


MUTATIONS = [b"\n", b"\r", b"--", b"\n\n", b":", b"<", b">", b"=?utf-8?q?", b"?=", b"=", b"\xff"]
MUTATIONS += [b"boundary=", b"Content-Type: message/delivery-status\n", b"charset=punycode"]
MUTATIONS += [b"Content-Transfer-Encoding: base64\n", b"\x00", b"multipart/", b";", b"\t"]


@pytest.mark.parametrize("seed", range(4))
def test_mangled_samples_never_break_it(seed: int, caplog: pytest.LogCaptureFixture) -> None:
    """Seeded random damage to every sample: a result of the right shape, no internal error."""
    rng = random.Random(seed)
    names = sorted(SAMPLES) + sorted(HOSTILE)
    caplog.set_level(logging.ERROR, logger="flufl.bounce")
    for _ in range(150):
        data = bytearray(raw(rng.choice(names)))
        for _ in range(rng.randint(1, 12)):
            pos, op = rng.randrange(len(data) + 1), rng.random()
            if op < 0.3:
                del data[pos : pos + rng.randint(1, 200)]
            elif op < 0.6:
                data[pos:pos] = rng.choice(MUTATIONS)
            elif op < 0.8 and pos < len(data):
                data[pos] = rng.randrange(256)
            elif data:
                data[pos:pos] = data[rng.randrange(len(data)) :][: rng.randint(1, 500)]
        for policy in (compat32, default):
            check_shape(classify(parse(bytes(data), policy)))
    assert not caplog.records  # no flufl.bounce detector tripped over what it was given
