"""Data: image sources, degradations (codecs), the grain input pipeline, the assembly of
the default photo set (`assemble`) and TFDS packing (`tfds_pack`)."""
