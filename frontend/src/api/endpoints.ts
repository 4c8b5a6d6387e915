/** One function per REST route the screens use, typed by the contract's models (see ./types). */
import type { ApiClient } from "./client";
import type {
  Alert, AlertPage, ApiKeyCreated, ApiKeyPage, ChatMessage, Conversation, DayConsumption, Device, DeviceChanges,
  DevicePage, ListDevicesQuery,
  FleetPage, FleetQuery, Granularity, ImportResult, ListUsersQuery, LoginResponse, NewDevice, NewUser, ProfileChanges,
  RangeConsumption, ReadingList, ReadingsQuery, Registration, User, UserChanges, UserEnvelope, UserPage,
} from "./types";

/**
 * Encodes one path segment, leaving ":" and "@" as they are (both are legal in a path segment, and
 * ids such as an alert's "{device_id}:{hour}" must reach the route unchanged).
 */
export function segment(value: string): string {
  return encodeURIComponent(value).replace(/%3A/gi, ":").replace(/%40/g, "@");
}

const enc = segment;

export function endpoints(client: ApiClient) {
  return {
    login: (username: string, password: string) =>
      client.post<LoginResponse>("/auth/login", { username, password }, { auth: false }),
    register: (input: Registration) => client.post<UserEnvelope>("/auth/register", input, { auth: false }),
    me: () => client.get<User>("/auth/me"),
    updateMe: (input: ProfileChanges) => client.put<User>("/auth/me", input),
    changePassword: (current_password: string, new_password: string) =>
      client.post<void>("/auth/password", { current_password, new_password }),
    logout: () => client.post<void>("/auth/logout"),

    listUsers: (query: ListUsersQuery = {}) => client.get<UserPage>("/users", query),
    allUsers: () => client.all<User>("/users", { limit: 200 }),
    getUser: (id: string) => client.get<User>(`/users/${enc(id)}`),
    createUser: (input: NewUser) => client.post<User>("/users", input),
    updateUser: (id: string, input: UserChanges) => client.put<User>(`/users/${enc(id)}`, input),
    deleteUser: (id: string) => client.delete(`/users/${enc(id)}`),

    listDevices: () => client.all<Device>("/devices", { limit: 500 }),
    // One page of every device by name (admins), `q` a name prefix.
    devicesPage: (query: ListDevicesQuery = {}) => client.get<DevicePage>("/devices", query),
    getDevice: (id: string) => client.get<Device>(`/devices/${enc(id)}`),
    createDevice: (input: NewDevice) => client.post<Device>("/devices", input),
    updateDevice: (id: string, input: DeviceChanges) => client.put<Device>(`/devices/${enc(id)}`, input),
    deleteDevice: (id: string) => client.delete(`/devices/${enc(id)}`),
    // A CSV file of meters (at most IMPORT_MAX_ROWS rows a request: see ../pages/admin/deviceImport).
    importDevices: (csv: string) => client.post<ImportResult>("/devices/import", csv, { contentType: "text/csv" }),
    addOwner: (id: string, userId: string) => client.put<Device>(`/devices/${enc(id)}/owners/${enc(userId)}`),
    removeOwner: (id: string, userId: string) => client.delete<Device>(`/devices/${enc(id)}/owners/${enc(userId)}`),
    listApiKeys: (id: string) => client.get<ApiKeyPage>(`/devices/${enc(id)}/api-keys`),
    createApiKey: (id: string) => client.post<ApiKeyCreated>(`/devices/${enc(id)}/api-keys`),
    revokeApiKey: (id: string, keyId: string) => client.delete(`/devices/${enc(id)}/api-keys/${enc(keyId)}`),

    // The consumption route answers a day (`?date=`) or a range (`?from=&to=`): its contract is the union of both.
    day: (id: string, date?: string) =>
      client.get<DayConsumption>(`/devices/${enc(id)}/consumption`, { date }),
    range: (id: string, from: string, to: string, granularity: Granularity = "day") =>
      client.get<RangeConsumption>(`/devices/${enc(id)}/consumption`, { from, to, granularity }),
    readings: (id: string, query: ReadingsQuery = {}) => client.get<ReadingList>(`/devices/${enc(id)}/readings`, query),
    csv: (id: string, from: string, to: string) =>
      client.get<Blob>(`/devices/${enc(id)}/consumption.csv`, { from, to }, { as: "blob" }),

    // The fleet's exact counts and a page of its meters, most severe state first, then by name.
    fleet: (query: FleetQuery = {}) => client.get<FleetPage>("/fleet", query),

    alerts: () => client.get<AlertPage>("/alerts", { limit: 100 }),
    ackAlert: (id: string) => client.post<Alert>(`/alerts/${enc(id)}/ack`),

    conversations: () => client.all<Conversation>("/chat/conversations", { limit: 100 }),
    messages: (conversationId: string) =>
      client.all<ChatMessage>(`/chat/conversations/${enc(conversationId)}/messages`, { limit: 200 }),

    openapi: () => client.get<OpenApiDocument>("/openapi.json", undefined, { auth: false }),
  };
}

export type Endpoints = ReturnType<typeof endpoints>;

export interface OpenApiDocument {
  openapi: string;
  info?: { title?: string; version?: string; description?: string };
  servers?: { url: string }[];
  paths: Record<string, Record<string, OpenApiOperation>>;
  components?: { schemas?: Record<string, JsonSchema>; securitySchemes?: Record<string, unknown> };
}

export interface OpenApiOperation {
  summary?: string;
  description?: string;
  operationId?: string;
  tags?: string[];
  security?: Record<string, string[]>[];
  parameters?: { name: string; in: string; required?: boolean; description?: string; schema?: JsonSchema }[];
  requestBody?: { required?: boolean; content?: Record<string, { schema?: JsonSchema }> };
  responses?: Record<string, { description?: string; content?: Record<string, { schema?: JsonSchema }> }>;
}

export interface JsonSchema {
  $ref?: string;
  type?: string | string[];
  title?: string;
  description?: string;
  format?: string;
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  additionalProperties?: boolean | JsonSchema;
}
