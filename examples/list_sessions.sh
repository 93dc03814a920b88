#!/usr/bin/env bash
# GET /api/sessions: your sessions, most recently active first.
source "$(dirname "$0")/_common.sh"
curl -sS "$API/sessions" -H "$AUTH"
echo
