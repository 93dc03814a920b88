#!/usr/bin/env bash
# POST /api/sessions/{id}: sends a message (a new id starts a session) and
# streams the reply as it arrives. Protocol: text (default), data or sse.
source "$(dirname "$0")/_common.sh"
session=${1:?usage: send_message.sh <session_id> <text> [text|data|sse]}
text=${2:?usage: send_message.sh <session_id> <text> [text|data|sse]}
body=$(jq -n --arg text "$text" '{messages: [{role: "user", content: $text}]}')
curl -sS -N -X POST "$API/sessions/$session?protocol=${3:-text}" \
  -H "$AUTH" -H "Content-Type: application/json" -d "$body"
echo
