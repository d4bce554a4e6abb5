#!/usr/bin/env bash
# Stages a firebell config directory as the content of the ConfigLayer and validates it.
#
#   infra/config-layer/stage-config.sh SRC DEST
#
# Copies every *.yaml / *.yml file below SRC into DEST, keeping relative paths, and
# nothing else: hidden entries (.git, .gitkeep, ...) and directories named `demo` or
# `tests` (replay data, rule unit tests) are left out, as is every non-YAML file.
# Files are made world-readable (Lambda reads /opt as another user). Then runs
# `firebell validate` on DEST, i.e. on exactly what ships, and fails on any error.
# DEST is replaced, never merged.
#
# sam build calls this through infra/config-layer/Makefile (DEST = $ARTIFACTS_DIR/config,
# which the layer mounts at /opt/config). It can also be run by hand to see what would ship.
#
# Environment:
#   FIREBELL   command that runs the firebell CLI (default:
#              `cargo run -q --manifest-path <repo>/Cargo.toml -p firebell --`),
#              e.g. FIREBELL=target/release/firebell
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 SRC DEST" >&2
    exit 2
fi
src="$1"
dest="$2"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

if [[ ! -d "$src" ]]; then
    echo "config layer: config directory '$src' (from $PWD) does not exist (FIREBELL_CONFIG_DIR)" >&2
    exit 1
fi
src="$(cd "$src" && pwd -P)"

rm -rf "$dest"
mkdir -p "$dest"
dest="$(cd "$dest" && pwd -P)"
case "$dest/" in
"$src"/*)
    echo "config layer: destination $dest is inside the config directory $src" >&2
    exit 1
    ;;
esac

# Relative paths of the config files, NUL-separated, sorted.
mapfile -d '' files < <(
    cd "$src" &&
        find -L . -mindepth 1 \
            \( -name '.*' -o \( -type d \( -name demo -o -name tests \) \) \) -prune -o \
            -type f \( -name '*.yaml' -o -name '*.yml' \) -print0 |
        sort -z
)
if [[ ${#files[@]} -eq 0 ]]; then
    echo "config layer: no config files (*.yaml, *.yml) in $src" >&2
    exit 1
fi

for f in "${files[@]}"; do
    f="${f#./}"
    mkdir -p "$dest/$(dirname "$f")"
    cp -L "$src/$f" "$dest/$f"
    chmod 0644 "$dest/$f"
done
find "$dest" -type d -exec chmod 0755 {} +

echo "config layer: ${#files[@]} file(s) from $src:"
printf '  %s\n' "${files[@]#./}"

# Validate what ships. Run from DEST so diagnostics read `rules/x.yaml:3:5`,
# relative to the config directory the user edits.
if [[ -n "${FIREBELL:-}" ]]; then
    read -r -a firebell <<<"$FIREBELL"
else
    firebell=(cargo run -q --manifest-path "$root/Cargo.toml" -p firebell --)
fi
echo "config layer: ${firebell[*]} validate ."
if ! (cd "$dest" && "${firebell[@]}" validate .); then
    echo "config layer: $src is not valid (paths above are relative to it); nothing was built" >&2
    rm -rf "$dest"
    exit 1
fi
