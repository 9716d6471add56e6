/** Governance: one tab per concern, each its own route so a link or a reload lands on it. */
import { A, type RouteSectionProps } from "@solidjs/router";
import { For } from "solid-js";

const TABS = [
  { href: "users", label: "Users" }, { href: "roles", label: "Roles" }, { href: "api-keys", label: "API keys" },
  { href: "quotas", label: "Quotas" }, { href: "policies", label: "Policies" }, { href: "audit", label: "Audit log" },
  { href: "reports", label: "Reports" }, { href: "schedules", label: "Schedules and retention" },
] as const;

export function Governance(props: RouteSectionProps) {
  return (
    <section class="page">
      <div class="page-head"><h1>Governance</h1></div>
      <nav class="tabs" aria-label="Governance">
        <For each={TABS}>{(t) => <A href={`/governance/${t.href}`} activeClass="active">{t.label}</A>}</For>
      </nav>
      {props.children}
    </section>
  );
}
