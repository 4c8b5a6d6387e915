/** Support chat: conversations, messages, typing and read state, for a client or an admin. */
import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from "react";
import { describeError } from "../api/client";
import type { ChatMessage, Conversation } from "../api/types";
import { useSession } from "./auth";
import { useFrames, useRealtime } from "./realtime";

export interface TypingState {
  senderId: string;
  at: number;
}

export interface ChatValue {
  conversations: Conversation[];
  messages: Record<string, ChatMessage[]>;
  typing: Record<string, TypingState | undefined>;
  /** conversation → reader id → last message id read */
  reads: Record<string, Record<string, string>>;
  error: string | null;
  loading: boolean;
  /** The client's own open conversation, if any. */
  current: Conversation | null;
  loadMessages: (conversationId: string) => Promise<void>;
  refresh: () => Promise<void>;
  send: (text: string, conversationId?: string) => boolean;
  setTyping: (typing: boolean, conversationId?: string) => void;
  markRead: (message: ChatMessage) => void;
  escalate: () => void;
  takeOver: (conversationId: string) => void;
  close: (conversationId: string) => void;
  clearError: () => void;
}

const ChatContext = createContext<ChatValue | null>(null);
const TYPING_TTL_MS = 6000;
const STATUS_ORDER: Record<string, number> = { escalated: 0, taken_over: 1, bot: 2, closed: 3 };

function byTime(a: ChatMessage, b: ChatMessage): number {
  return a.created_at.localeCompare(b.created_at);
}

function newestFirst(a: Conversation, b: Conversation): number {
  return b.updated_at.localeCompare(a.updated_at);
}

/** Escalated first, then taken over, then bot, then closed; newest first within each. */
export function sortConversations(list: Conversation[]): Conversation[] {
  return [...list].sort((a, b) => {
    const order = (STATUS_ORDER[a.status] ?? 9) - (STATUS_ORDER[b.status] ?? 9);
    return order !== 0 ? order : newestFirst(a, b);
  });
}

export function appendMessage(list: ChatMessage[] | undefined, message: ChatMessage): ChatMessage[] {
  const current = list ?? [];
  if (current.some((m) => m.id === message.id)) return current;
  return [...current, message].sort(byTime);
}

/** Who has read up to which message, from the messages' `read_by` lists. */
export function readsFromMessages(messages: ChatMessage[]): Record<string, string> {
  const reads: Record<string, string> = {};
  for (const m of [...messages].sort(byTime)) for (const reader of m.read_by ?? []) reads[reader] = m.id;
  return reads;
}

export function ChatProvider({ children }: { children: ReactNode }) {
  const { api, user } = useSession();
  const { send: sendFrame, onReconnect } = useRealtime();
  const isAdmin = user.role === "admin";
  const [conversations, setConversations] = useState<Conversation[]>([]);
  const [messages, setMessages] = useState<Record<string, ChatMessage[]>>({});
  const [typing, setTypingState] = useState<Record<string, TypingState | undefined>>({});
  const [reads, setReads] = useState<Record<string, Record<string, string>>>({});
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const loaded = useRef(new Set<string>());
  const typingTimers = useRef(new Map<string, number>());

  const loadMessages = useCallback(
    async (conversationId: string) => {
      try {
        const items = await api.messages(conversationId);
        loaded.current.add(conversationId);
        setMessages((all) => {
          let list = all[conversationId] ?? [];
          for (const m of items) list = appendMessage(list, m);
          return { ...all, [conversationId]: list };
        });
        setReads((all) => ({ ...all, [conversationId]: { ...readsFromMessages(items), ...(all[conversationId] ?? {}) } }));
      } catch (e) {
        setError(describeError(e).message);
      }
    },
    [api],
  );

  // Written as a promise chain: every state change happens when an answer arrives (the effect below
  // starts it; react-hooks' set-state-in-effect cannot yet tell that of an async function's awaits).
  const refresh = useCallback(
    () =>
      api
        .conversations()
        .then(
          async (list) => {
            setConversations(sortConversations(list));
            setError(null);
            const open = isAdmin ? [] : list.filter((c) => c.status !== "closed");
            const toLoad = new Set([...loaded.current, ...open.map((c) => c.id)]);
            await Promise.all([...toLoad].map((id) => loadMessages(id)));
          },
          (e: unknown) => setError(describeError(e).message),
        )
        .finally(() => setLoading(false)),
    [api, isAdmin, loadMessages],
  );

  useEffect(() => {
    void refresh();
  }, [refresh]);
  useEffect(() => onReconnect(() => void refresh()), [onReconnect, refresh]);
  useEffect(() => {
    const timers = typingTimers.current;
    return () => timers.forEach((t) => window.clearTimeout(t));
  }, []);

  const upsertConversation = useCallback((conversation: Conversation) => {
    setConversations((list) => {
      const others = list.filter((c) => c.id !== conversation.id);
      const known = list.find((c) => c.id === conversation.id);
      return sortConversations([...others, { ...known, ...conversation }]);
    });
  }, []);

  useFrames((frame) => {
    switch (frame.type) {
      case "chat.message": {
        const message = frame.message;
        if (!message?.conversation_id) return;
        setMessages((all) => ({ ...all, [message.conversation_id]: appendMessage(all[message.conversation_id], message) }));
        setConversations((list) =>
          list.some((c) => c.id === message.conversation_id)
            ? list
            : sortConversations([...list, { id: message.conversation_id, client_id: message.sender_kind === "client" ? message.sender_id : isAdmin ? "" : user.id, client_name: null, status: "bot", admin_id: null, created_at: message.created_at, updated_at: message.created_at }]),
        );
        // A message ends its sender's typing.
        setTypingState((all) => (all[message.conversation_id]?.senderId === message.sender_id ? { ...all, [message.conversation_id]: undefined } : all));
        return;
      }
      case "chat.typing": {
        if (frame.sender_id === user.id) return;
        const id = frame.conversation_id;
        const old = typingTimers.current.get(id);
        if (old) window.clearTimeout(old);
        if (frame.typing) {
          setTypingState((all) => ({ ...all, [id]: { senderId: frame.sender_id, at: Date.now() } }));
          typingTimers.current.set(id, window.setTimeout(() => setTypingState((all) => ({ ...all, [id]: undefined })), TYPING_TTL_MS));
        } else {
          setTypingState((all) => ({ ...all, [id]: undefined }));
        }
        return;
      }
      case "chat.read":
        setReads((all) => ({ ...all, [frame.conversation_id]: { ...(all[frame.conversation_id] ?? {}), [frame.reader_id]: frame.message_id } }));
        return;
      case "chat.conversation":
        if (frame.conversation?.id) upsertConversation(frame.conversation);
        return;
      case "error":
        // Typing and read receipts are best effort; a failed send, reply or take-over is shown.
        if (frame.action && frame.action.startsWith("chat.") && frame.action !== "chat.typing" && frame.action !== "chat.read") setError(frame.error?.message ?? "The chat action failed.");
        return;
      default:
    }
  });

  const current = useMemo(() => {
    if (isAdmin) return null;
    const mine = conversations.filter((c) => c.status !== "closed");
    if (mine.length === 0) return null;
    return [...mine].sort(newestFirst)[0];
  }, [conversations, isAdmin]);

  const send = useCallback(
    (text: string, conversationId?: string) => {
      const trimmed = text.trim();
      if (!trimmed) return false;
      setError(null);
      if (isAdmin && conversationId) return sendFrame({ action: "chat.reply", conversation_id: conversationId, text: trimmed });
      return sendFrame({ action: "chat.send", text: trimmed });
    },
    [isAdmin, sendFrame],
  );

  const setTyping = useCallback(
    (value: boolean, conversationId?: string) => {
      sendFrame(isAdmin && conversationId ? { action: "chat.typing", typing: value, conversation_id: conversationId } : { action: "chat.typing", typing: value });
    },
    [isAdmin, sendFrame],
  );

  const sentReads = useRef(new Set<string>());
  const markRead = useCallback(
    (message: ChatMessage) => {
      if (message.sender_id === user.id || sentReads.current.has(message.id)) return;
      sentReads.current.add(message.id);
      sendFrame(isAdmin ? { action: "chat.read", message_id: message.id, conversation_id: message.conversation_id } : { action: "chat.read", message_id: message.id });
    },
    [isAdmin, sendFrame, user.id],
  );

  const value = useMemo<ChatValue>(
    () => ({
      conversations, messages, typing, reads, error, loading, current,
      loadMessages, refresh, send, setTyping, markRead,
      escalate: () => sendFrame({ action: "chat.escalate" }),
      takeOver: (id: string) => sendFrame({ action: "chat.take_over", conversation_id: id }),
      close: (id: string) => sendFrame({ action: "chat.close", conversation_id: id }),
      clearError: () => setError(null),
    }),
    [conversations, messages, typing, reads, error, loading, current, loadMessages, refresh, send, setTyping, markRead, sendFrame],
  );
  return <ChatContext.Provider value={value}>{children}</ChatContext.Provider>;
}

export function useChat(): ChatValue {
  const value = useContext(ChatContext);
  if (!value) throw new Error("useChat outside ChatProvider");
  return value;
}
