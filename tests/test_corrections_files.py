"""Atomic, content-addressed files of the store."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from model.corrections.files import (
    TMP_PREFIX,
    FileStore,
    atomic_write,
    decode_mask_png,
    encode_mask_png,
)


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "a" / "b.bin"
    atomic_write(target, b"one")
    atomic_write(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["b.bin"]


def test_failed_replace_keeps_old_file_and_leaves_no_tmp(tmp_path, monkeypatch):
    target = tmp_path / "b.bin"
    atomic_write(target, b"old")

    def boom(src, dst):
        raise OSError("simulated crash")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write(target, b"new")
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["b.bin"]


def test_put_is_content_addressed_and_idempotent(tmp_path):
    files = FileStore(tmp_path)
    sha, rel = files.put("masks", b"abc", ".png")
    assert rel == f"masks/{sha[:2]}/{sha}.png"
    assert files.put("masks", b"abc", ".png") == (sha, rel)
    assert files.read(rel) == b"abc"
    files.remove(rel)
    files.remove(rel)  # removing twice is fine
    assert not (tmp_path / rel).exists()


def test_mask_png_round_trip():
    mask = np.random.default_rng(0).random((17, 23)) > 0.5
    np.testing.assert_array_equal(decode_mask_png(encode_mask_png(mask)), mask)


def test_sweep_removes_only_stale_temporaries(tmp_path):
    files = FileStore(tmp_path)
    stale = tmp_path / "masks" / f"{TMP_PREFIX}1-x.png"
    fresh = tmp_path / "masks" / f"{TMP_PREFIX}2-y.png"
    keep = tmp_path / "masks" / "real.png"
    for p in (stale, fresh, keep):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    assert files.sweep_stale_tmp() == 1
    assert not stale.exists() and fresh.exists() and keep.exists()
