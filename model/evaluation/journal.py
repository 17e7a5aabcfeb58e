"""A per-sample journal that makes long evaluations resumable.

An evaluation of DAVIS345 costs about an hour of this machine's CPU; with `--resume` every
finished sample is kept in OUT/progress.jsonl and a stopped run continues where it stopped.
The first line names the run (dataset, method, checkpoint file hash, SIS, clicks, ...): a
journal of a different run is refused, never mixed in.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import FcanetInputError


def _row(name: str, ious: list[float], noc: dict[str, int], calls: int, seconds: float) -> str:
    return json.dumps({"name": name, "ious": ious, "noc": noc, "calls": calls, "seconds": seconds})


class EvaluationJournal:
    """done: {sample name: (ious, noc, calls, seconds)} from earlier runs of the same evaluation."""

    def __init__(self, path: str | Path, identity: dict[str, Any], resume: bool):
        self.path = Path(path)
        self.identity = identity
        self.done: dict[str, tuple[list[float], dict[str, int], int, float]] = {}
        if resume and self.path.is_file():
            lines = self.path.read_text(encoding="utf-8").splitlines()
            header = json.loads(lines[0]) if lines else {}
            if header.get("run") != identity:
                raise FcanetInputError(f"{self.path} belongs to another evaluation ({header.get('run')}); "
                                       f"use another --out or drop --resume")
            for line in lines[1:]:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:  # a line cut short by a kill
                    continue
                self.done[row["name"]] = (row["ious"], row["noc"], row["calls"], row["seconds"])
            # Rewrite it whole, so that a line cut short is not glued to the next record.
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text("\n".join([json.dumps({"run": identity})] + [
                _row(k, *v) for k, v in self.done.items()]) + "\n", encoding="utf-8")
            os.replace(tmp, self.path)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps({"run": identity}) + "\n", encoding="utf-8")

    def record(self, name: str, ious: list[float], noc: dict[str, int], calls: int, seconds: float) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(_row(name, ious, noc, calls, seconds) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
