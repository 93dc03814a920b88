#!/usr/bin/env bash
# GET /api/sessions?limit=N[&before=CURSOR]: one page of your sessions. The next page's
# cursor comes back in the X-Next-Cursor header (and in Link: <?limit=N&before=...>; rel="next").
source "$(dirname "$0")/_common.sh"
limit=${1:-10}
curl -sS -D /dev/stderr "$API/sessions?limit=$limit${2:+&before=$2}" -H "$AUTH" 2> >(grep -iE '^(link|x-next-cursor):' >&2)
echo
