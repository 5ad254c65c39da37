"""`serve`: the study as a web app (Flask on waitress; plain HTML, CSS and JavaScript).

Routes:
  GET  /                       start page: a participant id (or ?participant=ID to go on)
  GET  /p/<participant>        the participant's next unanswered pair, or the done page
  POST /p/<participant>        a choice: trial, token, choice (left|right), response_ms;
                               answered with a redirect to the next pair (post/redirect/
                               get, so a reload never sends a choice twice)
  GET  /image/<name>.png       a picture, by its opaque name

Blinding: a page shows two pictures called "left" and "right" and, optionally, the
source picture as the reference; the method names appear in no page, URL or
file name, and a picture is sent with no validator that carries time (its ETag is
its opaque name, there is no Last-Modified), so no header orders a trial's
pictures the way `prepare` made them. The order of the pairs is drawn once per
participant from their id and recorded (store.order_of); the session is the id,
so coming back with the same id resumes at the first unanswered pair, on any
browser.

Participants: only the ids the experimenter issued (store.issue) are known; any
other id is refused and creates nothing. A participant can answer only the trial
the server last showed them, with the one-time token of that page (store.record),
so nobody answers a pair they were not shown, or answers for somebody else
through their browser.

Hostile requests: a request must name an allowed host (localhost names, the bound
address, `--allow-host`: a DNS-rebinding page names its own); a cross-site POST
(Origin or Sec-Fetch-Site) is refused; every response forbids framing and
anything but the app's own scripts, styles and pictures (Content-Security-Policy).
waitress serves with a fixed number of threads and bounded connections, header
size and body size; the app refuses bodies over 16 KiB and all but form posts.
"""

from __future__ import annotations

import io
import re
import sqlite3
import threading
import urllib.parse
from pathlib import Path

import flask
import waitress
from waitress import wasyncore

from jaxrestore.study import manifest, store

PARTICIPANT = re.compile(r"[A-Za-z0-9_.-]{1,64}")
IMAGE = re.compile(r"[0-9a-f]{20}\.png")
REFERENCE_MODES = ("toggle", "on", "off")
# The names a request may use for the server when nothing else is allowed.
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
# Addresses that bind every interface: not a name any request uses.
WILDCARDS = ("", "0.0.0.0", "::")
MAX_BODY = 16 * 1024  # an answer is well under 200 bytes
HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; img-src 'self'; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    # A participant's id is in their page's URL: it goes to no other site. (Not
    # no-referrer: browsers then send "Origin: null" with the form, as if cross-site.)
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
# The server's bounds: threads answering at once, open connections (idle ones are
# closed after CHANNEL_TIMEOUT seconds), and the largest request head and body.
THREADS = 8
CONNECTION_LIMIT = 200
CHANNEL_TIMEOUT = 30
MAX_HEADER = 8 * 1024
MAX_REQUEST_BODY = 64 * 1024


def host_name(host: str) -> str | None:
    """The lower-case name in a Host header value ('[::1]:8000' -> '::1'), or None
    when it is not a plain host[:port]."""
    if not re.fullmatch(r"[A-Za-z0-9.-]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?", host):
        return None
    return urllib.parse.urlsplit(f"//{host}").hostname


def allowed_hosts(bound: str, extra: list[str] | tuple[str, ...] = ()) -> set[str]:
    """The host names requests may use: localhost's, the bound address unless it is a
    wildcard, and `extra` (--allow-host)."""
    hosts = set(LOCAL_HOSTS)
    for host in [bound, *extra]:
        if host in WILDCARDS:
            continue
        name = host_name(host) if not host.count(":") > 1 else host_name(f"[{host}]")
        if name is None:
            raise ValueError(f"--allow-host {host}: not a host name or address")
        hosts.add(name)
    return hosts


def create_app(
    folder: str | Path,
    reference: str = "toggle",
    zoom: float = 2.0,
    hosts: set[str] | None = None,
) -> flask.Flask:
    """The app for one study folder. `reference`: the source picture shown on request
    ('toggle'), always ('on') or never ('off'); `zoom`: the magnification of the
    synchronised zoom; `hosts`: the host names requests may use (allowed_hosts;
    default localhost's)."""
    if reference not in REFERENCE_MODES:
        raise ValueError(f"--reference must be one of {', '.join(REFERENCE_MODES)}")
    if not 1 <= zoom <= 16:
        raise ValueError(f"--zoom must be in 1..16, got {zoom}")
    study = manifest.Study.load(folder)
    trials = {trial.id: trial for trial in study.trials}
    hosts = set(LOCAL_HOSTS) if hosts is None else set(hosts)
    app = flask.Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY, MAX_FORM_MEMORY_SIZE=MAX_BODY, MAX_FORM_PARTS=8)

    def database() -> sqlite3.Connection:
        if "database" not in flask.g:
            flask.g.database = store.connect(study.folder)
        return flask.g.database

    @app.teardown_appcontext
    def close(_error: BaseException | None) -> None:
        connection = flask.g.pop("database", None)
        if connection is not None:
            connection.close()

    @app.before_request
    def guard() -> flask.Response | None:
        name = host_name(flask.request.headers.get("Host", ""))
        if name not in hosts:
            # A DNS-rebinding page, or a name the experimenter did not allow.
            return flask.Response(
                "Unknown host: start the study with --allow-host NAME for each name it is "
                "reached by.\n",
                400,
                mimetype="text/plain",
            )
        if flask.request.content_length and flask.request.content_length > MAX_BODY:
            flask.abort(413)
        return None

    @app.after_request
    def headers(response: flask.Response) -> flask.Response:
        response.headers.update(HEADERS)
        # Pages must always come from the server, so Back or Reload shows the real next pair.
        if response.mimetype == "text/html":
            response.headers["Cache-Control"] = "no-store"
        return response

    def refuse(status: int, error: str) -> None:
        flask.abort(flask.make_response(flask.render_template("start.html", error=error), status))

    def checked(participant: str) -> str:
        """The id, if it is one the experimenter issued; else the start page, refused."""
        if not PARTICIPANT.fullmatch(participant):
            refuse(400, "An id is 1-64 letters, digits, '_', '.' or '-'.")
        if store.label_of(database(), participant) is None:
            refuse(403, "That is not an id of this study: use the id (or link) you were given.")
        return participant

    def same_origin() -> None:
        """Refuse a request a browser says comes from another site."""
        site = flask.request.headers.get("Sec-Fetch-Site")
        origin = flask.request.headers.get("Origin")
        if site is not None and site not in ("same-origin", "none"):
            flask.abort(403, "a choice is accepted only from the study's own pages")
        if origin is not None:
            netloc = urllib.parse.urlsplit(origin).netloc.lower()
            if netloc != flask.request.headers.get("Host", "").lower():
                flask.abort(403, "a choice is accepted only from the study's own pages")

    def order_of(participant: str) -> list[str]:
        agent = flask.request.headers.get("User-Agent")
        return store.order_of(database(), participant, list(trials), study.seed, agent)

    @app.get("/")
    def start():
        participant = flask.request.args.get("participant", "").strip()
        if participant:
            checked(participant)
            return flask.redirect(flask.url_for("pair", participant=participant))
        return flask.render_template("start.html", error=None)

    @app.get("/p/<participant>")
    def pair(participant: str):
        order = order_of(checked(participant))
        done = store.answered(database(), participant)
        waiting = [trial_id for trial_id in order if trial_id not in done]
        if not waiting:
            return flask.render_template("done.html", total=len(order))
        trial = trials[waiting[0]]
        token = store.serve_page(database(), participant, trial.id)

        def url(quality: int | None, version: str) -> str:
            return flask.url_for("image", name=study.image(trial.item, quality, version))

        return flask.render_template(
            "trial.html",
            participant=participant,
            trial_id=trial.id,
            token=token,
            position=len(order) - len(waiting) + 1,
            total=len(order),
            left=url(trial.quality, trial.left),
            right=url(trial.quality, trial.right),
            reference=None if reference == "off" else url(None, "original"),
            reference_shown=reference == "on",
            zoom=zoom,
        )

    @app.post("/p/<participant>")
    def answer(participant: str):
        same_origin()
        checked(participant)
        if flask.request.mimetype != "application/x-www-form-urlencoded":
            flask.abort(415, "a choice is a form post (application/x-www-form-urlencoded)")
        order = order_of(participant)
        trial_id = flask.request.form.get("trial", "")
        choice = flask.request.form.get("choice", "")
        if trial_id not in order or choice not in ("left", "right"):
            flask.abort(400, "expected a trial of this participant and choice=left|right")
        try:
            response_ms = float(flask.request.form.get("response_ms") or "nan")
        except ValueError:
            response_ms = float("nan")
        # Without JavaScript (or with a nonsensical value) there is no client time.
        valid = response_ms == response_ms and 0 <= response_ms < 86_400_000
        outcome = store.record(
            database(),
            participant,
            trials[trial_id],
            order.index(trial_id),
            choice,
            flask.request.form.get("token", ""),
            response_ms if valid else None,
        )
        if outcome == store.STALE:
            page = flask.render_template("stale.html", participant=participant)
            return flask.make_response(page, 409)
        return flask.redirect(flask.url_for("pair", participant=participant), code=303)

    @app.get("/image/<name>")
    def image(name: str):
        path = study.image_dir / name
        if not IMAGE.fullmatch(name) or not path.is_file():
            flask.abort(404)
        # From memory, not the path: send_file would make the ETag and Last-Modified
        # from the file's time. The opaque name is a fine validator and tells nothing.
        return flask.send_file(
            io.BytesIO(path.read_bytes()),
            mimetype="image/png",
            max_age=3600,
            etag=name.removesuffix(".png"),
            last_modified=None,
            conditional=True,
        )

    return app


class Server:
    """waitress serving one app, with the study's bounds (THREADS, CONNECTION_LIMIT,
    CHANNEL_TIMEOUT, MAX_HEADER, MAX_REQUEST_BODY); `serve_forever` runs it until
    `shutdown` (from another thread) or Ctrl-C."""

    def __init__(self, app: flask.Flask, host: str, port: int) -> None:
        self._map: dict = {}
        self._server = waitress.create_server(
            app,
            map=self._map,
            host=host,
            port=port,
            threads=THREADS,
            connection_limit=CONNECTION_LIMIT,
            channel_timeout=CHANNEL_TIMEOUT,
            cleanup_interval=min(CHANNEL_TIMEOUT, 10),
            max_request_header_size=MAX_HEADER,
            max_request_body_size=MAX_REQUEST_BODY,
            ident="jaxrestore.study",
        )
        self._stopping = threading.Event()
        self._stopped = threading.Event()

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """(host, port) of each listening socket."""
        servers = [s for s in self._map.values() if hasattr(s, "effective_port")]
        return [(s.effective_host, int(s.effective_port)) for s in servers]

    @property
    def port(self) -> int:
        return self.addresses[0][1]

    def serve_forever(self) -> None:
        try:
            while not self._stopping.is_set():
                wasyncore.loop(timeout=0.2, map=self._map, use_poll=True, count=1)
        finally:
            wasyncore.close_all(self._map, ignore_all=True)
            self._server.task_dispatcher.shutdown()
            self._stopped.set()

    def shutdown(self) -> None:
        self._stopping.set()
        self._stopped.wait(timeout=10)


def make_server(app: flask.Flask, host: str, port: int) -> Server:
    """The study's server for `app` (port 0: any free port, see `.port`)."""
    return Server(app, host, port)


def serve(
    folder: Path,
    host: str,
    port: int,
    reference: str,
    zoom: float,
    allow_hosts: list[str] | None = None,
) -> None:
    """The `serve` subcommand: run until interrupted. Refuses a study that has issued
    no participant ids, as it could only turn everybody away."""
    hosts = allowed_hosts(host, allow_hosts or ())
    app = create_app(folder, reference, zoom, hosts)
    connection = store.connect(Path(folder))
    try:
        issued = len(store.issued_ids(connection))
    finally:
        connection.close()
    if not issued:
        raise ValueError(
            f"{folder}: no participant ids issued yet (python -m jaxrestore.study "
            f"participants {folder} --new N; --adopt for a study begun without them)"
        )
    server = make_server(app, host, port)
    for address, bound in server.addresses:
        shown = f"[{address}]" if ":" in address else address
        print(f"jaxrestore.study: serving {folder} at http://{shown}:{bound}/ (Ctrl-C stops)")
    print(
        f"jaxrestore.study: {issued} participant id(s); host names allowed: "
        f"{', '.join(sorted(hosts))}",
        flush=True,
    )
    if host in WILDCARDS and not allow_hosts:
        print(
            "jaxrestore.study: listening on every interface, but only localhost's names are "
            "allowed: give --allow-host NAME for each name or address people use",
            flush=True,
        )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
