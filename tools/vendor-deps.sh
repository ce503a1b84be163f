#!/usr/bin/env bash
# Copies the header-only dependencies (Eigen, Catch2 v2, CLI11, nlohmann-json)
# with their CMake package files from this machine's Debian packages into a
# folder, default .deps/, laid out as a prefix (include/, lib/cmake/, share/).
# A machine without those packages then configures with
#   cmake -S . -B build -DSUPCON_DEPS_DIR=.deps
# (bench/gpu/run.sh does). The CMake files locate their headers relative to
# themselves, so the folder may be moved or copied anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:-.deps}
packages=(libeigen3-dev catch2 libcli11-dev nlohmann-json3-dev)

mkdir -p "$dest"
for pkg in "${packages[@]}"; do
  if ! dpkg -s "$pkg" >/dev/null 2>&1; then
    echo "vendor-deps: Debian package $pkg is not installed here (apt-get install $pkg)" >&2
    exit 1
  fi
  count=0
  # headers and CMake package files, each at its path below /usr, and the
  # small static library Catch2's package file names (libCatch2WithMain.a)
  while IFS= read -r path; do
    [[ -f "$path" ]] || continue
    case "$path" in
      /usr/include/* | /usr/lib/cmake/* | /usr/share/cmake/* | /usr/share/eigen3/cmake/* | /usr/lib/*.a) ;;
      *) continue ;;
    esac
    rel=${path#/usr/}
    mkdir -p "$dest/$(dirname "$rel")"
    cp -p "$path" "$dest/$rel"
    count=$((count + 1))
  done < <(dpkg -L "$pkg")
  echo "vendor-deps: $pkg $(dpkg-query -W -f='${Version}' "$pkg"): $count files"
done
echo "vendor-deps: $(du -sh "$dest" | cut -f1) in $dest"
