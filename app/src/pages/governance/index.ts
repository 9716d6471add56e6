/** Governance's tabs as one lazily loaded chunk. */
export { ApiKeys } from "./ApiKeys.tsx";
export { Audit } from "./Audit.tsx";
export { Governance } from "./Governance.tsx";
export { Policies } from "./Policies.tsx";
export { Quotas } from "./Quotas.tsx";
export { Reports } from "./Reports.tsx";
export { Roles } from "./Roles.tsx";
export { Schedules } from "./Schedules.tsx";
export { Users } from "./Users.tsx";
