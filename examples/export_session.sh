#!/usr/bin/env bash
# GET /api/sessions/{id}/export?format=json|markdown: the whole conversation as a download.
source "$(dirname "$0")/_common.sh"
curl -sS "$API/sessions/${1:?usage: export_session.sh <session_id> [json|markdown]}/export?format=${2:-json}" -H "$AUTH"
echo
