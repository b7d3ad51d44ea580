"""Benchmark machinery: trainer, metrics, cost profiling, results store, executors and the CLI."""
