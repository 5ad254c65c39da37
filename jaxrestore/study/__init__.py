"""A human preference study of restorations: prepare, serve, report.

    python -m jaxrestore.study prepare INPUT... --out STUDY [--quality 10 20]
        [--codec jpeg|h264|mpeg2] [--methods ssim gan | NAME=PATH ...] [--frames 4]
        [--crop W[xH]] [--seed 0] [--participants N]
    python -m jaxrestore.study participants STUDY [--new N [--url URL] | --adopt]
    python -m jaxrestore.study serve STUDY [--host 127.0.0.1] [--port 8000]
        [--allow-host NAME ...] [--reference toggle|on|off] [--zoom 2]
    python -m jaxrestore.study report STUDY [--out STUDY/report]

As in the papers' subjective evaluation, people choose between two versions of a
picture shown side by side without being told which is which (two-alternative
forced choice): each method's restoration against the compressed picture, and
the methods against each other (e.g. GAN against SSIM-only). `prepare`
(prepare.py) writes the pictures and study.json (manifest.py) with the trials
and their balanced, seeded left/right placement (design.py); `participants`
issues the ids people take part under (random tokens, store.py), the only ids
the server accepts; `serve` (app.py) runs the web app that records each choice
and its response time in SQLite (store.py) and resumes a participant by id;
`report` (report.py, stats.py) gives per pair and quality the preference rate
with a 95% Clopper-Pearson interval and an exact binomial test, in report.md,
report.json and a plot.

The study has to stay blind and its answers the participants' own even when a
participant is hostile: see app.py for what the server refuses, prepare.py for
why the pictures' names and file times tell nothing, and docs/evaluation.md for
running a study over a network.
"""
