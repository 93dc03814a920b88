#!/usr/bin/env bash
# PUT /api/sessions/{id}/current: makes the branch through a message current
# (down to its newest leaf); reads, the next send and its prompt follow it.
source "$(dirname "$0")/_common.sh"
usage="usage: switch_branch.sh <session_id> <message_id>"
session=${1:?$usage}
body=$(jq -n --arg id "${2:?$usage}" '{message_id: $id}')
curl -sS -X PUT "$API/sessions/$session/current" \
  -H "$AUTH" -H "Content-Type: application/json" -d "$body"
echo
