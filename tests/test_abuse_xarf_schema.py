"""Complaints' X-ARF reports against xarf-spec's own v4 schemas, read with jsonschema.

The schemas are not in this repository: the X-ARF project's own Python library (``xarf`` on
PyPI, in the test extra) ships xarf-spec's v4 schema files (v4.2.0 in xarf 1.0.0), and they
are read from where it is installed. Nothing is fetched at test time.
"""

from __future__ import annotations

import email
import importlib.util
import json
from datetime import UTC, datetime, timedelta
from email.message import Message
from email.policy import default
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from bruteguard.abuse.complaint import (
    Offence,
    Reporter,
    render_complaint,
    render_postmaster_notice,
    source_port_of,
)

# The X-ARF project's library ships the spec's schema files (xarf/schemas/).
SPEC = Path(importlib.util.find_spec("xarf").submodule_search_locations[0]) / "schemas"
MASTER = "xarf-v4-master.json"
LOGIN_ATTACK = "types/connection-login-attack.json"
CORE = "xarf-core.json"

A = "198.51.100.7"
B = "2001:db8::17"
CONTACT = "abuse@example.net"
REPORTER = Reporter(sender="bruteguard@example.org", org="Example Hosting B.V.")
T0 = datetime(2026, 11, 23, 9, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def validators() -> dict[str, Draft202012Validator]:
    """The master schema and the login-attack type schema, each resolving the other files
    by their ``$id`` (nothing is fetched: an unknown reference is an error)."""
    schemas = {}
    for name in (MASTER, LOGIN_ATTACK, CORE):
        path = SPEC / name
        if not path.is_file():
            pytest.fail(f"{path} is missing: the xarf package (test extra) ships it")
        schemas[name] = json.loads(path.read_text())
    registry: Registry = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in schemas.values()
    )
    return {
        name: Draft202012Validator(
            schemas[name], registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER
        )
        for name in (MASTER, LOGIN_ATTACK)
    }


def _sshd(address: str, second: int, port: int, user: str = "root") -> tuple[str, str]:
    stamp = (T0 + timedelta(hours=1, seconds=second)).strftime("%b %d %H:%M:%S")
    return (
        address,
        f"{stamp} host sshd[4{second}]: Failed password for {user} from {address} port {port} ssh2",
    )


def _complaint(lines: list[tuple[str, str]], *addresses: str, **extra: Any) -> Message:
    offences = [Offence(a, T0, T0 + timedelta(seconds=9), 3, "sshd", port=22) for a in addresses]
    built = render_complaint(
        reporter=REPORTER, contact=CONTACT, offences=offences, log_lines=lines,
        case_id="2026-0042", now=T0 + timedelta(hours=1), **extra,
    )  # fmt: skip
    return email.message_from_bytes(built.as_bytes(), policy=default)


def _reports(message: Message) -> list[dict[str, Any]]:
    return [
        json.loads(part.get_content())
        for part in message.walk()
        if part.get_content_type() == "application/json"
    ]


def _text(message: Message) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return body.get_content()


def _errors(validator: Draft202012Validator, report: dict[str, Any]) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(report)]


def test_every_report_is_valid_against_the_master_and_login_attack_schemas(
    validators: dict[str, Draft202012Validator],
) -> None:
    lines = [_sshd(A, 0, 50112), _sshd(B, 1, 40022), _sshd(A, 2, 50114)]
    reports = _reports(_complaint(lines, A, B))
    assert [r["source_identifier"] for r in reports] == [A, B]
    assert [r["source_port"] for r in reports] == [50114, 40022], "the last line's port"
    for report in reports:
        for name, validator in validators.items():
            assert _errors(validator, report) == [], name


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda r: r.pop("source_port"), id="no source_port"),
        pytest.param(lambda r: r.pop("sender"), id="no sender"),
        pytest.param(lambda r: r["reporter"].pop("domain"), id="no reporter.domain"),
        pytest.param(lambda r: r["reporter"].update(type="automated"), id="reporter.type"),
        pytest.param(lambda r: r.update({"class": r.pop("category")}), id="class, not category"),
    ],
)
def test_the_schemas_refuse_what_the_old_reports_did(
    validators: dict[str, Draft202012Validator], change: Any
) -> None:
    """The validation is real: each defect issue 17 found in the old reports is refused."""
    (report,) = _reports(_complaint([_sshd(A, 0, 50112)], A))
    change(report)
    assert _errors(validators[MASTER], report) != []
    assert _errors(validators[LOGIN_ATTACK], report) != []


def test_mail_carries_the_xarf_feedback_report_marker_not_x_xarf_plain() -> None:
    message = _complaint([_sshd(A, 0, 50112)], A)
    assert message.get_content_type() == "multipart/report"
    assert message.get_param("report-type") == "feedback-report"
    assert "X-XARF" not in message
    text, feedback, report = message.iter_parts()
    assert text.get_content_type() == "text/plain"
    assert feedback.get_content_type() == "message/feedback-report"
    fields = feedback.get_payload(0)
    assert fields["Feedback-Type"] == "xarf" and fields["Version"] == "1"
    assert fields["User-Agent"].startswith("bruteguard/")
    assert report.get_content_type() == "application/json"


def test_a_log_without_source_ports_gets_no_xarf_report_and_says_why() -> None:
    """Postfix's SASL lines carry no peer port; X-ARF v4 requires one for an address, so an
    invented or missing port would make a report parsers refuse: plain text instead."""
    line = (
        A,
        f"Nov 23 10:00:00 host postfix/smtpd[7]: warning: unknown[{A}]:"
        " SASL LOGIN authentication failed",
    )
    message = _complaint([line], A)
    assert message.get_content_type() == "text/plain"
    assert _reports(message) == []
    text = _text(message)
    assert f"No X-ARF report for {A}: the log does not record the source port" in text
    assert "X-ARF v4 report for each address is attached" not in text


def test_the_source_port_is_the_one_sshd_wrote_not_one_in_a_user_name() -> None:
    """An attacker's user name "x from A port 1" comes before sshd's own "from A port N"."""
    assert source_port_of(A, [_sshd(A, 0, 50112, user=f"x from {A} port 1")[1]]) == 50112
    assert source_port_of(A, [_sshd("203.0.113.5", 0, 50112)[1]]) is None, "another address"
    assert source_port_of(A, [f"sshd[1]: Failed password for root from {A} port 70000"]) is None


def test_text_gives_the_logs_zone_with_utc_beside_it() -> None:
    """The lines are in the server's own clock: the text says which, never "(UTC)"."""
    message = _complaint([_sshd(A, 0, 50112)], A, log_zone=ZoneInfo("America/New_York"))
    text = _text(message)
    assert "First:     2026-11-23 04:00:00 EST (UTC-05:00) = 2026-11-23T09:00:00Z" in text
    assert "Last:      2026-11-23 04:00:09 EST (UTC-05:00) = 2026-11-23T09:00:09Z" in text
    assert f"Log lines for {A} (times as logged, in EST (UTC-05:00)):" in text
    assert "(UTC)" not in text
    (report,) = _reports(message)
    assert report["evidence"][0]["description"].endswith("(times as logged, EST (UTC-05:00))")


def test_one_address_reads_it_and_an_org_ending_in_a_full_stop_gets_no_second() -> None:
    text = _text(_complaint([_sshd(A, 0, 50112)], A))
    assert "The host behind it is probably compromised" in text
    assert "behind them" not in text
    assert "for Example Hosting B.V.\n" in text and "B.V.." not in text
    notice = render_postmaster_notice(
        reporter=REPORTER, domain="example.net", broken=CONTACT, why="550 5.1.1 no such user",
        case_id="2026-0043", now=T0,
    )  # fmt: skip
    body = notice.get_body(preferencelist=("plain",))
    assert body is not None
    assert "by bruteguard for Example Hosting B.V.\n" in body.get_content()
    assert "B.V.." not in body.get_content()
