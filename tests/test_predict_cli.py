import numpy as np
import pytest
from PIL import Image

from model.checkpoint import CheckpointMetadata, save_checkpoint
from model.cli import main
from model.config import preset
from model.network.fcanet import FCANet


def _tiny_checkpoint(path):
    net = FCANet(preset("tiny"))
    save_checkpoint(path, net, CheckpointMetadata(network=net.config, version="cli-test", short_side=32))


def test_round_trip_writes_mask_and_overlay(tmp_path, capsys):
    img = np.random.default_rng(0).integers(0, 255, (45, 70, 3), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "in.png")
    _tiny_checkpoint(tmp_path / "m.safetensors")
    rc = main(["predict", str(tmp_path / "in.png"), "--click", "30,20", "--click", "60,40,neg",
               "--out", str(tmp_path / "mask.png"), "--overlay", str(tmp_path / "ov.png"),
               "--checkpoint", str(tmp_path / "m.safetensors")])
    assert rc == 0
    mask = np.asarray(Image.open(tmp_path / "mask.png"))
    assert mask.shape == (45, 70) and set(np.unique(mask)) <= {0, 255}
    assert np.asarray(Image.open(tmp_path / "ov.png")).shape == (45, 70, 3)
    assert "cli-test" in capsys.readouterr().out


def test_bad_click_gives_error_exit(tmp_path, capsys):
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(tmp_path / "in.png")
    _tiny_checkpoint(tmp_path / "m.safetensors")
    rc = main(["predict", str(tmp_path / "in.png"), "--click", "5,5,neg", "--out", str(tmp_path / "o.png"),
               "--checkpoint", str(tmp_path / "m.safetensors")])
    assert rc == 2
    assert "first click must be positive" in capsys.readouterr().err
    rc = main(["predict", str(tmp_path / "in.png"), "--click", "50,5", "--out", str(tmp_path / "o.png"),
               "--checkpoint", str(tmp_path / "m.safetensors")])
    assert rc == 2 and "outside" in capsys.readouterr().err


def test_edge_refine_flags_run_and_bad_ones_are_an_error(tmp_path, capsys):
    img = np.random.default_rng(1).integers(0, 255, (40, 60, 3), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "in.png")
    _tiny_checkpoint(tmp_path / "m.safetensors")
    common = ["predict", str(tmp_path / "in.png"), "--click", "30,20", "--checkpoint", str(tmp_path / "m.safetensors")]
    assert main(common + ["--out", str(tmp_path / "plain.png"), "--no-sis", "--no-edge-refine"]) == 0
    assert main(common + ["--out", str(tmp_path / "edge.png"), "--no-sis", "--edge-refine-radius", "3"]) == 0
    assert np.asarray(Image.open(tmp_path / "edge.png")).shape == (40, 60)
    capsys.readouterr()
    rc = main(common + ["--out", str(tmp_path / "bad.png"), "--edge-refine", "--edge-refine-radius", "0"])
    assert rc == 2 and "radius" in capsys.readouterr().err
    rc = main(common + ["--out", str(tmp_path / "bad.png"), "--graphcut-refine", "--graphcut-weight", "2"])
    assert rc == 2 and "weight" in capsys.readouterr().err


def test_every_predicting_command_hands_its_flags_to_the_predictor(tmp_path):
    import argparse

    from model import FcanetInputError
    from model.band_cut import BandCutConfig
    from model.edge_refine import EdgeRefineConfig
    from model.graphcut_refine import GraphCutRefineConfig
    from model.predictor_flags import add_predictor_arguments, options_identity, predictor_from_args

    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint")
    add_predictor_arguments(parser)
    _tiny_checkpoint(tmp_path / "m.safetensors")
    ckpt = ["--checkpoint", str(tmp_path / "m.safetensors"), "--precision", "fp32"]
    default = predictor_from_args(parser.parse_args(ckpt))
    assert default.edge_refine == EdgeRefineConfig() and default.band_cut == BandCutConfig()
    assert default.graphcut_refine is None
    assert default.zoom_in is None and default.short_side == 32
    assert set(options_identity(default)) == {"edge_refine", "band_cut"}
    assert options_identity(default)["edge_refine"] == {"radius": 16, "eps": 1e-3}
    chosen = predictor_from_args(parser.parse_args(ckpt + [
        "--no-edge-refine", "--graphcut-refine", "--graphcut-weight", "0.3", "--graphcut-iterations", "2", "--graphcut-max-side", "320",
        "--graphcut-margin", "0.5", "--no-graphcut-full-resolution", "--graphcut-cut-side", "480", "--short-side", "48", "--zoom-in", "--grid-align"]))
    assert chosen.edge_refine is None and chosen.short_side == 48 and chosen.grid_align
    assert chosen.graphcut_refine == GraphCutRefineConfig(weight=0.3, iterations=2, max_side=320, margin=0.5,
                                                          full_resolution=False, cut_side=480)
    assert set(options_identity(chosen)) == {"zoom_in", "graphcut_refine", "grid_align"}
    assert chosen.band_cut is None
    paper = predictor_from_args(parser.parse_args(ckpt + ["--no-edge-refine", "--no-band-cut"]))
    assert paper.edge_refine is None and paper.graphcut_refine is None and paper.band_cut is None
    assert options_identity(paper) == {}
    assert options_identity(predictor_from_args(parser.parse_args(ckpt + ["--no-edge-refine", "--no-band-cut",
                                                                         "--precision", "bf16"]))) == {"precision": "bf16"}
    band = predictor_from_args(parser.parse_args(ckpt + ["--band-cut-band", "0.5", "--band-cut-colour", "0.25",
                                                         "--band-cut-smoothness", "2"]))
    assert band.band_cut == BandCutConfig(band=0.5, colour=0.25, smoothness=2)
    # The named modes: the paper's, and the default before the band cut.
    network = predictor_from_args(parser.parse_args(ckpt + ["--mode", "network"]))
    assert network.edge_refine is None and network.band_cut is None and network.graphcut_refine is None
    old = predictor_from_args(parser.parse_args(ckpt + ["--mode", "grabcut"]))
    assert old.band_cut is None and old.graphcut_refine == GraphCutRefineConfig() and old.edge_refine
    with pytest.raises(FcanetInputError, match="choose one"):
        predictor_from_args(parser.parse_args(ckpt + ["--band-cut", "--graphcut-refine"]))
    edge = predictor_from_args(parser.parse_args(ckpt + ["--edge-refine-radius", "3", "--edge-refine-eps", "0.01"]))
    assert edge.edge_refine == EdgeRefineConfig(radius=3, eps=0.01)


def test_a_missing_optional_dependency_names_the_extra_to_install(monkeypatch, capsys):
    from model import cli

    def needs_gradio(args):
        raise ModuleNotFoundError("No module named 'gradio'", name="gradio")

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    args = parser.parse_args(["demo"])
    monkeypatch.setattr(parser, "parse_args", lambda argv=None: args)
    args.func = needs_gradio
    assert cli.main([]) == 2
    assert "pip install 'fcanet[app]'" in capsys.readouterr().err


def test_help_loads_neither_torch_nor_opencv():
    """`fcanet --help` and `fcanet serve --help` answer at once: building the parser (every
    subcommand's flags, with the refinements' defaults) must not import the heavy libraries."""
    import subprocess
    import sys

    code = ("import sys; from model.cli import build_parser; p = build_parser(); p.format_help(); "
            "p.parse_known_args(['serve']); print(sorted(m for m in ('torch', 'cv2', 'gradio', 'fastapi') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
