/**
 * A pipeline's stages checked beyond their shape: each selector parses
 * (core/fleet/labelSelector.ts) and each stage's rollout defaults make a valid
 * rollout request, so a bad stage is refused when saved, not at promotion time.
 */
import type { PipelineStage } from "../../protocol/api/pipelines.ts";
import { ApiError } from "../errors.ts";
import { parseSelector, SelectorError } from "../fleet/labelSelector.ts";
import { rolloutRequest } from "./rollouts.ts";

export function assertStagesValid(stages: readonly PipelineStage[]): void {
  for (const [i, s] of stages.entries()) {
    try {
      parseSelector(s.selector);
    } catch (err) {
      if (err instanceof SelectorError) throw new ApiError(400, "invalid_selector", `stage ${s.name}: ${err.message}`, { path: `stages.${i}.selector` });
      throw err;
    }
    try {
      rolloutRequest({ ...s.rollout, selector: s.selector, flows: [] });
    } catch (err) {
      if (err instanceof ApiError) throw new ApiError(400, "validation_failed", `stage ${s.name}: its rollout defaults are not a valid rollout request`, err.details);
      throw err;
    }
  }
}
