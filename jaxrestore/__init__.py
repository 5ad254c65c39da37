"""jaxrestore: compression-artifact removal for images and video in JAX/Flax."""

__version__ = "0.1.0"
