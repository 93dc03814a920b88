#!/usr/bin/env bash
# The whole API in one go: the API's document; create a session by streaming a
# first message, continue it over SSE, re-attach to and stop its reply (nothing
# streams by then), list, read, edit, regenerate, switch branches, delete a
# branch, search, export, rename; a send as an AI SDK 5+ client makes it; usage;
# delete both sessions.
source "$(dirname "$0")/_common.sh"
export API TOKEN
here=$(dirname "$0")
session=$(cat /proc/sys/kernel/random/uuid 2>/dev/null || uuidgen | tr 'A-Z' 'a-z')

echo "## GET /api/openapi.json (its paths and methods)"
"$here/openapi.sh"
echo "## POST /api/sessions/$session (text stream; a new id creates the session)"
"$here/send_message.sh" "$session" "Hello! What can you do?"
echo "## POST /api/sessions/$session?protocol=sse (Server-Sent Events)"
"$here/send_message.sh" "$session" "Tell me more." sse
echo "## GET /api/sessions/$session/stream (re-attach: the reply has ended, nothing streams)"
"$here/follow_reply.sh" "$session"
echo "## DELETE /api/sessions/$session/stream (stop: nothing streams)"
"$here/stop_reply.sh" "$session"
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
chat=$(cat /proc/sys/kernel/random/uuid 2>/dev/null || uuidgen | tr 'A-Z' 'a-z')
echo "## POST /api/chat (as an AI SDK 5+ client sends it: a session of its own, the UI message stream)"
"$here/chat.sh" "$chat" "Hi from the AI SDK"
echo "## GET /api/usage"
"$here/usage.sh"
echo "## DELETE /api/sessions/$chat"
"$here/delete_session.sh" "$chat"
echo "## DELETE /api/sessions/$session"
"$here/delete_session.sh" "$session"
echo "## GET /api/sessions"
"$here/list_sessions.sh"
