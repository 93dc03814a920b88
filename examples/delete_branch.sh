#!/usr/bin/env bash
# DELETE /api/sessions/{id}/messages/{message_id}: deletes a branch, the message
# and everything after it; answers where the current branch is now.
source "$(dirname "$0")/_common.sh"
usage="usage: delete_branch.sh <session_id> <message_id>"
curl -sS -X DELETE "$API/sessions/${1:?$usage}/messages/${2:?$usage}" -H "$AUTH"
echo
