/**
 * 8b. Branches at scale (issue 17 item 10): a session of 50,000 messages whose
 * current branch is 1,000 deep, against a session of 100 messages on one branch.
 * Reading the branch (its newest page) and building a prompt (a POST's first
 * byte: the send reads the newest turns that fit, up the branch from its leaf)
 * must not grow with the tree: the branch is read from its leaf up by parent,
 * one index probe a message, and only as far as the page or the budget reaches.
 */
import type { Figure } from "../figure.ts";
import { median } from "../processes.ts";
import { post } from "../requests.ts";

/** a turn of about 200 tokens, so a budget of 16,000 takes the newest few dozen */
const TURN = "A turn of a long conversation, with enough words to be a real message. ".repeat(11);

export const branches: Figure = {
  name: "branches",
  title: "8b. Branches at scale",
  async run(bench) {
    const { admin } = bench.db;
    const session = async (title: string) =>
      (await admin<[{ id: string }]>`
        insert into public.chat_sessions (user_id, title) values (${bench.owner}, ${title})
        returning id`)[0].id;
    // the small session: 100 messages, one branch
    const small = await session("small");
    await admin`
      insert into public.messages (chat_session_id, role, content)
      select ${small}, case when g % 2 = 1 then 'user' else 'assistant' end, ${TURN} || g
      from generate_series(1, 100) g`;
    // the large one: a 1,000-deep current branch, each message appended to it in order...
    const large = await session("large");
    for (let g = 1; g <= 1_000; g++) {
      await admin`
        insert into public.messages (chat_session_id, role, content)
        values (${large}, ${g % 2 === 1 ? "user" : "assistant"}, ${TURN + g})`;
    }
    // ...and 48,925 more on 103 other branches off each of its first 475 user messages, a
    // thousand a statement: every message touches its session's row, and a single statement
    // of 49,000 would walk that row's ever longer chain of versions. The newest page's own
    // messages have no siblings, as in the small session: what differs is the tree's depth and
    // size, not what the page answers (a page whose 25 replies had 98 siblings each answers 2,450
    // more ids, about 100 KB, and costs about 3.5x a plain one: the page's size, not the tree)
    const forks = await admin<{ id: string }[]>`
      select id from public.messages where chat_session_id = ${large} and role = 'user'
      order by seq limit 475`;
    for (let from = 0; from < forks.length; from += 10) {
      await admin`
        insert into public.messages (chat_session_id, role, content, parent_id)
        select ${large}, 'assistant', ${TURN} || 'other ' || k, m.id
        from unnest(${forks.slice(from, from + 10).map((f) => f.id)}::uuid[]) m (id)
        cross join generate_series(1, 103) k`;
    }
    const [{ n }] = await admin<[{ n: number }]>`
      select count(*)::int as n from public.messages where chat_session_id = ${large}`;
    const api = await bench.api();
    const page = async (id: string) => {
      const started = performance.now();
      const response = await fetch(`${api.url}/api/sessions/${id}?limit=50`, {
        headers: bench.auth,
      });
      await response.arrayBuffer();
      return performance.now() - started;
    };
    // warmed up first, then the two sessions alternate request by request: measured one after
    // the other, the first session read paid for the API's compiling (a cold 100-message page
    // took 7.5 ms, a warm one 2.7)
    for (let i = 0; i < 20; i++) await page(small), await page(large);
    const times = {
      small: { pages: [] as number[], prompts: [] as number[] },
      large: { pages: [] as number[], prompts: [] as number[] },
    };
    for (let i = 0; i < 60; i++) {
      for (const [name, id] of [["small", small], ["large", large]] as const) {
        times[name].pages.push(await page(id));
      }
    }
    for (let i = 0; i < 60; i++) {
      for (const [name, id] of [["small", small], ["large", large]] as const) {
        times[name].prompts.push(
          (await post(api.url, bench.auth, id, "And now?", "chunks-1")).firstByte,
        );
      }
    }
    const smallTimes = { page: median(times.small.pages), prompt: median(times.small.prompts) };
    const largeTimes = { page: median(times.large.pages), prompt: median(times.large.prompts) };
    const pageRatio = largeTimes.page / smallTimes.page;
    const promptRatio = largeTimes.prompt / smallTimes.prompt;
    return {
      verdicts: [
        {
          figure: "8b. a 1,000-deep branch of 50,000 messages: its newest page, vs 100 messages",
          target: "≤ 1.5×",
          measured: `${pageRatio.toFixed(2)}×`,
          met: pageRatio <= 1.5,
        },
        {
          figure: "8b. the same: a POST's prompt (first byte), vs 100 messages",
          target: "≤ 1.5×",
          measured: `${promptRatio.toFixed(2)}×`,
          met: promptRatio <= 1.5,
        },
      ],
      lines: [
        `A session of ${
          n.toLocaleString("en")
        } messages whose current branch is 1,000 deep (103 other`,
        "replies off each of its first 475 user messages: the newest page's own messages have no siblings, as in the",
        "small session), against a session of 100 messages on one branch; messages of about 200 tokens. After 20",
        "warm-up reads of each, median of 60 requests each, the two sessions alternating request by request.",
        "",
        "| | 100 messages | 1,000-deep branch of the large tree | ratio |",
        "| --- | --- | --- | --- |",
        `| GET /api/sessions/{id}?limit=50 (the branch's newest page) ms | ${
          smallTimes.page.toFixed(2)
        } | ${largeTimes.page.toFixed(2)} | ${pageRatio.toFixed(2)}× |`,
        `| POST first byte (the prompt read up the branch) ms | ${smallTimes.prompt.toFixed(2)} | ${
          largeTimes.prompt.toFixed(2)
        } | ${promptRatio.toFixed(2)}× |`,
      ],
    };
  },
};
