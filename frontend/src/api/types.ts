/** The API's shapes, as the contract states them. */

export type Role = "admin" | "client";

export interface User {
  id: string;
  username: string;
  role: Role;
  name: string;
  email: string | null;
  created_at?: string;
}

export interface LoginResponse {
  access_token: string;
  token_type: string;
  expires_in: number;
  user: User;
}

export interface Device {
  id: string;
  name: string;
  description: string;
  address: string;
  max_hourly_kwh: number;
  timezone: string;
  tariff_per_kwh: number | null;
  currency: string | null;
  owner_ids: string[];
  created_at: string;
}

export interface DeviceInput {
  id?: string;
  name?: string;
  description?: string;
  address?: string;
  max_hourly_kwh?: number;
  timezone?: string;
  tariff_per_kwh?: number | null;
  currency?: string | null;
  owner_ids?: string[];
}

export interface ApiKey {
  key_id: string;
  device_id?: string;
  created_at?: string;
}

export interface ApiKeyCreated {
  key_id: string;
  api_key: string;
}

export interface HourValue {
  start: string;
  kwh: number | null;
  readings: number;
}

export interface DayConsumption {
  device_id: string;
  date: string;
  timezone: string;
  unit: string;
  hours: HourValue[];
  total_kwh: number;
  peak_hour: string | null;
  max_hourly_kwh: number;
  cost: number | null;
  currency: string | null;
}

export interface Point {
  start: string;
  kwh: number | null;
}

export interface RangeConsumption {
  device_id: string;
  from: string;
  to: string;
  granularity: "day" | "hour";
  timezone?: string;
  unit?: string;
  points: Point[];
  total_kwh: number;
  cost: number | null;
  currency: string | null;
  max_hourly_kwh: number;
  previous: { from: string; to: string; points: Point[]; total_kwh: number } | null;
}

export interface Reading {
  timestamp: string;
  kwh: number;
}

export type AlertKind = "over_consumption" | "silent_meter" | string;

export interface Alert {
  id: string;
  kind: AlertKind;
  device_id: string;
  device_name: string;
  hour_start: string;
  total_kwh: number;
  max_hourly_kwh: number;
  created_at: string;
  acknowledged_at: string | null;
}

export type SenderKind = "client" | "rule" | "ai" | "admin" | "system";

export interface ChatMessage {
  id: string;
  conversation_id: string;
  sender_id: string | null;
  sender_kind: SenderKind;
  text: string;
  created_at: string;
  read_by?: string[];
}

export type ConversationStatus = "bot" | "escalated" | "taken_over" | "closed";

export interface Conversation {
  id: string;
  client_id: string;
  status: ConversationStatus;
  admin_id: string | null;
  created_at?: string;
  updated_at?: string;
}

/** Frames the server pushes over the WebSocket. */
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
