#!/bin/sh
# Builds dist/app.js from src/ with the pinned esbuild (npm ci installs the
# exact versions in package-lock.json). The output depends only on the
# sources and those versions, so a rebuild of unchanged sources gives the
# same bytes and CI's "generated files are current" check catches a stale
# bundle. `go generate ./agent/observe/servicemap` runs it (make generate);
# with --deps-only (make deps) it only installs the npm packages, which the
# Playwright test (e2e/hubble) needs too.
set -eu
cd "$(dirname "$0")"
if ! command -v npm >/dev/null; then
	echo "servicemap: npm is missing (make deps installs nodejs and npm)" >&2
	exit 1
fi
# Reinstall only when the lock changed since the last install.
if [ ! -f node_modules/.package-lock.json ] || ! cmp -s package-lock.json node_modules/.lock-installed; then
	npm ci --no-audit --no-fund --loglevel=error
	cp package-lock.json node_modules/.lock-installed
fi
[ "${1:-}" = --deps-only ] && exit 0
./node_modules/.bin/esbuild src/main.js --bundle --minify --format=iife --target=es2020 \
	--legal-comments=eof --charset=utf8 --outfile=dist/app.js --log-level=warning
