#!/usr/bin/env bash
# DELETE /api/sessions/{id}: deletes a session and its messages.
source "$(dirname "$0")/_common.sh"
curl -sS -X DELETE "$API/sessions/${1:?usage: delete_session.sh <session_id>}" -H "$AUTH"
echo
