/** The signed-in frame: navigation, who is signed in, and the way back to login on 401. */
import { A, Navigate, useLocation, type RouteSectionProps } from "@solidjs/router";
import { Show } from "solid-js";
import { caller } from "../api/me.ts";
import { session, signOut } from "../api/session.ts";

const NAV = [
  { href: "/fleet", label: "Fleet" },
  { href: "/clusters", label: "Clusters" },
  { href: "/deployments", label: "Deployments" },
  { href: "/rollouts", label: "Rollouts" },
  { href: "/pipelines", label: "Pipelines" },
  { href: "/ci-hooks", label: "CI hooks" },
  { href: "/ai", label: "AI decisions" },
  { href: "/alerts", label: "Alerts" },
  { href: "/dead-letters", label: "Dead letters" },
  { href: "/governance", label: "Governance" },
  { href: "/settings", label: "Settings" },
];

export function Shell(props: RouteSectionProps) {
  const location = useLocation();
  const here = () => `${location.pathname}${location.search}`;
  return (
    <Show when={session()} fallback={<Navigate href={`/login?next=${encodeURIComponent(here())}`} />}>
      <div class="shell">
        <header class="topbar">
          <span class="brand">RedForge <span class="muted">Control Tower</span></span>
          <nav aria-label="Main">
            {NAV.map((n) => (
              <A href={n.href} activeClass="active">{n.label}</A>
            ))}
          </nav>
          <span class="who">
            <span data-testid="who">{caller()?.username ?? session()?.user.username}</span>
            <span class="role">{caller()?.role ?? session()?.user.role}</span>
            <button class="link" type="button" onClick={() => signOut()}>Sign out</button>
          </span>
        </header>
        <main class="content">{props.children}</main>
      </div>
    </Show>
  );
}
