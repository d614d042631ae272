# The one kfops image: every pipeline step and the inference server run in it.
#   make image        docker or podman build, tag ghcr.io/kfops/kfops:<package version>
#   make image-local  the same on a machine without registry access (local Debian base, podman)
# BASE_IMAGE must provide python3 (3.11) with the venv module; both stages use it, so the venv's
# interpreter path is valid in the final stage.
ARG BASE_IMAGE=docker.io/library/python:3.11.11-slim-bookworm

FROM ${BASE_IMAGE} AS requirements
WORKDIR /src
# The runtime dependencies (and the [serve] extra) as a requirements file, so that the deps stage
# below is rebuilt only when they change, not on every pyproject.toml edit.
COPY pyproject.toml ./
RUN python3 -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['serve']))" > requirements.txt

FROM ${BASE_IMAGE} AS deps
# Optional: a CA bundle path for pip behind a TLS-inspecting proxy (mounted at build time).
ARG PIP_CERT
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python3 -m venv /opt/kfops
# Dependencies only, pinned by constraints.txt: this stage (and its copy into the final image)
# stays cached while only kfops' own code changes.
COPY constraints.txt ./
COPY --from=requirements /src/requirements.txt ./
RUN /opt/kfops/bin/python -m pip install --quiet -c constraints.txt -r requirements.txt \
 && /opt/kfops/bin/python -m pip check

FROM deps AS build
COPY pyproject.toml README.md ./
COPY kfops ./kfops
COPY components ./components
COPY pipelines ./pipelines
# kfops alone, staged under /stage with the venv's layout, then merged over the deps; building
# the CLI parser imports every command module, so a subpackage missing from pyproject fails here.
RUN /opt/kfops/bin/python -m pip install --quiet --no-deps --prefix /stage . \
 && cd /tmp && PYTHONPATH="$(echo /stage/lib/python3*/site-packages)" \
    /opt/kfops/bin/python -c "from kfops import cli; cli.build_parser()"

FROM ${BASE_IMAGE}
RUN groupadd --gid 10001 kfops \
 && useradd --uid 10001 --gid 10001 --home-dir /home/kfops --create-home \
      --shell /usr/sbin/nologin kfops
COPY --from=deps /opt/kfops /opt/kfops
COPY --from=build /stage /opt/kfops
ENV PATH=/opt/kfops/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/kfops
USER 10001:10001
WORKDIR /home/kfops
EXPOSE 8080
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG BASE_IMAGE
# Steps record the commit they run (kfops.runs.context.code_version): a pod has no git checkout.
ENV KFOPS_REVISION=${REVISION}
LABEL org.opencontainers.image.title="kfops" \
      org.opencontainers.image.description="Kubeflow-native ML pipeline components and inference server" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/kfops/kfops" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
# No ENTRYPOINT: KFP and kfp.local pass the full command of each step; the server is `kfops serve`.
CMD ["kfops", "--help"]
