"""Backend configuration: one frozen dataclass built from flags and environment variables.

Label Studio's usual names are used where they exist (LABEL_STUDIO_URL,
LABEL_STUDIO_API_KEY, BASIC_AUTH_USER, BASIC_AUTH_PASS); everything else is FCANET_*.
Flags win over the environment, the environment over the defaults.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Mapping
from urllib.parse import urlsplit

from model import FcanetInputError


class ConfigError(FcanetInputError):
    """A setting has an unusable value (named in the message)."""


@dataclass(frozen=True)
class BackendConfig:
    """Everything `fcanet serve` needs.

    label_studio_url: where Label Studio serves `/data/upload/...` and `/data/local-files/...`
    (also the default allowed image host); label_studio_api_key: a legacy token or a
    personal access token (a JWT refresh token, exchanged for access tokens).
    allowed_image_hosts: further hosts (or host:port) whose http(s) image URLs may be fetched
    (without the API key); "*" allows any host.
    store: None -> SQLite store in data_dir; a postgresql:// URL -> PostgreSQL with files in
    data_dir/files.
    """

    host: str = "127.0.0.1"
    port: int = 9090
    checkpoint: str | None = None
    data_dir: str = "fcanet-data"
    store: str | None = None
    short_side: int | None = None
    device: str = "cpu"
    #: The output mode (`model.predictor_flags.OUTPUT_MODES`: network, edge, grabcut-fast, grabcut,
    #: default), $FCANET_MODE; None: the default.
    mode: str | None = None
    #: Predictor options from `fcanet serve`'s output flags; when given they win over `mode`.
    predictor_kwargs: dict | None = None
    label_studio_url: str | None = None
    label_studio_api_key: str | None = field(default=None, repr=False)
    allowed_image_hosts: tuple[str, ...] = ()
    basic_auth_user: str | None = None
    basic_auth_pass: str | None = field(default=None, repr=False)
    image_timeout_s: float = 10.0
    image_max_bytes: int = 50 * 1024 * 1024
    image_cache_items: int = 32
    image_cache_bytes: int = 1024 * 1024 * 1024
    #: All brush masks of one webhook together, checked before any is decoded (each mask is
    #: also bounded by the image pixel limit, model.image_io.MAX_PIXELS).
    max_annotation_pixels: int = 400_000_000
    click_memory_items: int = 2048
    click_memory_ttl_s: float = 1800.0
    watch_promoted_s: float = 10.0
    #: Steps of the fine-tuning job START_TRAINING launches in a background process;
    #: 0 only records the request in the store.
    finetune_steps: int = 200
    #: The job's torch threads and the niceness added to its process, so that predictions keep
    #: their cores while it trains (docs/learning-loop.md has the measured p95).
    finetune_threads: int = 1
    finetune_nice: int = 10
    #: The training config whose data the job mixes in against forgetting (else L2-SP), and the
    #: forgetting check's anchor set NAME:ROOT (else the earliest corrections, held back).
    finetune_original_config: str | None = None
    finetune_anchor_set: str | None = None
    #: Also start a job after this many newly stored annotations (0: only on START_TRAINING).
    train_every: int = 0
    with_demo: bool = False
    log_level: str = "INFO"
    #: Largest request body accepted (413 past it, counted while it streams in).
    max_body_bytes: int = 256 * 1024 * 1024
    #: Predictions running at once (default: the number of CPU cores) and waiting beyond
    #: those; past both the server answers 503 with Retry-After.
    predict_workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    predict_queue: int = 16
    #: When a prediction starts while at least this many others wait for a worker, it skips the
    #: graph cut and answers the network's mask with the guided filter (about a third of the
    #: cost), so that a crowd of labelers is served at once instead of queueing; 0: never.
    fast_when_waiting: int = 1

    def __post_init__(self):
        from model.predictor_flags import OUTPUT_MODES

        if self.mode is not None and self.mode not in OUTPUT_MODES:
            raise ConfigError(f"FCANET_MODE must be one of {', '.join(OUTPUT_MODES)}, got {self.mode!r}")
        if not (0 < self.port < 65536):
            raise ConfigError(f"port must be 1-65535, got {self.port}")
        if self.label_studio_url:
            parts = urlsplit(self.label_studio_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(f"LABEL_STUDIO_URL must be an http(s) URL like http://localhost:8080, "
                                  f"got {self.label_studio_url!r}")
        if bool(self.basic_auth_user) != bool(self.basic_auth_pass):
            raise ConfigError("basic auth needs both BASIC_AUTH_USER and BASIC_AUTH_PASS")
        if self.finetune_threads < 0 or not 0 <= self.finetune_nice <= 19:
            raise ConfigError(f"finetune_threads must be 0 or more and finetune_nice 0-19, got "
                              f"{self.finetune_threads} and {self.finetune_nice}")
        if self.train_every < 0 or self.finetune_steps < 0:
            raise ConfigError("train_every and finetune_steps must be 0 or more")
        if self.predict_queue < 0:
            raise ConfigError(f"predict_queue must be 0 or more, got {self.predict_queue}")
        if self.fast_when_waiting < 0:
            raise ConfigError(f"fast_when_waiting must be 0 or more, got {self.fast_when_waiting}")
        for name in ("image_timeout_s", "image_max_bytes", "image_cache_items", "click_memory_items",
                     "click_memory_ttl_s", "max_annotation_pixels", "max_body_bytes", "predict_workers"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")

    # ------------------------------------------------------------------------- derived
    @property
    def label_studio_origin(self) -> tuple[str, str, int] | None:
        """(scheme, host, port) of Label Studio, or None when not configured."""
        if not self.label_studio_url:
            return None
        parts = urlsplit(self.label_studio_url)
        return parts.scheme, (parts.hostname or "").lower(), parts.port or (443 if parts.scheme == "https" else 80)

    @property
    def store_location(self) -> str:
        return self.store or self.data_dir

    @property
    def files_dir(self) -> str | None:
        """Where a PostgreSQL store keeps its files (None: the SQLite default)."""
        if self.store and self.store.startswith(("postgresql://", "postgres://")):
            return os.path.join(self.data_dir, "files")
        return None

    @property
    def predictor_options(self) -> dict:
        """Predictor keyword arguments for every model this backend loads."""
        from model.predictor_flags import options_for_mode

        options = dict(self.predictor_kwargs) if self.predictor_kwargs is not None else options_for_mode(self.mode)
        if self.short_side is not None:
            options["short_side"] = self.short_side
        options["device"] = self.device
        return {k: v for k, v in options.items() if v is not None}

    def with_overrides(self, **changes) -> "BackendConfig":
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    # ------------------------------------------------------------------------- building
    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides) -> "BackendConfig":
        """Defaults <- environment <- overrides (flags; None means "not given")."""
        env = os.environ if env is None else env

        def get(*names: str) -> str | None:
            for name in names:
                value = env.get(name)
                if value not in (None, ""):
                    return value
            return None

        def number(kind, *names: str):
            text = get(*names)
            if text is None:
                return None
            try:
                return kind(text)
            except ValueError:
                raise ConfigError(f"{names[0]} must be a number, got {text!r}") from None

        # A variable that is present but empty (compose's `${BASIC_AUTH_PASS}` with nothing set)
        # would otherwise switch auth off without a word.
        auth_vars = [name for name in ("BASIC_AUTH_USER", "BASIC_AUTH_PASS") if name in env]
        if auth_vars and not all(env.get(name, "").strip() for name in ("BASIC_AUTH_USER", "BASIC_AUTH_PASS")):
            empty = [name for name in ("BASIC_AUTH_USER", "BASIC_AUTH_PASS") if not env.get(name, "").strip()]
            raise ConfigError(f"basic auth is enabled ({', '.join(auth_vars)} set) but {', '.join(empty)} "
                              f"is empty: set both to non-empty values, or unset both to serve without auth")
        hosts = get("FCANET_ALLOWED_IMAGE_HOSTS")
        values = dict(
            host=get("FCANET_HOST"),
            port=number(int, "FCANET_PORT"),
            checkpoint=get("FCANET_CHECKPOINT"),
            data_dir=get("FCANET_DATA_DIR", "MODEL_DIR"),
            store=get("FCANET_STORE"),
            device=get("FCANET_DEVICE"),
            mode=get("FCANET_MODE"),
            label_studio_url=get("LABEL_STUDIO_URL", "LABEL_STUDIO_HOST"),
            label_studio_api_key=get("LABEL_STUDIO_API_KEY", "LABEL_STUDIO_ACCESS_TOKEN"),
            allowed_image_hosts=tuple(h.strip().lower() for h in hosts.split(",") if h.strip()) if hosts else None,
            basic_auth_user=get("BASIC_AUTH_USER"),
            basic_auth_pass=get("BASIC_AUTH_PASS"),
            image_timeout_s=number(float, "FCANET_IMAGE_TIMEOUT"),
            finetune_steps=number(int, "FCANET_FINETUNE_STEPS"),
            finetune_threads=number(int, "FCANET_FINETUNE_THREADS"),
            finetune_nice=number(int, "FCANET_FINETUNE_NICE"),
            finetune_original_config=get("FCANET_FINETUNE_ORIGINAL_CONFIG"),
            finetune_anchor_set=get("FCANET_FINETUNE_ANCHOR_SET"),
            train_every=number(int, "FCANET_TRAIN_EVERY"),
            image_max_bytes=number(int, "FCANET_IMAGE_MAX_BYTES"),
            image_cache_items=number(int, "FCANET_IMAGE_CACHE_ITEMS"),
            max_annotation_pixels=number(int, "FCANET_MAX_ANNOTATION_PIXELS"),
            click_memory_ttl_s=number(float, "FCANET_CLICK_MEMORY_TTL"),
            watch_promoted_s=number(float, "FCANET_WATCH_PROMOTED"),
            log_level=get("LOG_LEVEL"),
            max_body_bytes=number(int, "FCANET_MAX_BODY_BYTES"),
            predict_workers=number(int, "FCANET_PREDICT_WORKERS"),
            predict_queue=number(int, "FCANET_PREDICT_QUEUE"),
            fast_when_waiting=number(int, "FCANET_FAST_WHEN_WAITING"),
        )
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**{k: v for k, v in values.items() if v is not None})
