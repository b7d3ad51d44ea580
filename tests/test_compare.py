"""`transfusion compare`: a rerun against a reference, cell by cell and verdict by verdict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _records import hand_store, noisy, seeded, targets

from transfusion.cli.main import main
from transfusion.report.build import build_report
from transfusion.report.compare import compare, envelope

T = targets()
BASE = {s: noisy(T, 1.0, 10 + s) for s in range(3)}


def _store(path, *, gabor_noise: float, shift: float = 0.0):
    """random, transfer (= random + shift) and gabor (noise ``gabor_noise``) on three seeds."""
    runs = [*seeded("cbr_small", "random", lambda s: {"scores": BASE[s], "targets": T}),
            *seeded("cbr_small", "transfer", lambda s: {"scores": BASE[s] + shift * T, "targets": T}),
            *seeded("cbr_small", "gabor", lambda s: {"scores": noisy(T, gabor_noise, 20 + s), "targets": T})]
    return hand_store(path, runs, costs=[{"model": "cbr_small", "params": 2_000_000, "macs": 3e8, "torch_ms": 5.0}])


def test_identical_results_compare_clean(tmp_path, capsys):
    a = _store(tmp_path / "a.sqlite", gabor_noise=6.0)
    result = compare(a, a)
    assert not result.changed and not result.outside
    assert len(result.cells) == 3 and len(result.verdicts) == 2 and all(c["diff"] == 0 for c in result.cells)
    assert main(["compare", str(a), str(a), "--strict"]) == 0
    assert "verdicts: 2 of 2 unchanged" in capsys.readouterr().out


@pytest.mark.slow
def test_a_changed_verdict_fails_strict_from_stores_and_from_report_folders(tmp_path, capsys):
    ref = _store(tmp_path / "ref.sqlite", gabor_noise=6.0)   # gabor clearly worse than random
    new = _store(tmp_path / "new.sqlite", gabor_noise=1.0)   # gabor now as good as random
    result = compare(ref, new)
    (changed,) = result.verdict_changes
    assert (changed["regime"], changed["ref_verdict"]) == ("gabor", "worse") and changed["new_verdict"] != "worse"
    assert next(c for c in result.cells if c["init"] == "gabor")["inside"] is False  # far outside its envelope
    assert main(["compare", str(ref), str(new)]) == 0  # without --strict: a report, not a failure
    assert main(["compare", str(ref), str(new), "--strict"]) == 1
    out = capsys.readouterr().out
    assert "changed" in out and "gabor − random: worse" in out
    # the same from report folders (read from tables/*.csv)
    ra = build_report(ref, tmp_path / "ra", n_boot=200, studies=False)["md"].parent
    rb = build_report(new, tmp_path / "rb", n_boot=200, studies=False)["md"].parent
    from_reports = compare(ra, rb)
    assert [v["regime"] for v in from_reports.verdict_changes] == ["gabor"]
    assert main(["compare", str(ra), str(rb), "--strict", "--json", str(tmp_path / "c.json")]) == 1
    doc = json.loads((tmp_path / "c.json").read_text())
    assert doc["changed"] is True and {v["regime"] for v in doc["verdicts"] if v["changed"]} == {"gabor"}


def test_rerun_envelope_is_a_two_sample_interval_without_the_shared_test_error():
    """On the same test images the test error both runs share cancels: the envelope is the pooled
    seed SD of both sides × √(1/n_ref + 1/n_new), t on n_ref + n_new − 2 degrees of freedom."""
    from scipy import stats

    lo, hi, note = envelope(0.90, 0.01, 3, 0.02, 5, 0.005)
    sp = ((2 * 0.01 ** 2 + 4 * 0.02 ** 2) / 6) ** 0.5
    half = stats.t.ppf(0.975, 6) * sp * (1 / 3 + 1 / 5) ** 0.5
    assert (lo, hi, note) == pytest.approx((0.90 - half, 0.90 + half, ""))
    lo1, hi1, note1 = envelope(0.90, None, 1, None, 1, 0.005)  # one seed each: the test sample only
    assert note1 and hi1 - lo1 == pytest.approx(2 * stats.norm.ppf(0.975) * 0.005 * 2 ** 0.5)
    # one side with seeds is enough to measure the training noise
    assert envelope(0.90, None, 1, 0.01, 3, 0.005)[2] == ""


def test_a_borderline_move_is_listed_not_counted_and_a_real_move_is_counted(tmp_path, capsys):
    """A verdict that changes while the estimates stay within rerun noise (its ≈ interval edge on
    a threshold) is listed as a move; a hand-altered reference copy whose one verdict moved by 10
    points makes --strict fail."""
    import csv
    import shutil

    ref = _store(tmp_path / "ref.sqlite", gabor_noise=6.0)
    folder = build_report(ref, tmp_path / "ref", n_boot=200, studies=False)["md"].parent
    rows = list(csv.DictReader((folder / "tables" / "paired.csv").open()))

    def altered(name: str, change) -> Path:
        out = tmp_path / name
        shutil.copytree(folder, out)
        with (out / "tables" / "paired.csv").open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            for r in rows:
                w.writerow(change(dict(r)) if r["regime"] == "transfer" else r)
        return out

    t = next(r for r in rows if r["regime"] == "transfer")
    assert t["verdict"] == "equivalent"
    # the same estimate, read as a significant gain (its lower edge nudged past 0): a move within noise
    nudged = altered("nudged", lambda r: r | {"verdict": "better", "within_margin": "True", "borderline": "True"})
    result = compare(folder, nudged)
    assert not result.changed and [v["regime"] for v in result.verdict_moves] == ["transfer"]
    assert main(["compare", str(folder), str(nudged), "--strict"]) == 0
    assert "moved within noise" in capsys.readouterr().out
    # the estimate moved by 10 AUC points: beyond any rerun noise, counted
    moved = altered("moved", lambda r: r | {"diff": str(float(r["diff"]) + 0.10), "verdict": "better",
                                            "within_margin": "False"})
    result = compare(folder, moved)
    assert result.changed and [v["regime"] for v in result.verdict_changes] == ["transfer"]
    assert result.verdict_changes[0]["beyond_noise"] is True
    assert main(["compare", str(folder), str(moved), "--strict"]) == 1


def test_bad_input_is_a_clear_error(tmp_path, capsys):
    assert main(["compare", str(tmp_path / "nothing"), str(tmp_path / "nothing")]) == 2
    assert "neither a report folder" in capsys.readouterr().err


def test_a_borderline_front_member_moving_is_not_a_change():
    from transfusion.report.compare import Rows, _recommendations

    def pareto(members: dict[str, tuple[bool, bool]], rec: str = "transfer", alt: tuple = ()) -> list[dict]:
        # init → (on_front, borderline)
        return [{"dataset": "d", "train_size": "all", "cost_measure": "macs", "model": "cbr_small", "init": i,
                 "on_front": str(on), "borderline": str(b), "recommended": str(i == rec), "alternative": str(i in alt)}
                for i, (on, b) in members.items()]

    ref = Rows("ref", [], [], pareto({"transfer": (True, False), "meanvar": (True, True), "random": (False, False)}))
    moved = Rows("new", [], [], pareto({"transfer": (True, False), "meanvar": (False, False),
                                        "random": (False, False)}))
    (row,) = _recommendations(ref, moved)
    assert not row["changed"] and row["borderline"] == "cbr_small · meanvar"
    assert row["ref_front"] == "cbr_small · meanvar ≈; cbr_small · transfer"
    # a clear member leaving is a change
    clear = Rows("new", [], [], pareto({"transfer": (True, False), "meanvar": (True, True), "random": (True, False)}))
    assert _recommendations(ref, clear)[0]["changed"]
    # the recommendation moving to a row the reference called an alternative (within noise) is no change;
    # moving to any other row is
    same = {"transfer": (True, False), "meanvar": (True, True), "random": (False, False)}
    ref_alt = Rows("ref", [], [], pareto(same, alt=("meanvar",)))
    assert not _recommendations(ref_alt, Rows("new", [], [], pareto(same, rec="meanvar")))[0]["changed"]
    assert _recommendations(ref_alt, Rows("new", [], [], pareto(same, rec="random")))[0]["changed"]
