"""The read side of a model bundle: what a device needs to trust and run one. Numpy and
``cryptography`` only; each runner imports its own runtime when it is built.

  manifest    the bundle's format: manifest.json, every file's sha256 and size
  trust       the Ed25519 signature of the manifest by the model builder's key
  golden      golden.json's layout (stored ids, their padding)
  selftest    the golden cases through this encoder and one artifact, refused on any difference
  runners     one ``scores(inputs) -> (N, 2)`` interface per runtime: onnxruntime, LiteRT, CoreML
  litert_golden  the stored golden ids through any LiteRT interpreter, numpy only (old runtimes)
  timing      latency of a call, in percentiles
  errors      why a bundle or an artifact is refused

``convert`` writes bundles and imports this package for their format; nothing here imports
``convert``, torch or a converter.
"""
