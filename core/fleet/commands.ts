import type { Env } from "../env.ts";
import type { CommandType } from "../../protocol/commands.ts";
import type { EnqueueOptions } from "../objects.ts";

/** Puts a command in its cluster's outbox; the ClusterLink delivers it when the bridge is connected. */
export async function sendCommand(
  env: Env, clusterId: string, type: CommandType, instanceId: string | undefined,
  args: Record<string, unknown> = {}, opts: EnqueueOptions = {},
): Promise<string> {
  const link = env.CLUSTER_LINK.get(env.CLUSTER_LINK.idFromName(clusterId));
  const command = await link.enqueue(type, instanceId, args, opts);
  return command.id;
}
