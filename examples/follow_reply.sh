#!/usr/bin/env bash
# GET /api/sessions/{id}/stream: re-attaches to the reply being written in a
# session (from any device, through any instance) and streams the rest of it,
# in the protocol it was started in, or the one given (text, data, sse or ui).
# 204 when nothing streams there (it has ended: read the session instead).
source "$(dirname "$0")/_common.sh"
session=${1:?usage: follow_reply.sh <session_id> [text|data|sse|ui]}
curl -sS -N "$API/sessions/$session/stream${2:+?protocol=$2}" -H "$AUTH" -w '\nHTTP %{http_code}\n'
