import { useCallback, useState, type FormEvent } from "react";
import type { Role, User, UserChanges } from "../../api/types";
import { ConfirmButton } from "../../components/ConfirmButton";
import { ErrorBox, Spinner } from "../../components/ErrorBox";
import { useDebounced, usePaged } from "../../components/hooks";
import { formatDateTime } from "../../format";
import { useSession } from "../../state/auth";

interface UserForm {
  username: string;
  password: string;
  role: Role;
  name: string;
  email: string;
}

const EMPTY: UserForm = { username: "", password: "", role: "client", name: "", email: "" };

function UserFields({ form, setForm, idPrefix, creating }: { form: UserForm; setForm: (f: UserForm) => void; idPrefix: string; creating: boolean }) {
  const set = (key: keyof UserForm) => (e: React.ChangeEvent<HTMLInputElement | HTMLSelectElement>) => setForm({ ...form, [key]: e.target.value });
  return (
    <div className="form-grid">
      <div className="field">
        <label htmlFor={`${idPrefix}-username`}>Username</label>
        <input id={`${idPrefix}-username`} value={form.username} onChange={set("username")} required={creating} autoFocus autoComplete="off" />
      </div>
      <div className="field">
        <label htmlFor={`${idPrefix}-password`}>{creating ? "Password" : "New password (optional)"}</label>
        <input id={`${idPrefix}-password`} type="password" value={form.password} onChange={set("password")} required={creating} autoComplete="new-password" />
      </div>
      <div className="field">
        <label htmlFor={`${idPrefix}-name`}>Name</label>
        <input id={`${idPrefix}-name`} value={form.name} onChange={set("name")} />
      </div>
      <div className="field">
        <label htmlFor={`${idPrefix}-email`}>Email</label>
        <input id={`${idPrefix}-email`} type="email" value={form.email} onChange={set("email")} />
      </div>
      <div className="field">
        <label htmlFor={`${idPrefix}-role`}>Role</label>
        <select id={`${idPrefix}-role`} value={form.role} onChange={set("role")}>
          <option value="client">Client</option>
          <option value="admin">Admin</option>
        </select>
      </div>
    </div>
  );
}

export default function UsersPage() {
  const { api, user: me } = useSession();
  const [query, setQuery] = useState("");
  const q = useDebounced(query.trim(), 300);
  // The first page for the search; "Load more" appends the next pages to it.
  const list = usePaged(useCallback((cursor: string | null) => api.listUsers({ q: q || undefined, cursor, limit: 50 }), [api, q]));
  const users = list.items;
  const setUsers = list.setItems;
  const [creating, setCreating] = useState(false);
  const [createForm, setCreateForm] = useState<UserForm>(EMPTY);
  const [createError, setCreateError] = useState<unknown>(null);
  const [editing, setEditing] = useState<string | null>(null);
  const [editForm, setEditForm] = useState<UserForm>(EMPTY);
  const [editError, setEditError] = useState<unknown>(null);
  const [message, setMessage] = useState<string | null>(null);
  const [rowError, setRowError] = useState<unknown>(null);

  const create = async (event: FormEvent) => {
    event.preventDefault();
    setCreateError(null);
    try {
      const user = await api.createUser({
        username: createForm.username.trim(),
        password: createForm.password,
        role: createForm.role,
        name: createForm.name.trim(),
        email: createForm.email.trim() || null,
      });
      setUsers((old) => [user, ...old.filter((u) => u.id !== user.id)]);
      setCreateForm(EMPTY);
      setCreating(false);
      setMessage(`User ${user.username} created.`);
    } catch (e) {
      setCreateError(e);
    }
  };

  const startEdit = (user: User) => {
    setEditing(user.id);
    setEditError(null);
    setEditForm({ username: user.username, password: "", role: user.role, name: user.name, email: user.email ?? "" });
  };

  const save = async (event: FormEvent, user: User) => {
    event.preventDefault();
    setEditError(null);
    const changes: UserChanges = {};
    if (editForm.username.trim() !== user.username) changes.username = editForm.username.trim();
    if (editForm.password) changes.password = editForm.password;
    if (editForm.role !== user.role) changes.role = editForm.role;
    if (editForm.name.trim() !== user.name) changes.name = editForm.name.trim();
    if ((editForm.email.trim() || null) !== user.email) changes.email = editForm.email.trim() || null;
    try {
      const updated = await api.updateUser(user.id, changes);
      setUsers((old) => old.map((u) => (u.id === user.id ? updated : u)));
      setEditing(null);
      setMessage(`User ${updated.username} saved.`);
    } catch (e) {
      setEditError(e);
    }
  };

  const remove = async (user: User) => {
    setRowError(null);
    try {
      await api.deleteUser(user.id);
      setUsers((old) => old.filter((u) => u.id !== user.id));
      setMessage(`User ${user.username} deleted.`);
    } catch (e) {
      setRowError(e);
    }
  };

  return (
    <div className="page">
      <header className="page-head">
        <h1>Users</h1>
        <div className="head-aside">
          <button type="button" onClick={() => { setCreating((v) => !v); setCreateError(null); }} aria-expanded={creating}>
            {creating ? "Cancel" : "New user"}
          </button>
        </div>
      </header>
      {message && <div className="success" role="status">{message}</div>}
      {creating && (
        <form className="card form" onSubmit={create} aria-label="New user">
          <h2>New user</h2>
          <ErrorBox error={createError} focus />
          <UserFields form={createForm} setForm={setCreateForm} idPrefix="new-user" creating />
          <div className="actions"><button type="submit">Create user</button></div>
        </form>
      )}
      <div className="toolbar">
        <label htmlFor="user-search">Search</label>
        <input id="user-search" type="search" placeholder="Username starts with…" value={query} onChange={(e) => setQuery(e.target.value)} />
      </div>
      <ErrorBox error={list.error ?? list.moreError} />
      <ErrorBox error={rowError} />
      <div className="table-wrap card">
        <table className="users-table">
          <thead>
            <tr>
              <th scope="col">Username</th>
              <th scope="col">Name</th>
              <th scope="col">Email</th>
              <th scope="col">Role</th>
              <th scope="col">Created</th>
              <th scope="col"><span className="sr-only">Actions</span></th>
            </tr>
          </thead>
          <tbody>
            {users.map((user) =>
              editing === user.id ? (
                <tr key={user.id} className="editing">
                  <td colSpan={6}>
                    <form onSubmit={(e) => save(e, user)} aria-label={`Edit ${user.username}`}>
                      <ErrorBox error={editError} focus />
                      <UserFields form={editForm} setForm={setEditForm} idPrefix={`edit-${user.id}`} creating={false} />
                      <div className="actions">
                        <button type="submit">Save</button>
                        <button type="button" className="secondary" onClick={() => setEditing(null)}>Cancel</button>
                      </div>
                    </form>
                  </td>
                </tr>
              ) : (
                <tr key={user.id}>
                  <td data-label="Username">{user.username}</td>
                  <td data-label="Name">{user.name || <span className="muted">—</span>}</td>
                  <td data-label="Email">{user.email || <span className="muted">—</span>}</td>
                  <td data-label="Role"><span className={`pill ${user.role === "admin" ? "info" : ""}`}>{user.role}</span></td>
                  <td data-label="Created">{formatDateTime(user.created_at)}</td>
                  <td className="row-actions">
                    <button type="button" className="secondary small" onClick={() => startEdit(user)}>Edit</button>
                    {user.id !== me.id && <ConfirmButton label="Delete" onConfirm={() => remove(user)} />}
                  </td>
                </tr>
              ),
            )}
          </tbody>
        </table>
        {(list.loading || list.loadingMore) && <Spinner label="Loading users…" />}
        {!list.loading && users.length === 0 && <p className="muted empty">No users{q ? ` match “${q}”` : ""}.</p>}
      </div>
      {list.hasMore && !list.loading && !list.loadingMore && <button type="button" className="secondary" onClick={() => void list.loadMore()}>Load more</button>}
    </div>
  );
}
