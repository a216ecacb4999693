"""The abuse desk's ledger, in the same SQLite file as the bans: looked-up contacts (with
an age), cases with their addresses and events, holds on contacts, and mail already read.

State changes that must happen once (claiming a case for sending) are compare-and-set
updates, so the daemon and ``bruteguard abuse send`` can never both send one case.
"""

from __future__ import annotations

import ipaddress
import sqlite3
from collections.abc import Iterable

import msgspec

from bruteguard.abuse.case import Case, CaseAddress, CaseEvent, CaseState
from bruteguard.abuse.contact import NetworkContact
from bruteguard.store.sqlite import SqliteStore, storable

__all__ = ["CaseBook"]

_CASE_COLUMNS = (
    "id, kind, state, mode, contact, lookup, opened, updated, due, sent, attempts, error,"
    " flags, message"
)


def _key(address: str) -> bytes:
    """16 bytes that sort like the address: IPv4 as its IPv4-mapped IPv6 form."""
    ip = ipaddress.ip_address(address)
    if ip.version == 4:
        ip = ipaddress.IPv6Address(b"\0" * 10 + b"\xff\xff" + ip.packed)
    return ip.packed


def _range(contact: NetworkContact) -> tuple[bytes, bytes]:
    """The network of ``contact`` that holds its address (just the address if none does)."""
    address = ipaddress.ip_address(contact.address)
    for text in (contact.network or "").split(","):
        try:
            network = ipaddress.ip_network(text.strip(), strict=False)
        except ValueError:
            continue
        if network.version == address.version and address in network:
            return _key(str(network.network_address)), _key(str(network.broadcast_address))
    return _key(contact.address), _key(contact.address)


def _case(row: tuple) -> Case:
    (id_, kind, state, mode, contact, lookup, opened, updated, due, sent, attempts, error,
     flags, message) = row  # fmt: skip
    return Case(
        id=id_,
        kind=kind,
        state=CaseState(state),
        mode=mode,
        contact=contact,
        lookup=msgspec.json.decode(lookup, type=NetworkContact) if lookup else None,
        opened=opened,
        updated=updated,
        due=due,
        sent=sent,
        attempts=attempts,
        error=error,
        flags=tuple(flags.split()),
        message=message,
    )


class CaseBook:
    """Cases, contacts and holds on an open :class:`SqliteStore`."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store

    # -- contacts ----------------------------------------------------------------------

    def cached_contact(self, address: str, now: float) -> NetworkContact | None:
        """The freshest unexpired lookup whose network holds ``address``, re-addressed."""
        key = _key(address)
        with self.store.read("read a cached contact") as db:
            row = db.execute(
                "SELECT data FROM contacts WHERE lo <= ? AND hi >= ? AND expires > ?"
                " ORDER BY lo DESC, looked_up DESC LIMIT 1",
                (key, key, now),
            ).fetchone()
        if row is None:
            return None
        cached = msgspec.json.decode(row[0], type=NetworkContact)
        return msgspec.structs.replace(cached, address=address)

    def cache_contact(self, contact: NetworkContact, expires: float) -> None:
        lo, hi = _range(contact)
        with self.store.write("cache a contact", durable=False) as db:
            db.execute("DELETE FROM contacts WHERE lo = ? AND hi = ?", (lo, hi))
            db.execute(
                "INSERT INTO contacts VALUES (?, ?, ?, ?, ?)",
                (lo, hi, msgspec.json.encode(contact).decode(), contact.looked_up, expires),
            )
            db.execute("DELETE FROM contacts WHERE expires <= ?", (contact.looked_up,))

    # -- cases -------------------------------------------------------------------------

    def open_case(self, case: Case, addresses: Iterable[CaseAddress] = ()) -> None:
        with self.store.write("open a case", durable=True) as db:
            db.execute(
                f"INSERT INTO cases ({_CASE_COLUMNS}) VALUES"  # noqa: S608 (constant columns)
                " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    case.id,
                    case.kind,
                    str(case.state),
                    case.mode,
                    case.contact,
                    msgspec.json.encode(case.lookup).decode() if case.lookup else None,
                    case.opened,
                    case.updated,
                    case.due,
                    case.sent,
                    case.attempts,
                    storable(case.error),
                    " ".join(case.flags),
                    case.message,
                ),
            )
            _insert_addresses(db, case.id, addresses)
            db.execute(
                "INSERT INTO case_events VALUES (?, ?, ?, ?)",
                (case.id, case.opened, "opened", f"{case.kind} to {case.contact or 'nobody'}"),
            )

    def add_addresses(self, case_id: str, addresses: Iterable[CaseAddress]) -> None:
        with self.store.write("add addresses to a case", durable=True) as db:
            _insert_addresses(db, case_id, addresses)

    def get(self, case_id: str) -> Case | None:
        with self.store.read("read a case") as db:
            row = db.execute(
                f"SELECT {_CASE_COLUMNS} FROM cases WHERE id = ?",  # noqa: S608
                (case_id,),
            ).fetchone()
        return _case(row) if row else None

    def cases(self, *, states: Iterable[str] | None = None, limit: int = 200) -> list[Case]:
        """Newest first; ``states`` restricts to those states."""
        wanted = [str(s) for s in states] if states is not None else None
        query = f"SELECT {_CASE_COLUMNS} FROM cases"  # noqa: S608
        params: list[object] = []
        if wanted is not None:
            query += f" WHERE state IN ({', '.join('?' * len(wanted))})"
            params += wanted
        query += " ORDER BY opened DESC, id DESC LIMIT ?"
        with self.store.read("list cases") as db:
            rows = db.execute(query, (*params, limit)).fetchall()
        return [_case(row) for row in rows]

    def due(self, state: CaseState, now: float) -> list[Case]:
        """Cases in ``state`` whose ``due`` has come, oldest first."""
        with self.store.read("read due cases") as db:
            rows = db.execute(
                f"SELECT {_CASE_COLUMNS} FROM cases"  # noqa: S608
                " WHERE state = ? AND due <= ? ORDER BY due, id",
                (str(state), now),
            ).fetchall()
        return [_case(row) for row in rows]

    def collecting_for(self, contact: str, kind: str, mode: str) -> Case | None:
        """The case still gathering addresses for ``contact``, if any."""
        with self.store.read("find a collecting case") as db:
            row = db.execute(
                f"SELECT {_CASE_COLUMNS} FROM cases"  # noqa: S608
                " WHERE contact = ? AND kind = ? AND mode = ? AND state = ?"
                " ORDER BY opened DESC LIMIT 1",
                (contact, kind, mode, str(CaseState.COLLECTING)),
            ).fetchone()
        return _case(row) if row else None

    def last_sent(self, contact: str, kind: str = "complaint") -> float | None:
        """When ``contact`` was last written to (sent, or possibly sent)."""
        with self.store.read("find the last mail to a contact") as db:
            (last,) = db.execute(
                "SELECT max(coalesce(sent, updated)) FROM cases WHERE contact = ? AND kind = ?"
                " AND state IN ('sending', 'unsure', 'sent', 'answered', 'bounced')",
                (contact, kind),
            ).fetchone()
        return last

    def reported_in(self, address: str, since: float) -> str | None:
        """A case opened since ``since`` that already holds ``address``."""
        with self.store.read("find a report of an address") as db:
            row = db.execute(
                "SELECT c.id FROM case_addresses a JOIN cases c ON c.id = a.case_id"
                " WHERE a.address = ? AND c.opened >= ? AND c.state != 'closed'"
                " ORDER BY c.opened DESC LIMIT 1",
                (address, since),
            ).fetchone()
        return row[0] if row else None

    def addresses(self, case_id: str) -> list[CaseAddress]:
        with self.store.read("read a case's addresses") as db:
            rows = db.execute(
                "SELECT address, jail, first, last, attempts, port FROM case_addresses"
                " WHERE case_id = ? ORDER BY first, address",
                (case_id,),
            ).fetchall()
        return [CaseAddress(*row) for row in rows]

    def events(self, case_id: str) -> list[CaseEvent]:
        with self.store.read("read a case's events") as db:
            rows = db.execute(
                "SELECT time, kind, detail FROM case_events WHERE case_id = ? ORDER BY time, rowid",
                (case_id,),
            ).fetchall()
        return [CaseEvent(*row) for row in rows]

    def update(self, case_id: str, event: CaseEvent | None = None, **fields: object) -> None:
        """Set ``fields`` of a case (and record ``event``) in one durable transaction."""
        self.transition(case_id, None, event, **fields)

    def transition(
        self,
        case_id: str,
        expect: Iterable[CaseState] | None,
        event: CaseEvent | None = None,
        **fields: object,
    ) -> bool:
        """Set ``fields`` only if the case is in one of ``expect`` (any state if ``None``);
        returns whether it was. The check and the change are one transaction."""
        columns = {name: _column(name, value) for name, value in fields.items()}
        columns.setdefault("updated", self.store.clock())
        assignments = ", ".join(f"{name} = ?" for name in columns)
        query = f"UPDATE cases SET {assignments} WHERE id = ?"  # noqa: S608 (known names)
        params: list[object] = [*columns.values(), case_id]
        if expect is not None:
            states = [str(s) for s in expect]
            query += f" AND state IN ({', '.join('?' * len(states))})"
            params += states
        with self.store.write("update a case", durable=True) as db:
            changed = db.execute(query, params).rowcount == 1
            if changed and event is not None:
                db.execute(
                    "INSERT INTO case_events VALUES (?, ?, ?, ?)",
                    (case_id, event.time, event.kind, storable(event.detail)),
                )
        return changed

    def add_event(self, case_id: str, event: CaseEvent) -> None:
        with self.store.write("record a case event", durable=True) as db:
            db.execute(
                "INSERT INTO case_events VALUES (?, ?, ?, ?)",
                (case_id, event.time, event.kind, storable(event.detail)),
            )

    # -- holds and mail already read ---------------------------------------------------

    def hold(self, key: str, until: float, reason: str) -> None:
        """Remember ``key`` (``contact:…``, ``postmaster:…``) until ``until``."""
        with self.store.write("hold a contact", durable=True) as db:
            db.execute(
                "INSERT INTO holds VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET"
                " until = max(until, excluded.until), reason = excluded.reason",
                (key, until, storable(reason)),
            )

    def held(self, key: str, now: float) -> tuple[float, str] | None:
        with self.store.read("read a hold") as db:
            row = db.execute(
                "SELECT until, reason FROM holds WHERE key = ? AND until > ?", (key, now)
            ).fetchone()
        return (row[0], row[1]) if row else None

    def mail_seen(self, key: str) -> bool:
        with self.store.read("read mail bookkeeping") as db:
            row = db.execute("SELECT 1 FROM mail_seen WHERE key = ?", (key,)).fetchone()
        return row is not None

    def mark_mail_seen(self, key: str, now: float) -> None:
        with self.store.write("record mail read", durable=False) as db:
            db.execute("INSERT OR IGNORE INTO mail_seen VALUES (?, ?)", (storable(key), now))


_COLUMNS = frozenset(
    {"state", "contact", "due", "sent", "attempts", "error", "flags", "message", "updated"}
)


def _column(name: str, value: object) -> object:
    if name not in _COLUMNS:
        raise ValueError(f"a case has no settable field {name!r}")
    if name == "flags":
        return " ".join(value)  # type: ignore[arg-type]
    if name == "state":
        return str(value)
    if name == "error":
        return storable(str(value))
    return value


def _insert_addresses(
    db: sqlite3.Connection, case_id: str, addresses: Iterable[CaseAddress]
) -> None:
    db.executemany(
        "INSERT INTO case_addresses VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (case_id, address) DO UPDATE SET last = max(last, excluded.last),"
        " attempts = max(attempts, excluded.attempts)",
        ((case_id, a.address, a.jail, a.first, a.last, a.attempts, a.port) for a in addresses),
    )
