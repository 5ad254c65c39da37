"""`serve`: the study as a local web app (Flask; plain HTML, CSS and JavaScript).

Routes:
  GET  /                       start page: a participant id (or ?participant=ID to go on)
  GET  /p/<participant>        the participant's next unanswered pair, or the done page
  POST /p/<participant>        a choice: trial, choice (left|right), response_ms; answered
                               with a redirect to the next pair (post/redirect/get, so a
                               reload never sends a choice twice)
  GET  /image/<name>.png       a picture, by its opaque name

Blinding: a page shows two pictures called "left" and "right" and, optionally, the
source picture as the reference; the method names appear in no page, URL or
file name. The order of the pairs is drawn once per participant from their id
and recorded (store.order_of); the session is the id, so coming back with the
same id resumes at the first unanswered pair, on any browser.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import flask
from werkzeug import serving

from jaxrestore.study import manifest, store

PARTICIPANT = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
IMAGE = re.compile(r"^[0-9a-f]{20}\.png$")
REFERENCE_MODES = ("toggle", "on", "off")


def create_app(folder: str | Path, reference: str = "toggle", zoom: float = 2.0) -> flask.Flask:
    """The app for one study folder. `reference`: the source picture shown on request
    ('toggle'), always ('on') or never ('off'); `zoom`: the magnification of the
    synchronised zoom."""
    if reference not in REFERENCE_MODES:
        raise ValueError(f"--reference must be one of {', '.join(REFERENCE_MODES)}")
    if not 1 <= zoom <= 16:
        raise ValueError(f"--zoom must be in 1..16, got {zoom}")
    study = manifest.Study.load(folder)
    trials = {trial.id: trial for trial in study.trials}
    app = flask.Flask(__name__)

    def database() -> sqlite3.Connection:
        if "database" not in flask.g:
            flask.g.database = store.connect(study.folder)
        return flask.g.database

    @app.teardown_appcontext
    def close(_error: BaseException | None) -> None:
        connection = flask.g.pop("database", None)
        if connection is not None:
            connection.close()

    @app.after_request
    def no_store(response: flask.Response) -> flask.Response:
        # Pages must always come from the server, so Back or Reload shows the real next pair.
        if response.mimetype == "text/html":
            response.headers["Cache-Control"] = "no-store"
        return response

    def checked(participant: str) -> str:
        if not PARTICIPANT.match(participant):
            flask.abort(
                flask.make_response(
                    flask.render_template(
                        "start.html", error="An id is 1-64 letters, digits, '_', '.' or '-'."
                    ),
                    400,
                )
            )
        return participant

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
        store.mark_shown(database(), participant, trial.id)

        def url(quality: int | None, version: str) -> str:
            return flask.url_for("image", name=study.image(trial.item, quality, version))

        return flask.render_template(
            "trial.html",
            participant=participant,
            trial_id=trial.id,
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
        order = order_of(checked(participant))
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
        store.record(
            database(),
            participant,
            trials[trial_id],
            order.index(trial_id),
            choice,
            response_ms if valid else None,
        )
        return flask.redirect(flask.url_for("pair", participant=participant), code=303)

    @app.get("/image/<name>")
    def image(name: str):
        if not IMAGE.match(name):
            flask.abort(404)
        return flask.send_from_directory(study.image_dir, name, max_age=3600)

    return app


def make_server(app: flask.Flask, host: str, port: int) -> serving.BaseWSGIServer:
    """A threaded WSGI server for `app` (port 0: any free port, see `.port`)."""
    return serving.make_server(host, port, app, threaded=True)


def serve(folder: Path, host: str, port: int, reference: str, zoom: float) -> None:
    """The `serve` subcommand: run until interrupted."""
    server = make_server(create_app(folder, reference, zoom), host, port)
    print(f"jaxrestore.study: serving {folder} at http://{host}:{server.port}/ (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
