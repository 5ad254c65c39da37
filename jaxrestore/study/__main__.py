"""The study command: `python -m jaxrestore.study prepare|participants|serve|report`
(see the package)."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from absl import logging

import jaxrestore.study as package

NAME = "jaxrestore.study"


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog=NAME, description=package.__doc__.split("\n\n")[0])
    commands = main.add_subparsers(dest="command", required=True)

    prepare = commands.add_parser("prepare", help="build a study from images and video frames")
    prepare.add_argument("inputs", nargs="+", type=Path, help="image/video files or folders")
    prepare.add_argument("--out", "-o", type=Path, required=True, help="the new study folder")
    prepare.add_argument(
        "--quality", type=int, nargs="+", default=[10, 20], help="JPEG QFs (or CRFs, quantisers)"
    )
    prepare.add_argument("--codec", default="jpeg", help="jpeg, h264 (CRF) or mpeg2 (quantiser)")
    prepare.add_argument(
        "--methods", nargs="+", help="packaged models (ssim, gan) or NAME=PATH; default ssim gan"
    )
    prepare.add_argument(
        "--checkpoint", action="append", metavar="NAME=PATH", help="a workdir or export, repeatable"
    )
    prepare.add_argument("--frames", type=int, default=4, help="frames taken from each video")
    prepare.add_argument("--crop", help="W or WxH: the centred window shown (default whole)")
    prepare.add_argument("--seed", type=int, default=0)
    prepare.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    prepare.add_argument(
        "--participants", type=int, default=0, metavar="N", help="issue N participant ids"
    )

    people = commands.add_parser(
        "participants", help="issue participant ids (random tokens) or list them"
    )
    people.add_argument("study", type=Path)
    what = people.add_mutually_exclusive_group()
    what.add_argument("--new", type=int, metavar="N", help="issue N new ids, printed one a line")
    people.add_argument(
        "--url", help="print each new id as a link: URL/?participant=ID (the study's address)"
    )
    what.add_argument(
        "--adopt",
        action="store_true",
        help="issue the ids of a study begun before ids were issued, so they can go on",
    )

    serve = commands.add_parser("serve", help="run the study's web app")
    serve.add_argument("study", type=Path)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a host name or address participants reach the study by (repeatable); "
        "localhost's and --host are always allowed",
    )
    serve.add_argument(
        "--reference", default="toggle", help="the source picture: toggle, on or off"
    )
    serve.add_argument("--zoom", type=float, default=2.0, help="magnification of the zoom")

    report = commands.add_parser("report", help="preference rates, tests and a plot")
    report.add_argument("study", type=Path)
    report.add_argument("--out", "-o", type=Path, help="default STUDY/report")
    return main


def issue(folder: Path, count: int) -> list[tuple[str, str]]:
    """`count` new ids for the study in `folder`, stored in its answers.sqlite."""
    from jaxrestore.study import manifest, store

    manifest.Study.load(folder)
    connection = store.connect(folder)
    try:
        return store.issue(connection, count)
    finally:
        connection.close()


def print_ids(folder: Path, issued: list[tuple[str, str]], url: str | None) -> None:
    """The new ids on stdout, one a line (a link each with `url`); a note on stderr."""
    for participant, label in issued:
        line = f"{url.rstrip('/')}/?participant={participant}" if url else participant
        print(f"{label}\t{line}")
    print(
        f"{NAME}: {len(issued)} new participant id(s) for {folder}: give each person theirs "
        "privately; anyone holding an id can answer as that participant",
        file=sys.stderr,
    )


def participants(args: argparse.Namespace) -> None:
    """The `participants` subcommand: --new N, --adopt, or (neither) the list."""
    from jaxrestore.study import manifest, store

    if args.url and args.new is None:
        raise ValueError("--url goes with --new N (it prints the new ids as links)")
    if args.url and not re.fullmatch(r"https?://[^\s/?#]+/?", args.url):
        raise ValueError(f"--url {args.url}: expected http(s)://HOST[:PORT], the study's address")
    if args.new is not None:
        print_ids(args.study, issue(args.study, args.new), args.url)
        return
    manifest.Study.load(args.study)
    connection = store.connect(args.study)
    try:
        if args.adopt:
            adopted = store.adopt(connection)
            print(
                f"{NAME}: {len(adopted)} id(s) recorded before ids were issued are now issued",
                file=sys.stderr,
            )
        rows = store.issued_ids(connection)
    finally:
        connection.close()
    for row in rows:
        started = "not started" if row["started_at"] is None else f"{row['answered']} answered"
        print(f"{row['label']}\t{row['participant']}\t{started}")


def run(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser().parse_args(argv)
    logging.set_verbosity(logging.ERROR)
    try:
        if args.command == "prepare":
            from jaxrestore.study import prepare

            args.argv = argv
            out = prepare.prepare(args)
            print(f"{NAME}: study in {out}", file=sys.stderr)
            if args.participants:
                print_ids(out, issue(out, args.participants), None)
        elif args.command == "participants":
            participants(args)
        elif args.command == "serve":
            try:
                from jaxrestore.study import app
            except ImportError as error:
                raise ValueError(f"serve needs {error.name}: pip install -e '.[study]'") from None

            app.serve(args.study, args.host, args.port, args.reference, args.zoom, args.allow_host)
        else:
            from jaxrestore.study import report

            out = report.write_report(args.study, args.out)
            print(f"{NAME}: report in {out}", file=sys.stderr)
    except (ValueError, FileNotFoundError, OSError) as error:
        print(f"{NAME}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run())
