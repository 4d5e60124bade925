#!/usr/bin/env bash
# ./bootstrap --docker: the container path, after the native bootstrap (docs: README,
# "Containers"). Idempotent; each step is skipped when its result is already there.
#   1. the engine: Debian's docker.io (and mmdebstrap), dockerd started when none answers
#      (no systemd on these machines: in the background, log in .voipqa/dockerd.log; no
#      bridge and no iptables: every container uses the host's network);
#   2. the base image debian:12-slim made from the Debian mirror with mmdebstrap (no image
#      registry is reachable), also tagged debian:12;
#   3. a wheelhouse (.wheelhouse/) of voipqa's Python dependencies, downloaded on the host,
#      which has PyPI's certificate chain that the images lack;
#   4. the images of docker-compose.yml: voipqa/lab, voipqa/carrier, voipqa/runner, built
#      with the classic builder and --network host (BuildKit fetches a frontend image).
# Where the engine cannot be installed or started (no root, no cgroups): one line, exit 2.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "bootstrap --docker: $*"; }
fail() { echo "bootstrap --docker: $*" >&2; exit 2; }

[ "$(id -u)" -eq 0 ] || fail "needs root (it installs and starts the Docker engine; rootless Docker is not supported)"
[ -d /sys/fs/cgroup ] && [ -n "$(ls -A /sys/fs/cgroup 2>/dev/null)" ] || fail "no cgroups on this machine: the Docker engine cannot run here"

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
if ((${#missing[@]})); then
  say "installing ${missing[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
fi

mkdir -p .voipqa
if ! docker info >/dev/null 2>&1; then
  say "starting dockerd (log: .voipqa/dockerd.log)"
  nohup dockerd --bridge=none --iptables=false --ip6tables=false >.voipqa/dockerd.log 2>&1 &
  echo $! >.voipqa/dockerd.pid
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || fail "dockerd did not start: $(tail -n 1 .voipqa/dockerd.log)"
fi

if ! docker image inspect debian:12-slim >/dev/null 2>&1; then
  say "making the base image debian:12-slim from the Debian mirror (mmdebstrap, about 20 s)"
  tar=$(mktemp --suffix=.tar)
  mmdebstrap --quiet --variant=minbase --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --include=ca-certificates bookworm "$tar" >.voipqa/mmdebstrap.log 2>&1 \
    || fail "mmdebstrap failed: $(tail -n 1 .voipqa/mmdebstrap.log)"
  docker import --change 'CMD ["bash"]' "$tar" debian:12-slim >/dev/null
  rm -f "$tar"
fi
docker image inspect debian:12 >/dev/null 2>&1 || docker tag debian:12-slim debian:12

stamp=.wheelhouse/.voipqa-pyproject
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  say "downloading the images' Python packages into .wheelhouse"
  rm -rf .wheelhouse
  .venv/bin/python -m pip download -q -d .wheelhouse '.[test]' pip 'setuptools>=77' wheel 2>&1 \
    | grep -v "is ignored" || true
  rm -f .wheelhouse/voipqa-*   # voipqa itself is installed from the source in the image
  echo "$want" >"$stamp"
fi

for image in voipqa/lab:0.1.0=lab/Dockerfile voipqa/carrier:0.1.0=carriers/Dockerfile voipqa/runner:0.1.0=Dockerfile; do
  tag=${image%%=*} file=${image#*=}
  say "building $tag ($file)"
  start=$(date +%s)
  log=.voipqa/build-${tag//[\/:]/-}.log
  DOCKER_BUILDKIT=0 docker build --network host -f "$file" -t "$tag" \
    --build-arg PIP_OPTIONS="--no-index --find-links /opt/voipqa/.wheelhouse" . >"$log" 2>&1 \
    || fail "building $tag failed (log: $log): $(grep -v '^\s*$' "$log" | tail -n 1)"
  say "  $tag: $(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'), $(( $(date +%s) - start )) s"
done
say "ready ($(docker version -f '{{.Server.Version}}'))"
