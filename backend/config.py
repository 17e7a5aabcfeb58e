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

from model import FcanetInputError, GraphCutRefineConfig


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
    #: Post-processing of the mask (model/edge_refine.py, model/graphcut_refine.py); None: the
    #: Predictor's default (both on).
    edge_refine: bool | None = None
    graphcut_refine: bool | None = None
    #: The graph cut's last cut at the working size (slower, finer; None: the Predictor's default, on).
    graphcut_full_resolution: bool | None = None
    label_studio_url: str | None = None
    label_studio_api_key: str | None = field(default=None, repr=False)
    allowed_image_hosts: tuple[str, ...] = ()
    basic_auth_user: str | None = None
    basic_auth_pass: str | None = field(default=None, repr=False)
    image_timeout_s: float = 10.0
    image_max_bytes: int = 50 * 1024 * 1024
    image_cache_items: int = 32
    image_cache_bytes: int = 1024 * 1024 * 1024
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

    def __post_init__(self):
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
        for name in ("image_timeout_s", "image_max_bytes", "image_cache_items", "click_memory_items",
                     "click_memory_ttl_s"):
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
        graphcut: bool | GraphCutRefineConfig | None = self.graphcut_refine
        if graphcut is not False and self.graphcut_full_resolution is not None:
            graphcut = GraphCutRefineConfig(full_resolution=self.graphcut_full_resolution)
        options = dict(short_side=self.short_side, device=self.device, edge_refine=self.edge_refine,
                       graphcut_refine=graphcut)
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

        def switch(name: str) -> bool | None:
            text = get(name)
            if text is None:
                return None
            if text.strip().lower() in ("1", "true", "yes", "on"):
                return True
            if text.strip().lower() in ("0", "false", "no", "off"):
                return False
            raise ConfigError(f"{name} must be true or false, got {text!r}")

        hosts = get("FCANET_ALLOWED_IMAGE_HOSTS")
        values = dict(
            host=get("FCANET_HOST"),
            port=number(int, "FCANET_PORT"),
            checkpoint=get("FCANET_CHECKPOINT"),
            data_dir=get("FCANET_DATA_DIR", "MODEL_DIR"),
            store=get("FCANET_STORE"),
            device=get("FCANET_DEVICE"),
            edge_refine=switch("FCANET_EDGE_REFINE"),
            graphcut_refine=switch("FCANET_GRAPHCUT_REFINE"),
            graphcut_full_resolution=switch("FCANET_GRAPHCUT_FULL_RESOLUTION"),
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
            click_memory_ttl_s=number(float, "FCANET_CLICK_MEMORY_TTL"),
            watch_promoted_s=number(float, "FCANET_WATCH_PROMOTED"),
            log_level=get("LOG_LEVEL"),
        )
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**{k: v for k, v in values.items() if v is not None})
