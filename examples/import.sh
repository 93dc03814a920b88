#!/usr/bin/env bash
# POST /api/imports: your history from a ChatGPT (conversations.json) or Open WebUI export file.
source "$(dirname "$0")/_common.sh"
file=${1:?usage: import.sh <export file> [chatgpt|openwebui]}
curl -sS -X POST "$API/imports${2:+?format=$2}" -H "$AUTH" -H "Content-Type: application/json" \
  --data-binary "@$file"
echo
