"""mIoU-against-clicks curves, one or several runs on one plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence


def plot_runs(result_dirs: Sequence[str | Path], out: str | Path, title: str | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    datasets = set()
    for d in result_dirs:
        m = json.loads((Path(d) / "metrics.json").read_text())
        datasets.add(m["dataset"])
        label = f"{m['method']}{' + SIS' if m['sis'] else ''} (NoC@90 {m['noc']['90']:.2f})"
        curve = m["miou_per_click"]
        ax.plot(range(1, len(curve) + 1), curve, marker="o", markersize=3, label=label)
    ax.set_xlabel("clicks")
    ax.set_ylabel("mIoU")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.set_title(title or ", ".join(sorted(datasets)))
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
