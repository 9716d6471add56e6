/**
 * Approved models at run time, the bridge's part: every `ttlSeconds` the
 * control plane names (or `refreshMs`), ask it for the approved-model
 * policies covering each instance of this cluster, and publish each
 * instance's list, retained (QoS 1), on `redforge/policy/models/{instance}`.
 * Instances read it there (redforge-model-policy), so the policy is served
 * from the cluster's own bus: a control plane that is away leaves the last
 * published lists in force, and a restarted Node-RED gets its list back at
 * once from the retained message. Only changed lists are published; an
 * instance that is gone gets its retained message cleared.
 *
 * Each message carries `expiresAt` = fetch time + the control plane's
 * maxAgeSeconds: an instance refuses model calls (model_policy_stale) with a
 * list past it, so a bridge cut off from the control plane (or gone) cannot
 * leave a stale allow list in force forever. An unchanged list is published
 * again once half its age is used, so it never runs out while refreshes work.
 */
import { randomBytes } from "node:crypto";
import { connect, type MqttClient } from "mqtt";
import { bridgePaths } from "../protocol/paths.ts";
import { clusterModelPoliciesSchema, DEFAULT_MODEL_POLICY_MAX_AGE_SECONDS, modelPolicyTopic, type PublishedModelPolicy } from "../protocol/modelPolicies.ts";
import { ControlPlaneClient } from "./controlPlaneClient.ts";
import { errorMessage, type Logger } from "./log.ts";

export interface ModelPolicySyncOptions {
  api: string;
  clusterId: string;
  secret: string;
  mqttUrl: string;
  log: Logger;
  /** Overrides the control plane's ttlSeconds (tests). */
  refreshMs?: number;
  /** Overrides the control plane's maxAgeSeconds (tests). */
  maxAgeMs?: number;
}

export class ModelPolicySync {
  /** Per instance, the policies last published (JSON) and when, to publish only changes and renewals. */
  private readonly published = new Map<string, { key: string; at: number }>();
  private client?: MqttClient;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly cp: ControlPlaneClient;
  private syncs = 0;
  private syncedWaiters: (() => void)[] = [];
  private maxAgeMs = DEFAULT_MODEL_POLICY_MAX_AGE_SECONDS * 1000;

  constructor(private readonly opts: ModelPolicySyncOptions) {
    this.cp = new ControlPlaneClient({ api: opts.api, secret: opts.secret });
  }

  start(): void {
    // A clean session keeps nothing, so the id needs no stability: a unique one means two bridges of a
    // cluster (a restart's overlap, tests) never take each other's connection over.
    this.client = connect(this.opts.mqttUrl, { clientId: `redforge-bridge-policy-${this.opts.clusterId.slice(0, 8)}-${randomBytes(4).toString("hex")}`, clean: true, protocolVersion: 4, reconnectPeriod: 1_000 });
    this.client.on("error", (err) => this.opts.log.warn(`model policies: mqtt: ${err.message}`));
    void this.loop();
  }

  /** Resolves after the next completed sync (tests). */
  synced(): Promise<void> {
    return new Promise((resolve) => this.syncedWaiters.push(resolve));
  }

  async close(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.client?.endAsync().catch(() => undefined);
  }

  private async loop(): Promise<void> {
    let ttlMs = 15_000;
    try {
      ttlMs = (await this.sync()) * 1000;
      this.syncs++;
      for (const w of this.syncedWaiters.splice(0)) w();
    } catch (err) {
      // The lists already published stay in force (retained) until their expiresAt; try again sooner.
      if (!this.stopped) this.opts.log.warn(`model policies: not refreshed: ${errorMessage(err)}`);
      ttlMs = 5_000;
    }
    if (this.stopped) return;
    // Never so rarely that a list runs out between two rounds.
    this.timer = setTimeout(() => void this.loop(), Math.min(this.opts.refreshMs ?? ttlMs, this.maxAgeMs / 3));
  }

  /** One round; returns the control plane's ttlSeconds. */
  private async sync(): Promise<number> {
    const res = await this.cp.post(bridgePaths.modelPolicies(this.opts.clusterId), "{}", { retry: { baseMs: 250, capMs: 2_000, attempts: 3 } });
    const answer = clusterModelPoliciesSchema.parse(JSON.parse(res.text));
    const now = Date.now();
    const maxAgeMs = this.maxAgeMs = this.opts.maxAgeMs ?? (answer.maxAgeSeconds ?? DEFAULT_MODEL_POLICY_MAX_AGE_SECONDS) * 1000;
    const fetchedAt = new Date(now).toISOString();
    const expiresAt = new Date(now + maxAgeMs).toISOString();
    const publishes: Promise<unknown>[] = [];
    for (const [instanceId, policies] of Object.entries(answer.instances)) {
      const key = JSON.stringify(policies);
      const last = this.published.get(instanceId);
      const renew = last?.key === key;
      if (renew && now - last.at < maxAgeMs / 2) continue;
      const message: PublishedModelPolicy = { instanceId, policies, fetchedAt, expiresAt };
      publishes.push(this.client!.publishAsync(modelPolicyTopic(instanceId), JSON.stringify(message), { qos: 1, retain: true }).then(() => {
        this.published.set(instanceId, { key, at: now });
        if (renew) return;
        this.opts.log.info(`model policies: ${instanceId.slice(0, 8)} now ${policies.length ? policies.map((p) => `${p.name} (${p.models.join(", ")})`).join("; ") : "unrestricted"}`);
      }));
    }
    for (const instanceId of [...this.published.keys()]) {
      if (instanceId in answer.instances) continue;
      // An empty retained payload clears the topic.
      publishes.push(this.client!.publishAsync(modelPolicyTopic(instanceId), "", { qos: 1, retain: true }).then(() => this.published.delete(instanceId)));
    }
    await Promise.all(publishes);
    return answer.ttlSeconds;
  }
}
