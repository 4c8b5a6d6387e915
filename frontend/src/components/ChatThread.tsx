import { useEffect, useRef, useState, type FormEvent } from "react";
import type { ChatMessage } from "../api/types";
import { formatDateTime } from "../format";

const SENDER_LABELS: Record<string, string> = {
  client: "Client",
  rule: "Assistant (FAQ)",
  ai: "Assistant (AI)",
  admin: "Support",
  system: "System",
};

export interface ChatThreadProps {
  messages: ChatMessage[];
  myId: string;
  /** Names for sender ids, when known. */
  names?: Record<string, string>;
  /** Who else has read up to which message. */
  reads?: Record<string, string>;
  typingLabel?: string | null;
  disabled?: boolean;
  disabledReason?: string;
  placeholder?: string;
  onSend: (text: string) => boolean;
  onTyping: (typing: boolean) => void;
  onSeen: (message: ChatMessage) => void;
}

/** "Read" under the newest of my messages that somebody else has read. */
export function lastReadOwnMessage(messages: ChatMessage[], myId: string, reads: Record<string, string> = {}): string | null {
  const index = new Map(messages.map((m, i) => [m.id, i]));
  let best = -1;
  for (const [reader, messageId] of Object.entries(reads)) {
    if (reader === myId) continue;
    const i = index.get(messageId);
    if (i !== undefined && i > best) best = i;
  }
  for (let i = best; i >= 0; i -= 1) {
    if (messages[i].sender_id === myId) return messages[i].id;
  }
  return null;
}

export function ChatThread(props: ChatThreadProps) {
  const { messages, myId, names = {}, reads, typingLabel, disabled, disabledReason, placeholder, onSend, onTyping, onSeen } = props;
  const [text, setText] = useState("");
  const [notice, setNotice] = useState<string | null>(null);
  const listRef = useRef<HTMLOListElement>(null);
  const typingSent = useRef(0);
  const idleTimer = useRef<number | null>(null);

  useEffect(() => {
    const list = listRef.current;
    if (list) list.scrollTop = list.scrollHeight;
    const last = [...messages].reverse().find((m) => m.sender_id !== myId);
    if (last) onSeen(last);
  }, [messages, myId, onSeen, typingLabel]);

  useEffect(
    () => () => {
      if (idleTimer.current) window.clearTimeout(idleTimer.current);
    },
    [],
  );

  const stopTyping = () => {
    if (idleTimer.current) window.clearTimeout(idleTimer.current);
    idleTimer.current = null;
    if (typingSent.current) {
      typingSent.current = 0;
      onTyping(false);
    }
  };

  const onChange = (value: string) => {
    setText(value);
    const now = Date.now();
    if (value && now - typingSent.current > 3000) {
      typingSent.current = now;
      onTyping(true);
    }
    if (idleTimer.current) window.clearTimeout(idleTimer.current);
    idleTimer.current = window.setTimeout(stopTyping, 2500);
  };

  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (!text.trim()) return;
    stopTyping();
    const sent = onSend(text);
    setNotice(sent ? null : "Not connected: your message will be sent when the connection is back.");
    setText("");
  };

  const readId = lastReadOwnMessage(messages, myId, reads);
  return (
    <div className="chat-thread">
      <ol className="chat-messages" ref={listRef} aria-live="polite" aria-label="Messages">
        {messages.length === 0 && <li className="muted chat-empty">No messages yet. Ask a question about your devices, bills or alerts.</li>}
        {messages.map((m) => {
          const mine = m.sender_id === myId;
          const who = mine ? "You" : (m.sender_id && names[m.sender_id]) || SENDER_LABELS[m.sender_kind] || m.sender_kind;
          return (
            <li key={m.id} className={`chat-message ${mine ? "mine" : "theirs"} kind-${m.sender_kind}`} data-kind={m.sender_kind}>
              <div className="chat-meta">
                <span className="chat-sender">{who}</span> <time dateTime={m.created_at}>{formatDateTime(m.created_at)}</time>
              </div>
              <div className="chat-text">{m.text}</div>
              {m.id === readId && <div className="chat-read" aria-label="Read">✓✓ Read</div>}
            </li>
          );
        })}
      </ol>
      <div className="chat-typing" aria-live="polite">{typingLabel ? `${typingLabel} is typing…` : " "}</div>
      {notice && <p className="muted small-text">{notice}</p>}
      <form className="chat-form" onSubmit={submit}>
        <label className="sr-only" htmlFor={`chat-input-${myId}`}>Message</label>
        <input
          id={`chat-input-${myId}`}
          value={text}
          onChange={(e) => onChange(e.target.value)}
          onBlur={stopTyping}
          placeholder={disabled ? disabledReason : placeholder ?? "Type a message"}
          disabled={disabled}
          autoComplete="off"
          maxLength={2000}
        />
        <button type="submit" disabled={disabled || !text.trim()}>Send</button>
      </form>
    </div>
  );
}
