#!/usr/bin/env bash
# GET /api/usage?from=YYYY-MM-DD&to=YYYY-MM-DD: your replies and tokens per day and model
# (default: the last 30 days).
source "$(dirname "$0")/_common.sh"
curl -sS "$API/usage${1:+?from=$1}${2:+&to=$2}" -H "$AUTH"
echo
