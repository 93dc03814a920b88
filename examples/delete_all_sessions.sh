#!/usr/bin/env bash
# DELETE /api/empty-sessions: deletes all of YOUR sessions and their messages.
source "$(dirname "$0")/_common.sh"
curl -sS -X DELETE "$API/empty-sessions" -H "$AUTH"
echo
