#!/usr/bin/env bash
# A model rollout, as CI runs it and as a person can run it by hand:
#
#   scripts/rollout.sh candidate CONFIG   train (or take given model directories), publish them
#                                         to the registry, gate them against the dev channel,
#                                         promote them to dev
#   scripts/rollout.sh release CONFIG     gate the same versions against prod, promote to prod
#
# .github/workflows/rollout.yml runs `candidate`, then `release` once a reviewer has approved
# the `production` environment. Every step is a `minescan` command (docs/CLUSTER.md,
# "Model rollouts"); a failed gate stops the rollout with exit 4 and leaves the channel as it was.
#
# CONFIG is a KEY=VALUE file (configs/rollout.env is the template); the environment wins over it:
#   REGISTRY             model registry, gs://BUCKET/registry (or a local directory)
#   EVAL                 pinned evaluation set: a directory with discovery/ and impact/ chip sets
#   RULES                gate rules file (configs/gate.yaml)
#   KINDS                networks to roll out: "discovery impact", or one of them
#   TRAIN_MODE           ci: `minescan train` right here (small models); job: the GPU training Job
#                        on the cluster (scripts/deploy.sh gpu-train, needs kubectl and IMAGE, GSA)
#   TRAIN_DISCOVERY_DATA, TRAIN_IMPACT_DATA   training chips of each network
#   TRAIN_ARGS           more `minescan train` options for TRAIN_MODE=ci (e.g. --epochs 30)
#   CANDIDATES           where trained model directories go: CANDIDATES/<kind>-<RUN_ID>
#   CANDIDATE_DISCOVERY, CANDIDATE_IMPACT   an already trained model directory: skip training
#   DEV_CHANNEL, PROD_CHANNEL   default dev and prod
#   MINESCAN             the minescan command (default: minescan)
#   RUN_ID, BY           rollout id and who runs it (CI sets GITHUB_RUN_ID and GITHUB_ACTOR)
# `candidate` writes the versions to ROLLOUT_STATE (default build/rollout/versions.env) and, in
# GitHub Actions, to $GITHUB_OUTPUT; `release` reads DISCOVERY_VERSION / IMPACT_VERSION from the
# environment, else from ROLLOUT_STATE.
set -euo pipefail

die() { echo "rollout: $*" >&2; exit 2; }

STAGE=${1:-}
CONFIG=${2:-}
[[ "$STAGE" == candidate || "$STAGE" == release ]] || die "usage: scripts/rollout.sh candidate|release CONFIG"
[ -f "$CONFIG" ] || die "no rollout config file '$CONFIG' (see configs/rollout.env)"

KEYS=" REGISTRY EVAL RULES KINDS TRAIN_MODE TRAIN_DISCOVERY_DATA TRAIN_IMPACT_DATA TRAIN_ARGS CANDIDATES "
KEYS+=" CANDIDATE_DISCOVERY CANDIDATE_IMPACT DEV_CHANNEL PROD_CHANNEL IMAGE GSA "
# Read KEY=VALUE lines without executing them: the file names data, it is not a script.
while IFS= read -r line || [ -n "$line" ]; do
    [[ "$line" =~ ^[[:space:]]*(#|$) ]] && continue
    [[ "$line" =~ ^([A-Z_]+)=(.*)$ ]] || die "$CONFIG: not a KEY=VALUE line: $line"
    key=${BASH_REMATCH[1]} value=${BASH_REMATCH[2]}
    [[ "$KEYS" == *" $key "* ]] || die "$CONFIG: unknown key $key"
    [ -n "${!key:-}" ] || printf -v "$key" '%s' "$value"
done <"$CONFIG"

: "${REGISTRY:?rollout: set REGISTRY in $CONFIG}" "${EVAL:?rollout: set EVAL}" "${RULES:?rollout: set RULES}"
KINDS=${KINDS:-discovery impact}
DEV_CHANNEL=${DEV_CHANNEL:-dev}
PROD_CHANNEL=${PROD_CHANNEL:-prod}
RUN_ID=${RUN_ID:-${GITHUB_RUN_ID:-$(date -u +%Y%m%dT%H%M%SZ)}}
BY=${BY:-${GITHUB_ACTOR:-${USER:-unknown}}}
STATE=${ROLLOUT_STATE:-build/rollout/versions.env}
read -r -a MS <<<"${MINESCAN:-minescan}"
for kind in $KINDS; do
    [[ "$kind" == discovery || "$kind" == impact ]] || die "KINDS must name discovery and/or impact, not '$kind'"
done

upper() { tr '[:lower:]' '[:upper:]' <<<"$1"; }

train() {  # train KIND OUT
    local kind=$1 out=$2 data_var
    data_var="TRAIN_$(upper "$1")_DATA"
    [ -n "${!data_var:-}" ] || die "set $data_var or CANDIDATE_$(upper "$kind") in $CONFIG"
    case "${TRAIN_MODE:-ci}" in
    ci)
        # TRAIN_ARGS is a list of options: split on spaces on purpose
        # shellcheck disable=SC2086
        "${MS[@]}" train "$kind" --data "${!data_var}" --out "$out" --model-version "$RUN_ID" ${TRAIN_ARGS:-} >&2
        ;;
    job)
        # The GPU training Job writes the model to TRAIN_OUT (and publishes it itself).
        IMAGE=${IMAGE:-} GSA=${GSA:-} TRAIN_MODEL=$kind TRAIN_DATA=${!data_var} TRAIN_OUT=$out \
            REGISTRY=$REGISTRY "$(dirname "$0")/deploy.sh" gpu-train >&2
        kubectl -n minescan wait --for=condition=complete job/minescan-train --timeout=24h >&2
        kubectl -n minescan delete job minescan-train --wait=true >&2
        ;;
    *) die "TRAIN_MODE must be ci or job, not '$TRAIN_MODE'" ;;
    esac
}

gate_and_promote() {  # gate_and_promote CHANNEL VERSION...
    local channel=$1 gate_args=() promote_args=()
    shift
    for version in "$@"; do
        gate_args+=(--candidate "$version")
        promote_args+=("--${version%%-*}" "$version")
    done
    "${MS[@]}" models gate --registry "$REGISTRY" --channel "$channel" --eval "$EVAL" --rules "$RULES" "${gate_args[@]}"
    "${MS[@]}" models promote --registry "$REGISTRY" --channel "$channel" "${promote_args[@]}" \
        --by "$BY" --note "rollout $RUN_ID"
}

if [ "$STAGE" = candidate ]; then
    versions=()
    mkdir -p "$(dirname "$STATE")"
    : >"${STATE}.tmp"
    for kind in $KINDS; do
        given_var="CANDIDATE_$(upper "$kind")"
        model=${!given_var:-}
        if [ -z "$model" ]; then
            : "${CANDIDATES:?rollout: set CANDIDATES (where trained models go) in $CONFIG}"
            model="${CANDIDATES%/}/$kind-$RUN_ID"
            train "$kind" "$model"
        fi
        published=$("${MS[@]}" models publish "$model" --registry "$REGISTRY")
        echo "$published"
        version=${published%% *}
        versions+=("$version")
        echo "$(upper "$kind")_VERSION=$version" >>"${STATE}.tmp"
        [ -z "${GITHUB_OUTPUT:-}" ] || echo "$kind=$version" >>"$GITHUB_OUTPUT"
    done
    mv "${STATE}.tmp" "$STATE"
    gate_and_promote "$DEV_CHANNEL" "${versions[@]}"
else
    if [ -z "${DISCOVERY_VERSION:-}${IMPACT_VERSION:-}" ]; then
        [ -f "$STATE" ] || die "no versions to release: run the candidate stage first, or set IMPACT_VERSION/DISCOVERY_VERSION"
        while IFS='=' read -r key value; do
            [[ "$key" == DISCOVERY_VERSION || "$key" == IMPACT_VERSION ]] && printf -v "$key" '%s' "$value"
        done <"$STATE"
    fi
    versions=()
    for version in ${DISCOVERY_VERSION:-} ${IMPACT_VERSION:-}; do versions+=("$version"); done
    [ "${#versions[@]}" -gt 0 ] || die "no versions to release in $STATE"
    gate_and_promote "$PROD_CHANNEL" "${versions[@]}"
fi
