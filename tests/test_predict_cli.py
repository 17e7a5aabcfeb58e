import numpy as np
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
