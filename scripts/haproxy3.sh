#!/usr/bin/env bash
# scripts/haproxy3.sh: a real HAProxy 3.0 LTS (Debian 13's 3.0.11) beside the
# system's 2.6, without touching the system; prints the binary's path.
#
#   HAPROXY_BIN=$(scripts/haproxy3.sh) go test ./scripts/live
#   HAPROXY3_DIR=/opt/haproxy-3.0 scripts/haproxy3.sh   # another cache dir
#
# Debian 13 (trixie) ships HAProxy 3.0; Debian 12 ships 2.6.12. This
# downloads the trixie packages of haproxy and the libraries it links
# (apt-get download, with an apt state of its own: a sources list naming the
# archive this machine already uses, suite trixie, signed by the installed
# Debian archive keyring), unpacks them with dpkg-deb -x into the cache
# directory, and points a copy of usr/sbin/haproxy at trixie's own dynamic
# loader and libraries (patchelf), so that the system's libc is never mixed
# with trixie's. The result runs in master-worker mode too: the master
# re-execs /proc/self/exe, the patched copy.
#
# Cached: a second run that finds the binary printing the expected version
# prints its path and downloads nothing. It fails loudly (a message on
# stderr, exit 1) at any step; nothing is half-installed, the directory is
# built beside the cache and renamed into place.
set -euo pipefail

version=3.0.11
dir=${HAPROXY3_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/serf-hb/haproxy-3.0}
bin=$dir/haproxy
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
# The haproxy package and what its binary links (ldd of trixie's
# usr/sbin/haproxy, with libc6 bringing the loader itself).
pkgs=(haproxy libc6 libcrypt1 libjemalloc2 liblua5.4-0 libopentracing-c-wrapper0t64 libopentracing1
	libpcre2-8-0 libssl3t64 libstdc++6 libgcc-s1 zlib1g libzstd1)

die() {
	echo "haproxy3.sh: $*" >&2
	exit 1
}

# works BIN: BIN runs and is HAProxy $version.
works() {
	local out
	[ -x "$1" ] && out=$("$1" -v 2>/dev/null) && [[ $out == "HAProxy version $version-"* ]]
}

if works "$bin"; then
	echo "$bin"
	exit 0
fi

[ "$(dpkg --print-architecture 2>/dev/null)" = amd64 ] ||
	die "only amd64 is handled (the loader path is ld-linux-x86-64.so.2); this machine is $(dpkg --print-architecture 2>/dev/null || echo unknown)"
[ -r "$keyring" ] || die "$keyring missing; hint: apt-get install -y debian-archive-keyring"
for cmd in apt-get dpkg-deb; do
	command -v "$cmd" >/dev/null 2>&1 || die "$cmd not found; this script needs a Debian machine"
done
if ! command -v patchelf >/dev/null 2>&1; then
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	echo "haproxy3.sh: installing patchelf" >&2
	$sudo apt-get update -qq || die "apt-get update failed"
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq patchelf >/dev/null || die "apt-get install patchelf failed"
fi

# The archive this machine already uses: the URI of the source that serves
# its own Debian release's main suite (deb822 .sources or one-line .list),
# so that no host is written down here.
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
[ -n "$codename" ] || die "no VERSION_CODENAME in /etc/os-release"
archive_uri() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		# One stanza per paragraph; print the first URI of a stanza whose
		# Suites include the codename itself.
		awk -v want="$codename" '
			function flush() { if (deb && hit && uri != "") { print uri; found = 1; exit } deb = hit = 0; uri = "" }
			/^[[:space:]]*$/ { flush(); next }
			/^[[:space:]]*#/ { next }
			tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
			tolower($1) == "uris:" { uri = $2 }
			tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == want) hit = 1 }
			END { if (!found) flush() }' "$f"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		# deb [options] URI SUITE COMPONENTS...
		awk -v want="$codename" '
			$1 == "deb" { i = 2; if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
				if ($(i + 1) == want) { print $i; exit } }' "$f"
	done
}
uri=$(archive_uri | head -n 1)
[ -n "$uri" ] || die "no apt source for suite $codename in /etc/apt/sources.list{,.d}: cannot tell which Debian archive this machine uses"

mkdir -p "$(dirname "$dir")" || die "mkdir $(dirname "$dir") failed"
tmp=$(mktemp -d "${dir%/}.new.XXXXXX") || die "mkdir beside $dir failed"
trap 'rm -rf "$tmp"' EXIT
apt=$tmp/apt
mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/parts" "$apt/debs" "$tmp/root"
echo "deb [signed-by=$keyring] $uri trixie main" >"$apt/sources.list"
aptopts=(
	-o "Dir::Etc::SourceList=$apt/sources.list"
	-o "Dir::Etc::SourceParts=$apt/parts"
	-o "Dir::State::Lists=$apt/lists"
	-o "Dir::Cache=$apt/cache"
	-o "Debug::NoLocking=1"
	-o "APT::Sandbox::User=root"
	-o "Acquire::Languages=none"
)
echo "haproxy3.sh: downloading trixie's ${pkgs[*]} (from the archive of $codename's sources)" >&2
apt-get "${aptopts[@]}" update -qq >"$apt/update.log" 2>&1 || {
	cat "$apt/update.log" >&2
	die "apt-get update of suite trixie failed"
}
(cd "$apt/debs" && apt-get "${aptopts[@]}" download -qq "${pkgs[@]}") >"$apt/download.log" 2>&1 || {
	cat "$apt/download.log" >&2
	die "apt-get download failed"
}
for deb in "$apt"/debs/*.deb; do
	dpkg-deb -x "$deb" "$tmp/root" || die "dpkg-deb -x $deb failed"
done
ld=$dir/root/usr/lib64/ld-linux-x86-64.so.2
libs=$dir/root/usr/lib/x86_64-linux-gnu
[ -e "$tmp/root/usr/lib64/ld-linux-x86-64.so.2" ] || die "trixie's libc6 has no usr/lib64/ld-linux-x86-64.so.2"
cp "$tmp/root/usr/sbin/haproxy" "$tmp/haproxy"
# The paths point into $dir, where the directory is renamed to below.
patchelf --set-interpreter "$ld" --force-rpath --set-rpath "$libs" "$tmp/haproxy" ||
	die "patchelf of usr/sbin/haproxy failed"
rm -rf "$apt"

rm -rf "$dir"
mv "$tmp" "$dir" || die "rename $tmp to $dir failed"
trap - EXIT
works "$bin" || die "$bin does not run as HAProxy $version: $("$bin" -v 2>&1 | head -n 3)"
echo "$bin"
