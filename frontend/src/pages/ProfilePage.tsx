import { useState, type FormEvent } from "react";
import { ErrorBox } from "../components/ErrorBox";
import { useSession } from "../state/auth";

export function ProfilePage() {
  const { api, user, setUser, login } = useSession();
  const [name, setName] = useState(user.name);
  const [email, setEmail] = useState(user.email ?? "");
  const [profileError, setProfileError] = useState<unknown>(null);
  const [profileSaved, setProfileSaved] = useState(false);
  const [busy, setBusy] = useState(false);
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [confirm, setConfirm] = useState("");
  const [passwordError, setPasswordError] = useState<unknown>(null);
  const [passwordSaved, setPasswordSaved] = useState(false);
  const [pwBusy, setPwBusy] = useState(false);

  const saveProfile = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setProfileError(null);
    setProfileSaved(false);
    try {
      const updated = await api.updateMe({ name: name.trim(), email: email.trim() || null });
      setUser(updated);
      setProfileSaved(true);
    } catch (e) {
      setProfileError(e);
    } finally {
      setBusy(false);
    }
  };

  const changePassword = async (event: FormEvent) => {
    event.preventDefault();
    setPasswordError(null);
    setPasswordSaved(false);
    if (next !== confirm) {
      setPasswordError(new Error("The new passwords differ."));
      return;
    }
    setPwBusy(true);
    try {
      await api.changePassword(current, next);
      // A new password ends every session, this one too: sign in again with it.
      await login(user.username, next);
      setPasswordSaved(true);
      setCurrent("");
      setNext("");
      setConfirm("");
    } catch (e) {
      setPasswordError(e);
    } finally {
      setPwBusy(false);
    }
  };

  return (
    <div className="page">
      <h1>Profile</h1>
      <div className="grid two">
        <form className="card form" onSubmit={saveProfile} aria-labelledby="profile-title">
          <h2 id="profile-title">Your details</h2>
          <p className="muted">Signed in as <strong>{user.username}</strong> ({user.role}).</p>
          <ErrorBox error={profileError} />
          {profileSaved && <div className="success" role="status">Saved.</div>}
          <label htmlFor="profile-name">Name</label>
          <input id="profile-name" autoComplete="name" value={name} onChange={(e) => setName(e.target.value)} />
          <label htmlFor="profile-email">Email</label>
          <input id="profile-email" type="email" autoComplete="email" value={email} onChange={(e) => setEmail(e.target.value)} />
          <button type="submit" disabled={busy}>{busy ? "Saving…" : "Save"}</button>
        </form>
        <form className="card form" onSubmit={changePassword} aria-labelledby="password-title">
          <h2 id="password-title">Change password</h2>
          <ErrorBox error={passwordError} />
          {passwordSaved && <div className="success" role="status">Password changed. Your other sessions have been signed out.</div>}
          <label htmlFor="pw-current">Current password</label>
          <input id="pw-current" type="password" autoComplete="current-password" value={current} onChange={(e) => setCurrent(e.target.value)} required />
          <label htmlFor="pw-new">New password</label>
          <input id="pw-new" type="password" autoComplete="new-password" value={next} onChange={(e) => setNext(e.target.value)} required />
          <label htmlFor="pw-confirm">Repeat the new password</label>
          <input id="pw-confirm" type="password" autoComplete="new-password" value={confirm} onChange={(e) => setConfirm(e.target.value)} required />
          <button type="submit" disabled={pwBusy}>{pwBusy ? "Changing…" : "Change password"}</button>
        </form>
      </div>
    </div>
  );
}
