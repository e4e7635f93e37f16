#!/usr/bin/env bash
# Static checks of the deployment files, for developers and CI. Needs python3 with
# PyYAML; every other tool is used when installed and reported as skipped otherwise:
#   kubectl (renders the kustomizations), kubernetes-validate (schemas), hadolint,
#   docker compose / docker-compose (compose file).
# Nothing here talks to a Docker engine or a cluster.
set -euo pipefail
cd "$(dirname "$0")/../.."

passed=0
failed=0
skipped=0
ok() { passed=$((passed + 1)); echo "ok    $1"; }
bad() { failed=$((failed + 1)); echo "FAIL  $1"; }
skip() { skipped=$((skipped + 1)); echo "skip  $1"; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

if deploy/k8s/sync-config.sh --check >"$tmp/sync.log" 2>&1; then
    ok "deploy/k8s/base/config matches deploy/config"
else
    cat "$tmp/sync.log"
    bad "deploy/k8s/base/config is stale (run deploy/k8s/sync-config.sh)"
fi

mapfile -t yamls < <(find deploy docker-compose.yml -name '*.yaml' -o -name '*.yml' | sort)
for file in "${yamls[@]}"; do
    if python3 -c 'import sys, yaml; list(yaml.safe_load_all(open(sys.argv[1])))' "$file" 2>"$tmp/yaml.log"; then
        ok "yaml parses: $file"
    else
        cat "$tmp/yaml.log"
        bad "yaml parses: $file"
    fi
done

overlays=(base overlays/dev overlays/production)
if command -v kubectl >/dev/null; then
    for overlay in "${overlays[@]}"; do
        out="$tmp/$(basename "$overlay").yaml"
        if kubectl kustomize "deploy/k8s/$overlay" >"$out" 2>"$tmp/kustomize.log"; then
            ok "kustomize renders: $overlay"
            if command -v kubernetes-validate >/dev/null; then
                if kubernetes-validate --strict --quiet "$out"; then
                    ok "schemas valid: $overlay"
                else
                    bad "schemas valid: $overlay"
                fi
            else
                skip "schemas valid: $overlay (no kubernetes-validate)"
            fi
        else
            cat "$tmp/kustomize.log"
            bad "kustomize renders: $overlay"
        fi
    done
else
    skip "kustomize renders (no kubectl)"
fi

if command -v hadolint >/dev/null; then
    if hadolint deploy/Dockerfile; then ok "hadolint deploy/Dockerfile"; else bad "hadolint deploy/Dockerfile"; fi
else
    skip "hadolint (not installed)"
fi

compose=()
if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
elif command -v docker-compose >/dev/null; then
    compose=(docker-compose)
fi
if [[ ${#compose[@]} -gt 0 ]]; then
    if "${compose[@]}" -f docker-compose.yml config -q; then
        ok "compose file valid"
    else
        bad "compose file valid"
    fi
else
    skip "compose file valid (no docker compose)"
fi

echo "deploy: $passed passed, $failed failed, $skipped skipped"
[[ $failed -eq 0 ]]
