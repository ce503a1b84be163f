#!/usr/bin/env bash
# Installs the Debian 12 packages supcon needs, and any named as arguments,
# skipping those already present.
set -euo pipefail
packages=(build-essential cmake libeigen3-dev catch2 libcli11-dev nlohmann-json3-dev
          libbenchmark-dev doxygen graphviz libstb-dev zlib1g-dev dataset-fashion-mnist
          libopenmpi-dev openmpi-bin "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
