#!/usr/bin/env bash
# The whole test suite. The chat page's browser test (crates/serve/tests/web.rs) drives Debian's
# Chromium through chromedriver; they are installed here when missing (apt-get, as root or with
# sudo), then every test of the workspace runs. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  echo "installing chromium and chromium-driver (Debian) for the browser test" >&2
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
fi
exec cargo test --workspace --release "$@"
