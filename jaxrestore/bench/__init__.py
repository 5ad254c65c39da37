"""Benchmarks: host pipeline, train steps, inference, device scaling, and the PyTorch
reference they are compared with (`python -m jaxrestore.bench`)."""
