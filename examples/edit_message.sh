#!/usr/bin/env bash
# POST /api/sessions/{id} with messageId: edits a message. The new text is stored
# beside it (the same parent) and answered; its branch becomes current, the old
# one is kept. Streams the reply as plain text.
source "$(dirname "$0")/_common.sh"
usage="usage: edit_message.sh <session_id> <message_id> <text>"
session=${1:?$usage}
body=$(jq -n --arg id "${2:?$usage}" --arg text "${3:?$usage}" \
  '{messages: [{role: "user", content: $text}], messageId: $id}')
curl -sS -N -X POST "$API/sessions/$session?protocol=text" \
  -H "$AUTH" -H "Content-Type: application/json" -d "$body"
echo
