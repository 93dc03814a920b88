#!/usr/bin/env bash
# GET /api/sessions/{id}: a session's messages in conversation order.
source "$(dirname "$0")/_common.sh"
curl -sS "$API/sessions/${1:?usage: read_session.sh <session_id>}" -H "$AUTH"
echo
