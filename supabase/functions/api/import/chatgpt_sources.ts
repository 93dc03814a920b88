/**
 * The sources a ChatGPT reply cites, kept as links. A reply written with web browsing marks its
 * sources in its text (`【6†source】`, or newer exports' `\ue200cite\ue202turn0search1\ue201`)
 * and lists them in its metadata (`citations`, `content_references`); the browsing nodes the
 * marks point into are not imported, so each mark becomes a markdown link to its page
 * (` ([title](url))`), or goes when the file does not say which page it is.
 */

interface Cited {
  title?: unknown;
  url?: unknown;
}

/** Old marks (`【6†source】`, `【3:1†title】`) and new ones (private-use delimiters), left over. */
const MARKS = /【\d+(?::\d+)?†[^】]*】|\ue200[^\ue201]*\ue201/g;

export function withSourceLinks(text: string, metadata: unknown): string {
  const { citations, content_references: references } = (metadata ?? {}) as {
    citations?: unknown;
    content_references?: unknown;
  };
  // `start_ix`/`end_ix` count code points of the text (Python's indices), last first so that
  // earlier positions still hold
  const chars = [...text];
  const cites = (Array.isArray(citations) ? citations : [])
    .filter((c) => Number.isInteger(c?.start_ix) && Number.isInteger(c?.end_ix))
    .sort((a, b) => b.start_ix - a.start_ix);
  for (const cite of cites) {
    const { start_ix: start, end_ix: end } = cite as { start_ix: number; end_ix: number };
    if (start < 0 || end > chars.length || start >= end || chars[start] !== "【") continue;
    chars.splice(start, end - start, link(cite.metadata));
  }
  let linked = chars.join("");
  for (const reference of Array.isArray(references) ? references : []) {
    const matched = reference?.matched_text;
    if (typeof matched !== "string" || !matched) continue;
    const items = Array.isArray(reference.items) ? reference.items : [];
    linked = linked.replaceAll(matched, items.map(link).join(""));
  }
  return linked.replace(MARKS, "");
}

function link(cited: Cited | undefined): string {
  const url = cited?.url;
  if (typeof url !== "string" || !/^https?:\/\//.test(url)) return "";
  const title = typeof cited?.title === "string" && cited.title.trim() ? cited.title.trim() : url;
  return ` ([${title.replaceAll(/[[\]]/g, "\\$&")}](${url.replaceAll(/[()\s]/g, percent)}))`;
}

/** A character a markdown link's destination cannot hold as it is. */
const percent = (c: string) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}`;
