/**
 * Report shapes, as tables: for each kind (and each framework) the sections
 * it carries, each tagged with the kind it evidences. A framework report of
 * kind K holds that framework's sections of kind K; the HIPAA sections are
 * the seed's (section 5.4: accessLogs, aiDecisions, securityIncidents).
 * A new framework is a new table, not new code.
 */
import type { Framework, ReportKind } from "../governance/settings.ts";
import * as s from "./sections.ts";

type Section = (ctx: s.SectionContext) => Promise<unknown[]>;
interface SectionSpec { kind: ReportKind; build: Section; /** the control or article it evidences */ evidences?: string }

/** Reports without a framework. */
const PLAIN: Record<ReportKind, Record<string, Section>> = {
  audit_trail: { auditTrail: s.auditTrail, integrity: s.auditIntegrity },
  ai_decisions: { decisions: s.aiDecisions, totals: s.aiProcessing },
  access: { byUser: s.accessByUser, accessChanges: s.accessChanges, deniedOrFailed: s.securityIncidents, dataExports: s.dataExports },
  data_retention: { tables: s.retentionStatus, purges: s.purges },
};

const FRAMEWORKS: Record<Framework, { reportType: string; sections: Record<string, SectionSpec> }> = {
  hipaa: {
    reportType: "HIPAA_AUDIT",
    sections: {
      accessLogs: { kind: "access", build: s.sensitiveAccess, evidences: "45 CFR 164.312(b) audit controls" },
      aiDecisions: { kind: "ai_decisions", build: s.aiDecisions, evidences: "45 CFR 164.312(b) audit controls" },
      securityIncidents: { kind: "audit_trail", build: s.securityIncidents, evidences: "45 CFR 164.308(a)(6) security incident procedures" },
      auditTrail: { kind: "audit_trail", build: s.auditTrail, evidences: "45 CFR 164.312(c)(1) integrity" },
      integrity: { kind: "audit_trail", build: s.auditIntegrity, evidences: "45 CFR 164.312(c)(2) mechanism to authenticate" },
      retention: { kind: "data_retention", build: s.retentionStatus, evidences: "45 CFR 164.316(b)(2) retention" },
      purges: { kind: "data_retention", build: s.purges },
    },
  },
  soc2: {
    reportType: "SOC2_AUDIT",
    sections: {
      changeManagement: { kind: "audit_trail", build: s.changeManagement, evidences: "CC8.1 change management" },
      securityIncidents: { kind: "audit_trail", build: s.securityIncidents, evidences: "CC7.3 security events" },
      auditIntegrity: { kind: "audit_trail", build: s.auditIntegrity, evidences: "CC7.2 monitoring" },
      accessReview: { kind: "access", build: s.userAccounts, evidences: "CC6.2 user registration and review" },
      accessChanges: { kind: "access", build: s.accessChanges, evidences: "CC6.3 access changes" },
      accessByUser: { kind: "access", build: s.accessByUser, evidences: "CC6.1 logical access" },
      aiProcessing: { kind: "ai_decisions", build: s.aiProcessing, evidences: "PI1.4 processing outputs" },
      retention: { kind: "data_retention", build: s.retentionStatus, evidences: "C1.2 disposal of confidential information" },
      purges: { kind: "data_retention", build: s.purges, evidences: "C1.2 disposal of confidential information" },
    },
  },
  gdpr: {
    reportType: "GDPR_RECORDS",
    sections: {
      processingActivities: { kind: "ai_decisions", build: s.aiProcessing, evidences: "Art. 30 records of processing activities" },
      aiDecisions: { kind: "ai_decisions", build: s.aiDecisions, evidences: "Art. 22 automated decision-making" },
      dataAccess: { kind: "access", build: s.sensitiveAccess, evidences: "Art. 32(1)(d) and 5(2) accountability" },
      accessChanges: { kind: "access", build: s.accessChanges, evidences: "Art. 32 security of processing" },
      accountability: { kind: "audit_trail", build: s.auditTrail, evidences: "Art. 5(2) accountability" },
      securityIncidents: { kind: "audit_trail", build: s.securityIncidents, evidences: "Art. 33 breach detection" },
      storageLimitation: { kind: "data_retention", build: s.retentionStatus, evidences: "Art. 5(1)(e) storage limitation" },
      erasures: { kind: "data_retention", build: s.erasures, evidences: "Art. 17 erasure" },
    },
  },
};

export interface ReportDocument {
  reportType: string;
  kind: ReportKind;
  framework: Framework | null;
  dateRange: { start: string; end: string };
  generatedAt: string;
  /** Rows per section, so a reader sees what is empty without scanning. */
  counts: Record<string, number>;
  /** Framework reports: the control or article each section evidences. */
  evidences?: Record<string, string>;
  sections: Record<string, unknown[]>;
}

export async function buildReport(kind: ReportKind, framework: Framework | null, ctx: s.SectionContext): Promise<ReportDocument> {
  const specs: Record<string, SectionSpec> = framework
    ? Object.fromEntries(Object.entries(FRAMEWORKS[framework].sections).filter(([, spec]) => spec.kind === kind))
    : Object.fromEntries(Object.entries(PLAIN[kind]).map(([name, build]) => [name, { kind, build }]));
  const sections: Record<string, unknown[]> = {};
  // One query at a time: the request's pool is small and the sections are independent.
  for (const [name, spec] of Object.entries(specs)) sections[name] = await spec.build(ctx);
  const evidences = Object.fromEntries(Object.entries(specs).filter(([, v]) => v.evidences).map(([k, v]) => [k, v.evidences!]));
  return {
    reportType: framework ? FRAMEWORKS[framework].reportType : kind.toUpperCase(),
    kind, framework,
    dateRange: { start: ctx.from.toISOString(), end: ctx.to.toISOString() },
    generatedAt: ctx.now.toISOString(),
    counts: Object.fromEntries(Object.entries(sections).map(([k, v]) => [k, v.length])),
    ...(framework ? { evidences } : {}),
    sections,
  };
}

/** Which sections a kind/framework pair holds (GET /api/reports/shapes and docs). */
export function sectionNames(kind: ReportKind, framework: Framework | null): string[] {
  return framework
    ? Object.entries(FRAMEWORKS[framework].sections).filter(([, spec]) => spec.kind === kind).map(([k]) => k)
    : Object.keys(PLAIN[kind]);
}
