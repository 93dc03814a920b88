#!/usr/bin/env bash
# GET /api/openapi.json: the API's OpenAPI 3.1 document (no token needed).
# Prints each path and its methods; the whole document with --full.
source "$(dirname "$0")/_common.sh"
if [ "${1:-}" = "--full" ]; then
  curl -sS "$API/openapi.json"
else
  curl -sS "$API/openapi.json" | jq -r '.paths | to_entries[] | "\(.key) \(.value | keys | join(" "))"'
fi
