#!/usr/bin/env bash
# GET /api/sessions?q=<text>: your sessions whose title or messages match, best first, with a snippet.
source "$(dirname "$0")/_common.sh"
curl -sS -G "$API/sessions" --data-urlencode "q=${1:?usage: search.sh <text>}" -H "$AUTH"
echo
