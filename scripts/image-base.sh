#!/bin/sh
# Makes the container image's base, Debian 12 minbase, from Debian's own archive with
# debootstrap, for hosts where no registry can be pulled from; podman imports it as TAG.
# The tarball is cached (CACHE, default ${XDG_CACHE_HOME:-$HOME/.cache}/orket), so only the
# first call downloads. Usage: sh scripts/image-base.sh TAG
set -eu
TAG=${1:?usage: image-base.sh TAG}
CACHE=${ORKET_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/orket}
TAR="$CACHE/debian-bookworm-minbase.tar"

podman image exists "$TAG" && exit 0
if [ ! -s "$TAR" ]; then
  command -v debootstrap >/dev/null || { echo "image-base: debootstrap is not installed" >&2; exit 1; }
  # The mirror apt already uses here (a one-line or a deb822 sources file), else Debian's.
  mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
    awk '/^deb[ \t]/ && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }
         /^URIs:/ && $2 !~ /security/ && $2 ~ /debian\/?$/ { print $2; exit }')
  mirror=${mirror:-http://deb.debian.org/debian}
  mkdir -p "$CACHE"
  root=$(mktemp -d "$CACHE/root.XXXXXX")
  trap 'rm -rf "$root" "$TAR.part"' EXIT
  echo "image-base: debootstrap --variant=minbase bookworm from $mirror (once; cached in $TAR)" >&2
  debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 ||
    { tail -n 20 "$root.log" >&2; rm -f "$root.log"; exit 1; }
  rm -f "$root.log"
  # the tree's top is mktemp's 0700 directory: a root directory anybody may enter, as on a
  # machine (the image's own user, and any other, must reach /usr)
  chmod 755 "$root"
  # what the slim images also drop: the package lists and caches
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
  tar -C "$root" --numeric-owner -cf "$TAR.part" .
  mv "$TAR.part" "$TAR"
fi
podman import -q "$TAR" "$TAG" >/dev/null
