import { describe, expect, it } from "vitest";
import type { ChatMessage, Conversation } from "../api/types";
import { lastReadOwnMessage } from "../components/ChatThread";
import { appendMessage, readsFromMessages, sortConversations } from "./chat";

function message(id: string, sender: string, at: string, read_by: string[] = []): ChatMessage {
  return { id, conversation_id: "c1", sender_id: sender, sender_kind: sender === "faq" ? "rule" : "client", text: id, created_at: at, read_by };
}

describe("chat state", () => {
  it("lists escalated conversations first, then taken over, bot and closed", () => {
    const c = (id: string, status: Conversation["status"], updated: string): Conversation => ({ id, client_id: "u", client_name: null, status, admin_id: null, created_at: "0", updated_at: updated });
    const sorted = sortConversations([c("a", "closed", "3"), c("b", "bot", "2"), c("c", "escalated", "1"), c("d", "taken_over", "4"), c("e", "escalated", "5")]);
    expect(sorted.map((x) => x.id)).toEqual(["e", "c", "d", "b", "a"]);
  });

  it("adds a message once, in time order", () => {
    let list = appendMessage(undefined, message("m2", "u1", "2026-01-01T10:00:02Z"));
    list = appendMessage(list, message("m1", "u1", "2026-01-01T10:00:01Z"));
    list = appendMessage(list, message("m2", "u1", "2026-01-01T10:00:02Z"));
    expect(list.map((m) => m.id)).toEqual(["m1", "m2"]);
  });

  it("shows Read under the newest own message another reader has reached", () => {
    const list = [
      message("m1", "me", "2026-01-01T10:00:01Z"),
      message("m2", "faq", "2026-01-01T10:00:02Z"),
      message("m3", "me", "2026-01-01T10:00:03Z"),
      message("m4", "me", "2026-01-01T10:00:04Z"),
    ];
    expect(lastReadOwnMessage(list, "me", { admin: "m3" })).toBe("m3");
    expect(lastReadOwnMessage(list, "me", { admin: "m2" })).toBe("m1");
    expect(lastReadOwnMessage(list, "me", { me: "m4" })).toBeNull();
  });

  it("takes the read state from the messages' read_by lists", () => {
    const reads = readsFromMessages([
      message("m1", "me", "2026-01-01T10:00:01Z", ["admin"]),
      message("m2", "me", "2026-01-01T10:00:02Z", ["admin", "me"]),
      message("m3", "me", "2026-01-01T10:00:03Z", ["me"]),
    ]);
    expect(reads).toEqual({ admin: "m2", me: "m3" });
  });
});
