/** Job paths, shared by the Worker's routes and the schedule sync script (which runs in Node). */
export const HEALTH_SWEEP_PATH = "/api/jobs/health-sweep";
export const COMPLIANCE_EXPORT_PATH = "/api/jobs/compliance-export";
export const RETENTION_PURGE_PATH = "/api/jobs/retention-purge";
