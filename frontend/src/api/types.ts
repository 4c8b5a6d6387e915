/**
 * The REST API's shapes, named from its contract: `schema.d.ts` is generated from the OpenAPI document
 * the backend serves (`make frontend-types` refreshes both; `make lint` fails when they drift).
 */
import type { components } from "./schema";

type Schemas = components["schemas"];

export type User = Schemas["UserOut"];
export type Role = User["role"];
export type UserPage = Schemas["UserPage"];
export type NewUser = Schemas["CreateUserRequest"];
export type UserChanges = Schemas["UpdateUserRequest"];
export type Registration = Schemas["RegisterRequest"];
export type ProfileChanges = Schemas["UpdateMeRequest"];
export type LoginResponse = Schemas["LoginResponse"];
export type UserEnvelope = Schemas["UserEnvelope"];
export type ListUsersQuery = Schemas["ListUsersQuery"];

export type Device = Schemas["DeviceOut"];
export type NewDevice = Schemas["CreateDeviceRequest"];
export type DeviceChanges = Schemas["UpdateDeviceRequest"];
export type DevicePage = Schemas["DevicePage"];
export type ListDevicesQuery = Schemas["ListDevicesQuery"];
export type ApiKeyPage = Schemas["ApiKeyPage"];
export type ApiKeyCreated = Schemas["ApiKeyCreated"];
export type ImportResult = Schemas["ImportResult"];
export type ImportedRow = Schemas["ImportedRow"];
export type RejectedRow = Schemas["RejectedRow"];

export type DayConsumption = Schemas["DayConsumption"];
export type RangeConsumption = Schemas["RangeConsumption"];
export type Granularity = RangeConsumption["granularity"];
export type ReadingList = Schemas["ReadingList"];
export type ReadingsQuery = Schemas["ReadingsQuery"];

export type FleetPage = Schemas["FleetPage"];
export type FleetQuery = Schemas["FleetQuery"];
export type FleetRow = Schemas["FleetRow"];
export type FleetState = FleetRow["state"];
export type FleetSummary = Schemas["FleetSummary"];

export type Alert = Schemas["AlertOut"];
export type AlertPage = Schemas["AlertPage"];

export type ChatMessage = Schemas["MessageOut"];
export type Conversation = Schemas["ConversationOut"];
