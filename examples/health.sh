#!/usr/bin/env bash
# GET /api/health: liveness and a database check, no token needed.
set -euo pipefail
curl -sS "${API:-http://127.0.0.1:8000/api}/health"
echo
