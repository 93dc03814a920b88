import { startTestApi } from "../support/api.ts";
import { importFile, realExport, storedSession } from "../support/imports.ts";
const api = await startTestApi();
Deno.test("scratch", async () => {
  const user = await api.user();
  for (const name of ["chatgpt-tree.json", "chatgpt-export.json", "openwebui-export.json"] as const) {
    const r = await importFile(api, user, await realExport(name));
    console.log(name, r.status, JSON.stringify(r.body, null, 1).slice(0, 3000));
    if (r.status !== 200) continue;
    for (const s of r.body.sessions) {
      const { session, messages } = await storedSession(api, s.id);
      console.log(session);
      for (const m of messages) console.log(m.id.slice(0,8), m.parent_id?.slice(0,8), m.reply_to?.slice(0,8), m.role, m.tokens, m.tokens_before, m.model, m.finish_reason, m.created_at.toISOString(), JSON.stringify(m.content.slice(0, 70)));
    }
  }
  console.log(api.logs.join("\n"));
  const again = await importFile(api, user, await realExport("chatgpt-tree.json"));
  console.log(again.status, JSON.stringify(again.body));
});
