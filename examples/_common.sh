# Shared by the example scripts: where the API is and who is calling.
#   API    base URL of the API (default: the local dev server)
#   TOKEN  a user's access token (default: one for you@example.com from `deno task token`)
set -euo pipefail
API=${API:-http://127.0.0.1:8000/api}
if [ -z "${TOKEN:-}" ]; then
  TOKEN=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && deno task token "${EMAIL:-you@example.com}" 2>/dev/null)
fi
AUTH="Authorization: Bearer $TOKEN"
