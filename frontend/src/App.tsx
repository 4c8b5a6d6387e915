import { lazy, Suspense, type ReactNode } from "react";
import { BrowserRouter, Navigate, Route, Routes, useLocation } from "react-router-dom";
import { Layout } from "./components/Layout";
import { Spinner } from "./components/ErrorBox";
import type { RuntimeConfig } from "./config";
import { AlertsProvider } from "./state/alerts";
import { AuthProvider, useAuth } from "./state/auth";
import { ChatProvider } from "./state/chat";
import { RealtimeProvider } from "./state/realtime";
import { LoginPage } from "./pages/LoginPage";
import { RegisterPage } from "./pages/RegisterPage";
import { ProfilePage } from "./pages/ProfilePage";
import { MyDevicesPage } from "./pages/MyDevicesPage";
import { AlertsPage } from "./pages/AlertsPage";
import { NotFoundPage } from "./pages/NotFoundPage";

const DevicePage = lazy(() => import("./pages/DevicePage"));
const FleetPage = lazy(() => import("./pages/admin/FleetPage"));
const UsersPage = lazy(() => import("./pages/admin/UsersPage"));
const DevicesAdminPage = lazy(() => import("./pages/admin/DevicesAdminPage"));
const DeviceEditPage = lazy(() => import("./pages/admin/DeviceEditPage"));
const ChatConsolePage = lazy(() => import("./pages/admin/ChatConsolePage"));
const ApiDocsPage = lazy(() => import("./pages/admin/ApiDocsPage"));

function SignedIn() {
  const { session } = useAuth();
  const location = useLocation();
  if (!session) return <Navigate to="/login" replace state={{ from: location.pathname + location.search }} />;
  return (
    <RealtimeProvider>
      <AlertsProvider>
        <ChatProvider>
          <Layout />
        </ChatProvider>
      </AlertsProvider>
    </RealtimeProvider>
  );
}

function AdminOnly({ children }: { children: ReactNode }) {
  const { user } = useAuth();
  if (user?.role !== "admin") return <Navigate to="/devices" replace />;
  return <>{children}</>;
}

function Home() {
  const { user } = useAuth();
  return <Navigate to={user?.role === "admin" ? "/admin" : "/devices"} replace />;
}

function lazyPage(node: ReactNode) {
  return <Suspense fallback={<Spinner />}>{node}</Suspense>;
}

export function AppRoutes() {
  return (
    <Routes>
      <Route path="/login" element={<LoginPage />} />
      <Route path="/register" element={<RegisterPage />} />
      <Route element={<SignedIn />}>
        <Route index element={<Home />} />
        <Route path="/profile" element={<ProfilePage />} />
        <Route path="/devices" element={<MyDevicesPage />} />
        <Route path="/devices/:deviceId" element={lazyPage(<DevicePage />)} />
        <Route path="/alerts" element={<AlertsPage />} />
        <Route path="/admin" element={<AdminOnly>{lazyPage(<FleetPage />)}</AdminOnly>} />
        <Route path="/admin/users" element={<AdminOnly>{lazyPage(<UsersPage />)}</AdminOnly>} />
        <Route path="/admin/devices" element={<AdminOnly>{lazyPage(<DevicesAdminPage />)}</AdminOnly>} />
        <Route path="/admin/devices/new" element={<AdminOnly>{lazyPage(<DeviceEditPage />)}</AdminOnly>} />
        <Route path="/admin/devices/:deviceId" element={<AdminOnly>{lazyPage(<DeviceEditPage />)}</AdminOnly>} />
        <Route path="/admin/chat" element={<AdminOnly>{lazyPage(<ChatConsolePage />)}</AdminOnly>} />
        <Route path="/admin/api-docs" element={<AdminOnly>{lazyPage(<ApiDocsPage />)}</AdminOnly>} />
        <Route path="*" element={<NotFoundPage />} />
      </Route>
    </Routes>
  );
}

export function App({ config }: { config: RuntimeConfig }) {
  return (
    <AuthProvider config={config}>
      <BrowserRouter>
        <AppRoutes />
      </BrowserRouter>
    </AuthProvider>
  );
}
