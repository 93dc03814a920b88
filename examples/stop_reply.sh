#!/usr/bin/env bash
# DELETE /api/sessions/{id}/stream: stops the reply being written in a session,
# from any device, through any instance: 200 with the reply as stored once it
# has stopped, 202 when it has not within 10 s (it still will), 204 when
# nothing streams there.
source "$(dirname "$0")/_common.sh"
session=${1:?usage: stop_reply.sh <session_id>}
curl -sS -X DELETE "$API/sessions/$session/stream" -H "$AUTH" -w '\nHTTP %{http_code}\n'
