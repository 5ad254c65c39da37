"""Data: image sources, degradations (codecs) and the grain input pipeline."""
