"""The training configs shipped in the repo: they load, stay off the benchmarks, and the ablation
arms are equal-budget (each differs from the reference arm only in its one switch)."""

from pathlib import Path

import pytest
import yaml

from model.training.config import TrainConfig

CONFIG_DIR = Path(__file__).resolve().parents[1] / "model" / "training" / "configs"
CONFIGS = sorted(CONFIG_DIR.glob("*.yaml"))
BENCHMARKS = ("grabcut", "davis", "weizmann", "horse")  # benchmarks and the fine-tuning domain
# Keys that name a run rather than change what it trains.
RUN_NAMES = {"out_dir", "version_prefix"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_loads_and_never_trains_on_a_benchmark(path):
    cfg = TrainConfig.from_yaml(path)
    assert cfg.sources, f"{path.name} has no data sources"
    for source in cfg.sources:
        named = " ".join(str(v) for v in source.values()).lower()
        assert not any(b in named for b in BENCHMARKS), f"{path.name} trains on a benchmark: {source}"
    assert not any(b in name.lower() for name in cfg.trained_on for b in BENCHMARKS)


def _raw(name):
    return yaml.safe_load((CONFIG_DIR / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize("arm, switch", [
    ("ablation-bce.yaml", {"loss": "bce"}),
    ("ablation-no-fca.yaml", {"network_overrides": {"first_click_attention": False}}),
])
def test_ablation_arm_differs_from_the_reference_only_in_its_switch(arm, switch):
    reference, other = _raw("ablation-click.yaml"), _raw(arm)
    differing = {k for k in set(reference) | set(other) if reference.get(k) != other.get(k)} - RUN_NAMES
    assert differing == set(switch)
    assert all(other[k] == v for k, v in switch.items())
    assert other["out_dir"] != reference["out_dir"]


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_extends_starts_from_the_parent_and_overrides_it(tmp_path):
    _write(tmp_path / "base.yaml", "out_dir: runs/base\nsteps: 100\nlr: 0.01\nseed: 1\n")
    (tmp_path / "sub").mkdir()
    _write(tmp_path / "sub" / "mid.yaml", "extends: ../base.yaml\nlr: 0.005\n")
    cfg = TrainConfig.from_yaml(_write(tmp_path / "sub" / "leaf.yaml", "extends: mid.yaml\nseed: 7\n"))
    assert (cfg.out_dir, cfg.steps, cfg.lr, cfg.seed) == ("runs/base", 100, 0.005, 7)


@pytest.mark.parametrize("files, message", [
    ({"a.yaml": "extends: b.yaml\n", "b.yaml": "extends: a.yaml\n"}, "cycle"),
    ({"a.yaml": "extends: missing.yaml\n"}, "not found"),
    ({"a.yaml": "extends: [b.yaml, c.yaml]\n"}, "names one YAML file"),
    ({"a.yaml": "extends: b.yaml\n", "b.yaml": "- a list\n"}, "mapping"),
    ({"a.yaml": "extends: b.yaml\nsteps_typo: 3\n", "b.yaml": "steps: 3\n"}, "unknown training config keys"),
])
def test_bad_extends_chains_are_clear_errors(tmp_path, files, message):
    for name, text in files.items():
        _write(tmp_path / name, text)
    with pytest.raises(ValueError, match=message):
        TrainConfig.from_yaml(tmp_path / "a.yaml")
