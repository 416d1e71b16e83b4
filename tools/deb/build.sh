#!/bin/sh
# Build the Debian package from a staged install (`make deb`):
#   tools/deb/build.sh ROOT VERSION DEB
# ROOT holds `make install-files PREFIX=/usr` (no /etc: postinst puts the
# example config there only if there is none).  The binaries are
# stripped, the manual pages and README compressed as Debian does, the
# library dependencies found by dpkg-shlibdeps, and the package written
# with dpkg-deb: no debian/ directory, no network, no root needed.
set -e
root=$1
version=$2
deb=$3
if [ -z "$root" ] || [ -z "$version" ] || [ -z "$deb" ]; then
	echo "usage: $0 ROOT VERSION DEB" >&2
	exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
arch=$(dpkg --print-architecture)
sbin=$root/usr/sbin/ringlb
bin=$root/usr/bin/ringlbctl

strip --strip-unneeded --remove-section=.comment --remove-section=.note \
	"$sbin" "$bin"
gzip -9nf "$root"/usr/share/man/man*/*
gzip -9nf "$root/usr/share/doc/ringlb/README.md"

# dpkg-shlibdeps reads debian/control; one of a few lines is enough.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/debian"
printf 'Source: ringlb\n\nPackage: ringlb\nArchitecture: any\n' \
	> "$work/debian/control"
shlibs=$(cd "$work" && dpkg-shlibdeps -O -e"$sbin" -e"$bin" 2>/dev/null |
	sed -n 's/^shlibs:Depends=//p')
if [ -z "$shlibs" ]; then
	echo "deb: dpkg-shlibdeps found no dependencies" >&2
	exit 1
fi

mkdir -p "$root/DEBIAN"
cat > "$root/DEBIAN/control" <<CONTROL
Package: ringlb
Version: $version
Architecture: $arch
Maintainer: ${DEB_MAINTAINER:-ringlb maintainers <root@localhost>}
Installed-Size: $(du -sk "$root" | cut -f1)
Depends: $shlibs, adduser
Section: net
Priority: optional
Description: Layer-4 TCP load balancer with an io_uring engine
 ringlb joins client TCP connections to healthy backends of a pool
 (round-robin, least-connections, random-two or maglev), routes TLS by
 server name without terminating it, speaks the PROXY protocol, and is
 steered at runtime through an admin API and ringlbctl.
 .
 The package installs the programs, manual pages, systemd units and an
 example configuration, and creates the system user ringlb; it enables
 and starts nothing.
CONTROL
for s in postinst prerm postrm; do
	install -m 0755 "$here/$s" "$root/DEBIAN/$s"
done
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' |
	LC_ALL=C sort -z | xargs -0 md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "deb: $deb"
