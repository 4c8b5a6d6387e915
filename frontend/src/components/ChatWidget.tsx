import { useCallback, useMemo, useState } from "react";
import type { ChatMessage } from "../api/types";
import { useSession } from "../state/auth";
import { useChat } from "../state/chat";
import { ChatThread } from "./ChatThread";

const STATUS_TEXT: Record<string, string> = {
  bot: "Answered by the assistant",
  escalated: "Waiting for a person from support",
  taken_over: "A person from support is here",
  closed: "Closed",
};

/** The client's support chat, floating in a corner of every page. */
export function ChatWidget() {
  const { user } = useSession();
  const chat = useChat();
  const [open, setOpen] = useState(false);
  const [seenCount, setSeenCount] = useState(0);
  const conversation = chat.current;
  const messages = useMemo(() => (conversation ? chat.messages[conversation.id] ?? [] : []), [chat.messages, conversation]);
  const fromOthers = messages.filter((m) => m.sender_id !== user.id).length;
  const unseen = open ? 0 : Math.max(0, fromOthers - seenCount);
  // What the open panel showed counts as seen when it closes.
  const toggle = (next: boolean) => {
    if (!next) setSeenCount(fromOthers);
    setOpen(next);
  };

  const { markRead } = chat;
  const onSeen = useCallback((m: ChatMessage) => open && markRead(m), [open, markRead]);
  const typing = conversation ? chat.typing[conversation.id] : undefined;
  const status = conversation?.status ?? "bot";

  return (
    <div className={`chat-widget ${open ? "open" : ""}`}>
      {open && (
        <section className="chat-panel" aria-label="Support chat">
          <header className="chat-panel-head">
            <div>
              <strong>Support chat</strong>
              <div className="small-text muted" data-testid="chat-status">{STATUS_TEXT[status] ?? status}</div>
            </div>
            <button type="button" className="close" aria-label="Close chat" onClick={() => toggle(false)}>×</button>
          </header>
          {chat.error && <p className="inline-error" role="alert">{chat.error}</p>}
          <ChatThread
            messages={messages}
            myId={user.id}
            reads={conversation ? chat.reads[conversation.id] : undefined}
            typingLabel={typing ? (typing.senderId === conversation?.admin_id || status === "taken_over" ? "Support" : "Assistant") : null}
            onSend={(text) => chat.send(text)}
            onTyping={(t) => chat.setTyping(t)}
            onSeen={onSeen}
            placeholder="Ask a question"
          />
          {(!conversation || status === "bot") && (
            <button type="button" className="link-button" onClick={() => chat.escalate()}>Talk to a person</button>
          )}
        </section>
      )}
      <button type="button" className="chat-toggle" aria-expanded={open} onClick={() => toggle(!open)}>
        <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true">
          <path fill="currentColor" d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2Z" />
        </svg>
        <span>{open ? "Close chat" : "Chat"}</span>
        {unseen > 0 && <span className="badge">{unseen}</span>}
      </button>
    </div>
  );
}
