/**
 * Model output made storable. A client's text with a NUL byte or a lone
 * surrogate is refused (422, schemas.ts); the model's cannot be refused, and
 * a reply must never be lost, so what Postgres `text` cannot hold is
 * replaced instead: U+0000 (Postgres rejects it, 22021) and unpaired UTF-16
 * surrogates (not encodable as UTF-8) both become U+FFFD, the replacement
 * character. Applied to each streamed chunk, so the client sees what is
 * stored, and again to the whole reply before it is saved.
 */
export function storable(text: string): string {
  return text.replaceAll("\u0000", "\uFFFD").toWellFormed();
}
