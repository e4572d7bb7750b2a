#!/bin/sh
# make install / make uninstall: install.sh install|uninstall DESTDIR PREFIX BUILD
#
# The library (lua, roles, tools, policies, templates, web) is replaced whole, not merged:
# built-in tools, roles and policies are found by listing their folders, so a file an older
# release had and this one removed would stay live. Its modes are set, not taken from the
# umask: a root whose umask is 077 made a library only root could read. Every path is
# quoted: a prefix holding a space split into two words and installed into the source tree.
set -eu
umask 022
mode=${1:?install or uninstall} destdir=${2-} prefix=${3:?PREFIX} build=${4:-build}
case $prefix in /*) ;; *) echo "install: PREFIX=$prefix: give an absolute path" >&2; exit 2 ;; esac
case $destdir in ''|/*) ;; *) echo "install: DESTDIR=$destdir: give an absolute path, or none" >&2; exit 2 ;; esac
root=$destdir$prefix
share=$root/share/orket
case $mode in
install)
  for f in "$build/orket" "$build/orket-confine"; do
    [ -f "$f" ] || { echo "install: $f is not built: run make first" >&2; exit 1; }
  done
  install -d -m 755 "$root/bin" "$root/share"
  new=$share.new.$$ old=$share.old.$$
  trap 'rm -rf "$new"' EXIT
  rm -rf "$new"
  mkdir "$new"
  for d in lua roles tools policies templates web; do
    if [ -d "$d" ]; then cp -R "$d" "$new/"; fi
  done
  chmod -R u=rwX,go=rX "$new"
  chmod 755 "$new"
  # the old library moved aside, the new one put in its place, then the old one removed:
  # a library is whole at every moment but the one between the two renames
  if [ -e "$share" ]; then mv "$share" "$old"; fi
  mv "$new" "$share"
  rm -rf "$old"
  install -m 755 "$build/orket" "$build/orket-confine" "$root/bin/"
  ;;
uninstall)
  rm -f "$root/bin/orket" "$root/bin/orket-confine"
  rm -rf "$share"
  ;;
*) echo "install: $mode: install or uninstall" >&2; exit 2 ;;
esac
