"""Two evaluations of the same benchmark compared sample by sample.

A difference of a tenth of a click in mean NoC over 50 images can be a handful of images moving
either way. Pairing the runs by sample says how many got better, how many worse, and how likely
such a split would be if the two models were equally good (an exact two-sided sign test), with a
paired bootstrap interval of the mean difference.

Reads the ``samples.csv`` that ``fcanet evaluate`` writes (columns ``sample, noc85, noc90,
iou@1, ...``). Differences are candidate minus base: negative NoC differences and positive IoU
differences favour the candidate.
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

#: Columns compared, and whether a lower value is the better one.
METRICS: dict[str, bool] = {"noc85": True, "noc90": True, "iou@1": False}


@dataclass(frozen=True)
class PairedMetric:
    """One metric over the samples both runs scored."""

    metric: str
    base_mean: float
    candidate_mean: float
    difference: float  #: candidate mean minus base mean
    ci95: tuple[float, float]  #: paired bootstrap interval of ``difference``
    better: int  #: samples where the candidate is better
    worse: int
    ties: int
    sign_test_p: float  #: exact two-sided sign test over the samples that differ


def read_samples(folder: str | Path) -> dict[str, dict[str, float]]:
    """``{sample name: {column: value}}`` from an evaluation folder's samples.csv."""
    path = Path(folder) / "samples.csv"
    if not path.is_file():
        raise ValueError(f"{folder} has no samples.csv (is it an `fcanet evaluate` output folder?)")
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or "sample" not in rows[0]:
        raise ValueError(f"{path} has no samples")
    missing = [m for m in METRICS if m not in rows[0]]
    if missing:
        raise ValueError(f"{path} lacks the columns {', '.join(missing)}")
    return {r["sample"]: {m: float(r[m]) for m in METRICS} for r in rows}


def sign_test_p(better: int, worse: int) -> float:
    """Exact two-sided binomial test of ``better`` against ``worse`` at p = 1/2 (ties dropped)."""
    n = better + worse
    if n == 0:
        return 1.0
    k = min(better, worse)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def compare_folders(base: str | Path, candidate: str | Path, *, resamples: int = 10000,
                    seed: int = 0) -> list[PairedMetric]:
    """Paired figures of ``candidate`` against ``base``; both must have scored the same samples."""
    a, b = read_samples(base), read_samples(candidate)
    if set(a) != set(b):
        only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
        raise ValueError(f"the runs scored different samples ({len(only_a)} only in {base}, "
                         f"{len(only_b)} only in {candidate}, e.g. {(only_a + only_b)[:3]})")
    names = sorted(a)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(names), size=(resamples, len(names)))
    out = []
    for metric, lower_is_better in METRICS.items():
        x = np.array([a[n][metric] for n in names])
        y = np.array([b[n][metric] for n in names])
        d = y - x
        gain = -d if lower_is_better else d
        boot = d[picks].mean(axis=1)
        lo, hi = np.percentile(boot, [2.5, 97.5])
        better, worse = int((gain > 0).sum()), int((gain < 0).sum())
        out.append(PairedMetric(metric=metric, base_mean=float(x.mean()), candidate_mean=float(y.mean()),
                                difference=float(d.mean()), ci95=(float(lo), float(hi)), better=better,
                                worse=worse, ties=len(names) - better - worse,
                                sign_test_p=sign_test_p(better, worse)))
    return out


def comparison_markdown(base: str, candidate: str, rows: list[PairedMetric]) -> str:
    """A table of the comparison, one row per metric."""
    lines = [f"Paired comparison of `{candidate}` (candidate) against `{base}` (base), "
             f"{sum((rows[0].better, rows[0].worse, rows[0].ties))} samples.", "",
             "| metric | base | candidate | difference (95 % CI) | better / worse / tied | sign test p |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r.metric} | {r.base_mean:.3f} | {r.candidate_mean:.3f} | {r.difference:+.3f} "
                     f"({r.ci95[0]:+.3f} .. {r.ci95[1]:+.3f}) | {r.better} / {r.worse} / {r.ties} | "
                     f"{r.sign_test_p:.3f} |")
    return "\n".join(lines) + "\n"


def comparison_dict(base: str, candidate: str, rows: list[PairedMetric]) -> dict:
    return {"base": base, "candidate": candidate, "metrics": [asdict(r) for r in rows]}
