import { useNavigate, useSearchParams } from "@solidjs/router";
import { createSignal, Show } from "solid-js";
import { api, messageOf } from "../api/api.ts";
import { returnTo } from "../api/returnTo.ts";
import { expired, signIn } from "../api/session.ts";

export function Login() {
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const [error, setError] = createSignal<string | null>(null);
  const [busy, setBusy] = createSignal(false);

  const submit = async (e: SubmitEvent) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget as HTMLFormElement);
    setBusy(true);
    setError(null);
    const { data, error: err, response } = await api.POST("/api/auth/login", {
      body: { username: String(form.get("username") ?? ""), password: String(form.get("password") ?? "") },
    });
    setBusy(false);
    if (!data) return setError(messageOf(err, response));
    signIn(data);
    navigate(returnTo(params.next), { replace: true });
  };

  return (
    <main class="login">
      <form class="card" onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">RedForge Control Tower</h1>
        <p class="muted">Sign in to manage your Node-RED fleet.</p>
        <Show when={expired()}><p class="notice" role="status">Your session ended. Sign in to go back where you were.</p></Show>
        <label>Username<input name="username" autocomplete="username" required autofocus /></label>
        <label>Password<input name="password" type="password" autocomplete="current-password" required /></label>
        <Show when={error()}><p class="error" role="alert">{error()}</p></Show>
        <button class="primary" type="submit" disabled={busy()}>{busy() ? "Signing in…" : "Sign in"}</button>
      </form>
    </main>
  );
}
