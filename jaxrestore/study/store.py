"""The study's answers in SQLite (answers.sqlite in the study folder).

Tables:
  issued(participant PK, label UNIQUE, issued_at) - the ids the experimenter handed
      out (`participants --new N`, `prepare --participants N`): random tokens, the
      only ids the server knows; `label` (P001, ...) names a participant in reports,
      which must not show the token that lets one answer as them
  participants(participant PK, trial_order JSON, started_at, user_agent) - an issued
      id's first visit: their trial order and a truncated User-Agent
  shown(participant, trial, shown_at; PK (participant, trial)) - when the server
      first sent a trial's page: the server-side start of the response time
  current(participant PK, trial, token, served_at) - the page the server last sent
      each participant: the only trial it accepts an answer to, with the page's
      one-time form token
  answers(participant, trial, position, item, quality, a, b, left_version,
      right_version, choice 'left'|'right', chosen, response_ms, shown_at,
      answered_at; PK (participant, trial))

An answer is accepted only for the trial of the participant's current page and with
that page's token, and is written with INSERT OR IGNORE in the same transaction that
retires the token, so a double click, a resubmitted form or a reload never adds a
second row and the first choice stands. The pair, sides and chosen version are
copied into the row so the answers can be analysed without the manifest. Times are
Unix seconds (server clock); the response time the report uses is the server's,
answered_at - shown_at; response_ms is the browser's own time from both pictures
being loaded to the choice, kept only when it fits inside the server's. WAL mode:
the server's threads read while one writes.

A study's database from before ids were issued has participants but no issued ids:
`participants STUDY --adopt` issues the ids it already holds (see `adopt`).
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from pathlib import Path

from jaxrestore.study import design

FILENAME = "answers.sqlite"

# A User-Agent is stored for telling devices apart, cut to this many characters.
USER_AGENT_CHARS = 256
# Random bytes in an issued id (token_urlsafe: 4 characters per 3 bytes).
ID_BYTES = 12

SCHEMA = """
CREATE TABLE IF NOT EXISTS issued (
    participant TEXT PRIMARY KEY,
    label TEXT NOT NULL UNIQUE,
    issued_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS current (
    participant TEXT PRIMARY KEY,
    trial TEXT NOT NULL,
    token TEXT NOT NULL,
    served_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS participants (
    participant TEXT PRIMARY KEY,
    trial_order TEXT NOT NULL,
    started_at REAL NOT NULL,
    user_agent TEXT
);
CREATE TABLE IF NOT EXISTS shown (
    participant TEXT NOT NULL REFERENCES participants(participant),
    trial TEXT NOT NULL,
    shown_at REAL NOT NULL,
    PRIMARY KEY (participant, trial)
);
CREATE TABLE IF NOT EXISTS answers (
    participant TEXT NOT NULL REFERENCES participants(participant),
    trial TEXT NOT NULL,
    position INTEGER NOT NULL,
    item TEXT NOT NULL,
    quality INTEGER NOT NULL,
    a TEXT NOT NULL,
    b TEXT NOT NULL,
    left_version TEXT NOT NULL,
    right_version TEXT NOT NULL,
    choice TEXT NOT NULL CHECK (choice IN ('left', 'right')),
    chosen TEXT NOT NULL,
    response_ms REAL,
    shown_at REAL,
    answered_at REAL NOT NULL,
    PRIMARY KEY (participant, trial)
);
"""


def connect(folder: Path) -> sqlite3.Connection:
    """A connection to the study's database, created on first use."""
    connection = sqlite3.connect(folder / FILENAME, timeout=10.0)
    connection.row_factory = sqlite3.Row
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA foreign_keys=ON")
    connection.executescript(SCHEMA)
    return connection


def issue(connection: sqlite3.Connection, count: int) -> list[tuple[str, str]]:
    """`count` new participant ids, [(id, label), ...]: random URL-safe tokens
    (secrets.token_urlsafe) that nobody can guess, labelled P001, P002, ... in order."""
    if count < 1:
        raise ValueError(f"the number of ids to issue must be at least 1, got {count}")
    issued = []
    with connection:
        for _ in range(count):
            participant = secrets.token_urlsafe(ID_BYTES)
            label = _next_label(connection)
            connection.execute(
                "INSERT INTO issued VALUES (?, ?, ?)", (participant, label, time.time())
            )
            issued.append((participant, label))
    return issued


def _next_label(connection: sqlite3.Connection) -> str:
    number = connection.execute("SELECT COUNT(*) FROM issued").fetchone()[0] + 1
    while True:
        label = f"P{number:03d}"
        if connection.execute("SELECT 1 FROM issued WHERE label = ?", (label,)).fetchone() is None:
            return label
        number += 1


def adopt(connection: sqlite3.Connection) -> list[str]:
    """Issue the ids of the participants a study recorded before ids were issued, so
    they can go on (each labelled by its own id, which was never a secret); returns
    them. Anyone who knew such an id can answer as that participant: adopt only ids
    you trust."""
    rows = connection.execute(
        "SELECT participant FROM participants WHERE participant NOT IN "
        "(SELECT participant FROM issued) ORDER BY started_at"
    ).fetchall()
    adopted = []
    with connection:
        for row in rows:
            participant = row["participant"]
            taken = connection.execute("SELECT 1 FROM issued WHERE label = ?", (participant,))
            label = participant if taken.fetchone() is None else _next_label(connection)
            connection.execute(
                "INSERT INTO issued VALUES (?, ?, ?)", (participant, label, time.time())
            )
            adopted.append(participant)
    return adopted


def label_of(connection: sqlite3.Connection, participant: str) -> str | None:
    """The participant's label, or None when the id was never issued."""
    row = connection.execute(
        "SELECT label FROM issued WHERE participant = ?", (participant,)
    ).fetchone()
    return None if row is None else row["label"]


def issued_ids(connection: sqlite3.Connection) -> list[sqlite3.Row]:
    """Every issued id with its label, issue time, start time and answer count."""
    return connection.execute(
        "SELECT i.participant, i.label, i.issued_at, p.started_at, "
        "(SELECT COUNT(*) FROM answers a WHERE a.participant = i.participant) AS answered "
        "FROM issued i LEFT JOIN participants p USING (participant) ORDER BY i.issued_at, i.label"
    ).fetchall()


def order_of(
    connection: sqlite3.Connection,
    participant: str,
    trial_ids: list[str],
    seed: int,
    user_agent: str | None = None,
) -> list[str]:
    """The participant's trial order: as recorded, or drawn and recorded on first visit
    (with the first USER_AGENT_CHARS characters of the User-Agent)."""
    row = connection.execute(
        "SELECT trial_order FROM participants WHERE participant = ?", (participant,)
    ).fetchone()
    if row is not None:
        return json.loads(row["trial_order"])
    order = design.participant_order(trial_ids, participant, seed)
    agent = None if user_agent is None else user_agent[:USER_AGENT_CHARS]
    with connection:
        connection.execute(
            "INSERT OR IGNORE INTO participants VALUES (?, ?, ?, ?)",
            (participant, json.dumps(order), time.time(), agent),
        )
    return order


def answered(connection: sqlite3.Connection, participant: str) -> set[str]:
    rows = connection.execute("SELECT trial FROM answers WHERE participant = ?", (participant,))
    return {row["trial"] for row in rows}


def serve_page(connection: sqlite3.Connection, participant: str, trial: str) -> str:
    """Record that `trial`'s page is being sent to `participant`: its first time (a
    reload keeps the first), and that it is now their current page, under a new
    one-time token for its form (which the page must carry); returns the token."""
    token = secrets.token_urlsafe(16)
    now = time.time()
    with connection:
        connection.execute(
            "INSERT OR IGNORE INTO shown VALUES (?, ?, ?)", (participant, trial, now)
        )
        connection.execute(
            "INSERT OR REPLACE INTO current VALUES (?, ?, ?, ?)", (participant, trial, token, now)
        )
    return token


RECORDED, REPEATED, STALE = "recorded", "repeated", "stale"


def record(
    connection: sqlite3.Connection,
    participant: str,
    trial: design.Trial,
    position: int,
    choice: str,
    token: str,
    response_ms: float | None,
) -> str:
    """Store one choice ('left' or 'right') of the trial on the participant's current
    page, if `token` is that page's: RECORDED; REPEATED when this trial was answered
    before (nothing changes: the first choice stands); STALE when the trial is not
    the one the server last showed them or the token is not that page's (nothing is
    stored). The check, the row and the retired token are one transaction."""
    if choice not in ("left", "right"):
        raise ValueError(f"choice must be 'left' or 'right', got {choice!r}")
    chosen = trial.left if choice == "left" else trial.right
    with connection:
        # IMMEDIATE: no other writer between the check and the insert.
        connection.execute("BEGIN IMMEDIATE")
        done = connection.execute(
            "SELECT 1 FROM answers WHERE participant = ? AND trial = ?", (participant, trial.id)
        ).fetchone()
        if done is not None:
            return REPEATED
        page = connection.execute(
            "SELECT c.trial, c.token, s.shown_at FROM current c JOIN shown s "
            "ON s.participant = c.participant AND s.trial = c.trial WHERE c.participant = ?",
            (participant,),
        ).fetchone()
        if (
            page is None
            or page["trial"] != trial.id
            or not secrets.compare_digest(page["token"].encode(), token.encode())
        ):
            return STALE
        answered_at = time.time()
        # The browser's time runs from the pictures being loaded, after the page was
        # sent: one longer than the server's is not a measurement.
        server_ms = (answered_at - page["shown_at"]) * 1000
        if response_ms is not None and not 0 <= response_ms <= server_ms:
            response_ms = None
        connection.execute(
            "INSERT OR IGNORE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                participant,
                trial.id,
                position,
                trial.item,
                trial.quality,
                trial.pair[0],
                trial.pair[1],
                trial.left,
                trial.right,
                choice,
                chosen,
                response_ms,
                page["shown_at"],
                answered_at,
            ),
        )
        connection.execute("DELETE FROM current WHERE participant = ?", (participant,))
    return RECORDED


def all_answers(connection: sqlite3.Connection) -> list[sqlite3.Row]:
    return connection.execute("SELECT * FROM answers ORDER BY participant, position").fetchall()
