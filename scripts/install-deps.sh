#!/bin/bash
# Installs what skiff needs with apt-get. `--test` adds what the tests need.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
runtime_pkgs=(crun runc ca-certificates)
build_pkgs=(build-essential pkg-config libh2o-evloop-dev libwslay-dev libjansson-dev libcurl4-openssl-dev
            libarchive-dev libsqlite3-dev libyaml-dev libssl-dev libisal-dev libseccomp-dev libmnl-dev libnftables-dev
            libldns-dev)
test_pkgs=(clang python3 python3-pytest python3-requests busybox-static jq openssl curl docker-registry skopeo
           apache2-utils iproute2 util-linux procps nftables azure-cli python3-websocket python3-yaml
           bind9 bind9-dnsutils)
pkgs=("${runtime_pkgs[@]}" "${build_pkgs[@]}")
if [ "${1:-}" = "--test" ]; then pkgs+=("${test_pkgs[@]}"); fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # docker-registry's package starts a registry on :5000 where no policy-rc.d stops it: the tests run their own.
  if [ -x /etc/init.d/docker-registry ]; then service docker-registry stop >/dev/null 2>&1 || true; fi
fi
if [ "${1:-}" = "--test" ]; then
  # The conformance tests drive the real Azure SDK for JavaScript: node + npm (nodesource's nodejs
  # includes npm; Debian splits them), then the packages into a folder outside the repository.
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    apt-get update -qq
    if command -v node >/dev/null; then apt-get install -y -qq npm >/dev/null
    else apt-get install -y -qq nodejs npm >/dev/null; fi
  fi
  "$(dirname "$0")/install-js-clients.sh"
fi
