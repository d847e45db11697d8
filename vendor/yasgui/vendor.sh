#!/usr/bin/env bash
# Vendor YASGUI into the package's static files, so that installing and running lodpub needs neither npm
# nor a network, and no page ever loads code from a CDN. Run after changing package.json; commit the result
# (package-lock.json here, and src/lodpub/static/yasgui/).
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --ignore-scripts
target=../../src/lodpub/static/yasgui
mkdir -p "$target"
cp node_modules/@zazuko/yasgui/build/yasgui.min.js node_modules/@zazuko/yasgui/build/yasgui.min.css "$target/"
node -e "const p=require('./node_modules/@zazuko/yasgui/package.json'); console.log(p.name, p.version, p.license, p.homepage || (p.repository && p.repository.url))" > "$target/NOTICE"

echo "vendored @zazuko/yasgui $(cut -d" " -f2 "$target/NOTICE") into $target"
