#!/bin/sh
# Install the Debian packages ringlb needs to build, test and run its demo,
# but only those that are missing.  Needs root (or sudo) the first time.
# Arguments name more packages to check the same way (`make fuzz`, `make lint`).
# check_install needs mandoc (lints the manual pages), systemd
# (systemd-analyze verify of the units), man-db (verify looks up their
# Documentation= pages), dpkg-dev (dpkg-shlibdeps, for `make deb`) and
# adduser (the package's postinst).  check_cluster needs bird2 (BGP and BFD
# in its router and balancer namespaces) and nftables (flow pinning in the
# router, a silent node) and keepalived (its VRRP active/backup test).
set -e
pkgs="gcc make pkg-config liburing-dev libjansson-dev libmicrohttpd-dev libcap-ng-dev libcurl4-openssl-dev libc-ares-dev check redis-server redis-tools procps curl openssl mandoc systemd man-db dpkg-dev adduser bird2 nftables keepalived $*"
missing=""
for p in $pkgs; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$st" in
	*"ok installed"*) ;;
	*) missing="$missing $p" ;;
	esac
done
[ -z "$missing" ] && exit 0
echo "deps: installing:$missing"
if [ "$(id -u)" = 0 ]; then
	SUDO=""
elif command -v sudo >/dev/null 2>&1; then
	SUDO="sudo"
else
	echo "deps: missing packages:$missing (run as root to install them)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing
