#!/usr/bin/env bash
# Builds the kfops image with podman on a machine that cannot pull from any container registry:
# a Debian base made locally with debootstrap, then `podman build` of the project's Dockerfile.
#
#   scripts/image-local.sh [all|tools|base|build|socket|env]    (default: all)
#
# Idempotent and cached: the base image is made once; the build is skipped when an image with the
# current source hash (label io.kfops.source-hash) exists. `socket` starts the Podman API service
# so that docker clients (kfp.local.DockerRunner) reach podman through DOCKER_HOST. Last lines on
# stdout: KFOPS_IMAGE=... and DOCKER_HOST=... (eval-able).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${KFOPS_PODMAN_DIR:-$ROOT/.kfops/podman}"
SUITE="${KFOPS_BASE_SUITE:-bookworm}"
BASE_IMAGE="${KFOPS_BASE_IMAGE:-localhost/kfops-base:$SUITE}"
VERSION="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$ROOT/kfops/__init__.py")"
IMAGE="${KFOPS_IMAGE:-ghcr.io/kfops/kfops:$VERSION}"
SOCKET="$STATE/podman.sock"
# runc: crun fails on hybrid cgroups; default ulimits are refused in unprivileged sandboxes.
export CONTAINERS_CONF="$STATE/containers.conf"

log() { printf 'image-local: %s\n' "$*" >&2; }

ensure_tools() {
  local missing=()
  # slirp4netns: pods of `podman kube play` reach the host's loopback (tests/container).
  for tool in podman runc debootstrap slirp4netns; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  if ((${#missing[@]})); then
    log "installing podman runc debootstrap slirp4netns (apt; missing: ${missing[*]})"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap slirp4netns \
      >/dev/null
  fi
  mkdir -p "$STATE"
  cat >"$CONTAINERS_CONF" <<'CONF'
[containers]
default_ulimits = []

[engine]
runtime = "runc"
CONF
}

# The Debian mirror this machine's apt already uses (deb822 or one-line sources).
apt_mirror() {
  local mirror
  mirror="$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' \
    | grep -v -- '-security' | grep '/debian' | head -n1 || true)"
  if [[ -z "$mirror" ]]; then
    mirror="$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
      | awk '{print $2}' | grep -v -- '-security' | grep '/debian' | head -n1 || true)"
  fi
  printf '%s\n' "${mirror:-http://deb.debian.org/debian}"
}

make_base() {
  if podman image exists "$BASE_IMAGE"; then
    log "base $BASE_IMAGE exists"
    return
  fi
  local dir mirror
  dir="$(mktemp -d "$STATE/rootfs.XXXXXX")"
  mirror="$(apt_mirror)"
  log "debootstrap $SUITE from $mirror"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$SUITE" "$dir" "$mirror" >"$STATE/debootstrap.log" 2>&1 \
    || { tail -n 20 "$STATE/debootstrap.log" >&2; rm -rf "$dir"; exit 1; }
  rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb
  tar -C "$dir" -c . | podman import --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null
  rm -rf "$dir"
  log "imported $BASE_IMAGE"
}

# Hash of everything the Dockerfile copies, plus the base image id.
source_hash() {
  (
    cd "$ROOT"
    find Dockerfile .dockerignore pyproject.toml constraints.txt README.md kfops components pipelines \
      -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | LC_ALL=C sort -z \
      | xargs -0 sha256sum
    podman image inspect --format '{{.Id}}' "$BASE_IMAGE"
  ) | sha256sum | cut -c1-16
}

# The CA bundle the host's pip trusts, if configured (needed behind a TLS-inspecting proxy).
pip_cert() {
  python3 -m pip config list 2>/dev/null | sed -n "s/^[^ ]*\.cert='\(.*\)'$/\1/p" | head -n1
}

build() {
  local hash current cert
  hash="$(source_hash)"
  current="$(podman image inspect --format '{{index .Config.Labels "io.kfops.source-hash"}}' \
    "$IMAGE" 2>/dev/null || true)"
  if [[ "$current" == "$hash" ]]; then
    log "$IMAGE is up to date (source $hash)"
    return
  fi
  local args=(--network host --build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "VERSION=$VERSION"
    --build-arg "REVISION=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)"
    --label "io.kfops.source-hash=$hash" -t "$IMAGE" -f "$ROOT/Dockerfile")
  cert="$(pip_cert)"
  if [[ -n "$cert" && -f "$cert" ]]; then
    args+=(--volume "$cert:$cert:ro" --build-arg "PIP_CERT=$cert")
  fi
  log "building $IMAGE (source $hash)"
  local start=$SECONDS
  podman build "${args[@]}" "$ROOT" >&2
  log "built $IMAGE in $((SECONDS - start)) s"
}

socket() {
  if podman --url "unix://$SOCKET" version >/dev/null 2>&1; then
    log "podman service already listening on $SOCKET"
    return
  fi
  rm -f "$SOCKET"
  nohup podman system service --time=0 "unix://$SOCKET" >"$STATE/service.log" 2>&1 &
  echo $! >"$STATE/service.pid"
  for _ in $(seq 50); do
    podman --url "unix://$SOCKET" version >/dev/null 2>&1 && break
    sleep 0.2
  done
  log "podman service on $SOCKET (pid $(cat "$STATE/service.pid"))"
}

print_env() {
  printf 'KFOPS_IMAGE=%s\nDOCKER_HOST=unix://%s\n' "$IMAGE" "$SOCKET"
}

case "${1:-all}" in
  tools) ensure_tools ;;
  base) ensure_tools; make_base ;;
  build) ensure_tools; make_base; build; print_env ;;
  socket) ensure_tools; socket; print_env ;;
  env) print_env ;;
  all) ensure_tools; make_base; build; socket; print_env ;;
  *) log "unknown command: $1 (all|tools|base|build|socket|env)"; exit 2 ;;
esac
