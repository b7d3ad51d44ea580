"""Representation similarity (CCA, SVCCA, PWCCA, CKA), per-stage activations and their
similarity, kNN probes, first-conv filter pictures, and the studies over a results store
(:mod:`transfusion.analysis.studies`). See ``docs/analysis.md``."""
