"""Benchmarks: host pipeline, train steps, inference, device scaling, and the PyTorch
reference they are compared with (`python -m jaxrestore.bench`, the command line in
`__main__`).

- `common`: timing, records, synthetic inputs, worker processes;
- `pipeline`, `train`, `infer`, `scaling`, `reference`: one benchmark each;
- `torch_reference`: the PyTorch port of the generator the `reference` benchmark runs.
"""
