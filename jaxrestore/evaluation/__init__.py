"""Measuring restorations: what the evaluate, compare and plot_run commands run.

- `protocol`: the papers' protocol (compress, restore as the restore command does,
  score with full-reference, no-reference and task metrics; video clips too);
- `report`: report.md and the figures of an evaluation;
- `no_reference`: BRISQUE;
- `tasks`: detector, classifier and face finder on original vs restored;
- `compare`: several generators under many degradations, as one PSNR table;
- `curves`: a training run's curves from its metrics.jsonl.
"""
