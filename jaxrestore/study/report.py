"""`report`: the study's answers as preference rates, tests and a plot.

Writes report.json (every number), report.md (the tables) and preference.png
(the rate at which A is preferred over B, with its 95% interval, per quality and
over all qualities, one panel per pair) into OUT (default STUDY/report).

Participants appear under their labels (P001, ...), never their ids: an id lets
its holder answer. Only the answers of issued ids count (a study's database from
before ids were issued holds others until `participants --adopt`); the report
says how many it left out. Response times are the server's, from the pair's page
being first sent to the answer arriving, which no participant can shorten.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

from jaxrestore.study import manifest, stats, store

PLOT = "preference.png"


def collect(study: manifest.Study) -> tuple[list[stats.Answer], int]:
    """(the recorded choices of the study's issued ids, the number of answers left out
    for coming from ids that were never issued). Rows of other studies are refused."""
    known = {trial.id: trial for trial in study.trials}
    connection = store.connect(study.folder)
    try:
        rows = store.all_answers(connection)
        labels = {row["participant"]: row["label"] for row in store.issued_ids(connection)}
    finally:
        connection.close()
    answers, left_out = [], 0
    for row in rows:
        trial = known.get(row["trial"])
        if trial is None or (row["a"], row["b"]) != trial.pair:
            raise ValueError(
                f"{study.folder / store.FILENAME}: answer to trial {row['trial']} does not match "
                f"{manifest.FILENAME}"
            )
        if row["participant"] not in labels:
            left_out += 1
            continue
        shown = row["shown_at"]
        answers.append(
            stats.Answer(
                labels[row["participant"]],
                trial.pair,
                trial.quality,
                row["chosen"],
                row["choice"],
                None if shown is None else (row["answered_at"] - shown) * 1000,
            )
        )
    return answers, left_out


def per_participant(answers: list[stats.Answer], total: int) -> dict[str, dict]:
    people: dict[str, list[stats.Answer]] = {}
    for answer in answers:
        people.setdefault(answer.participant, []).append(answer)
    out = {}
    for participant, theirs in sorted(people.items()):
        times = [a.response_ms for a in theirs if a.response_ms is not None]
        out[participant] = {
            "answered": len(theirs),
            "of": total,
            "left_choices": sum(a.side == "left" for a in theirs),
            "median_response_ms": statistics.median(times) if times else None,
        }
    return out


def build_report(study: manifest.Study) -> dict:
    answers, left_out = collect(study)
    if not answers:
        raise ValueError(f"{study.folder}: no answers recorded yet")
    rows, bias = stats.summarise(answers, study.pairs, study.qualities)
    return {
        "study": str(study.folder),
        "codec": study.manifest["codec"],
        "qualities": study.qualities,
        "methods": study.manifest["methods"],
        "answers": len(answers),
        "left_out": left_out,
        "response_time": "server clock, from the pair's page first sent to the answer arriving",
        "trials": len(study.manifest["trials"]),
        "interval": f"{stats.CONFIDENCE:.0%} {stats.INTERVAL}",
        "test": "two-sided exact binomial test of preference rate 0.5; p_holm: Holm-adjusted "
        "over the per-quality rows",
        "rows": rows,
        **bias,
        "participants": per_participant(answers, len(study.manifest["trials"])),
    }


def _number(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.{digits}f}"


def markdown(report: dict) -> str:
    codec = report["codec"]
    lines = [
        f"# Preference study: {report['answers']} choices by {len(report['participants'])} "
        f"participant(s)",
        "",
        f"Study `{report['study']}`, {codec}; methods: "
        + ", ".join(f"{name} (`{path}`)" for name, path in report["methods"].items())
        + ".",
        "",
        f"A preferred: the share of choices for A over B, with its {report['interval']} "
        f"interval; p: {report['test']}; time: {report['response_time']}.",
        "",
        f"| A vs B | {codec} quality | n | A wins | B wins | A preferred | 95% CI | p | "
        "p (Holm) | participants | median time (ms) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        lines.append(
            f"| {row['a']} vs {row['b']} | {row['quality']} | {row['n']} | {row['wins']} | "
            f"{row['n'] - row['wins']} | {_number(row['rate'])} | "
            f"[{_number(row['low'])}, {_number(row['high'])}] | {_number(row['p_value'], 4)} | "
            f"{_number(row.get('p_holm'), 4)} | {row['participants']} | "
            f"{_number(row['median_response_ms'], 0)} |"
        )
    left = report["left_choices"]
    lines += [
        "",
        f"Side bias: the left picture was chosen {left['wins']} of {left['n']} times "
        f"({_number(left['rate'])}, 95% CI [{_number(left['low'])}, {_number(left['high'])}], "
        f"p = {_number(left['p_value'], 4)}).",
        "",
        "| participant | answered | left choices | median time (ms) |",
        "|---|---|---|---|",
    ]
    for participant, row in report["participants"].items():
        lines.append(
            f"| {participant} | {row['answered']} of {row['of']} | {row['left_choices']} | "
            f"{_number(row['median_response_ms'], 0)} |"
        )
    if report["left_out"]:
        lines += [
            "",
            f"{report['left_out']} answer(s) from ids this study never issued are left out "
            "(`participants STUDY --adopt` issues the ids of a study begun before ids were "
            "issued).",
        ]
    lines += ["", f"![Preference rates]({PLOT})"]
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> None:
    """One panel per pair: A's preference rate and its interval at each quality and over
    all of them, against the 0.5 line of no preference."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    pairs = list(dict.fromkeys((row["a"], row["b"]) for row in report["rows"]))
    figure, axes = plt.subplots(1, len(pairs), figsize=(3.4 * len(pairs), 3.2), squeeze=False)
    for axis, (a, b) in zip(axes[0], pairs):
        rows = [row for row in report["rows"] if (row["a"], row["b"]) == (a, b) and row["n"]]
        labels = [str(row["quality"]) for row in rows]
        rates = [row["rate"] for row in rows]
        errors = [
            [row["rate"] - row["low"] for row in rows],
            [row["high"] - row["rate"] for row in rows],
        ]
        axis.errorbar(range(len(rows)), rates, yerr=errors, fmt="o", capsize=4)
        axis.axhline(0.5, color="gray", lw=0.8, ls="--")
        axis.set_xticks(range(len(rows)), labels)
        axis.set_xlim(-0.5, max(len(rows), 1) - 0.5)
        axis.set_ylim(0, 1)
        axis.set_title(f"{a} preferred over {b}", fontsize=9)
        axis.set_xlabel(f"{report['codec']} quality")
    axes[0][0].set_ylabel(f"preference rate ({report['interval'].split(' (')[0]})")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_report(folder: Path, out: Path | None) -> Path:
    """The `report` subcommand: returns the folder the report went to."""
    study = manifest.Study.load(folder)
    report = build_report(study)
    out = out or study.folder / "report"
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    plot(report, out / PLOT)
    (out / "report.md").write_text(markdown(report))
    return out
