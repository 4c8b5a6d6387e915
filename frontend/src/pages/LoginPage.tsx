import { useState, type FormEvent } from "react";
import { Link, Navigate, useLocation, useNavigate } from "react-router-dom";
import { ErrorBox } from "../components/ErrorBox";
import { useAuth } from "../state/auth";

export function LoginPage() {
  const { login, session, notice, clearNotice } = useAuth();
  const navigate = useNavigate();
  const location = useLocation();
  const from = (location.state as { from?: string; registered?: string } | null)?.from;
  const registered = (location.state as { registered?: string } | null)?.registered;
  const [username, setUsername] = useState(registered ?? "");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  if (session) return <Navigate to={from && from !== "/login" ? from : "/"} replace />;

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const user = await login(username.trim(), password);
      navigate(from && from !== "/login" ? from : user.role === "admin" ? "/admin" : "/devices", { replace: true });
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };

  return (
    <main className="auth-page">
      <form className="card auth-card" onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">Sign in</h1>
        <p className="muted">Energy Management System</p>
        {notice && (
          <div className="notice" role="status" data-testid="auth-notice">
            {notice}
            <button type="button" className="close" aria-label="Dismiss" onClick={clearNotice}>×</button>
          </div>
        )}
        {registered && !notice && <div className="notice" role="status">Account created. Sign in with your new password.</div>}
        <ErrorBox error={error} focus />
        <label htmlFor="login-username">Username</label>
        <input id="login-username" name="username" autoComplete="username" value={username} onChange={(e) => setUsername(e.target.value)} autoFocus required />
        <label htmlFor="login-password">Password</label>
        <input id="login-password" name="password" type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} required />
        <button type="submit" disabled={busy}>{busy ? "Signing in…" : "Sign in"}</button>
        <p className="muted">No account yet? <Link to="/register">Register</Link></p>
      </form>
    </main>
  );
}
