#!/usr/bin/env bash
# Installs the Debian packages the build, the tests and the local stack need. Idempotent: installs
# only what is missing, and runs `apt-get update` only when something is.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config ccache git
  librdkafka-dev libcurl4-openssl-dev libhiredis-dev libboost1.81-dev nlohmann-json3-dev libssl-dev libre2-dev
  libgtest-dev googletest
  redis-server postgresql
  default-jre-headless maven
  python3-venv python3-dev
  clang clang-format clang-tidy libclang-rt-14-dev
  wrk
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "installing Debian packages: ${missing[*]}"
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -q
"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
