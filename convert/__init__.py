"""Converters: a trained checkpoint -> ONNX, TFLite and CoreML artifacts, fp32 and int8, each verified
against PyTorch and packed into a ``bundle/`` a device can check before it trusts it.

    dipn convert runs/demo/run/best.pt --to onnx,tflite,coreml --quantize int8 \\
        --samples runs/demo/samples --out runs/demo/bundle

Modules, in the order a conversion runs them:
  signature    the fixed input/output signature (named int32 inputs, p_realtime / p_longterm)
  reference    the PyTorch checkpoint as a runner (the reference; injected into a device wrapper)
  onnx_export  torch.onnx (legacy exporter, opset 17: keeps a native GRU op)
  tf_graph     DIPN re-expressed in TensorFlow, all recurrences in one while loop
  tflite_export  TFLite from that graph (one WHILE op), or the litert-torch fallback (unrolled)
  coreml_export  torch.jit.trace -> coremltools mlprogram; package inspection on Linux
  quantize     the int8 recipes of every format, in one place
  parity       artifact vs PyTorch fp32: max abs diff, AUC drop, NaN; the gate
  golden       golden cases: raw event streams made from the feature manifest
  signing      Ed25519 keys and the signature of a manifest
  bundle       the whole conversion, writing bundle/ and its manifest.json

This is the write side of a bundle. The read side, what a device needs (the format, signature
check, runners, golden self-test), is ``dipn.bundle``, which this package imports for the format
and to run each artifact it writes. Nothing in ``dipn`` imports this package (``dipn convert``
imports it inside its ``run``). Heavy libraries (TensorFlow, onnxruntime, coremltools) are imported
inside the functions that use them.
"""
