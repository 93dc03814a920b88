/// <reference lib="dom" />
/**
 * A page's chat, as a web app using ai 7 writes it: `Chat` state kept in the
 * page, `DefaultChatTransport` with only `api` and the user's token set, and
 * the reply rendered into the DOM as it streams. Bundled for the browser by
 * tests/clients/ai7_browser.test.ts (`deno bundle`); the page's URL names the API,
 * the token and the session.
 */
import {
  AbstractChat,
  type ChatState,
  type ChatStatus,
  DefaultChatTransport,
  type UIMessage,
} from "ai-7";

const params = new URL(location.href).searchParams;
const statusView = document.getElementById("status")!;
const replyView = document.getElementById("reply")!;

/** Renders on every change, as a framework's state would. */
class PageState implements ChatState<UIMessage> {
  #status: ChatStatus = "ready";
  error: Error | undefined = undefined;
  #messages: UIMessage[] = [];
  get status() {
    return this.#status;
  }
  set status(s: ChatStatus) {
    this.#status = s;
    statusView.textContent = s;
  }
  get messages() {
    return this.#messages;
  }
  set messages(m: UIMessage[]) {
    this.#messages = m;
    const reply = m.findLast((x) => x.role === "assistant");
    replyView.textContent = reply?.parts.map((p) => p.type === "text" ? p.text : "").join("") ??
      "";
    replyView.dataset.id = reply?.id ?? "";
  }
  pushMessage = (m: UIMessage) => {
    this.messages = this.messages.concat(m);
  };
  popMessage = () => {
    this.messages = this.messages.slice(0, -1);
  };
  replaceMessage = (i: number, m: UIMessage) => {
    this.messages = [...this.messages.slice(0, i), m, ...this.messages.slice(i + 1)];
  };
  snapshot = <T>(t: T): T => structuredClone(t);
}

class Chat extends AbstractChat<UIMessage> {}

const chat = new Chat({
  id: params.get("session")!,
  state: new PageState(),
  transport: new DefaultChatTransport({
    api: `${params.get("api")}/chat`,
    headers: () => ({ Authorization: `Bearer ${params.get("token")}` }),
  }),
  onFinish: ({ finishReason }) => {
    document.body.dataset.finished = finishReason ?? "none";
  },
  onError: (error) => {
    document.body.dataset.error = error.message;
  },
});

document.getElementById("send")!.addEventListener("click", () => {
  chat.sendMessage({ text: params.get("text") ?? "hello" });
});
