import type { ChatMessage, ReplyStats } from "./chat-api.js";

/** One message as kept in the browser: what was said, and for replies, how fast. */
export interface StoredMessage extends ChatMessage {
  /** For a reply: the model that wrote it. */
  readonly model?: string;
  readonly stats?: ReplyStats;
}

export interface Conversation {
  readonly id: string;
  readonly title: string;
  readonly model: string;
  readonly system: string;
  readonly messages: readonly StoredMessage[];
}

/** The localStorage key conversations live under. */
export const CONVERSATIONS_KEY = "grove.conversations";

/** Reads the saved conversations; anything unreadable counts as none. */
export function loadConversations(): Conversation[] {
  try {
    const parsed: unknown = JSON.parse(localStorage.getItem(CONVERSATIONS_KEY) ?? "[]");
    return Array.isArray(parsed) ? (parsed as Conversation[]) : [];
  } catch {
    return [];
  }
}

export function saveConversations(conversations: readonly Conversation[]): void {
  localStorage.setItem(CONVERSATIONS_KEY, JSON.stringify(conversations));
}

export function newConversation(model: string): Conversation {
  return { id: crypto.randomUUID(), title: "New chat", model, system: "", messages: [] };
}
