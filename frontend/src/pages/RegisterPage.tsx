import { useState, type FormEvent } from "react";
import { Link, useNavigate } from "react-router-dom";
import { ErrorBox } from "../components/ErrorBox";
import { useAuth } from "../state/auth";

export function RegisterPage() {
  const { api } = useAuth();
  const navigate = useNavigate();
  const [form, setForm] = useState({ username: "", password: "", confirm: "", name: "", email: "" });
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const set = (key: keyof typeof form) => (e: React.ChangeEvent<HTMLInputElement>) => setForm((f) => ({ ...f, [key]: e.target.value }));

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    if (form.password !== form.confirm) {
      setError(new Error("The two passwords differ."));
      return;
    }
    setBusy(true);
    try {
      const { user } = await api.register({
        username: form.username.trim(),
        password: form.password,
        name: form.name.trim(),
        email: form.email.trim() || null,
      });
      navigate("/login", { state: { registered: user.username } });
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };

  return (
    <main className="auth-page">
      <form className="card auth-card" onSubmit={submit} aria-labelledby="register-title">
        <h1 id="register-title">Create an account</h1>
        <ErrorBox error={error} focus />
        <label htmlFor="reg-username">Username</label>
        <input id="reg-username" autoComplete="username" value={form.username} onChange={set("username")} autoFocus required />
        <span className="hint">3–32 letters, digits, dots, dashes or underscores.</span>
        <label htmlFor="reg-name">Name</label>
        <input id="reg-name" autoComplete="name" value={form.name} onChange={set("name")} />
        <label htmlFor="reg-email">Email</label>
        <input id="reg-email" type="email" autoComplete="email" value={form.email} onChange={set("email")} />
        <label htmlFor="reg-password">Password</label>
        <input id="reg-password" type="password" autoComplete="new-password" value={form.password} onChange={set("password")} required />
        <span className="hint">At least 8 characters.</span>
        <label htmlFor="reg-confirm">Repeat the password</label>
        <input id="reg-confirm" type="password" autoComplete="new-password" value={form.confirm} onChange={set("confirm")} required />
        <button type="submit" disabled={busy}>{busy ? "Creating…" : "Create account"}</button>
        <p className="muted">Have an account? <Link to="/login">Sign in</Link></p>
      </form>
    </main>
  );
}
