/** The function's own o200k_base counter agrees with gpt-tokenizer, and its data is the pinned upstream's. */
import assert from "node:assert/strict";
import fc from "fast-check";
import { encode } from "gpt-tokenizer/encoding/o200k_base";
import o200k from "js-tiktoken/ranks/o200k_base";
import { vendoredRanks, vendoredRanksPath } from "../../local/vendor_o200k.ts";
import {
  countTokens,
  fewestTokens,
  MAX_TOKEN_BYTES,
} from "../../supabase/functions/api/tokenizer/o200k.ts";

/** gpt-tokenizer's count, with special tokens read as the plain text they are in a message. */
const reference = (text: string) => encode(text, { disallowedSpecial: new Set() }).length;

const samples: Record<string, string> = {
  empty: "",
  english: "Hello, world! How's it going? I'd say we're fine; they'll see.\n\nNew paragraph.",
  code:
    'function f(x) {\n\treturn x * 2; // double\n}\nconst url = "https://example.com/a?b=1&c=2";\n',
  numbers: "1234567890 3.14159 1,000,000 2026-11-25T17:23:24Z 0x7fffffff 𝟏𝟐𝟑4",
  german: "Größenverhältnisse über Straßenüberführungen: ÄÖÜ äöü ß",
  chinese: "我们今天讨论的是机器学习，以及它如何改变世界。你好吗？我很好，谢谢！",
  japanese: "東京都は日本の首都です。ひらがなとカタカナ、そして漢字。",
  arabic: "مرحبا بالعالم، كيف حالك اليوم؟",
  hindi: "नमस्ते दुनिया, आप कैसे हैं?",
  emoji: "Party 🎉🎉🎉 family 👨‍👩‍👧‍👦 flags 🇵🇹🇩🇪 skin 👋🏽 and text",
  whitespace: "a  b   c\t\td\n\n\ne \r\n f      \n   g   ",
  specials: "text <|endoftext|> more <|endofprompt|> end",
  mixedCase: "CamelCaseWords HTTPServer iPhone McDONALD's I'M YOU'LL",
  loneSurrogates: "broken \ud800 pair \udc00 here",
  marks: "e\u0301 a\u0308 combining marks n\u0303",
  base64: btoa(
    Array.from({ length: 3000 }, (_, i) => String.fromCharCode((i * 7919) % 256)).join(""),
  ),
  longWords: "supercalifragilistic".repeat(50) + " " + "Lorem ipsum dolor sit amet, ".repeat(300),
  longNumbers: "9".repeat(5000) + " " + "12".repeat(3000),
  spacesThenDigits: "x" + " ".repeat(300) + "1" + "  2 \n 3" + "\n".repeat(200) + "4",
};

for (const [name, text] of Object.entries(samples)) {
  Deno.test(`o200k counts match gpt-tokenizer: ${name}`, async () => {
    assert.equal(await countTokens(text), reference(text));
  });
}

Deno.test("o200k counts match gpt-tokenizer on long varied text counted in many slices", async () => {
  const text = Object.values(samples).join("\n").repeat(20);
  assert.ok(text.length > 100_000);
  assert.equal(await countTokens(text), reference(text));
});

Deno.test("o200k counts match gpt-tokenizer on arbitrary strings", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.oneof(
          fc.string({ unit: "grapheme", maxLength: 40 }),
          fc.constantFrom(" ", "  ", "\n", "\r\n", "\t", "'s", "123", "1", "。", "中", "A", "a"),
          fc.string({ unit: fc.constantFrom("a", "b", " ", "1", "!", "é", "中"), maxLength: 300 }),
        ),
        { maxLength: 30 },
      ),
      async (parts) => {
        const text = parts.join("");
        assert.equal(await countTokens(text), reference(text), JSON.stringify(text));
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("long runs without spaces are counted exactly up to a slice, and by their parts beyond", async () => {
  // under 2048 characters a run is one slice: exact, through the heap merge
  for (const run of ["a".repeat(2000), "中".repeat(2000), "!".repeat(2000), "ab".repeat(1000)]) {
    assert.equal(await countTokens(run), reference(run));
  }
  // beyond, such a run is cut blindly: on these, the count is over by 0 to 2 tokens per cut
  const units = ["a", "中", "xyz", "é", " ", "\n", "\t", "!", "=", "!?", "a!", "aB", "абв", "🎉"];
  for (const unit of units) {
    const run = unit.repeat(Math.ceil(8_200 / unit.length));
    const cuts = Math.floor(run.length / 2048);
    const over = await countTokens(run) - reference(run);
    assert.ok(over >= 0 && over <= 2 * cuts, `${unit}: ${over} over ${cuts} cuts`);
  }
});

Deno.test("no o200k token is longer than MAX_TOKEN_BYTES, and one is that long", () => {
  let longest = 0;
  for (const line of o200k.bpe_ranks.split("\n")) {
    for (const token of line.split(" ").slice(2)) longest = Math.max(longest, atob(token).length);
  }
  assert.equal(longest, MAX_TOKEN_BYTES);
  assert.equal(fewestTokens(""), 0);
  assert.equal(fewestTokens(" ".repeat(MAX_TOKEN_BYTES + 1)), 2);
  for (const text of Object.values(samples)) assert.ok(fewestTokens(text) <= reference(text));
});

Deno.test("the vendored o200k ranks are exactly the pinned js-tiktoken's", async () => {
  assert.equal(await Deno.readTextFile(vendoredRanksPath), vendoredRanks());
});
