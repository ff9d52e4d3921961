#!/usr/bin/env bash
# Refresh the web-map libraries inlined into national/map.html (`make vendor`).
#
# Takes Leaflet and Leaflet.markercluster from the npm registry with `npm pack` (the
# registry npm is configured for), keeps only the minified builds and their licences, and
# turns the images leaflet.css points at into data: URIs, so the page fetches nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
LEAFLET_VERSION=${LEAFLET_VERSION:-1.9.4}
CLUSTER_VERSION=${CLUSTER_VERSION:-1.5.3}
VENDOR=job/minescan/outputs/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "leaflet@$LEAFLET_VERSION" "leaflet.markercluster@$CLUSTER_VERSION" >/dev/null)
mkdir -p "$work/leaflet" "$work/cluster" "$VENDOR"
tar xzf "$work/leaflet-$LEAFLET_VERSION.tgz" -C "$work/leaflet" --strip-components=1
tar xzf "$work/leaflet.markercluster-$CLUSTER_VERSION.tgz" -C "$work/cluster" --strip-components=1

cp "$work/leaflet/dist/leaflet.js" "$VENDOR/leaflet.js"
cp "$work/leaflet/LICENSE" "$VENDOR/LICENSE-leaflet"
cp "$work/cluster/dist/leaflet.markercluster.js" "$VENDOR/leaflet.markercluster.js"
cat "$work/cluster/dist/MarkerCluster.css" "$work/cluster/dist/MarkerCluster.Default.css" > "$VENDOR/MarkerCluster.css"
cp "$work/cluster/MIT-LICENCE.txt" "$VENDOR/LICENSE-leaflet.markercluster"
# The minified bundles end with a sourceMappingURL comment; a browser's devtools would
# request that .map file, so drop the comment.
sed -i '/^\/\/# sourceMappingURL=/d' "$VENDOR/leaflet.js" "$VENDOR/leaflet.markercluster.js"

python3 - "$work/leaflet/dist" "$VENDOR" "$LEAFLET_VERSION" "$CLUSTER_VERSION" <<'PY'
import base64, json, re, sys
from pathlib import Path

dist, vendor = Path(sys.argv[1]), Path(sys.argv[2])
css = (dist / "leaflet.css").read_text()

def inline(match):
    data = base64.b64encode((dist / match.group(1)).read_bytes()).decode()
    return f"url(data:image/png;base64,{data})"

(vendor / "leaflet.css").write_text(re.sub(r"url\((images/[\w.-]+\.png)\)", inline, css))
(vendor / "VERSIONS.json").write_text(json.dumps(
    {"leaflet": sys.argv[3], "leaflet.markercluster": sys.argv[4]}, indent=2) + "\n")
PY
echo "vendored leaflet $LEAFLET_VERSION and leaflet.markercluster $CLUSTER_VERSION into $VENDOR"
