#!/usr/bin/env bash
# Makes sure the Debian packages a task needs are installed.
#   scripts/debian-deps.sh test|bench|deb
# As root with apt-get: installs what is missing (apt-get update first, once).
# Otherwise: prints exactly what is missing and how to install it, exit 1.
# Each need is "command-or-path-glob:package"; a need is met when the command is
# on PATH (or a file matches the glob).
set -euo pipefail

case "${1:-}" in
  test) needs=(ruby:ruby-rack '/usr/share/rubygems-integration/all/gems/rack-2.*/lib/rack.rb:ruby-rack' systemd-socket-activate:systemd kcat:kcat java:openjdk-17-jre-headless mvn:maven python3:python3 '/usr/lib/python3*/ensurepip/__init__.py:python3-venv' haproxy:haproxy h2load:nghttp2-client openssl:openssl curl:curl chromium:chromium) ;;
  bench) needs=(wrk:wrk nginx:nginx-light taskset:util-linux kcat:kcat java:openjdk-17-jre-headless mvn:maven) ;;
  deb) needs=(dpkg-deb:dpkg lintian:lintian debootstrap:debootstrap systemd-analyze:systemd fakeroot:fakeroot) ;;
  *) echo "usage: $0 test|bench|deb" >&2; exit 64 ;;
esac

missing=()
for need in "${needs[@]}"; do
  what=${need%%:*} pkg=${need##*:}
  if [[ $what == /* ]]; then compgen -G "$what" >/dev/null && continue; else command -v "$what" >/dev/null 2>&1 && continue; fi
  [[ " ${missing[*]-} " == *" $pkg "* ]] || missing+=("$pkg")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
  echo "debian-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  exit 0
fi
echo "debian-deps: missing Debian packages: ${missing[*]} (install with: sudo apt-get install ${missing[*]})" >&2
exit 1
