#!/bin/bash
# Installs the Azure SDK for JavaScript packages the conformance tests drive
# (@azure/arm-containerinstance 9 and @azure/identity 4) into ${SKIFF_JS_DIR:-/var/cache/skiff-js},
# outside the repository. Does nothing when they are already there. Needs node and npm.
set -euo pipefail
dir=${SKIFF_JS_DIR:-/var/cache/skiff-js}
have() { # package, major version
  local f="$dir/node_modules/$1/package.json"
  [ -f "$f" ] && node -e 'const v=require(process.argv[1]).version; process.exit(v.split(".")[0]===process.argv[2]?0:1)' "$f" "$2"
}
if have @azure/arm-containerinstance 9 && have @azure/identity 4; then
  exit 0
fi
command -v npm >/dev/null || { echo "install-js-clients: npm is missing" >&2; exit 1; }
mkdir -p "$dir"
cd "$dir"
[ -f package.json ] || echo '{"name":"skiff-js-clients","private":true}' > package.json
echo "installing @azure/arm-containerinstance@9 @azure/identity@4 into $dir"
npm install --no-audit --no-fund --loglevel=error @azure/arm-containerinstance@9 @azure/identity@4 >/dev/null
have @azure/arm-containerinstance 9 && have @azure/identity 4
