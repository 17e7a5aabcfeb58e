"""The HTTP face of the backend: Label Studio's ML backend protocol on FastAPI.

Routes, as Label Studio 1.23 calls them:
  GET  /health   {"status": "UP", "model_class", "model_version", "training": {...}}
  POST /setup    {project, schema, ...}                       -> {"model_version"}
  POST /predict  {tasks, project, label_config, params: {context}} -> {"results": [...]}
  POST /webhook  {action, project, annotation, task}          -> {"status", ...}
  POST /train    (older Label Studio versions) records a training request
  GET  /versions {"versions": [model_version]}
Bad input answers 4xx with {"detail": message} and the server keeps serving; a store
outage answers 503. Predictions run on a bounded worker pool (backend/pool.py: busy past its
queue -> 503 + Retry-After; a prediction that starts while others wait skips the graph cut,
config.fast_when_waiting), storage in the thread pool, so slow clicks of one labeler do not
block the others (the predictor is thread-safe). With BASIC_AUTH_USER/PASS every route but
GET /health needs the credentials, the mounted demo included (backend/auth.py); bodies past
max_body_bytes are refused while they stream in (backend/limits.py). docs/security-serving.md
lists the limits.
"""

from __future__ import annotations

from pathlib import Path

import logging
import threading
import time
from contextlib import asynccontextmanager
from typing import Any

from fastapi import BackgroundTasks, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from model import FcanetInputError, Predictor
from model.corrections import StoreUnavailableError, open_store

from .auth import BasicAuthMiddleware
from .click_memory import ClickMemory
from .config import BackendConfig
from .errors import BadRequest, RequestError
from .images import ImageFetcher
from .json_body import parse_json_object
from .limits import BodyLimitMiddleware
from .model import FcanetModel
from .pool import Overloaded, PredictionPool
from .promoted import PromotionWatcher
from .training import RecordingLauncher, TrainingLauncher

log = logging.getLogger("fcanet.backend")


def load_predictor(config: BackendConfig, store) -> tuple[Any, str | None]:
    """(predictor, promoted version it corresponds to): the --checkpoint when given, else the
    store's promoted model when there is one, else the bundled default."""
    promoted = None
    try:
        promoted = store.promoted_model()
    except StoreUnavailableError as exc:
        log.warning("cannot read the promoted model from the store: %s", exc)
    kwargs = config.predictor_options
    if config.checkpoint:
        return Predictor.from_checkpoint(config.checkpoint, **kwargs), (promoted or {}).get("version")
    if promoted:
        try:
            return Predictor.from_checkpoint(promoted["path"], **kwargs), promoted["version"]
        except FcanetInputError as exc:
            log.error("the promoted model %s cannot be loaded (%s); serving the bundled model",
                      promoted["version"], exc)
    return Predictor.from_checkpoint(None, **kwargs), (promoted or {}).get("version")


class PredictorProxy:
    """Looks like a predictor, always forwards to the model's current one (for the demo);
    its predictions take a slot of the same bounded pool as /predict."""

    def __init__(self, model: FcanetModel, pool: PredictionPool):
        self._model, self._pool = model, pool

    def predict(self, *args, **kwargs):
        try:
            return self._pool.call(lambda: self._model.predictor.predict(*args, **kwargs))
        except Overloaded as exc:
            import gradio as gr

            raise gr.Error(str(exc)) from None

    def __getattr__(self, name: str):
        return getattr(self._model.predictor, name)


def create_app(config: BackendConfig, predictor=None, store=None, *, launcher: TrainingLauncher | None = None,
               fetcher: ImageFetcher | None = None) -> FastAPI:
    """The backend app. Tests inject a predictor (e.g. `Predictor.for_tests()`), a tmp store
    and, for images, a fetcher with a fake transport."""
    store = store if store is not None else open_store(config.store_location, files_dir=config.files_dir)
    promoted_version = None
    if predictor is None:
        predictor, promoted_version = load_predictor(config, store)
    else:
        try:
            promoted_version = (store.promoted_model() or {}).get("version")
        except StoreUnavailableError:
            pass
    fetcher = fetcher or ImageFetcher(config)
    if launcher is None:
        delegate = None
        if config.finetune_steps > 0:
            from model.finetune.launcher import FinetuneLauncher

            extra = [] if config.store_location == config.data_dir else ["--files-dir", str(config.files_dir)]
            if config.finetune_original_config:
                extra += ["--original-config", config.finetune_original_config]
            if config.finetune_anchor_set:
                extra += ["--anchor-set", config.finetune_anchor_set]
            delegate = FinetuneLauncher(config.store_location, steps=config.finetune_steps, extra_args=extra,
                                        jobs_dir=str(Path(config.data_dir) / "jobs"),
                                        threads=config.finetune_threads, nice=config.finetune_nice)
        launcher = RecordingLauncher(store, delegate=delegate)
    model = FcanetModel(predictor, store=store, fetcher=fetcher,
                        memory=ClickMemory(config.click_memory_items, config.click_memory_ttl_s),
                        launcher=launcher, train_every=config.train_every,
                        max_annotation_pixels=config.max_annotation_pixels, image_workers=config.predict_workers)
    watcher = PromotionWatcher(
        store, model, interval=config.watch_promoted_s, current_version=promoted_version,
        load=lambda path: Predictor.from_checkpoint(path, **config.predictor_options),
    )
    pool = PredictionPool(config.predict_workers, config.predict_queue)
    if not config.basic_auth_user and config.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("listening on %s without BASIC_AUTH_USER/BASIC_AUTH_PASS: anyone who reaches the port "
                    "can predict and write corrections", config.host)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        watcher.start()
        log.info("serving %s (model %s) with store %r", type(model).__name__, model.model_version, store)
        try:
            yield
        finally:
            watcher.stop()
            pool.shutdown()
            fetcher.close()

    app = FastAPI(title="fcanet Label Studio ML backend", lifespan=lifespan)
    app.state.config = config
    app.state.model = model
    app.state.store = store
    app.state.watcher = watcher
    app.state.pool = pool

    # --------------------------------------------------------------------- errors
    @app.exception_handler(RequestError)
    async def _request_error(request: Request, exc: RequestError):
        return _error(exc.status, str(exc), request)

    @app.exception_handler(FcanetInputError)
    async def _input_error(request: Request, exc: FcanetInputError):
        return _error(422, str(exc), request)

    @app.exception_handler(StoreUnavailableError)
    async def _store_down(request: Request, exc: StoreUnavailableError):
        log.error("store unavailable: %s", exc)
        return _error(503, f"the corrections store is unavailable: {exc}", request)

    @app.exception_handler(Overloaded)
    async def _overloaded(request: Request, exc: Overloaded):
        response = _error(503, str(exc), request)
        response.headers["Retry-After"] = str(exc.retry_after_s)
        return response

    @app.exception_handler(Exception)
    async def _server_bug(request: Request, exc: Exception):
        # Last resort: whatever a handler did not turn into a 4xx/502 is our bug. The client gets
        # JSON without internals; the traceback goes to the log only.
        log.error("%s %s -> 500: unhandled %s", request.method, request.url.path, type(exc).__name__,
                  exc_info=(type(exc), exc, exc.__traceback__))
        return JSONResponse({"detail": "internal server error (logged on the server)"}, status_code=500)

    # --------------------------------------------------------------------- timing, limits, auth
    @app.middleware("http")
    async def _log(request: Request, call_next):
        start = time.perf_counter()
        response = await call_next(request)
        log.info("%s %s -> %d in %.0f ms", request.method, request.url.path, response.status_code,
                 (time.perf_counter() - start) * 1000)
        return response

    # --------------------------------------------------------------------- routes
    fast_answers = _Counter()

    def refine_now() -> bool:
        """False when config.fast_when_waiting or more predictions wait behind this one: then it
        answers without the graph cut, so that a crowd is served at once instead of queueing."""
        if config.fast_when_waiting and pool.waiting >= config.fast_when_waiting:
            fast_answers.add()
            return False
        return True

    def health() -> dict[str, Any]:
        return {"status": "UP", "model_class": type(model).__name__, "model_version": model.model_version,
                "training": launcher.status(), "store": store.kind,
                "predictions": {"running_or_waiting": pool.in_flight, "unrefined_under_load": fast_answers.value}}

    app.get("/health")(health)
    app.get("/")(health)

    @app.post("/setup")
    async def setup(request: Request):
        body = await _json_body(request)
        return await run_in_threadpool(model.setup, body.get("project"), body.get("schema"),
                                       extra_params=body.get("extra_params"))

    @app.post("/predict")
    async def predict(request: Request):
        body = await _json_body(request)
        if "tasks" not in body:
            raise BadRequest("the body needs 'tasks' (a list of Label Studio tasks)")
        params = body.get("params") or {}
        if not isinstance(params, dict):
            raise BadRequest("params must be an object")
        context = params.get("context", body.get("context"))
        results = await pool.run(model.predict, body["tasks"], context, project=body.get("project"),
                                 label_config=body.get("label_config"), refine=refine_now)
        return {"results": results, "model_version": model.model_version}

    @app.post("/webhook")
    async def webhook(request: Request, background: BackgroundTasks):
        body = await _json_body(request)
        action = body.get("action")
        if not isinstance(action, str) or not action:
            raise BadRequest("a webhook needs an 'action' (e.g. ANNOTATION_CREATED)")
        return await run_in_threadpool(model.fit, action, body, defer=background.add_task)

    @app.post("/train")
    async def train(request: Request):
        body = await _json_body(request)
        return await run_in_threadpool(model.fit, "START_TRAINING", {"project": body.get("project")})

    @app.get("/versions")
    def versions():
        return {"versions": [model.model_version], "model_version": model.model_version}

    if config.with_demo:
        _mount_demo(app, PredictorProxy(model, pool), store)
    # Added last = outermost: auth answers before the body is read, then the size limit.
    app.add_middleware(BodyLimitMiddleware, max_bytes=config.max_body_bytes)
    if config.basic_auth_user:
        app.add_middleware(BasicAuthMiddleware, user=config.basic_auth_user, password=config.basic_auth_pass)
    return app


def _mount_demo(app: FastAPI, predictor, store) -> None:
    import gradio as gr

    from gradio_app.app import build_demo

    gr.mount_gradio_app(app, build_demo(predictor, store), path="/demo")


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()  # bounded by BodyLimitMiddleware
    return parse_json_object(raw)


def _error(status: int, message: str, request: Request) -> JSONResponse:
    log.warning("%s %s -> %d: %s", request.method, request.url.path, status, message)
    return JSONResponse({"detail": message}, status_code=status)


class _Counter:
    """A thread-safe count (predictions answer on pool threads, /health reads on the loop)."""

    def __init__(self):
        self.value, self._lock = 0, threading.Lock()

    def add(self) -> None:
        with self._lock:
            self.value += 1
