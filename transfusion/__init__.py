"""transfusion: lightweight-model-first benchmarking of transfer learning for medical imaging.

Subpackages, in the order data flows:
``models`` (registry and stage view) → ``data`` (tasks and datasets) → ``transfer``
(weight sources and init regimes) → ``bench`` (trainer, cost profiler, harness, CLI) →
``analysis`` (similarity and studies, reports).
"""

__version__ = "0.1.0"
