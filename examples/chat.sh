#!/usr/bin/env bash
# POST /api/chat: a message sent as an AI SDK 5+ client sends it
# (DefaultChatTransport): the session id is the chat's `id` in the body, the
# message carries text `parts`; a new id starts a session. The reply streams
# as the UI message stream (Server-Sent Events of UI message parts).
source "$(dirname "$0")/_common.sh"
session=${1:?usage: chat.sh <session_id> <text>}
text=${2:?usage: chat.sh <session_id> <text>}
message=$(cat /proc/sys/kernel/random/uuid 2>/dev/null || uuidgen | tr 'A-Z' 'a-z')
body=$(jq -n --arg chat "$session" --arg id "$message" --arg text "$text" \
  '{id: $chat, trigger: "submit-message",
    messages: [{id: $id, role: "user", parts: [{type: "text", text: $text}]}]}')
curl -sS -N -X POST "$API/chat" -H "$AUTH" -H "Content-Type: application/json" -d "$body"
echo
