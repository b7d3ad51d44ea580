"""Tiny suites shared by the harness, report, export and studies tests: a few 32 px runs of a few
steps each, so a whole grid trains in seconds on one thread."""

from __future__ import annotations

TRAIN = "steps = 3\nbatch_size = 16\nthreads = 1\nbootstrap = 50\n"
PRETRAIN = '[source]\ndataset = "synth-natural?n=160&res=32"\n[source.train]\nsteps = 2\nbatch_size = 16\nbootstrap = 0\nthreads = 1\n'
COST = "[cost]\nonnx = false\nbatch = 4\nrepeats = 2\n"


def tiny_suite(name: str, init: tuple[str, ...] = ("random",), *, seeds: tuple[int, ...] = (0,),
               train_size: str = '"all"', data: str = "synth-retina?n=160&res=32", train: str = TRAIN,
               pretrain: bool = True, cost: str = COST, grid_extra: str = "", extra: str = "") -> str:
    """Suite TOML: CBR-Small on ``data`` × ``init`` × ``seeds`` × ``train_size`` (a TOML list
    body), ``[train]`` options ``train``, a tiny synth-natural pretraining when ``pretrain``,
    then ``cost`` and ``extra`` tables."""
    inits = ", ".join(f'"{i}"' for i in init)
    return (f'name = "{name}"\n[grid]\ndataset = ["{data}"]\nmodel = ["cbr_small"]\ninit = [{inits}]\n'
            f"seed = [{', '.join(map(str, seeds))}]\ntrain_size = [{train_size}]\n{grid_extra}"
            f"[train]\n{train}{PRETRAIN if pretrain else ''}{cost}{extra}")
