"""The preference study: balanced, recorded placement; the statistics against known
cases; bad input refused; and a whole study run in a real headless browser."""

import email.message
import email.utils
import json
import math
import os
import random
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from helpers import bad_inputs, make_video
from PIL import Image
from scipy import stats as scipy_stats

from jaxrestore.data import degrade
from jaxrestore.study import __main__ as cli
from jaxrestore.study import app as app_lib
from jaxrestore.study import design, manifest, stats, store

QUALITIES = (10, 20)
METHODS = ("ssim", "gan")
# What the scripted browser participant prefers, best first.
TASTE = ("gan", "ssim", design.COMPRESSED)


def run_here(capsys, *args) -> tuple[int, str]:
    """The study command in this process: (exit status, stderr)."""
    status = cli.run([str(a) for a in args])
    return status, capsys.readouterr().err


# --- randomisation -------------------------------------------------------------------


@pytest.mark.parametrize("count", [6, 7])
def test_placement_is_balanced_complete_and_seeded(count):
    items = [f"item{k}" for k in range(count)]
    qualities, methods = [10, 20, 30], ["ssim", "gan", "other"]
    trials = design.build_trials(items, qualities, methods, seed=3)
    pairs = design.comparisons(methods)
    assert pairs[:3] == [(m, design.COMPRESSED) for m in methods]
    assert set(pairs[3:]) == {("ssim", "gan"), ("ssim", "other"), ("gan", "other")}
    # Every (item, quality, pair) exactly once, under unique ids.
    assert Counter((t.item, t.quality, t.pair) for t in trials) == Counter(
        {(i, q, p): 1 for i in items for q in qualities for p in pairs}
    )
    assert len({t.id for t in trials}) == len(trials)
    for pair in pairs:
        ours = [t for t in trials if t.pair == pair]
        for quality in qualities:
            sides = Counter(t.left for t in ours if t.quality == quality)
            assert abs(sides[pair[0]] - sides[pair[1]]) <= count % 2, (pair, quality, sides)
        overall = Counter(t.left for t in ours)
        assert abs(overall[pair[0]] - overall[pair[1]]) <= 1, (pair, overall)
        for trial in ours:
            assert {trial.left, trial.right} == set(pair)
    # Seeded: the same seed gives the same study, another seed another placement.
    assert design.build_trials(items, qualities, methods, seed=3) == trials
    other = design.build_trials(items, qualities, methods, seed=4)
    placement = {(t.item, t.quality, t.pair): t.a_left for t in trials}
    assert placement != {(t.item, t.quality, t.pair): t.a_left for t in other}


def test_participant_order_is_a_seeded_permutation():
    ids = [f"t{k:02d}" for k in range(30)]
    alice = design.participant_order(ids, "alice", seed=0)
    assert sorted(alice) == ids and alice != ids
    assert design.participant_order(ids, "alice", seed=0) == alice
    assert design.participant_order(ids, "bob", seed=0) != alice
    assert design.participant_order(ids, "alice", seed=1) != alice


# --- statistics ----------------------------------------------------------------------


def test_statistics_on_a_known_case():
    # 15 wins of 20: two-sided exact p = 2 · Σ_{k≥15} C(20, k) / 2^20 = 2 · 21700 / 2^20.
    result = stats.preference(15, 20)
    assert sum(math.comb(20, k) for k in range(15, 21)) == 21700
    assert result.p_value == pytest.approx(2 * 21700 / 2**20, rel=1e-12)
    assert result.p_value == pytest.approx(0.0413895, abs=1e-7)
    # Clopper-Pearson: the Beta(k, n−k+1) 2.5% and Beta(k+1, n−k) 97.5% quantiles.
    assert result.low == pytest.approx(scipy_stats.beta.ppf(0.025, 15, 6), abs=1e-9)
    assert result.high == pytest.approx(scipy_stats.beta.ppf(0.975, 16, 5), abs=1e-9)
    assert (round(result.low, 4), round(result.high, 4)) == (0.5090, 0.9134)
    assert result.rate == 0.75
    # Symmetric, and the edges: 10 of 20 is p = 1; 20 of 20 has the interval [0.8316, 1].
    assert stats.preference(5, 20).p_value == pytest.approx(result.p_value)
    assert stats.preference(10, 20).p_value == pytest.approx(1.0)
    full = stats.preference(20, 20)
    assert full.high == 1.0 and full.low == pytest.approx(0.025 ** (1 / 20))
    assert full.p_value == pytest.approx(2 / 2**20)
    empty = stats.preference(0, 0)
    assert empty.n == 0 and math.isnan(empty.rate) and empty.p_value == 1.0
    with pytest.raises(ValueError):
        stats.preference(3, 2)
    # Holm: sorted p × (m − rank), made monotone, capped at 1.
    assert stats.holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])


def test_summary_counts_wins_by_pair_and_quality():
    answers = [
        stats.Answer(f"p{i % 3}", ("gan", "compressed"), 10, chosen, side, 800.0 + i)
        for i, (chosen, side) in enumerate(
            [("gan", "left")] * 9 + [("gan", "right")] * 6 + [("compressed", "left")] * 5
        )
    ]
    answers.append(stats.Answer("p0", ("gan", "compressed"), 20, "compressed", "left", None))
    rows, bias = stats.summarise(answers, [("gan", "compressed")], [10, 20])
    by_quality = {row["quality"]: row for row in rows}
    assert by_quality[10]["n"] == 20 and by_quality[10]["wins"] == 15
    assert by_quality[10]["p_value"] == pytest.approx(0.0413895, abs=1e-7)
    assert by_quality[10]["participants"] == 3
    assert by_quality[10]["median_response_ms"] == pytest.approx(809.5)
    assert by_quality[20]["wins"] == 0 and by_quality[20]["median_response_ms"] is None
    assert by_quality["all"]["n"] == 21 and "p_holm" not in by_quality["all"]
    assert by_quality[10]["p_holm"] == pytest.approx(2 * by_quality[10]["p_value"])
    assert bias["left_choices"]["wins"] == 15 and bias["left_choices"]["n"] == 21


# --- bad input -----------------------------------------------------------------------


def assert_refused(capsys, tmp_path: Path, culprit: str, *args) -> None:
    """Exit 1, one stderr line naming `culprit`, and no study or partial folder."""
    out = tmp_path / "study"
    status, err = run_here(capsys, "prepare", *args, "--out", out)
    assert status == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and culprit in lines[0], err
    assert not out.exists() and not list(tmp_path.glob(".study.partial*"))


def test_bad_input_is_refused_with_one_line_and_no_study(tmp_path, photo, capsys):
    good = tmp_path / "good.png"
    Image.fromarray(photo[:64, :64]).save(good)
    bad = tmp_path / "bad"
    bad.mkdir()
    for path in bad_inputs(bad, photo).values():
        assert_refused(capsys, tmp_path, str(path), path, "--methods", "ssim")
    (tmp_path / "empty").mkdir()
    assert_refused(capsys, tmp_path, str(tmp_path / "empty"), tmp_path / "empty")
    assert_refused(capsys, tmp_path, str(tmp_path / "nope.png"), tmp_path / "nope.png")
    words = tmp_path / "clip.mp4"
    words.write_text("not a video\n")
    assert_refused(capsys, tmp_path, str(words), words)
    missing = tmp_path / "no_such_run"
    assert_refused(capsys, tmp_path, str(missing), good, "--checkpoint", f"mine={missing}")
    assert_refused(capsys, tmp_path, "unknown", good, "--methods", "unknown")
    assert_refused(capsys, tmp_path, "compressed", good, "--methods", "compressed=x")
    assert_refused(capsys, tmp_path, "--quality 101", good, "--quality", "101")
    (tmp_path / "study").mkdir()
    status, err = run_here(capsys, "prepare", good, "--out", tmp_path / "study")
    assert status == 1 and "already exists" in err
    status, err = run_here(capsys, "report", tmp_path / "bad")
    assert status == 1 and "not a study folder" in err


# --- the study end to end ------------------------------------------------------------


@pytest.fixture(scope="module")
def study(tmp_path_factory, photo) -> manifest.Study:
    """Two photos and one frame of a clip, 64² each, at QF 10 and 20, restored by the
    packaged ssim and gan generators: 3 items × 2 qualities × 3 pairs = 18 trials."""
    folder = tmp_path_factory.mktemp("study")
    inputs = folder / "inputs"
    inputs.mkdir()
    Image.fromarray(photo).save(inputs / "chelsea.png")
    import skimage.data

    Image.fromarray(skimage.data.coffee()).save(inputs / "coffee.jpg", quality=95)
    make_video(inputs / "pan.mp4", photo, frames=6, size=(96, 80), audio=False)
    out = folder / "study"
    status = cli.run(
        ["prepare", str(inputs), "--out", str(out), "--crop", "64", "--frames", "1",
         "--quality", *map(str, QUALITIES), "--methods", *METHODS, "--seed", "7",
         "--participants", "1"]
    )  # fmt: skip
    assert status == 0
    return manifest.Study.load(out)


def test_prepare_records_what_it_shows(study):
    data = study.manifest
    assert data["seed"] == 7 and data["qualities"] == list(QUALITIES)
    assert list(data["methods"]) == list(METHODS)
    items = sorted(data["items"])
    assert items == ["inputs/chelsea.png", "inputs/coffee.jpg", "inputs/pan.mp4#0"]
    assert data["items"]["inputs/pan.mp4#0"]["frame"] == 0
    assert data["items"]["inputs/chelsea.png"]["crop"] == [193, 118, 64, 64]
    # The recorded trials are the seeded design, image for image.
    assert study.trials == design.build_trials(list(data["items"]), list(QUALITIES), [*METHODS], 7)
    # --participants 1: the first issued id.
    assert [label for (label,) in rows_of(study, "SELECT label FROM issued")][:1] == ["P001"]
    files = sorted(p.name for p in study.image_dir.iterdir())
    assert len(files) == 3 * (1 + 2 * 3) and all(
        re.fullmatch(r"[0-9a-f]{20}\.png", f) for f in files
    )
    # The file recorded as the compressed version is the JPEG of the recorded original.
    original = np.asarray(Image.open(study.image_dir / study.image(items[0], None, "original")))
    assert original.shape == (64, 64, 3)
    for quality in QUALITIES:
        compressed = Image.open(study.image_dir / study.image(items[0], quality, "compressed"))
        expected = degrade.jpeg_roundtrip(original, quality)
        np.testing.assert_array_equal(np.asarray(compressed), expected)
        for method in METHODS:
            restored = np.asarray(
                Image.open(study.image_dir / study.image(items[0], quality, method))
            )
            assert not np.array_equal(restored, expected)


@pytest.fixture(scope="module")
def server(study):
    """The study's web app on a free local port, for the whole module."""
    web = app_lib.make_server(app_lib.create_app(study.folder), "127.0.0.1", 0)
    thread = threading.Thread(target=web.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{web.port}"
    web.shutdown()
    thread.join(timeout=10)


def fetch(
    url: str, form: dict | None = None, headers: dict | None = None, body: bytes | None = None
) -> tuple[int, email.message.Message, str]:
    """(status, headers (names in any case), body) of a GET, or of a POST of `form` (or
    of raw `body`), with redirects followed."""
    data = urllib.parse.urlencode(form).encode() if form is not None else body
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read().decode("latin-1")
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode("latin-1")


def http(url: str, form: dict | None = None, headers: dict | None = None) -> tuple[int, str]:
    """(status, body) of a GET, or of a POST of `form` (redirects followed)."""
    status, _, page = fetch(url, form, headers)
    return status, page


def issue(study: manifest.Study, count: int = 1) -> list[str]:
    """`count` new participant ids for the study."""
    connection = store.connect(study.folder)
    try:
        return [participant for participant, _ in store.issue(connection, count)]
    finally:
        connection.close()


def on_screen(page: str) -> tuple[str, str]:
    """(trial id, form token) of a trial page."""
    trial = re.search(r'name="trial" value="(t\d+)"', page)[1]
    return trial, re.search(r'name="token" value="([^"]+)"', page)[1]


def rows_of(study: manifest.Study, sql: str, *parameters) -> list[tuple]:
    with sqlite3.connect(study.folder / store.FILENAME) as connection:
        return connection.execute(sql, parameters).fetchall()


def test_app_refuses_bad_requests_and_keeps_the_first_answer(study, server):
    (carol,) = issue(study)
    assert http(f"{server}/p/not%20an%20id")[0] == 400
    assert http(f"{server}/?participant=a/b")[0] in (400, 404)
    assert http(f"{server}/image/..%2Fstudy.json")[0] == 404
    assert http(f"{server}/image/{'0' * 20}.png")[0] == 404
    status, page = http(f"{server}/p/{carol}")
    trial, token = on_screen(page)
    mine = {"trial": trial, "token": token}
    assert http(f"{server}/p/{carol}", {**mine, "choice": "up"})[0] == 400
    assert http(f"{server}/p/{carol}", {**mine, "trial": "t999", "choice": "left"})[0] == 400
    # Without JavaScript: no response time. Sent twice: one row, the first choice.
    assert http(f"{server}/p/{carol}", {**mine, "choice": "left"})[0] == 200
    assert http(f"{server}/p/{carol}", {**mine, "choice": "right"})[0] == 200
    rows = rows_of(study, "SELECT choice, response_ms FROM answers WHERE participant = ?", carol)
    assert rows == [("left", None)]


# --- a hostile participant -----------------------------------------------------------
# Each test below is a hole found on the first version of the app, probed as a
# participant who wants to know which picture is which, or to answer as others would.

# The order `prepare` makes an item's pictures in: the original, then at each quality
# the compressed version and the methods in --methods order.
MADE = [(None, design.ORIGINAL)] + [
    (quality, version) for quality in QUALITIES for version in (design.COMPRESSED, *METHODS)
]


def labelled_by_order(study: manifest.Study, key) -> int:
    """The trials whose two pictures a participant names right by sorting each item's
    pictures (grouped, as on the pages, by their reference picture) by `key` of the
    file name and reading them as made in the MADE order. Shuffled first, so that
    pictures `key` cannot tell apart are not left in the order they were made."""
    right, rng = 0, random.Random(0)
    for item in study.manifest["items"]:
        names = [study.image(item, quality, version) for quality, version in MADE]
        rng.shuffle(names)
        guess = dict(zip(sorted(names, key=key), MADE))
        for trial in (t for t in study.trials if t.item == item):
            named = [
                guess[study.image(item, trial.quality, side)] for side in (trial.left, trial.right)
            ]
            right += named == [(trial.quality, trial.left), (trial.quality, trial.right)]
    return right


def test_picture_headers_do_not_order_a_trials_pictures(study, server):
    """The ETag attack, over HTTP: sort an item's pictures by any validator a response
    carries (Last-Modified, then a time inside the ETag, then the ETag itself)."""
    headers = {}
    for item in study.manifest["items"]:
        for quality, version in MADE:
            name = study.image(item, quality, version)
            status, headers[name], _ = fetch(f"{server}/image/{name}")
            assert status == 200 and headers[name]["Content-Type"] == "image/png"

    def key(name: str) -> tuple:
        found = headers[name]
        modified = found.get("Last-Modified")
        stamp = email.utils.parsedate_to_datetime(modified).timestamp() if modified else 0.0
        etag = found.get("ETag", "")
        inside = re.search(r"\d{9,}(\.\d+)?", etag)
        return stamp, float(inside[0]) if inside else 0.0, etag

    # Chance is about 1 in 42 per trial; the first app's headers named all 18.
    assert labelled_by_order(study, key) <= len(study.trials) // 6
    for name, found in headers.items():
        assert "Last-Modified" not in found
        assert str(int((study.image_dir / name).stat().st_mtime)) not in found.get("ETag", "")
    # A cached picture is revalidated by its opaque ETag alone.
    name = study.image(next(iter(study.manifest["items"])), QUALITIES[0], METHODS[0])
    etag = headers[name]["ETag"]
    assert fetch(f"{server}/image/{name}", headers={"If-None-Match": etag})[0] == 304


def test_picture_files_and_names_tell_nothing(study):
    """On disk: one modification time, and creation (inode, change time) in the order
    of the opaque names; and no name can be recomputed from a picture's pixels and a
    guess at its version with the seed study.json records."""
    stats_of = {path.name: path.stat() for path in study.image_dir.iterdir()}
    for field in ("st_mtime_ns", "st_ctime_ns", "st_ino"):
        key = lambda name, field=field: getattr(stats_of[name], field)  # noqa: E731
        assert labelled_by_order(study, key) <= len(study.trials) // 6, field
    assert len({stat.st_mtime_ns for stat in stats_of.values()}) == 1
    for item in study.manifest["items"]:
        for quality, version in MADE:
            name = study.image(item, quality, version)
            pixels = np.asarray(Image.open(study.image_dir / name)).tobytes()
            for guess in (design.ORIGINAL, design.COMPRESSED, *METHODS):
                assert design.image_name(study.seed, item, quality, guess, pixels) != name


def count_rows(study: manifest.Study, participant: str) -> int:
    """The rows an id has in the participants, shown and answers tables."""
    return sum(
        rows_of(study, f"SELECT COUNT(*) FROM {table} WHERE participant = ?", participant)[0][0]
        for table in ("participants", "shown", "answers")
    )


def test_unknown_ids_are_refused_and_create_nothing(study, server):
    for url in (f"{server}/p/mallory", f"{server}/?participant=mallory"):
        status, page = http(url)
        assert status == 403 and "not an id of this study" in page
    status, _ = http(f"{server}/p/mallory", {"trial": study.trials[0].id, "choice": "left"})
    assert status == 403
    assert count_rows(study, "mallory") == 0


def test_only_the_trial_on_screen_is_answered(study, server):
    (dave,) = issue(study)
    trial, token = on_screen(http(f"{server}/p/{dave}")[1])
    other = next(t.id for t in study.trials if t.id != trial)
    for form in (
        {"trial": other, "token": token},  # a trial never shown
        {"trial": trial},  # no token
        {"trial": trial, "token": "x" + token[1:]},  # somebody else's token
    ):
        status, page = http(f"{server}/p/{dave}", {**form, "choice": "left", "response_ms": 1e-7})
        assert status == 409 and 'id="stale"' in page, form
    assert rows_of(study, "SELECT * FROM answers WHERE participant = ?", dave) == []
    # A reload serves the same pair under a new token: the old page's token is dead.
    assert http(f"{server}/p/{dave}")[0] == 200
    assert http(f"{server}/p/{dave}", {"trial": trial, "token": token, "choice": "left"})[0] == 409
    trial, token = on_screen(http(f"{server}/p/{dave}")[1])
    form = {"trial": trial, "token": token, "choice": "right", "response_ms": "3600000"}
    assert http(f"{server}/p/{dave}", form)[0] == 200
    ((shown, answered, client),) = rows_of(
        study,
        "SELECT shown_at, answered_at, response_ms FROM answers WHERE participant = ?",
        dave,
    )
    # The server's times; a browser time longer than the server's is not kept.
    assert shown is not None and 0 < answered - shown < 60 and client is None


def test_concurrent_identical_answers_make_one_row(study, server):
    (kim,) = issue(study)
    trial, token = on_screen(http(f"{server}/p/{kim}")[1])
    form = {"trial": trial, "token": token, "choice": "left"}
    statuses = []
    threads = [
        threading.Thread(target=lambda: statuses.append(http(f"{server}/p/{kim}", form)[0]))
        for _ in range(20)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # Each either recorded it or found it recorded; none was refused or failed.
    assert statuses == [200] * 20
    assert len(rows_of(study, "SELECT * FROM answers WHERE participant = ?", kim)) == 1


def test_cross_site_requests_rebinding_and_framing_are_refused(study, server):
    (erin,) = issue(study)
    status, headers, page = fetch(f"{server}/p/{erin}")
    assert status == 200 and headers["X-Frame-Options"] == "DENY"
    policy = headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert 'style="' not in page and "<script>" not in page  # nothing the policy blocks
    trial, token = on_screen(page)
    form = {"trial": trial, "token": token, "choice": "left"}
    port = server.rsplit(":", 1)[1]
    for headers in (
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site", "Origin": f"http://127.0.0.1:{port}"},
    ):
        assert http(f"{server}/p/{erin}", form, headers)[0] == 403, headers
    # DNS rebinding: a page on evil.example whose name now points here.
    assert http(f"{server}/", headers={"Host": f"evil.example:{port}"})[0] == 400
    assert http(f"{server}/p/{erin}", form, {"Host": "evil.example"})[0] == 400
    assert rows_of(study, "SELECT * FROM answers WHERE participant = ?", erin) == []
    same = {"Origin": f"http://127.0.0.1:{port}", "Sec-Fetch-Site": "same-origin"}
    assert http(f"{server}/p/{erin}", form, same)[0] == 200
    assert len(rows_of(study, "SELECT * FROM answers WHERE participant = ?", erin)) == 1


def test_request_and_header_sizes_are_bounded(study, server):
    (frank,) = issue(study)
    trial, token = on_screen(http(f"{server}/p/{frank}")[1])
    fields = {"trial": trial, "token": token, "choice": "left"}
    boundary = "b0undary"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
             for k, v in fields.items()]  # fmt: skip
    for size in (app_lib.MAX_BODY + 1, app_lib.MAX_REQUEST_BODY + 1):
        padding = f'--{boundary}\r\nContent-Disposition: form-data; name="pad"\r\n\r\n'
        body = "".join(parts) + padding
        body = body + "x" * (size - len(body) - len(boundary) - 8) + f"\r\n--{boundary}--\r\n"
        assert len(body) >= size
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        status = fetch(f"{server}/p/{frank}", headers=headers, body=body.encode())[0]
        assert status == 413, size
    # A form, not a multipart body, even a small one.
    small = "".join(parts) + f"--{boundary}--\r\n"
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    assert fetch(f"{server}/p/{frank}", headers=headers, body=small.encode())[0] == 415
    assert rows_of(study, "SELECT * FROM answers WHERE participant = ?", frank) == []
    # A 60 KB header is refused before the app; a long User-Agent is cut when stored.
    (grace, heidi) = issue(study, 2)
    assert http(f"{server}/p/{grace}", headers={"User-Agent": "x" * 60_000})[0] == 431
    assert count_rows(study, grace) == 0
    assert http(f"{server}/p/{heidi}", headers={"User-Agent": "y" * 4000})[0] == 200
    ((agent,),) = rows_of(study, "SELECT user_agent FROM participants WHERE participant = ?", heidi)
    assert agent == "y" * store.USER_AGENT_CHARS


def test_idle_connections_do_not_become_threads(server):
    host, port = server.removeprefix("http://").rsplit(":", 1)
    before = threading.active_count()
    idle = []
    try:
        for _ in range(300):
            idle.append(socket.create_connection((host, int(port)), timeout=10))
        idle[0].sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and one half a request
        time.sleep(0.5)
        assert threading.active_count() - before <= 2
    finally:
        for connection in idle:
            connection.close()
    # Once they are gone, the next participant is served.
    deadline = time.monotonic() + 20
    while http(f"{server}/")[0] != 200:
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_ids_are_matched_whole(study, server):
    (ivan,) = issue(study)
    for suffix in ("%0A", "%0D%0A", "%00", "%20"):
        assert http(f"{server}/p/{ivan}{suffix}")[0] == 400, suffix
    assert http(f"{server}/p/zed%0A")[0] == 400
    assert count_rows(study, ivan) == count_rows(study, f"{ivan}\n") == 0
    assert count_rows(study, "zed\n") == 0


def fresh_copy(study: manifest.Study, tmp_path: Path) -> Path:
    """The study's manifest and pictures in a new folder: no ids, no answers."""
    folder = tmp_path / "study"
    folder.mkdir()
    shutil.copy(study.folder / manifest.FILENAME, folder)
    shutil.copytree(study.image_dir, folder / manifest.IMAGES)
    return folder


def old_answer(folder: Path, participant: str, trial: design.Trial) -> None:
    """An answer row written straight into the database, as by an earlier server."""
    connection = store.connect(folder)
    with connection:
        connection.execute("INSERT INTO participants VALUES (?, '[]', 0, NULL)", (participant,))
        connection.execute(
            "INSERT INTO answers VALUES (?, ?, 0, ?, ?, ?, ?, ?, ?, 'left', ?, NULL, 1, 2)",
            (participant, trial.id, trial.item, trial.quality, *trial.pair, trial.left,
             trial.right, trial.left),
        )  # fmt: skip
    connection.close()


def test_participants_are_issued_listed_and_adopted(study, tmp_path, capsys):
    folder = fresh_copy(study, tmp_path)
    url = "http://study.lab.example:8000"
    assert cli.run(["participants", str(folder), "--new", "2", "--url", url]) == 0
    out, err = capsys.readouterr()
    lines = [line.split("\t") for line in out.splitlines()]
    assert [label for label, _ in lines] == ["P001", "P002"] and "2 new participant id" in err
    pattern = r"http://study\.lab\.example:8000/\?participant=([A-Za-z0-9_-]{16})"
    first, second = (re.fullmatch(pattern, link)[1] for _, link in lines)
    assert first != second
    for bad in (["--new", "0"], ["--url", url], ["--new", "1", "--url", "ftp://x"]):
        status, err = run_here(capsys, "participants", folder, *bad)
        assert status == 1 and len(err.strip().splitlines()) == 1, (bad, err)
    # A study begun before ids were issued: "olduser" answered under a name of their own.
    old_answer(folder, first, study.trials[0])
    old_answer(folder, "olduser", study.trials[1])
    assert cli.run(["report", str(folder)]) == 0
    report = json.loads((folder / "report" / "report.json").read_text())
    assert report["answers"] == 1 and report["left_out"] == 1
    assert list(report["participants"]) == ["P001"]
    assert (
        "1 answer(s) from ids this study never issued"
        in (folder / "report" / "report.md").read_text()
    )
    capsys.readouterr()
    assert cli.run(["participants", str(folder), "--adopt"]) == 0
    out, err = capsys.readouterr()
    assert "1 id(s) recorded before ids were issued are now issued" in err
    assert [line.split("\t") for line in out.splitlines()] == [
        ["P001", first, "1 answered"],
        ["P002", second, "not started"],
        ["olduser", "olduser", "1 answered"],
    ]
    assert cli.run(["report", str(folder)]) == 0
    report = json.loads((folder / "report" / "report.json").read_text())
    assert report["answers"] == 2 and report["left_out"] == 0


def test_serving_the_network_takes_issued_ids_and_named_hosts(study, tmp_path, capsys):
    """`serve --host 0.0.0.0` on a study without issued ids refuses to start; with ids,
    it answers only requests naming an allowed host."""
    folder = fresh_copy(study, tmp_path)
    command = [sys.executable, "-m", "jaxrestore.study", "serve", str(folder),
               "--host", "0.0.0.0", "--port", "0"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1 and "no participant ids issued" in done.stderr, done.stderr
    assert cli.run(["participants", str(folder), "--new", "1"]) == 0
    out, err = capsys.readouterr()
    ((label, judy),) = [line.split("\t") for line in out.splitlines()]
    assert label == "P001" and "1 new participant id" in err
    command += ["--allow-host", "study.lab.example"]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as serving:
        try:
            line = serving.stdout.readline()
            port = re.search(r"http://0\.0\.0\.0:(\d+)/", line)[1]
            base = f"http://127.0.0.1:{port}"
            assert http(f"{base}/p/{judy}", headers={"Host": "192.0.2.7"})[0] == 400
            assert http(f"{base}/p/{judy}", headers={"Host": f"study.lab.example:{port}"})[0] == 200
            assert http(f"{base}/p/{judy}")[0] == 200
            assert http(f"{base}/p/nobody")[0] == 403
        finally:
            serving.terminate()


@pytest.fixture(scope="session")
def browser_paths() -> tuple[str, str]:
    """(chromium, chromedriver): from PATH, else installed from Debian's packages when
    running as root with apt-get; otherwise the browser test is skipped."""

    def find():
        return shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which(
            "chromedriver"
        )

    browser, driver = find()
    if browser and driver:
        return browser, driver
    if not shutil.which("apt-get") or os.geteuid() != 0:
        pytest.skip("needs chromium and chromedriver on PATH (apt-get install chromium "
                    "chromium-driver), or root with apt-get to install them")  # fmt: skip
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"],
    ):
        try:
            done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
        except subprocess.TimeoutExpired:
            pytest.skip(f"{' '.join(command)}: timed out")
        if done.returncode:
            reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
            pytest.skip(f"{' '.join(command)} failed: {reason}")
    browser, driver = find()
    if not (browser and driver):
        pytest.skip("chromium or chromedriver still not on PATH after apt-get install")
    return browser, driver


@pytest.fixture
def browser(browser_paths):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser_paths[0]
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1200,900"):  # fmt: skip
        options.add_argument(flag)
    # An explicit driver path: selenium-manager would try to download one.
    driver = webdriver.Chrome(service=Service(browser_paths[1]), options=options)
    yield driver
    driver.quit()


def preferred_side(trial: design.Trial) -> str:
    return "left" if TASTE.index(trial.left) < TASTE.index(trial.right) else "right"


def test_a_participant_in_a_real_browser(study, server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    total = len(study.trials)
    wait = WebDriverWait(browser, 20)

    def position() -> int:
        text = browser.find_element(By.ID, "progress").text
        return int(re.fullmatch(rf"Pair (\d+) of {total}", text)[1])

    def choose(index: int) -> None:
        """Answer the pair on screen as TASTE says: by click or, every other time, key."""
        wait.until(lambda d: "ready" in d.find_element(By.ID, "choice-form").get_attribute("class"))
        trial = study.trial(browser.find_element(By.NAME, "trial").get_attribute("value"))
        side = preferred_side(trial)
        if index % 2:
            key = Keys.ARROW_LEFT if side == "left" else Keys.ARROW_RIGHT
            browser.find_element(By.TAG_NAME, "body").send_keys(key)
        else:
            browser.find_element(By.ID, side).click()
        wait.until(lambda d: d.find_elements(By.ID, "done") or position() == index + 2)

    alice, bob = issue(study, 2)
    browser.get(f"{server}/")
    browser.find_element(By.ID, "participant").send_keys(alice)
    browser.find_element(By.ID, "begin").click()
    wait.until(lambda d: d.current_url.endswith(f"/p/{alice}"))
    assert position() == 1
    # Blind: no version is named anywhere in the page, and pictures have opaque names.
    page = browser.page_source.lower()
    for version in (*METHODS, design.COMPRESSED):
        assert not re.search(rf"\b{version}\b", page), version
    sources = [img.get_attribute("src") for img in browser.find_elements(By.TAG_NAME, "img")]
    assert len(sources) == 3 and all(re.search(r"/image/[0-9a-f]{20}\.png$", s) for s in sources)
    # Zoom and reference: keyboard toggles.
    reference = browser.find_element(By.ID, "reference")
    assert not reference.is_displayed()
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys("z")
    body.send_keys("r")
    assert "zoomed" in body.get_attribute("class") and reference.is_displayed()
    body.send_keys("z")
    assert "zoomed" not in (body.get_attribute("class") or "")

    for index in range(5):
        choose(index)
    browser.refresh()  # a reload continues at the next pair, without a second answer
    assert position() == 6
    browser.get(f"{server}/")  # and so does coming back with the same id
    browser.find_element(By.ID, "participant").send_keys(alice)
    browser.find_element(By.ID, "begin").click()
    wait.until(lambda d: d.current_url.endswith(f"/p/{alice}"))
    assert position() == 6
    for index in range(5, total):
        choose(index)
    assert (
        browser.find_element(By.ID, "done").text
        == f"All {total} pairs are done. You can close this page."
    )

    with sqlite3.connect(study.folder / store.FILENAME) as connection:
        connection.row_factory = sqlite3.Row
        rows = connection.execute(
            "SELECT * FROM answers WHERE participant = ? ORDER BY position", (alice,)
        ).fetchall()
        order = json.loads(
            connection.execute(
                "SELECT trial_order FROM participants WHERE participant = ?", (alice,)
            ).fetchone()[0]
        )
    assert order == design.participant_order([t.id for t in study.trials], alice, study.seed)
    assert [row["trial"] for row in rows] == order and [row["position"] for row in rows] == list(
        range(total)
    )
    for row in rows:
        trial = study.trial(row["trial"])
        assert (row["left_version"], row["right_version"]) == (trial.left, trial.right)
        assert row["choice"] == preferred_side(trial)
        assert row["chosen"] == TASTE[min(TASTE.index(trial.left), TASTE.index(trial.right))]
        assert 0 < row["response_ms"] < 60_000
        assert row["shown_at"] <= row["answered_at"]

    # A second participant without JavaScript, always choosing the left picture.
    for _ in range(total):
        trial, token = on_screen(http(f"{server}/p/{bob}")[1])
        http(f"{server}/p/{bob}", {"trial": trial, "token": token, "choice": "left"})
    assert f"All {total} pairs are done" in http(f"{server}/p/{bob}")[1]

    # The report: counts recomputed here from the rows, tests straight from scipy.
    assert cli.run(["report", str(study.folder)]) == 0
    report = json.loads((study.folder / "report" / "report.json").read_text())
    with sqlite3.connect(study.folder / store.FILENAME) as connection:
        answers = connection.execute("SELECT a, b, quality, chosen FROM answers").fetchall()
    assert report["answers"] == len(answers)
    labels = {row[0]: row[1] for row in rows_of(study, "SELECT participant, label FROM issued")}
    assert report["participants"][labels[alice]]["answered"] == total
    assert report["participants"][labels[bob]]["left_choices"] == total
    # Reports name participants by label: an id lets its holder answer.
    report_text = json.dumps(report) + (study.folder / "report" / "report.md").read_text()
    assert alice not in report_text and bob not in report_text
    for row in report["rows"]:
        mine = [x for x in answers if x[:2] == (row["a"], row["b"])]
        if row["quality"] != "all":
            mine = [x for x in mine if x[2] == row["quality"]]
        wins = sum(x[3] == row["a"] for x in mine)
        assert (row["n"], row["wins"]) == (len(mine), wins), row
        test = scipy_stats.binomtest(wins, len(mine))
        interval = test.proportion_ci(method="exact")
        assert row["p_value"] == pytest.approx(test.pvalue)
        assert (row["low"], row["high"]) == pytest.approx((interval.low, interval.high))
        if (row["a"], row["b"]) == ("gan", "compressed") and row["quality"] == 10:
            # alice always took gan (3 items); bob took it where it was on the left.
            bobs = [t for t in study.trials if t.pair == ("gan", "compressed") and t.quality == 10]
            assert row["wins"] >= 3 + sum(t.left == "gan" for t in bobs)
    markdown = (study.folder / "report" / "report.md").read_text()
    first = report["rows"][0]
    assert (
        f"| {first['a']} vs {first['b']} | {first['quality']} | {first['n']} | {first['wins']} |"
        in markdown
    )
    assert "Clopper-Pearson" in markdown and f"| {labels[alice]} | 18 of 18 |" in markdown
    assert (study.folder / "report" / "preference.png").read_bytes()[:4] == b"\x89PNG"
