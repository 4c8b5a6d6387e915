import { useCallback, useEffect, useMemo, useState } from "react";
import type { ChatMessage, Conversation } from "../../api/types";
import { ChatThread } from "../../components/ChatThread";
import { Spinner } from "../../components/ErrorBox";
import { formatDateTime } from "../../format";
import { useSession } from "../../state/auth";
import { useChat } from "../../state/chat";

const STATUS_LABEL: Record<string, string> = {
  escalated: "Waiting for a person",
  taken_over: "Taken over",
  bot: "Assistant",
  closed: "Closed",
};

function lastMessage(list: ChatMessage[] | undefined): ChatMessage | undefined {
  return list && list.length ? list[list.length - 1] : undefined;
}

export default function ChatConsolePage() {
  const { user } = useSession();
  const chat = useChat();
  // Each conversation names its client (who it was when it began): no list of every user is read.
  const names = useMemo(() => Object.fromEntries(chat.conversations
    .filter((c) => c.client_name).map((c) => [c.client_id, c.client_name as string])), [chat.conversations]);
  const [selected, setSelected] = useState<string | null>(null);
  const [showClosed, setShowClosed] = useState(false);
  const list = chat.conversations.filter((c) => showClosed || c.status !== "closed");
  // Until one is picked, the first listed is opened (once: it stays open when the list reorders).
  if (!selected && list.length) setSelected(list[0].id);
  const conversation: Conversation | undefined = chat.conversations.find((c) => c.id === selected);

  const { loadMessages, markRead } = chat;
  useEffect(() => {
    if (selected) void loadMessages(selected);
  }, [selected, loadMessages]);

  const onSeen = useCallback((m: ChatMessage) => markRead(m), [markRead]);
  const messages = selected ? chat.messages[selected] ?? [] : [];
  const typing = selected ? chat.typing[selected] : undefined;

  return (
    <div className="page chat-console">
      <header className="page-head">
        <h1>Support chat</h1>
        <div className="head-aside">
          <label className="checkbox"><input type="checkbox" checked={showClosed} onChange={(e) => setShowClosed(e.target.checked)} /> Show closed</label>
          <button type="button" className="secondary small" onClick={() => void chat.refresh()}>Refresh</button>
        </div>
      </header>
      {chat.error && <div className="error-box" role="alert">{chat.error} <button type="button" className="link-button" onClick={chat.clearError}>Dismiss</button></div>}
      <div className="console-grid">
        <aside className="card conversation-list" aria-label="Conversations">
          {chat.loading && <Spinner label="Loading conversations…" />}
          {!chat.loading && list.length === 0 && <p className="muted">No conversations.</p>}
          <ul>
            {list.map((c) => {
              const last = lastMessage(chat.messages[c.id]);
              return (
                <li key={c.id}>
                  <button type="button" className={`conversation ${c.id === selected ? "active" : ""} status-${c.status}`} onClick={() => setSelected(c.id)} aria-current={c.id === selected}>
                    <span className="conversation-name">{names[c.client_id] ?? (c.client_id || "Client")}</span>
                    <span className={`pill ${c.status === "escalated" ? "danger" : c.status === "taken_over" ? "info" : ""}`}>{STATUS_LABEL[c.status] ?? c.status}</span>
                    {last && <span className="conversation-last small-text muted">{last.text.slice(0, 60)}</span>}
                    {chat.typing[c.id] && <span className="small-text">typing…</span>}
                  </button>
                </li>
              );
            })}
          </ul>
        </aside>
        <section className="card conversation-view" aria-label="Conversation">
          {!conversation && <p className="muted">Pick a conversation.</p>}
          {conversation && (
            <>
              <div className="section-head">
                <div>
                  <h2>{names[conversation.client_id] ?? conversation.client_id}</h2>
                  <span className="muted small-text" data-testid="conversation-status">
                    {STATUS_LABEL[conversation.status] ?? conversation.status}
                    {conversation.admin_id && ` · by ${conversation.admin_id === user.id ? "you" : "another admin"}`}
                    {` · started ${formatDateTime(conversation.created_at)}`}
                  </span>
                </div>
                <div className="row-actions">
                  {conversation.status !== "closed" && !(conversation.status === "taken_over" && conversation.admin_id === user.id) && (
                    <button type="button" onClick={() => chat.takeOver(conversation.id)}>Take over</button>
                  )}
                  {conversation.status !== "closed" && <button type="button" className="secondary" onClick={() => chat.close(conversation.id)}>Close</button>}
                </div>
              </div>
              <ChatThread
                messages={messages}
                myId={user.id}
                names={names}
                reads={chat.reads[conversation.id]}
                typingLabel={typing ? names[typing.senderId] ?? "Client" : null}
                disabled={conversation.status === "closed"}
                disabledReason="This conversation is closed"
                placeholder={conversation.status === "taken_over" ? "Reply to the client" : "Take over to answer as a person, or reply"}
                onSend={(text) => chat.send(text, conversation.id)}
                onTyping={(t) => chat.setTyping(t, conversation.id)}
                onSeen={onSeen}
              />
            </>
          )}
        </section>
      </div>
    </div>
  );
}
