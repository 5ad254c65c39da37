"""The study's answers in SQLite (answers.sqlite in the study folder).

Tables:
  participants(participant PK, trial_order JSON, started_at, user_agent)
  shown(participant, trial, shown_at; PK (participant, trial)) - when the server
      first sent a trial's page: the server-side start of the response time
  answers(participant, trial, position, item, quality, a, b, left_version,
      right_version, choice 'left'|'right', chosen, response_ms, shown_at,
      answered_at; PK (participant, trial))

An answer is keyed by (participant, trial) and written with INSERT OR IGNORE, so a
double click, a resubmitted form or a reload never adds a second row, and the
first choice stands. The pair, sides and chosen version are copied into the row
so the answers can be analysed without the manifest. Times are Unix seconds
(server clock); response_ms is the browser's time from both pictures being
loaded to the choice. WAL mode: the server's threads read while one writes.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from jaxrestore.study import design

FILENAME = "answers.sqlite"

SCHEMA = """
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


def order_of(
    connection: sqlite3.Connection,
    participant: str,
    trial_ids: list[str],
    seed: int,
    user_agent: str | None = None,
) -> list[str]:
    """The participant's trial order: as recorded, or drawn and recorded on first visit."""
    row = connection.execute(
        "SELECT trial_order FROM participants WHERE participant = ?", (participant,)
    ).fetchone()
    if row is not None:
        return json.loads(row["trial_order"])
    order = design.participant_order(trial_ids, participant, seed)
    with connection:
        connection.execute(
            "INSERT OR IGNORE INTO participants VALUES (?, ?, ?, ?)",
            (participant, json.dumps(order), time.time(), user_agent),
        )
    return order


def answered(connection: sqlite3.Connection, participant: str) -> set[str]:
    rows = connection.execute("SELECT trial FROM answers WHERE participant = ?", (participant,))
    return {row["trial"] for row in rows}


def mark_shown(connection: sqlite3.Connection, participant: str, trial: str) -> None:
    """Record when a trial was first sent (a reload keeps the first time)."""
    with connection:
        connection.execute(
            "INSERT OR IGNORE INTO shown VALUES (?, ?, ?)", (participant, trial, time.time())
        )


def record(
    connection: sqlite3.Connection,
    participant: str,
    trial: design.Trial,
    position: int,
    choice: str,
    response_ms: float | None,
) -> bool:
    """Store one choice ('left' or 'right'); False when this trial was answered before."""
    if choice not in ("left", "right"):
        raise ValueError(f"choice must be 'left' or 'right', got {choice!r}")
    shown = connection.execute(
        "SELECT shown_at FROM shown WHERE participant = ? AND trial = ?", (participant, trial.id)
    ).fetchone()
    chosen = trial.left if choice == "left" else trial.right
    with connection:
        cursor = connection.execute(
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
                shown["shown_at"] if shown else None,
                time.time(),
            ),
        )
    return cursor.rowcount == 1


def all_answers(connection: sqlite3.Connection) -> list[sqlite3.Row]:
    return connection.execute("SELECT * FROM answers ORDER BY participant, position").fetchall()
