/**
 * Writes supabase/functions/api/tokenizer/o200k_base.json: the o200k_base ranks (the GPT-4o
 * family's encoding) exactly as the pinned js-tiktoken package ships them, as JSON.
 *
 * Why vendored: the Edge Runtime packs EVERY file of every npm package the function imports
 * (bench/bundle_size.ts), and every tokenizer package on npm ships all of OpenAI's encodings in
 * several builds (gpt-tokenizer 7.0 MB, js-tiktoken 4.3 MB, tiktoken 3.6 MB, ai-tokenizer 8.3 MB
 * brotli), while these ranks alone are 1.0 MB. tests/turn/tokenizer.test.ts checks that the file is
 * still byte for byte what this script writes from the pinned package.
 *
 *   deno run -A local/vendor_o200k.ts
 */
import o200k from "js-tiktoken/ranks/o200k_base";

export const vendoredRanksPath = new URL(
  "../supabase/functions/api/tokenizer/o200k_base.json",
  import.meta.url,
);

export function vendoredRanks(): string {
  return JSON.stringify(o200k) + "\n";
}

if (import.meta.main) {
  await Deno.writeTextFile(vendoredRanksPath, vendoredRanks());
  console.log(`wrote ${vendoredRanksPath.pathname}`);
}
