/** A blueprint's shape (core/blueprints/catalog.generated.ts, written by flows/primitives/blueprints.mts). */
export interface BlueprintParam {
  /** The environment variable the flow reads. */
  name: string;
  description: string;
  /** What the flow uses when it is not set (a sentence when it depends, e.g. on the API); null: unset means off. */
  default: string | null;
  required: boolean;
  /** A credential: given through `blueprintParams` it is stored as an instance secret, never as plain env. */
  secret: boolean;
  /** Pipelines only: the instance roles that read it. */
  roles?: string[];
}

export interface FlowBlueprint {
  id: string;
  kind: "flow";
  name: string;
  description: string;
  entry: string[];
  params: BlueprintParam[];
  flows: Array<Record<string, unknown> & { id: string; type: string }>;
}

export interface PipelineBlueprint {
  id: string;
  kind: "pipeline";
  name: string;
  description: string;
  chaining: string;
  entry: string[];
  instances: Array<{ role: string; blueprints: string[]; description: string; scalable?: boolean }>;
  stages: Record<string, Array<Record<string, unknown>>>;
  params: BlueprintParam[];
}

export type Blueprint = FlowBlueprint | PipelineBlueprint;
