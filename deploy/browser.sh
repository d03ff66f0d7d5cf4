#!/usr/bin/env bash
# The web app's build (services/frontend/dist, which the gateway serves at /) and what the
# browser tests need, installed or built when missing or stale.
#   deploy/browser.sh        Debian's Chromium (Playwright drives it by path: no browser can
#                            be downloaded), then the app (make browser, make test)
#   deploy/browser.sh app    the app only: its npm packages (package-lock.json, `npm ci`)
#                            and its build (make up)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
APP="$ROOT/services/frontend"

[ "${1:-all}" = app ] || [ -x /usr/bin/chromium ] || apt_install chromium
command -v npm >/dev/null || apt_install nodejs npm

cd "$APP"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "npm ci in services/frontend"
  npm ci --no-audit --no-fund >&2
fi
if [ ! -f dist/index.html ] || [ -n "$(find src index.html package-lock.json vite.config.ts tsconfig.json -newer dist/index.html -print -quit)" ]; then
  say "building the app (services/frontend/dist)"
  npm run --silent build >&2
fi
