import { useState, type ReactNode } from "react";
import { NavLink, Outlet, useLocation, useNavigate } from "react-router-dom";
import { useSession } from "../state/auth";
import { useChat } from "../state/chat";
import { AlertBell } from "./AlertBell";
import { ChatWidget } from "./ChatWidget";
import { StatusLight } from "./StatusLight";
import { Toasts } from "./Toasts";

function EscalatedBadge() {
  const { conversations } = useChat();
  const waiting = conversations.filter((c) => c.status === "escalated").length;
  return waiting > 0 ? <span className="badge inline" aria-label={`${waiting} waiting`}>{waiting}</span> : null;
}

function Item({ to, children, end }: { to: string; children: ReactNode; end?: boolean }) {
  return (
    <li>
      <NavLink to={to} end={end}>{children}</NavLink>
    </li>
  );
}

export function Layout() {
  const { user, logout, config } = useSession();
  const location = useLocation();
  // The menu is open on the page it was opened on: going to another page closes it.
  const [menuOpenOn, setMenuOpenOn] = useState<string | null>(null);
  const menuOpen = menuOpenOn === location.pathname;
  const navigate = useNavigate();
  const isAdmin = user.role === "admin";

  return (
    <div className="app">
      <a className="skip-link" href="#main">Skip to content</a>
      <header className="topbar">
        <div className="brand">
          <svg viewBox="0 0 32 32" width="26" height="26" aria-hidden="true">
            <rect width="32" height="32" rx="7" fill="#ffd43b" />
            <path d="M18 3 7 18h7l-2 11 11-15h-7z" fill="#0f5132" />
          </svg>
          <span>EMS</span>
          {config.stage && config.stage !== "prod" && <span className="stage">{config.stage}</span>}
        </div>
        <button type="button" className="menu-toggle" aria-expanded={menuOpen} aria-controls="main-nav" onClick={() => setMenuOpenOn(menuOpen ? null : location.pathname)} aria-label="Menu">
          <svg viewBox="0 0 24 24" width="22" height="22" aria-hidden="true"><path fill="currentColor" d="M3 6h18v2H3zm0 5h18v2H3zm0 5h18v2H3z" /></svg>
        </button>
        <nav id="main-nav" className={menuOpen ? "open" : ""} aria-label="Main">
          <ul>
            {isAdmin ? (
              <>
                <Item to="/admin" end>Fleet</Item>
                <Item to="/admin/users">Users</Item>
                <Item to="/admin/devices">Devices</Item>
                <Item to="/alerts">Alerts</Item>
                <Item to="/admin/chat">Chat <EscalatedBadge /></Item>
                <Item to="/admin/api-docs">API docs</Item>
              </>
            ) : (
              <>
                <Item to="/devices">My devices</Item>
                <Item to="/alerts">Alerts</Item>
              </>
            )}
            <Item to="/profile">Profile</Item>
          </ul>
        </nav>
        <div className="topbar-right">
          <StatusLight />
          <AlertBell />
          <span className="whoami" title={user.username}>{user.name || user.username}</span>
          <button
            type="button"
            className="secondary small"
            onClick={async () => {
              await logout();
              navigate("/login", { replace: true });
            }}
          >
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <Outlet />
      </main>
      <Toasts />
      {!isAdmin && <ChatWidget />}
    </div>
  );
}
