"""Deployment: ONNX export of a trained run with parity on its real test images, latency and a
model card (:mod:`.export`, :mod:`.card`, :mod:`.target`)."""
