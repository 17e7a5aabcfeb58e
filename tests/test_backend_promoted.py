"""The promotion watcher: a replica swaps in a model another process promoted in the store, once,
and keeps serving the current one when the store or the checkpoint fails."""

import threading

from backend.promoted import PromotionWatcher


class Store:
    def __init__(self, promoted=None, fail=False):
        self.promoted, self.fail = promoted, fail

    def promoted_model(self):
        if self.fail:
            raise ConnectionError("store down")
        return self.promoted


class Model:
    def __init__(self):
        self.swapped = []

    def swap_predictor(self, predictor):
        self.swapped.append(predictor)


def _checkpoint(tmp_path, name="v2.safetensors"):
    path = tmp_path / name
    path.write_bytes(b"weights")
    return str(path)


def test_a_newly_promoted_model_is_loaded_and_swapped_in_once(tmp_path):
    path = _checkpoint(tmp_path)
    store, model, loads = Store({"version": "v2", "path": path}), Model(), []
    watcher = PromotionWatcher(store, model, lambda p: loads.append(p) or f"predictor:{p}", interval=0,
                               current_version="v1")
    assert watcher.check_once() is True
    assert model.swapped == [f"predictor:{path}"] and watcher.current_version == "v2"
    assert watcher.check_once() is False  # the same version again: nothing to do
    assert loads == [path]


def test_nothing_promoted_or_already_serving_it_changes_nothing(tmp_path):
    model = Model()
    assert PromotionWatcher(Store(None), model, lambda p: 1 / 0, interval=0).check_once() is False
    served = Store({"version": "v1", "path": _checkpoint(tmp_path)})
    assert PromotionWatcher(served, model, lambda p: 1 / 0, interval=0, current_version="v1").check_once() is False
    assert model.swapped == []


def test_a_store_outage_a_missing_file_or_a_failed_load_keep_the_current_model(tmp_path):
    model = Model()
    assert PromotionWatcher(Store(fail=True), model, lambda p: "x", interval=0).check_once() is False

    missing = PromotionWatcher(Store({"version": "v2", "path": str(tmp_path / "gone.safetensors")}), model,
                               lambda p: "x", interval=0, current_version="v1")
    assert missing.check_once() is False
    assert missing.current_version == "v2"  # not retried every interval; the next promotion is

    def broken(path):
        raise ValueError("not a checkpoint")

    failing = PromotionWatcher(Store({"version": "v3", "path": _checkpoint(tmp_path)}), model, broken,
                               interval=0, current_version="v1")
    assert failing.check_once() is False and failing.current_version == "v3"
    assert model.swapped == []


def test_the_thread_polls_until_stopped_and_interval_zero_starts_none(tmp_path):
    swapped = threading.Event()

    class Signalling(Model):
        def swap_predictor(self, predictor):
            super().swap_predictor(predictor)
            swapped.set()

    store, model = Store({"version": "v2", "path": _checkpoint(tmp_path)}), Signalling()
    off = PromotionWatcher(store, model, lambda p: "x", interval=0)
    off.start()
    assert off._thread is None

    watcher = PromotionWatcher(store, model, lambda p: "new", interval=0.01, current_version="v1")
    watcher.start()
    try:
        assert swapped.wait(5)
    finally:
        watcher.stop()
    assert not watcher._thread.is_alive()
    assert model.swapped == ["new"]
