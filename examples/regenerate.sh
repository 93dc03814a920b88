#!/usr/bin/env bash
# POST /api/sessions/{id} with trigger regenerate-message: another reply to the
# current branch's last message (or to the message, or reply, given), beside the
# earlier one, which stays. Streams the reply as plain text.
source "$(dirname "$0")/_common.sh"
session=${1:?usage: regenerate.sh <session_id> [message_id]}
body=$(jq -n --arg id "${2:-}" \
  '{messages: [], trigger: "regenerate-message"} + (if $id == "" then {} else {messageId: $id} end)')
curl -sS -N -X POST "$API/sessions/$session?protocol=text" \
  -H "$AUTH" -H "Content-Type: application/json" -d "$body"
echo
