#!/usr/bin/env bash
# PATCH /api/sessions/{id}/title: renames a session (trimmed, 1-200 characters).
source "$(dirname "$0")/_common.sh"
session=${1:?usage: rename_session.sh <session_id> <title>}
body=$(jq -n --arg title "${2:?usage: rename_session.sh <session_id> <title>}" '{title: $title}')
curl -sS -X PATCH "$API/sessions/$session/title" \
  -H "$AUTH" -H "Content-Type: application/json" -d "$body"
echo
