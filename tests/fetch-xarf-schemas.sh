#!/bin/bash
# Puts xarf-spec's X-ARF v4 schemas where tests/test_abuse_xarf_schema.py reads them, without
# copying them into this repository: the test validates every complaint's JSON against them.
#   tests/fetch-xarf-schemas.sh [DIRECTORY]  (default /var/cache/bruteguard-tests/xarf-spec)
# giving DIRECTORY/schemas/v4/{xarf-v4-master.json,xarf-core.json,types/connection-login-attack.json}
# (the master schema, the core it includes, and the one type schema bruteguard produces; the
# master's other types are only referenced for other categories and never loaded).
# Pinned to one xarf-spec commit, each file checked against its SHA-256: a changed upstream
# schema is a deliberate update here (new COMMIT and sums), never a silent one.
# XARF_SPEC_BASE overrides where the files come from (any URL curl reads, file:// too).
# Idempotent: files already there with the right sums are left as they are; needs the
# network only when one is missing (CI setup runs it before the tests).
set -euo pipefail

COMMIT=37820dace8ac6a9495d33886abc9f94e3d1691fe  # xarf-spec main, 2026-03-20
SUMS=(
    "6f0ecfae05fda949f511d36d38e1e5eeff0bad39cc51641964de10aed89bee12 schemas/v4/xarf-v4-master.json"
    "510601620f01d59e49feb0850b0e56fbfdc7a58b5ace6990644f4d98ad098453 schemas/v4/xarf-core.json"
    "b7d2ee83b12ccbae506d8ea8a6627f81352dedf15e4ea10f012a003293da2e63 schemas/v4/types/connection-login-attack.json"
)

root=${1:-/var/cache/bruteguard-tests/xarf-spec}
if [[ $root != /* ]]; then
    echo "fetch-xarf-schemas: $root is not an absolute path" >&2
    exit 2
fi
base=${XARF_SPEC_BASE:-https://raw.githubusercontent.com/xarf/xarf-spec/$COMMIT}

for entry in "${SUMS[@]}"; do
    sum=${entry%% *}
    path=${entry#* }
    target=$root/$path
    if [[ -f $target ]] && sha256sum --check --status <<<"$sum  $target"; then
        continue
    fi
    mkdir -p "$(dirname "$target")"
    scratch=$(mktemp "$target.XXXXXX")
    if ! curl --fail --silent --show-error --location --max-time 60 -o "$scratch" "$base/$path"; then
        rm -f "$scratch"
        echo "fetch-xarf-schemas: could not download $base/$path" >&2
        exit 1
    fi
    if ! sha256sum --check --status <<<"$sum  $scratch"; then
        rm -f "$scratch"
        echo "fetch-xarf-schemas: $path from $base does not have SHA-256 $sum" >&2
        exit 1
    fi
    chmod 0644 "$scratch"
    mv "$scratch" "$target"
done
echo "fetch-xarf-schemas: $root/schemas/v4 is present (xarf-spec $COMMIT)"
