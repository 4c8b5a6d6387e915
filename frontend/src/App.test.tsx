import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter } from "react-router-dom";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { AppRoutes } from "./App";
import { AuthProvider } from "./state/auth";
import { CONFIG, fakeFetch, signIn } from "./test/fakeApi";
import { FakeSocket } from "./test/fakeSocket";

function renderAt(path: string) {
  return render(
    <AuthProvider config={CONFIG}>
      <MemoryRouter initialEntries={[path]}>
        <AppRoutes />
      </MemoryRouter>
    </AuthProvider>,
  );
}

const UNAUTHORIZED = { status: 401, body: { error: { code: "unauthorized", message: "The token has expired." } } };

describe("session", () => {
  beforeEach(() => {
    FakeSocket.reset();
    vi.stubGlobal("WebSocket", FakeSocket);
  });
  afterEach(() => vi.unstubAllGlobals());

  it("sends a signed-out visitor to sign in", () => {
    vi.stubGlobal("fetch", fakeFetch({}).fn);
    renderAt("/devices");
    expect(screen.getByRole("heading", { name: "Sign in" })).toBeInTheDocument();
  });

  it("goes back to sign-in with a message when the API answers 401", async () => {
    signIn();
    vi.stubGlobal("fetch", fakeFetch({
      "GET /auth/me": () => UNAUTHORIZED,
      "GET /devices": () => UNAUTHORIZED,
      "GET /alerts": () => UNAUTHORIZED,
      "GET /chat/conversations": () => UNAUTHORIZED,
    }).fn);
    renderAt("/devices");
    expect(await screen.findByTestId("auth-notice")).toHaveTextContent("Your session has expired. Please sign in again.");
    expect(screen.getByLabelText("Username")).toBeInTheDocument();
    expect(window.localStorage.getItem("ems.session")).toBeNull();
  });

  it("signs in with Enter and shows the API's error details when it fails", async () => {
    const api = fakeFetch({
      "POST /auth/login": ({ body }) =>
        (body as { password: string }).password === "right-password"
          ? { body: { access_token: "t", token_type: "Bearer", expires_in: 3600, user: { id: "u1", username: "alice", role: "client", name: "Alice", email: null } } }
          : { status: 401, body: { error: { code: "unauthorized", message: "The username or password is wrong." } } },
      "GET /auth/me": () => ({ body: { id: "u1", username: "alice", role: "client", name: "Alice", email: null } }),
      "GET /devices": () => ({ body: { items: [], next_cursor: null } }),
      "GET /alerts": () => ({ body: { items: [], next_cursor: null } }),
      "GET /chat/conversations": () => ({ body: { items: [], next_cursor: null } }),
    });
    vi.stubGlobal("fetch", api.fn);
    const user = userEvent.setup();
    renderAt("/login");
    expect(screen.getByLabelText("Username")).toHaveFocus();
    await user.type(screen.getByLabelText("Username"), "alice");
    await user.type(screen.getByLabelText("Password"), "wrong{Enter}");
    expect(await screen.findByRole("alert")).toHaveTextContent("The username or password is wrong.");
    await user.clear(screen.getByLabelText("Password"));
    await user.type(screen.getByLabelText("Password"), "right-password{Enter}");
    expect(await screen.findByRole("heading", { name: "My devices" })).toBeInTheDocument();
    expect(await screen.findByText(/No devices yet/)).toBeInTheDocument();
  });

  it("shows each field's validation message from the API on register", async () => {
    vi.stubGlobal("fetch", fakeFetch({
      "POST /auth/register": () => ({
        status: 422,
        body: { error: { code: "validation_error", message: "The request is not valid.", details: [{ field: "username", message: "String should have at least 3 characters" }] } },
      }),
    }).fn);
    const user = userEvent.setup();
    renderAt("/register");
    await user.type(screen.getByLabelText("Username"), "ab");
    await user.type(screen.getByLabelText("Password"), "long-enough");
    await user.type(screen.getByLabelText("Repeat the password"), "long-enough{Enter}");
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("The request is not valid.");
    expect(alert).toHaveTextContent("username: String should have at least 3 characters");
  });
});
