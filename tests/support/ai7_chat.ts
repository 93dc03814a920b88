/**
 * ai 7's `Chat` as a test drives it: the framework-free `AbstractChat` with a
 * plain state (as `useChat` holds it in React) and its `DefaultChatTransport`,
 * with only `api` and the user's token set, as a client sets them.
 */
import {
  AbstractChat,
  type ChatState,
  type ChatStatus,
  DefaultChatTransport,
  type UIMessage,
} from "ai-7";

/** What `useChat` keeps in React state, kept in a plain object (ai exports no concrete Chat). */
class PlainState implements ChatState<UIMessage> {
  status: ChatStatus = "ready";
  error: Error | undefined = undefined;
  constructor(public messages: UIMessage[] = []) {}
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

interface Finished {
  finishReason?: string;
  isError: boolean;
  isAbort: boolean;
}

export class Chat extends AbstractChat<UIMessage> {
  finished: Finished[] = [];
  errors: Error[] = [];
  constructor(id: string, base: string, token: string, messages: UIMessage[] = []) {
    const finished: Finished[] = [];
    const errors: Error[] = [];
    super({
      id,
      state: new PlainState(messages),
      // all a client sets: where the API is, and the user's token
      transport: new DefaultChatTransport({
        api: `${base}/api/chat`,
        headers: () => ({ Authorization: `Bearer ${token}` }),
      }),
      onFinish: (e) => finished.push(e),
      onError: (e) => errors.push(e),
    });
    this.finished = finished;
    this.errors = errors;
  }
  get reply() {
    return this.messages.findLast((m) => m.role === "assistant");
  }
  get replyText() {
    return this.reply?.parts.map((p) => p.type === "text" ? p.text : "").join("");
  }
}
