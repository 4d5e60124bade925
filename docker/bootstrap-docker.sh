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
#      by `voipqa lab build` (Compose with the classic builder: BuildKit fetches a frontend
#      image; --network host; pip from the wheelhouse).
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

# the images of docker-compose.yml, by Compose itself (cached layers reused: seconds when
# nothing changed); log in .voipqa/build.log
say "building the images (voipqa lab build; log: .voipqa/build.log)"
start=$(date +%s)
.venv/bin/voipqa lab build >.voipqa/build.log 2>&1 \
  || fail "building the images failed (log: .voipqa/build.log): $(grep -v '^\s*$' .voipqa/build.log | tail -n 1)"
grep '^  voipqa/' .voipqa/build.log | sed 's/^ */bootstrap --docker:   /'
say "  built in $(( $(date +%s) - start )) s"
say "ready ($(docker version -f '{{.Server.Version}}'))"
