/**
 * Runs once in Node before the node layer's files: the migrated Postgres
 * template that each integration stack copies instead of running initdb and
 * the migrations itself (test/harness/pgTemplate.ts). Not needed when the
 * stacks use a server of the machine's (REDFORGE_DATABASE_URL): they get a
 * fresh database on it.
 */
import { loadConfig } from "../dev/config.ts";
import { keepExitCode } from "./harness/keepExitCode.ts";
import { createPgTemplate, PG_TEMPLATE_ENV } from "./harness/pgTemplate.ts";

export default async function setup() {
  keepExitCode();
  if (loadConfig().postgres.url || process.env[PG_TEMPLATE_ENV]) return;
  const template = await createPgTemplate();
  // Set before the pool starts the test processes, which inherit this environment.
  process.env[PG_TEMPLATE_ENV] = template.dataDir;
  return async () => {
    delete process.env[PG_TEMPLATE_ENV];
    await template.remove();
  };
}
