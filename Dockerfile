# One image for every service of docker-compose.yml: the API (`mug-api`), the job worker
# (`labelgen worker`) and the stage-3 trainer (`trainer run`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    MUG_STORE=/store \
    MUG_HOST=0.0.0.0 \
    MUG_PORT=8000

WORKDIR /app

# Dependencies first, so that code edits do not reinstall torch. CPU wheels of torch: the
# image serves labels; a GPU deployment swaps this index for a CUDA one.
COPY pyproject.toml README.md ./
RUN mkdir -p mugcore labelgen storage api trainer \
    && pip install --extra-index-url https://download.pytorch.org/whl/cpu . \
    && pip uninstall -y mug-unilabels

COPY mugcore mugcore
COPY labelgen labelgen
COPY storage storage
COPY api api
COPY trainer trainer
RUN pip install --no-deps . \
    && useradd --uid 1000 --create-home mug \
    && mkdir -p /store \
    && chown mug:mug /store

USER mug
VOLUME ["/store"]
EXPOSE 8000

HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('MUG_PORT', '8000')}/readyz\", timeout=2)"]

CMD ["mug-api"]
