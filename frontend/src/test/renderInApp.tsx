import { render } from "@testing-library/react";
import type { ReactNode } from "react";
import { MemoryRouter } from "react-router-dom";
import { AlertsProvider } from "../state/alerts";
import { AuthProvider } from "../state/auth";
import { RealtimeProvider } from "../state/realtime";
import { CONFIG } from "./fakeApi";

/** Renders `ui` inside the app's providers (router, session, socket, alerts), as the app does. */
export function renderInApp(ui: ReactNode) {
  return render(
    <MemoryRouter>
      <AuthProvider config={CONFIG}>
        <RealtimeProvider>
          <AlertsProvider>{ui}</AlertsProvider>
        </RealtimeProvider>
      </AuthProvider>
    </MemoryRouter>,
  );
}
