#!/usr/bin/env bash
# The whole API in one go: create a session by streaming a first message,
# continue it over SSE, list, read, edit, regenerate, switch branches, delete a
# branch, rename, delete.
source "$(dirname "$0")/_common.sh"
export API TOKEN
here=$(dirname "$0")
session=$(cat /proc/sys/kernel/random/uuid 2>/dev/null || uuidgen | tr 'A-Z' 'a-z')

echo "## POST /api/sessions/$session (text stream; a new id creates the session)"
"$here/send_message.sh" "$session" "Hello! What can you do?"
echo "## POST /api/sessions/$session?protocol=sse (Server-Sent Events)"
"$here/send_message.sh" "$session" "Tell me more." sse
echo "## GET /api/sessions"
"$here/list_sessions.sh"
echo "## GET /api/sessions/$session"
"$here/read_session.sh" "$session"
first=$("$here/read_session.sh" "$session" | jq -r '.[0].id')
echo "## POST /api/sessions/$session with messageId (an edit of the first message)"
"$here/edit_message.sh" "$session" "$first" "Hello! What can't you do?"
echo "## POST /api/sessions/$session with trigger regenerate-message"
"$here/regenerate.sh" "$session"
edit=$("$here/read_session.sh" "$session" | jq -r '.[0].id')
echo "## PUT /api/sessions/$session/current (back to the first branch)"
"$here/switch_branch.sh" "$session" "$first"
echo "## DELETE /api/sessions/$session/messages/$edit (the edit's branch)"
"$here/delete_branch.sh" "$session" "$edit"
echo "## GET /api/sessions?q=more"
"$here/search.sh" "more"
echo "## GET /api/sessions/$session/export?format=markdown"
"$here/export_session.sh" "$session" markdown
echo "## PATCH /api/sessions/$session/title"
"$here/rename_session.sh" "$session" "My first chat"
echo "## GET /api/usage"
"$here/usage.sh"
echo "## DELETE /api/sessions/$session"
"$here/delete_session.sh" "$session"
echo "## GET /api/sessions"
"$here/list_sessions.sh"
