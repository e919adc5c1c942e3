import { DataQuery } from '@grafana/schema';
import { DataSourceJsonData } from '@grafana/data';

export const QUERY_TYPES = [
  { label: 'Calls over time', value: 'calls_over_time' },
  { label: 'Top agents', value: 'top_agents' },
  { label: 'Top tools', value: 'top_tools' },
  { label: 'Agent graph (node graph)', value: 'agent_graph' },
  { label: 'Incidents', value: 'incidents' },
  { label: 'Findings', value: 'findings' },
  { label: 'Tool changes', value: 'tool_changes' },
  { label: 'Denial rate per agent (alerting)', value: 'denial_rate' },
  { label: 'New incidents per severity (alerting)', value: 'new_incidents' },
  { label: 'Variable values (field)', value: 'values' },
  { label: 'Agents', value: 'agents' },
  { label: 'Sessions', value: 'sessions' },
  { label: 'Calls (of a session, or the newest)', value: 'calls' },
  { label: 'Tools', value: 'tools' },
  { label: "A tool's definition history", value: 'tool_definitions' },
  { label: 'Detection rules', value: 'rules' },
  { label: 'Findings per rule over time', value: 'rule_hits' },
  { label: 'Blast radius (server+tool, fingerprint, session or incident)', value: 'blast_radius' },
];

/** The data source's settings (pkg/plugin Settings): its own ClickHouse and tenantAccess. */
export interface DsJsonData extends DataSourceJsonData {
  clickhouseAddress?: string;
  database?: string;
  username?: string;
  timeoutSeconds?: number;
  tenantAccess?: unknown;
}

export interface McpQuery extends DataQuery {
  queryType?: string;
  tenant?: string;
  agent?: string;
  server?: string;
  tool?: string;
  status?: string;
  severity?: string;
  rule?: string;
  limit?: number;
  /** values: which dimension (tenant, agent, server, tool). */
  field?: string;
  /** calls: one session's calls in order; blast_radius: a session subject. */
  session?: string;
  /** blast_radius: the subject (a tool is server and tool, optionally one definition). */
  definition_hash?: string;
  fingerprint?: string;
  incident?: string;
}

export const TEXT_FIELDS = ['tenant', 'agent', 'server', 'tool', 'status', 'severity', 'rule', 'definition_hash', 'fingerprint', 'session', 'incident'] as const;
