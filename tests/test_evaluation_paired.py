"""`fcanet compare`: two evaluation folders paired sample by sample."""

from __future__ import annotations

import json

import pytest

from model.cli import main
from model.evaluation.paired import compare_folders, sign_test_p


def write_samples(folder, rows):
    """rows: {name: (noc85, noc90, iou1)} as `fcanet evaluate` writes them."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["sample,noc85,noc90,iou@1,iou@2"]
    lines += [f"{name},{a},{b},{c:.4f},{c:.4f}" for name, (a, b, c) in rows.items()]
    (folder / "samples.csv").write_text("\n".join(lines) + "\n")
    return folder


def test_sign_test_matches_the_binomial_tails():
    assert sign_test_p(10, 0) == pytest.approx(2 / 1024)
    assert sign_test_p(0, 10) == pytest.approx(2 / 1024)
    assert sign_test_p(5, 5) == 1.0
    assert sign_test_p(0, 0) == 1.0
    # 7 of 9: P(X <= 2) = (1 + 9 + 36) / 512, doubled
    assert sign_test_p(7, 2) == pytest.approx(2 * 46 / 512)


def test_compare_counts_each_sample_on_the_side_it_moved(tmp_path):
    base = write_samples(tmp_path / "base", {f"s{i}": (3, 5, 0.70) for i in range(12)})
    cand_rows = {f"s{i}": (3, 4, 0.80) for i in range(10)}  # ten better
    cand_rows["s10"] = (3, 7, 0.60)  # one worse
    cand_rows["s11"] = (3, 5, 0.70)  # one tied
    cand = write_samples(tmp_path / "cand", cand_rows)
    rows = {r.metric: r for r in compare_folders(base, cand, resamples=2000)}

    noc90 = rows["noc90"]
    assert (noc90.better, noc90.worse, noc90.ties) == (10, 1, 1)
    assert noc90.base_mean == pytest.approx(5.0)
    assert noc90.difference == pytest.approx((10 * -1 + 2) / 12)
    assert noc90.ci95[0] <= noc90.difference <= noc90.ci95[1]
    assert noc90.sign_test_p == pytest.approx(sign_test_p(10, 1))
    # a higher IoU is the better one: the same ten samples win there
    assert (rows["iou@1"].better, rows["iou@1"].worse) == (10, 1)
    assert (rows["noc85"].better, rows["noc85"].worse, rows["noc85"].ties) == (0, 0, 12)


def test_compare_refuses_runs_over_different_samples(tmp_path):
    base = write_samples(tmp_path / "base", {"a": (1, 1, 0.9), "b": (2, 2, 0.8)})
    cand = write_samples(tmp_path / "cand", {"a": (1, 1, 0.9), "c": (2, 2, 0.8)})
    with pytest.raises(ValueError, match="different samples"):
        compare_folders(base, cand)


def test_cli_prints_the_table_and_writes_json(tmp_path, capsys):
    base = write_samples(tmp_path / "base", {"a": (2, 4, 0.5), "b": (2, 4, 0.5)})
    cand = write_samples(tmp_path / "cand", {"a": (1, 2, 0.9), "b": (1, 3, 0.8)})
    out = tmp_path / "cmp.json"
    assert main(["compare", str(base), str(cand), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| noc90 | 4.000 | 2.500 | -1.500" in printed
    saved = json.loads(out.read_text())
    assert [m["metric"] for m in saved["metrics"]] == ["noc85", "noc90", "iou@1"]
    assert saved["metrics"][1]["better"] == 2


def test_cli_names_a_folder_without_samples(tmp_path, capsys):
    base = write_samples(tmp_path / "base", {"a": (2, 4, 0.5)})
    assert main(["compare", str(base), str(tmp_path / "nothing")]) == 2
    assert "has no samples.csv" in capsys.readouterr().err
