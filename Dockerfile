# The fcanet Label Studio ML backend (CPU). Build: docker build -t fcanet-backend .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    FCANET_HOST=0.0.0.0 FCANET_PORT=9090 FCANET_DATA_DIR=/data

RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 curl \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# CPU-only torch first, so the pinned torch==2.13.0 in pyproject does not pull CUDA builds.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
COPY pyproject.toml README.md ./
COPY model ./model
COPY backend ./backend
COPY gradio_app ./gradio_app
RUN pip install ".[backend,app,postgres]"

RUN useradd --create-home --uid 1000 fcanet && mkdir -p /data && chown fcanet /data
USER fcanet
# Corrections, model versions and fine-tuning jobs live here: mount a volume.
VOLUME ["/data"]
EXPOSE 9090
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD curl -fsS http://127.0.0.1:9090/health || exit 1
CMD ["fcanet", "serve"]
