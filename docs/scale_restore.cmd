python -m jaxrestore.archive {IN} --output {OUT} --workers {WORKERS}
