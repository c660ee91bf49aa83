import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { listModels, preferredModel, streamChat, type ChatMessage, type ModelOption } from "./chat-api.js";
import { renderMarkdown } from "./markdown.js";
import { loadConversations, newConversation, saveConversations, type Conversation, type StoredMessage } from "./conversations.js";

/**
 * One message. What the user typed is a text node; model output is markdown rendered by
 * markdown-it with raw HTML off and sanitised by DOMPurify (src/markdown.ts), so markup in
 * it is shown as text, never run.
 */
function MessageView({ message }: { message: StoredMessage }) {
  // Each streamed token re-renders the conversation: only the message whose text changed is parsed again.
  const html = useMemo(() => (message.role === "assistant" ? renderMarkdown(message.content) : ""), [message.role, message.content]);
  return (
    <li class={`message ${message.role}`}>
      <span class="role">{message.role === "user" ? "You" : "Model"}</span>
      {message.role === "assistant"
        ? <div class="content" dangerouslySetInnerHTML={{ __html: html }} />
        : <p class="content plain">{message.content}</p>}
      {message.stats && (
        <span class="stats">{message.stats.model ?? message.model ? `${message.stats.model ?? message.model} · ` : ""}{message.stats.completionTokens} tokens · {message.stats.loadSeconds === undefined ? "" : `load ${message.stats.loadSeconds.toFixed(1)} s · `}{message.stats.tokensPerSecond.toFixed(1)} tokens/s{message.stats.stopped ? " · stopped" : ""}</span>
      )}
    </li>
  );
}

/** The chat page: conversations, model picker, settings, and the streamed exchange. */
export function ChatPage() {
  const [conversations, setConversations] = useState<Conversation[]>(() => loadConversations());
  const [currentId, setCurrentId] = useState<string | undefined>(() => conversations[0]?.id);
  const [options, setOptions] = useState<ModelOption[]>([]);
  const models = options.map((option) => option.id);
  const preferred = preferredModel(options);
  // The model a new conversation starts with (the picker's value while none is open).
  const [nextModel, setNextModel] = useState("");
  const [draft, setDraft] = useState("");
  const [temperature, setTemperature] = useState(0.7);
  const [maxTokens, setMaxTokens] = useState(256);
  const [error, setError] = useState("");
  const controller = useRef<AbortController | null>(null);
  const [streaming, setStreaming] = useState(false);

  useEffect(() => { listModels().then(setOptions, (failure: Error) => setError(failure.message)); }, []);
  useEffect(() => saveConversations(conversations), [conversations]);

  const current = conversations.find((conversation) => conversation.id === currentId);
  const update = (id: string, change: (conversation: Conversation) => Conversation) =>
    setConversations((all) => all.map((conversation) => (conversation.id === id ? change(conversation) : conversation)));

  const startConversation = () => {
    const created = newConversation(nextModel || preferred);
    setConversations((all) => [created, ...all]);
    setCurrentId(created.id);
    return created;
  };

  const removeConversation = (id: string) => {
    setConversations((all) => all.filter((conversation) => conversation.id !== id));
    if (id === currentId) setCurrentId(conversations.find((conversation) => conversation.id !== id)?.id);
  };

  const send = async (event: Event) => {
    event.preventDefault();
    const text = draft.trim();
    if (!text || streaming) return;
    const conversation = current ?? startConversation();
    const model = conversation.model || nextModel || preferred;
    const history: ChatMessage[] = [
      ...(conversation.system ? [{ role: "system" as const, content: conversation.system }] : []),
      ...conversation.messages.map(({ role, content }) => ({ role, content })),
      { role: "user", content: text },
    ];
    const title = conversation.messages.length === 0 ? text.slice(0, 40) : conversation.title;
    update(conversation.id, (old) => ({ ...old, model, title, messages: [...old.messages, { role: "user", content: text }, { role: "assistant", content: "", model }] }));
    setDraft("");
    setError("");
    const setReply = (change: (reply: StoredMessage) => StoredMessage) =>
      update(conversation.id, (old) => ({ ...old, messages: [...old.messages.slice(0, -1), change(old.messages[old.messages.length - 1]!)] }));
    controller.current = new AbortController();
    setStreaming(true);
    try {
      const stats = await streamChat({
        model, messages: history, temperature, maxTokens, signal: controller.current.signal,
        onText: (delta) => setReply((reply) => ({ ...reply, content: reply.content + delta })),
      });
      setReply((reply) => ({ ...reply, stats }));
    } catch (failure) {
      setError((failure as Error).message);
    } finally {
      setStreaming(false);
      controller.current = null;
    }
  };

  return (
    <div class="chat">
      <nav class="conversations" aria-label="Conversations">
        <button type="button" class="new" onClick={startConversation}>New chat</button>
        <ul>
          {conversations.map((conversation) => (
            <li key={conversation.id}>
              <button type="button" class="open" aria-current={conversation.id === currentId ? "page" : undefined} onClick={() => setCurrentId(conversation.id)}>
                {conversation.title}
              </button>
              <button type="button" class="delete" aria-label={`Delete ${conversation.title}`} disabled={streaming && conversation.id === currentId}
                onClick={() => removeConversation(conversation.id)}>×</button>
            </li>
          ))}
        </ul>
      </nav>
      <main>
        <fieldset class="settings">
          <legend>Settings</legend>
          <label>Model
            <select value={current?.model || nextModel || preferred} disabled={streaming}
              onChange={(event) => {
                const chosen = event.currentTarget.value;
                setNextModel(chosen);
                if (current) update(current.id, (old) => ({ ...old, model: chosen }));
              }}>
              <optgroup label="Models">
                {options.filter((option) => !option.alias).map((option) => <option key={option.id} value={option.id}>{option.id}</option>)}
              </optgroup>
              {options.some((option) => option.alias) && (
                <optgroup label="Aliases">
                  {options.filter((option) => option.alias).map((option) => <option key={option.id} value={option.id}>{option.id}</option>)}
                </optgroup>
              )}
            </select>
          </label>
          <label>Temperature
            <input type="number" min="0" max="2" step="0.1" value={temperature} onInput={(event) => setTemperature(Number(event.currentTarget.value))} />
          </label>
          <label>Max tokens
            <input type="number" min="1" step="1" value={maxTokens} onInput={(event) => setMaxTokens(Number(event.currentTarget.value))} />
          </label>
          <label class="system">System prompt
            <textarea rows={2} value={current?.system ?? ""} disabled={!current}
              onInput={(event) => current && update(current.id, (old) => ({ ...old, system: event.currentTarget.value }))} />
          </label>
        </fieldset>
        <ol class="messages" aria-live="polite">
          {current?.messages.map((message, index) => <MessageView key={index} message={message} />)}
        </ol>
        {error && <p role="alert" class="error">{error}</p>}
        <form class="composer" onSubmit={send}>
          <label for="draft" class="visually-hidden">Message</label>
          <textarea id="draft" rows={2} value={draft} placeholder="Message"
            onInput={(event) => setDraft(event.currentTarget.value)}
            onKeyDown={(event) => { if (event.key === "Enter" && !event.shiftKey) void send(event); }} />
          {streaming
            ? <button type="button" onClick={() => controller.current?.abort()}>Stop</button>
            : <button type="submit" disabled={!draft.trim() || models.length === 0}>Send</button>}
        </form>
      </main>
    </div>
  );
}
