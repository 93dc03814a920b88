/**
 * Opaque, tamper-proof page cursors: a position signed (HS256, with jose)
 * together with who may use it and where. A cursor that was forged, altered,
 * or minted for another user or another list does not verify.
 */
import * as jose from "jose";

export interface Cursors {
  /** `scope` names the caller and the list, e.g. "<user id>:sessions" */
  encode(scope: string, position: unknown): Promise<string>;
  /** the position, or null when the cursor is not a valid one for this scope */
  decode(scope: string, cursor: string): Promise<unknown>;
}

export function createCursors(secret: string): Cursors {
  const key = new TextEncoder().encode(`page-cursor:${secret}`);
  return {
    async encode(scope, position) {
      const payload = new TextEncoder().encode(JSON.stringify({ s: scope, p: position }));
      return await new jose.CompactSign(payload).setProtectedHeader({ alg: "HS256" }).sign(key);
    },
    async decode(scope, cursor) {
      try {
        const { payload } = await jose.compactVerify(cursor, key, { algorithms: ["HS256"] });
        const { s, p } = JSON.parse(new TextDecoder().decode(payload));
        return s === scope ? p : null;
      } catch {
        return null;
      }
    },
  };
}
