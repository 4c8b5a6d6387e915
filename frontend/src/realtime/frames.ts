/**
 * The WebSocket API's frames. They are not part of the REST contract (OpenAPI describes no socket),
 * so they are written here by hand; the records they carry are the contract's.
 */
import type { Alert, ChatMessage, Conversation } from "../api/types";

/** Frames the server pushes. */
export type ServerFrame =
  | { type: "alert"; alert: Alert }
  | { type: "reading"; device_id: string; hour_start: string; kwh: number }
  | { type: "chat.message"; message: ChatMessage }
  | { type: "chat.typing"; conversation_id: string; sender_id: string; typing: boolean }
  | { type: "chat.read"; conversation_id: string; message_id: string; reader_id: string }
  | { type: "chat.conversation"; conversation: Conversation }
  | { type: "pong" }
  | { type: "error"; action: string | null; error: { code: string; message: string } };

/** Frames a browser sends. */
export type ClientFrame =
  | { action: "ping" }
  | { action: "chat.send"; text: string }
  | { action: "chat.typing"; typing: boolean; conversation_id?: string }
  | { action: "chat.read"; message_id: string; conversation_id?: string }
  | { action: "chat.escalate" }
  | { action: "chat.reply"; conversation_id: string; text: string }
  | { action: "chat.take_over"; conversation_id: string }
  | { action: "chat.close"; conversation_id: string };
